"""Errors raised by saltmap.

Every error derives from :class:`SaltmapError` and from the built-in exception
that fits it, so ``except KeyError`` and ``except SaltmapError`` both work.
Messages name the file, column or value at fault and say how to fix it.
"""

from __future__ import annotations


class SaltmapError(Exception):
    """Root of all saltmap errors."""

    def __str__(self) -> str:
        # KeyError would otherwise print its message in quotes.
        return str(self.args[0]) if self.args else self.__class__.__name__


class DataDirError(SaltmapError, FileNotFoundError):
    """The real-data folder cannot be found."""


class InputFileError(SaltmapError, OSError):
    """An input file is missing, unreadable or of an unknown format."""


class UnreadableFileError(InputFileError):
    """A file that opened could not be read in some window (truncated or corrupt).

    ``path`` names the file, so a map can keep its finished blocks for a rerun once
    the file is replaced (:mod:`saltmap.mapping.store`).
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # pickled from worker processes
        return type(self), (str(self), self.path)


class OutputExistsError(SaltmapError, FileExistsError):
    """An output file exists and ``--overwrite`` was not given."""


class MissingColumnError(SaltmapError, KeyError):
    """A column the user named, or saltmap needs, is not in a table."""


class MissingBandError(SaltmapError, KeyError):
    """A band role an index, model or scene needs is not available."""


class UnknownIndexError(SaltmapError, KeyError):
    """An index name is not in the catalogue."""


class UnitError(SaltmapError, ValueError):
    """A unit is unknown or cannot be converted to the one asked for."""


class ScalingError(SaltmapError, ValueError):
    """Reflectance after scaling is implausible: the scale or offset is likely wrong."""


class SampleDataError(SaltmapError, ValueError):
    """Field samples cannot be used as given (too few rows, constant target, ...)."""


class SceneError(SaltmapError, ValueError):
    """A scene cannot be read or its bands cannot be brought onto one grid."""


class BoundaryError(SaltmapError, ValueError):
    """A study boundary is empty, unreadable or does not overlap the scene."""


class ModelFileError(SaltmapError, ValueError):
    """A saved model file is foreign, tampered with or from an incompatible version."""


class ConfigError(SaltmapError, ValueError):
    """A study or column-mapping file has a bad key or value."""


class OutputWriteError(SaltmapError, OSError):
    """An output cannot be written: the disk is full, or the folder is missing or read-only."""

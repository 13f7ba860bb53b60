"""Single-band files with the user's names: ``Blue.tif``, ``nir.tif``, or any name given.

:func:`find_named` takes the file of each role from the user (``{"B": "Blue.tif", ...}``,
relative to the scene folder or absolute; ``--band B=Blue.tif`` on the command line).
:func:`find_obvious` finds the roles of files whose names say them without help: the
whole name (``Blue.tif``, ``NIR.TIF``, ``swir1.tif``, ``SR_B5.tif``, ``band4.tif``) or one
word of it (``unnao_red.tif``, ``2024-03-01 SWIR2.tif``). Single letters (``B``, ``N``)
and ``S1``/``S2`` count only as a whole name, since ``S2_blue.tif`` means Sentinel-2.
Both return :class:`~saltmap.io.rasters.FoundBands` without scaling: the user gives it,
or float files are taken as reflectance (:func:`~saltmap.io.scene.open_scene`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from saltmap.bands import ROLES, role_of
from saltmap.errors import InputFileError, SceneError
from saltmap.io.rasters import RASTER_SUFFIXES, BandFile, FoundBands

# Words that name a role inside a longer file name: never a single letter or S1/S2.
_WORDS = {
    "blue": "B",
    "green": "G",
    "red": "R",
    "nir": "N",
    "swir1": "S1",
    "swir16": "S1",
    "swir2": "S2",
    "swir22": "S2",
}


def role_of_file(name: str) -> str | None:
    """The band role a file name says by itself, or None (see the module text)."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in RASTER_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    whole = role_of(stem)
    if whole is not None:
        return whole
    roles = {_WORDS[w] for w in re.split(r"[_\-.\s]+", stem.lower()) if w in _WORDS}
    return roles.pop() if len(roles) == 1 else None


def find_obvious(
    paths: Iterable[Path],
    where: str,
    found: FoundBands | None = None,
    skip: set[str] | None = None,
) -> FoundBands:
    """Add the files whose names say their role to ``found``; two files of one role are refused.

    Roles in ``skip`` (given by the user) are not looked for.
    """
    found = found or FoundBands(kind="folder")
    claimed = {role: Path(bf.path).name for role, bf in found.files.items()}
    for path in sorted(paths):
        role = role_of_file(path.name)
        if role is None or role in (skip or ()):
            continue
        if path.name not in found.seen:
            found.seen.append(path.name)
        if role in claimed:
            raise SceneError(
                f"{where}: two files claim band {role}: {claimed[role]} and {path.name}. "
                f"Keep one, or say which with --band {role}=FILE (bands={{'{role}': FILE}})"
            )
        claimed[role] = path.name
        found.files[role] = BandFile(str(path), 1, path.stem)
    return found


def find_named(base: Path | None, names: Mapping[str, str], where: str) -> FoundBands:
    """The files the user named for each role; paths relative to ``base`` or absolute."""
    found = FoundBands(kind="scene")
    for key, file in names.items():
        role = key if key in ROLES else role_of(key)
        if role is None:
            raise SceneError(
                f"--band {key}={file}: {key!r} is not a band role; roles are {list(ROLES)} "
                "(or their names: blue, green, red, nir, swir1, swir2)"
            )
        if role in found.files:
            raise SceneError(
                f"{where}: two files are given for band {role}: "
                f"{found.files[role].path} and {file}; give one"
            )
        path = Path(file).expanduser()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise InputFileError(
                f"band {role} file {path} does not exist (from --band {key}={file}); paths are "
                f"relative to the scene folder {base} or absolute"
            )
        found.files[role] = BandFile(str(path), 1, path.name)
        found.seen.append(path.name)
    return found

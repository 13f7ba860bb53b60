"""Which product reader reads a scene source: the one place that tells them apart.

:func:`find_bands` looks at a source (path or URL) and hands it to the reader of its
product. Every reader returns :class:`~saltmap.io.rasters.FoundBands` (band files by
role, the SCL, the scaling the metadata gives) and knows nothing of grids or pixels:
:func:`~saltmap.io.scene.open_scene` checks what was found and builds the scene.

To read another product (a mosaic, an xarray object, ...), write its reader in its own
module of :mod:`saltmap.io` (like :mod:`~saltmap.io.sentinel2`, :mod:`~saltmap.io.landsat`,
:mod:`~saltmap.io.named_bands`, :mod:`~saltmap.io.stac` or :mod:`~saltmap.io.multiband`)
and recognise its sources here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from saltmap.errors import InputFileError
from saltmap.io.landsat import find_landsat_dir, find_landsat_tar, is_landsat_names
from saltmap.io.multiband import find_multiband
from saltmap.io.named_bands import find_named, find_obvious
from saltmap.io.rasters import RASTER_SUFFIXES, FoundBands
from saltmap.io.sentinel2 import find_folder, find_safe_dir, find_safe_zip, is_safe_folder
from saltmap.io.stac import find_stac

# Sources this module does not read yet, and where they will come in: several scenes
# (a mosaic) become a list of sources read each by find_bands; an xarray DataArray or
# Dataset and the study file's ``bands = {...}`` of a scene reach find_bands as ``named``.


def find_bands(
    src: str | Sequence[str | Path],
    bands: Sequence[str] | None,
    named: Mapping[str, str] | None = None,
) -> FoundBands:
    """The band files of a source, found by the reader of its product.

    Parameters
    ----------
    src : str or sequence of paths
        A folder of band files, a ``.SAFE`` folder or zip, a Landsat Collection 2
        Level-2 folder or ``.tar``, a multiband raster, a STAC item (``.json`` path or
        URL), or a list of single-band files named by their band (``Blue.tif``).
    bands : sequence of str, optional
        For a multiband raster, the name of each of its bands (see
        :func:`~saltmap.io.multiband.find_multiband`).
    named : mapping of str to str, optional
        The file of each band role (``{"B": "Blue.tif"}``), relative to the folder
        ``src`` or absolute (see :func:`~saltmap.io.named_bands.find_named`).

    Raises
    ------
    InputFileError
        The source does not exist or cannot be read.
    SceneError
        Two files claim one band role.
    """
    if not isinstance(src, str):
        paths = [Path(p) for p in src]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise InputFileError(f"band file(s) {', '.join(missing)} do not exist")
        where = ", ".join(p.name for p in paths)
        return find_named(None, named, where) if named else find_obvious(paths, where)
    lower = src.lower().rstrip("/")
    path = Path(src)
    is_url = "://" in src
    if named:
        if not is_url and not path.is_dir():
            raise InputFileError(
                f"{src} is not a folder: band files given by name (--band ROLE=FILE) are "
                "looked for in the scene folder, or give their absolute paths with a folder"
            )
        return _overlay(path, named, src)
    if lower.endswith(".json") or lower.endswith(".geojson"):
        return find_stac(src)
    if lower.endswith(".zip"):
        if not is_url and not path.is_file():
            raise InputFileError(f"{src} does not exist; give the path of a Sentinel-2 .SAFE zip")
        return find_safe_zip(src)
    if not is_url and not path.exists():
        raise InputFileError(
            f"{src} does not exist; give a folder of band files, a .SAFE folder or zip, a "
            "Landsat Collection 2 Level-2 folder or .tar, a multiband raster or a STAC item JSON"
        )
    if lower.endswith(".tar"):
        return find_landsat_tar(src)
    if not is_url and path.is_dir():
        return _find_in_folder(path)
    if is_url and not lower.endswith(RASTER_SUFFIXES):
        return find_stac(src)
    return find_multiband(src, bands)


def _find_in_folder(path: Path, skip: set[str] | None = None) -> FoundBands:
    """A .SAFE, a Landsat product, or band files named by Sentinel-2 band or by role."""
    if is_safe_folder(path):
        return find_safe_dir(path)
    if is_landsat_names([p.name for p in path.iterdir()]):
        return find_landsat_dir(path)
    found = find_folder(path)
    # Files without a Sentinel-2 band token may still say their role (Blue.tif, nir.tif).
    rest = [
        p
        for p in path.iterdir()
        if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES and p.name not in found.seen
    ]
    return find_obvious(rest, str(path), found, skip=skip)


def _overlay(path: Path, named: Mapping[str, str], src: str) -> FoundBands:
    """The files the user named, over what the folder gives by itself for the other roles."""
    given = find_named(path, named, src)
    # The roles the user named are not looked for by name: two files that would
    # claim one of them are no longer ambiguous.
    found = _find_in_folder(path, skip=set(given.files))
    found.files.update(given.files)
    found.seen = sorted({*found.seen, *given.seen})
    if found.scaling is not None and given.files:
        # Metadata scaling speaks of the product's own files, not of files the user swapped in.
        found.scaling = None
    return found


def is_multiband_file(source: str | Path) -> bool:
    """Whether a source is one raster file (whose bands ``bands=`` names)."""
    s = str(source)
    return Path(s).suffix.lower() in RASTER_SUFFIXES and not Path(s).is_dir()

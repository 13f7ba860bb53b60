"""Which product reader reads a scene source: the one place that tells them apart.

:func:`find_bands` looks at a source (path or URL) and hands it to the reader of its
product. Every reader returns :class:`~saltmap.io.rasters.FoundBands` (band files by
role, the SCL, the scaling the metadata gives) and knows nothing of grids or pixels:
:func:`~saltmap.io.scene.open_scene` checks what was found and builds the scene.

To read another product (Landsat Collection 2, a mosaic, ...), write its reader in
its own module of :mod:`saltmap.io` (like :mod:`~saltmap.io.sentinel2`,
:mod:`~saltmap.io.stac` or :mod:`~saltmap.io.multiband`) and recognise its sources here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from saltmap.errors import InputFileError
from saltmap.io.multiband import find_multiband
from saltmap.io.rasters import RASTER_SUFFIXES, FoundBands
from saltmap.io.sentinel2 import find_folder, find_safe_dir, find_safe_zip, is_safe_folder
from saltmap.io.stac import find_stac


def find_bands(src: str, bands: Sequence[str] | None) -> FoundBands:
    """The band files of a source, found by the reader of its product.

    Parameters
    ----------
    src : str
        A folder of band files, a ``.SAFE`` folder or zip, a multiband raster, or a
        STAC item (``.json`` path or URL).
    bands : sequence of str, optional
        For a multiband raster, the name of each of its bands (see
        :func:`~saltmap.io.multiband.find_multiband`).

    Raises
    ------
    InputFileError
        The source does not exist or cannot be read.
    """
    lower = src.lower().rstrip("/")
    path = Path(src)
    is_url = "://" in src
    if lower.endswith(".json") or lower.endswith(".geojson"):
        return find_stac(src)
    if lower.endswith(".zip"):
        if not is_url and not path.is_file():
            raise InputFileError(f"{src} does not exist; give the path of a Sentinel-2 .SAFE zip")
        return find_safe_zip(src)
    if not is_url and not path.exists():
        raise InputFileError(
            f"{src} does not exist; give a folder of band files, a .SAFE folder or zip, a "
            "multiband raster or a STAC item JSON"
        )
    if not is_url and path.is_dir():
        return find_safe_dir(path) if is_safe_folder(path) else find_folder(path)
    if is_url and not lower.endswith(RASTER_SUFFIXES):
        return find_stac(src)
    return find_multiband(src, bands)


def is_multiband_file(source: str | Path) -> bool:
    """Whether a source is one raster file (whose bands ``bands=`` names)."""
    s = str(source)
    return Path(s).suffix.lower() in RASTER_SUFFIXES and not Path(s).is_dir()

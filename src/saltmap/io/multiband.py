"""Multiband rasters: one file whose bands are named by their descriptions or by the user.

:func:`find_multiband` returns the :class:`~saltmap.io.rasters.FoundBands` of such a
file. It says nothing of the scaling: the user gives it, or float files are taken as
reflectance (:func:`~saltmap.io.scene.open_scene`).
"""

from __future__ import annotations

from collections.abc import Sequence

from saltmap.bands import role_of
from saltmap.errors import SceneError
from saltmap.io.rasters import BandFile, FoundBands, open_raster


def find_multiband(src: str, bands: Sequence[str] | None) -> FoundBands:
    """The bands of one multiband raster, named by its band descriptions or by ``bands``.

    ``bands`` gives one name per band in file order (``B02``, ``blue``, ``SCL``; ``-``
    skips a band); without it the file's band descriptions name the bands.
    """
    with open_raster(src) as ds:
        count = ds.count
        descriptions = list(ds.descriptions)
    if bands is not None:
        if len(bands) != count:
            raise SceneError(
                f"{src} has {count} band(s) but {len(bands)} band name(s) were given "
                f"({', '.join(bands)}); give one name per band, '-' for a band to skip"
            )
        names = list(bands)
    else:
        names = [d or "" for d in descriptions]
    found = FoundBands(kind="multiband file")
    for index, name in enumerate(names, start=1):
        if not name or name == "-":
            continue
        found.seen.append(f"band {index} '{name}'")
        key = "SCL" if name.strip().upper() == "SCL" else role_of(name)
        if key is None:
            continue
        if key in found.files or (key == "SCL" and found.scl is not None):
            raise SceneError(f"{src}: two bands are named as {key}: check the band names")
        bf = BandFile(src, index, name)
        if key == "SCL":
            found.scl = bf
        else:
            found.files[key] = bf
    if not found.files and bands is None:
        found.seen = [f"{count} band(s) without recognised descriptions {descriptions}"]
    return found

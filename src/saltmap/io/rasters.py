"""Raster files under a scene: where a band lives, what a product reader found, the grid.

The vocabulary every product reader (:mod:`~saltmap.io.sentinel2`,
:mod:`~saltmap.io.stac`, :mod:`~saltmap.io.multiband`) shares with
:func:`~saltmap.io.scene.open_scene`: a :class:`BandFile` per band, the
:class:`FoundBands` a reader returns, and :func:`grid_and_nodata`, which checks that
the bands found can be brought onto one grid (the grid of the finest band) and says
what no data is in each. :class:`ThreadLocalDatasets` keeps the open GDAL datasets
of a scene (or of covariate rasters) per thread.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioIOError
from rasterio.warp import transform_bounds

from saltmap.bands import ROLES, Scaling
from saltmap.errors import InputFileError, SceneError

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")


@dataclass(frozen=True)
class BandFile:
    """Where one band lives: a rasterio-openable path and the band index in it.

    ``path`` may be a local file, a ``/vsizip/`` path into a zip or a URL.
    ``name`` is the band name as found (``B02``, ``blue``, ``SCL``), for messages.
    """

    path: str
    band: int = 1
    name: str = ""


@dataclass
class FoundBands:
    """What a product reader found: band files by role, the cloud mask, scaling from the metadata.

    A product reader (``find_*`` in :mod:`~saltmap.io.sentinel2`, :mod:`~saltmap.io.stac`,
    :mod:`~saltmap.io.multiband`) returns one; :func:`~saltmap.io.scene.open_scene`
    checks it and builds the :class:`~saltmap.io.scene.Scene`. ``kind`` names the
    source in messages; ``seen`` lists the bands found, for the missing-band message.
    """

    files: dict[str, BandFile] = field(default_factory=dict)
    scl: BandFile | None = None
    scaling: Scaling | dict[str, Scaling] | None = None
    baseline: str | None = None
    # Why the metadata cannot give the scaling; raised unless the user gives one.
    scaling_problem: str | None = None
    kind: str = ""
    seen: list[str] = field(default_factory=list)
    # A Landsat QA_PIXEL band, masked by its bits (the SCL is masked by its classes).
    qa: BandFile | None = None
    # The product's name of each role (``SR_B5``), for the missing-band message; Sentinel-2
    # names when empty. ``hint`` says how to fix a missing band, for the same message.
    band_names: dict[str, str] = field(default_factory=dict)
    hint: str = ""
    # The instrument (``Sentinel-2 MSI``, ``Landsat 8 OLI``) and acquisition date, when
    # the product says them: a mosaic orders its scenes by date and checks their sensors.
    sensor: str | None = None
    date: dt.date | None = None


@dataclass
class Grid:
    """The target grid of a scene: CRS, affine transform and size in pixels."""

    crs: CRS | None
    transform: Affine
    width: int
    height: int


# 2024-03-01, or 20240301 as product names write it (not inside a longer number).
_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)-?(0[1-9]|1[0-2])-?(0[1-9]|[12]\d|3[01])(?!\d)")


def date_in(*texts: str) -> dt.date | None:
    """The first date written in ``texts`` (``2024-03-01`` or ``20240301``), or None.

    Product names start with the acquisition date (``S2A_MSIL2A_20250316T...``,
    ``LC08_L2SP_143041_20240301_20240312_02_T1``), before the processing date.
    """
    for text in texts:
        for m in _DATE.finditer(Path(str(text)).name or str(text)):
            try:
                return dt.date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:  # 20230231
                continue
    return None


def parse_date(value: str | dt.date | None) -> dt.date | None:
    """A date the user gives (``"2025-03-16"`` or a ``datetime.date``), or None.

    Raises
    ------
    SceneError
        If the text is not a date.
    """
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError as err:
        raise SceneError(
            f"acquisition date {value!r} is not a date; write it as YYYY-MM-DD (2025-03-16)"
        ) from err


def open_raster(path: str) -> Any:
    """``rasterio.open``, with an InputFileError that says what to check."""
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise InputFileError(
            f"cannot open {path}: {err}. Check that the file exists, is a complete GeoTIFF or "
            "JPEG 2000 raster and is readable"
        ) from err


def same_grid(src: Any, grid: Any) -> bool:
    """Whether a dataset lies on the grid exactly (then it is read without warping)."""
    return (
        src.crs == grid.crs
        and src.width == grid.width
        and src.height == grid.height
        and src.transform.almost_equals(grid.transform)
    )


def collapse_scalings(scalings: dict[str, Scaling]) -> Scaling | dict[str, Scaling]:
    """One scaling when every band has the same, else the scalings by role."""
    distinct = set(scalings.values())
    return distinct.pop() if len(distinct) == 1 else scalings


class ThreadLocalDatasets:
    """Open GDAL datasets held per thread, dropped on pickling and reopened on use.

    GDAL datasets must not be shared between threads, and cannot be pickled to a
    worker; a subclass sets ``self._local = threading.local()`` in ``__init__`` and
    keeps ``(dataset, warped VRT or None)`` pairs in :meth:`_handles`.
    """

    _local: threading.local

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _handles(self) -> dict[Any, tuple[Any, Any]]:
        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        return handles

    def close(self) -> None:
        """Close the files this thread opened (they reopen on the next read)."""
        for src, vrt in self._handles().values():
            if vrt is not None:
                vrt.close()
            src.close()
        self._handles().clear()


class _Header(NamedTuple):
    crs: CRS | None
    transform: Affine
    width: int
    height: int
    nodata: float | None
    dtype: str


def grid_and_nodata(
    files: dict[str, BandFile], scl: BandFile | None, src: str
) -> tuple[Grid, dict[str, float | None]]:
    """The grid of the finest band, after checking every band can be brought onto it.

    Returns the grid and, per band role (and ``"SCL"``), the value that means no data.
    """
    info = _band_headers(files, scl)
    # The finest band sets the grid; among equals, the first in role order (blue).
    ref = min(files, key=lambda r: (abs(info[r].transform.a), ROLES.index(r)))
    grid = Grid(info[ref].crs, info[ref].transform, info[ref].width, info[ref].height)
    if grid.transform.b != 0 or grid.transform.d != 0:
        warnings.warn(
            f"{files[ref].path} has a rotated grid; bands are warped onto it", stacklevel=3
        )
    nodata: dict[str, float | None] = {}
    for key, header in info.items():
        path = files[key].path if key != "SCL" else scl.path  # type: ignore[union-attr]
        _check_on_grid(key, path, header, (ref, files[ref].path), grid)
        nodata[key] = _nodata_of(header)
    return grid, nodata


def _band_headers(files: dict[str, BandFile], scl: BandFile | None) -> dict[str, _Header]:
    """The grid, no data value and type of each band file (SCL last), headers only."""
    info = {}
    for key, bf in [*files.items(), *([("SCL", scl)] if scl else [])]:
        with open_raster(bf.path) as ds:
            if bf.band > ds.count:
                raise SceneError(f"{bf.path} has {ds.count} band(s), not band {bf.band}")
            info[key] = _Header(
                ds.crs,
                ds.transform,
                ds.width,
                ds.height,
                ds.nodatavals[bf.band - 1],
                ds.dtypes[bf.band - 1],
            )
    return info


def _check_on_grid(key: str, path: str, header: _Header, ref: tuple[str, str], grid: Grid) -> None:
    """Refuse a band that cannot be aligned with the grid or does not cover it.

    ``ref`` is the role and path of the band that set the grid. A band in another
    CRS that covers the grid is reprojected onto it, with a warning.
    """
    ref_key, ref_path = ref
    crs, transform = grid.crs, grid.transform
    bounds = rasterio.transform.array_bounds(grid.height, grid.width, transform)
    tol = 0.01 * abs(transform.a)
    bcrs = header.crs
    if (bcrs is None) != (crs is None):
        raise SceneError(
            f"band {key} ({path}) has {'no' if bcrs is None else 'a'} CRS while band {ref_key} "
            f"({ref_path}) has {crs or 'none'}: the bands cannot be aligned. Give "
            "every band file its coordinate reference system (for example with gdal_edit.py "
            "-a_srs)"
        )
    own = rasterio.transform.array_bounds(header.height, header.width, header.transform)
    if bcrs is not None and bcrs != crs:
        try:
            own = transform_bounds(bcrs, crs, *own, densify_pts=21)
        except Exception as err:
            raise SceneError(
                f"band {key} ({path}) is in {bcrs}, band {ref_key} in {crs}, and the two "
                f"cannot be aligned: {err}"
            ) from err
        if not _covers(own, bounds, tol):
            raise SceneError(
                f"band {key} ({path}) is in {bcrs} and band {ref_key} ({ref_path}) in "
                f"{crs}; they cover different places and cannot be aligned. Use band files "
                "of one product"
            )
        # stacklevel 4: the caller of open_scene (through grid_and_nodata)
        warnings.warn(
            f"band {key} ({path}) is in {bcrs}, not {crs}; it is reprojected onto the grid "
            f"of band {ref_key}",
            stacklevel=4,
        )
    if not _covers(own, bounds, tol):
        raise SceneError(
            f"band {key} ({path}) covers {_fmt(own)} but the {abs(transform.a):g} m grid of "
            f"band {ref_key} ({ref_path}) spans {_fmt(bounds)}: the band does not cover "
            "the grid. Use band files of the same tile and extent"
        )


def _nodata_of(header: _Header) -> float | None:
    if header.nodata is not None:
        return float(header.nodata)
    if np.dtype(header.dtype).kind in "ui":
        # Sentinel-2 L2A marks no data with 0 DN without always declaring it.
        return 0.0
    return None


def _covers(outer: Sequence[float], inner: Sequence[float], tol: float) -> bool:
    return (
        outer[0] <= inner[0] + tol
        and outer[1] <= inner[1] + tol
        and outer[2] >= inner[2] - tol
        and outer[3] >= inner[3] - tol
    )


def _fmt(b: Sequence[float]) -> str:
    return "({:.1f}, {:.1f}, {:.1f}, {:.1f})".format(*b)

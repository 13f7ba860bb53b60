"""What every scene shares: a grid tiled into windows, and where its pixels came from.

A :class:`~saltmap.io.scene.Scene` (band files), a
:class:`~saltmap.io.mosaic.Mosaic` (several scenes on one grid) and an
:class:`~saltmap.io.xarray_scene.ArrayScene` (an xarray object) all read
reflectance by window of one target grid. :class:`GriddedScene` holds what they
share: the grid (``crs``, ``transform``, ``width``, ``height``), its windows, its
profile, and the attributes the rest of saltmap reads (``roles``, ``source``,
``date``, ``sensor``). The map engine, the extraction and the covariate rasters
need nothing else of a scene.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.coords import BoundingBox
from rasterio.windows import Window

from saltmap.errors import SceneError


class GriddedScene:
    """A grid of pixels read by window: the part of a scene the map engine uses.

    Subclasses set ``crs``, ``transform``, ``width``, ``height``, ``roles``,
    ``source``, ``date`` and ``sensor`` and implement :meth:`read`.

    Attributes
    ----------
    date : datetime.date or None
        Acquisition date, when the product or the user says it.
    sensor : str or None
        The instrument (``"Sentinel-2 MSI"``, ``"Landsat 8 OLI"``), when known.
    """

    crs: Any
    transform: Affine
    width: int
    height: int
    roles: tuple[str, ...]
    source: str
    date: dt.date | None = None
    sensor: str | None = None
    # A scene read from files has no cloud classification unless a subclass says so.
    scl: Any = None
    qa: Any = None
    mask_water: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        return self.height, self.width

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> BoundingBox:
        """Bounds of the grid in its CRS."""
        west, south, east, north = rasterio.transform.array_bounds(
            self.height, self.width, self.transform
        )
        return BoundingBox(west, south, east, north)

    @property
    def profile(self) -> dict[str, Any]:
        """A rasterio profile of the grid for a single-band float32 GeoTIFF writer."""
        return {
            "driver": "GTiff",
            "crs": self.crs,
            "transform": self.transform,
            "width": self.width,
            "height": self.height,
            "count": 1,
            "dtype": "float32",
            "nodata": float("nan"),
        }

    def input_paths(self) -> list[str]:
        """The files the pixels are read from (their size and time key the resume store)."""
        return []

    def block_windows(self, block_size: int = 512) -> list[Window]:
        """Windows of at most ``block_size`` × ``block_size`` pixels tiling the grid, row-major."""
        if block_size < 1:
            raise SceneError(f"block size must be a positive number of pixels, not {block_size}")
        return [
            Window(col, row, min(block_size, self.width - col), min(block_size, self.height - row))
            for row in range(0, self.height, block_size)
            for col in range(0, self.width, block_size)
        ]

    def window_transform(self, window: Window) -> Affine:
        """The affine transform of a window of the grid."""
        return rasterio.windows.transform(window, self.transform)

    def read(self, window: Window | None = None, roles: Sequence[str] | None = None) -> Any:
        """Reflectance (n_roles, rows, cols), float32, NaN where there is none."""
        raise NotImplementedError

    def valid_mask(self, window: Window | None = None) -> Any:
        """True where every band has data and no mask removes the pixel."""
        return np.all(np.isfinite(self.read(window)), axis=0)

    def check_window(self, window: Window | None) -> Window:
        """``window`` rounded to whole pixels, or the whole grid; an error if it lies outside."""
        if window is None:
            return Window(0, 0, self.width, self.height)
        window = Window(*(round(v) for v in window.flatten()))
        if (
            window.col_off < 0
            or window.row_off < 0
            or window.width < 1
            or window.height < 1
            or window.col_off + window.width > self.width
            or window.row_off + window.height > self.height
        ):
            raise SceneError(
                f"window {window} is not inside the scene grid of {self.width} x {self.height} "
                f"pixels ({self.source}); use block_windows() to tile it"
            )
        return window

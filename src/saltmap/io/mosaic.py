"""Several scenes (adjacent tiles, several dates) read as one scene on one grid.

A study area rarely fits one image: the study this package implements maps a
4,874 km² coastal region from Sentinel-2 acquisitions of four days. :func:`open_mosaic`
puts any number of scenes on one grid (the user's CRS and resolution, or the
boundary's CRS at the finest band resolution) and :class:`Mosaic` reads it by window
like a single :class:`~saltmap.io.scene.Scene`, so the map engine, its resume store,
``jobs`` and Dask paths are the same.

Each scene keeps its own cloud mask and scaling and is warped onto the mosaic grid
as it is read (GDAL warped VRT: bilinear for reflectance, nearest for the mask, any
CRS, so tiles of neighbouring UTM zones join). Where scenes overlap, the composite
rule decides each pixel from the scenes whose observation is valid there (every band
present, not masked):

``first``
    The first valid observation in the mosaic's order: by acquisition date closest to
    a date the user gives (the sampling date, say), else in the order given. Memory is
    one block whatever the number of scenes.
``median``
    The per-band median of the valid observations, as in median compositing of image
    time series [1]_. The block is read in strips of rows so that the stack of every
    scene's observations stays within :data:`MEDIAN_BYTES`.

Beside the reflectance, :meth:`Mosaic.read_with_provenance` says per pixel how many
valid observations there were and which scene gave the value (for the median, the
scene whose observation lies closest to the median).

References
----------
.. [1] Flood, N. (2013). Seasonal composite Landsat TM/ETM+ images using the medoid
   (a multi-dimensional median). Remote Sensing, 5(12), 6481–6500.
   https://doi.org/10.3390/rs5126481
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from saltmap.bands import ROLES, check_roles
from saltmap.errors import BoundaryError, SceneError
from saltmap.io.boundary import projected_crs_of, read_area
from saltmap.io.grid import GriddedScene
from saltmap.io.rasters import Grid, parse_date
from saltmap.io.scene import Scene, open_scene

#: Composite rules of overlapping scenes.
COMPOSITES = ("first", "median")
#: Provenance layers of a mosaic: (dtype, no-data value or None, what it says).
PROVENANCE_LAYERS: dict[str, tuple[str, int | None, str]] = {
    "observations": ("uint8", None, "number of valid observations of the pixel"),
    "source": ("uint8", 0, "number of the scene that gave the pixel's value (0: none)"),
}
#: Memory of the stack of observations a median composite holds at once (bytes).
MEDIAN_BYTES = 64 * 2**20
# Provenance is kept as uint8: scene numbers 1..254, 0 for none.
_MAX_SCENES = 254


@dataclass(frozen=True)
class MosaicScene:
    """One scene of a mosaic: the scene read onto the mosaic grid, and where it lies on it."""

    scene: Scene
    #: The scene as opened, on its own grid (extraction reads points from it).
    original: Scene
    #: Rows and columns of the mosaic grid the scene covers: (row0, col0, row1, col1).
    footprint: tuple[int, int, int, int]

    def overlaps(self, window: Window) -> bool:
        r0, c0, r1, c1 = self.footprint
        return (
            window.row_off < r1
            and r0 < window.row_off + window.height
            and window.col_off < c1
            and c0 < window.col_off + window.width
        )


class Mosaic(GriddedScene):
    """Several scenes on one grid, read by window as one scene.

    Build it with :func:`open_mosaic`.

    Parameters
    ----------
    members : sequence of MosaicScene
        The scenes on the mosaic grid, in the mosaic's order (scene 1 first).
    grid : Grid
        The mosaic grid.
    composite : {"first", "median"}
        How overlapping valid observations become one value.
    order : str
        How the order was decided, for reports.

    Attributes
    ----------
    scenes : list of Scene
        The scenes as opened (own grids), numbered 1… in the provenance layer.
    """

    def __init__(
        self,
        members: Sequence[MosaicScene],
        grid: Grid,
        *,
        composite: str = "first",
        order: str = "as given",
    ) -> None:
        self.members = list(members)
        self.crs, self.transform = grid.crs, grid.transform
        self.width, self.height = int(grid.width), int(grid.height)
        self.composite = composite
        self.order = order
        self.roles = tuple(r for r in ROLES if all(r in m.scene.roles for m in self.members))
        names = ", ".join(Path(m.scene.source).name for m in self.members)
        self.source = f"mosaic of {len(self.members)} scenes ({names})"
        dates = sorted({m.scene.date for m in self.members if m.scene.date})
        self.date = dates[0] if len(dates) == 1 else None
        sensors = {m.scene.sensor for m in self.members if m.scene.sensor}
        self.sensor = " + ".join(sorted(sensors)) if sensors else None

    def __repr__(self) -> str:
        return (
            f"Mosaic({len(self.members)} scenes, {self.composite} valid observation, "
            f"roles={self.roles}, {self.width}x{self.height} px, crs={self.crs}, res={self.res})"
        )

    @property
    def scenes(self) -> list[Scene]:
        return [m.original for m in self.members]

    def input_paths(self) -> list[str]:
        return [p for m in self.members for p in m.scene.input_paths()]

    def scene_table(self) -> list[dict[str, str]]:
        """Number, source, date and sensor of each scene: the legend of the source layer."""
        return [
            {
                "scene": str(i),
                "source": m.scene.source,
                "date": m.scene.date.isoformat() if m.scene.date else "unknown",
                "sensor": m.scene.sensor or "unknown",
            }
            for i, m in enumerate(self.members, start=1)
        ]

    def describe(self) -> dict[str, str]:
        """What the mosaic is, as text: for output metadata and reports."""
        return {
            "scene": self.source,
            "composite": f"{self.composite} valid observation; order: {self.order}",
            "scenes": "; ".join(
                f"{row['scene']}: {row['source']} ({row['date']}, {row['sensor']})"
                for row in self.scene_table()
            ),
            "resampling": "each scene warped onto the mosaic grid: reflectance bilinear, "
            "cloud mask nearest",
        }

    def read(self, window: Window | None = None, roles: Sequence[str] | None = None) -> np.ndarray:
        """Composite reflectance (n_roles, rows, cols), float32, NaN without a valid observation."""
        return self.read_with_provenance(window, roles)[0]

    def read_with_provenance(
        self, window: Window | None = None, roles: Sequence[str] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Composite reflectance and its provenance layers (:data:`PROVENANCE_LAYERS`)."""
        roles = self.roles if roles is None else tuple(roles)
        check_roles(roles, self.roles, self.source)
        window = self.check_window(window)
        shape = (int(window.height), int(window.width))
        count = np.zeros(shape, np.uint8)
        source = np.zeros(shape, np.uint8)
        if self.composite != "median":
            out = _first(self._observed(window, roles), shape, len(roles), count, source)
            return out, {"observations": count, "source": source}
        # The median needs every observation of a pixel at once: strips of rows keep
        # the stack of all scenes within MEDIAN_BYTES however many scenes overlap.
        out = np.empty((len(roles), *shape), np.float32)
        n = max(1, sum(m.overlaps(window) for m in self.members))
        rows = max(1, MEDIAN_BYTES // (4 * n * len(roles) * shape[1]))
        for top in range(0, shape[0], rows):
            strip = Window(
                window.col_off, window.row_off + top, shape[1], min(rows, shape[0] - top)
            )
            part = slice(top, top + int(strip.height))
            out[:, part] = _median(
                self._observed(strip, roles), (int(strip.height), shape[1]), len(roles),
                count[part], source[part],
            )  # fmt: skip
        return out, {"observations": count, "source": source}

    def _observed(self, window: Window, roles: Sequence[str]) -> Any:
        """(scene number, reflectance) of the scenes that overlap ``window``, read lazily."""
        return (
            (i, m.scene.read(window, roles))
            for i, m in enumerate(self.members, start=1)
            if m.overlaps(window)
        )


def _first(
    observed: Any, shape: tuple[int, int], n: int, count: np.ndarray, source: np.ndarray
) -> np.ndarray:
    """The first valid observation of each pixel; one scene's block in memory at a time."""
    out = np.full((n, *shape), np.nan, np.float32)
    for i, data in observed:
        valid = np.all(np.isfinite(data), axis=0)
        count += valid
        take = valid & (source == 0)
        out[:, take] = data[:, take]
        source[take] = i
    return out


def _median(
    observed: Any, shape: tuple[int, int], n: int, count: np.ndarray, source: np.ndarray
) -> np.ndarray:
    """Per-band median of the valid observations; the source is the one closest to it."""
    numbers, stack = [], []
    for i, data in observed:
        valid = np.all(np.isfinite(data), axis=0)
        data[:, ~valid] = np.nan  # a pixel is one observation: all its bands or none
        count += valid
        numbers.append(i)
        stack.append(data)
    if not stack:
        return np.full((n, *shape), np.nan, np.float32)
    cube = np.stack(stack)  # (scenes, bands, rows, cols)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: no observation
        out = np.nanmedian(cube, axis=0).astype(np.float32)
    distance = np.where(np.isnan(cube[:, 0]), np.inf, np.nansum((cube - out) ** 2, axis=1))
    nearest = np.asarray(numbers, np.uint8)[np.argmin(distance, axis=0)]
    source[:] = np.where(count > 0, nearest, 0)
    return out


def open_mosaic(
    sources: Sequence[str | Path | Scene],
    *,
    crs: str | CRS | None = None,
    resolution: float | None = None,
    boundary: str | Path | None = None,
    composite: str = "first",
    date: str | dt.date | None = None,
    mixed_sensors: bool = False,
    **open_options: Any,
) -> Mosaic:
    """Open several scenes as one mosaic on one grid.

    Parameters
    ----------
    sources : sequence of path or Scene
        The scenes: adjacent tiles, several dates of one place, or both. Paths are
        opened with :func:`~saltmap.io.scene.open_scene` and ``open_options``.
    crs : str or CRS, optional
        CRS of the mosaic grid (``"EPSG:32644"``). By default the boundary's (its
        UTM zone if the boundary is in degrees), else the CRS most scenes share.
    resolution : float, optional
        Pixel size in units of ``crs``; by default the finest band resolution of the
        scenes (10 m for Sentinel-2).
    boundary : path, optional
        The study area: the grid covers its bounds, and scenes that do not reach it
        are left out (named in a warning).
    composite : {"first", "median"}
        How overlapping valid observations become one value (see the module).
    date : str or datetime.date, optional
        For ``first``: the scenes are ordered by acquisition date closest to it (the
        sampling date, say); scenes without a date come last. By default the order given.
    mixed_sensors : bool
        Allow scenes of different sensors (Sentinel-2 MSI with Landsat OLI): their bands
        differ in width and response, so a mixed mosaic is refused unless asked for.
    **open_options
        Passed to :func:`~saltmap.io.scene.open_scene` (``scaling``, ``mask_water`` ...).

    Raises
    ------
    SceneError
        No scene, an unknown composite rule, more than 254 scenes, mixed sensors without
        ``mixed_sensors``, or no projected CRS to put the grid on.
    BoundaryError
        No scene shares any area with the boundary.
    """
    if composite not in COMPOSITES:
        raise SceneError(f"composite rule {composite!r} is unknown; use one of {COMPOSITES}")
    if not sources:
        raise SceneError("a mosaic needs at least one scene")
    if len(sources) > _MAX_SCENES:
        raise SceneError(f"{len(sources)} scenes: a mosaic takes at most {_MAX_SCENES}")
    scenes = [s if isinstance(s, Scene) else open_scene(s, **open_options) for s in sources]
    check_sensors(scenes, mixed_sensors)
    area = read_area(boundary) if boundary is not None else None
    target = CRS.from_user_input(crs) if crs is not None else _default_crs(scenes, area)
    res = float(resolution) if resolution is not None else _finest(scenes, target)
    footprints = [transform_bounds(s.crs, target, *s.bounds, densify_pts=21) for s in scenes]
    scenes, footprints = _within_area(scenes, footprints, area, target, boundary)
    grid = _grid(footprints, area, target, res, _anchor(scenes, target, res))
    _check_compact(grid, footprints, scenes)
    ordered, order = _order(scenes, footprints, date)
    members = [MosaicScene(s.on_grid(grid), s, _footprint(f, grid)) for s, f in ordered]
    return Mosaic(members, grid, composite=composite, order=order)


def sensor_family(sensor: str | None) -> str | None:
    """The instrument a sensor's bands belong to: Landsat 8 and 9 OLI are one family."""
    if sensor is None:
        return None
    words = sensor.split()
    if len(words) == 3 and words[0] == "Landsat" and words[1].isdigit():
        return f"Landsat {words[2]}"
    return sensor


def check_sensors(scenes: Sequence[GriddedScene], mixed_sensors: bool) -> None:
    """Refuse scenes of different sensors unless the user allows it."""
    families: dict[str, list[str]] = {}
    for s in scenes:
        family = sensor_family(s.sensor)
        if family is not None:
            families.setdefault(family, []).append(Path(s.source).name)
    if len(families) > 1 and not mixed_sensors:
        listed = "; ".join(f"{f}: {', '.join(names)}" for f, names in families.items())
        raise SceneError(
            f"the scenes are of different sensors ({listed}); their bands differ in width and "
            "response, so one model reads them differently. Map each sensor separately, or "
            "allow the mix (mixed_sensors=True, --mixed-sensors)"
        )


def _default_crs(scenes: Sequence[Scene], area: Any) -> CRS:
    if area is not None:
        return CRS.from_user_input(projected_crs_of(area))
    crss = [s.crs for s in scenes if s.crs is not None and s.crs.is_projected]
    if not crss:
        raise SceneError(
            "no scene is on a projected grid (metres) to put the mosaic on; give its CRS "
            "(crs='EPSG:32644', --crs) or a boundary"
        )
    return max(crss, key=crss.count)  # the CRS most scenes share, the first of a tie


def _finest(scenes: Sequence[Scene], target: CRS) -> float:
    """The finest pixel size of the scenes, in the target's units."""
    sizes = []
    for s in scenes:
        if s.crs.is_projected == target.is_projected:
            factor = s.crs.linear_units_factor[1] if s.crs.is_projected else 1.0
            sizes.append(min(s.res) * factor / _unit(target))
    if not sizes:
        raise SceneError(
            f"the scenes' pixel size cannot be put in the units of {target}; give the "
            "resolution (resolution=10, --resolution)"
        )
    return min(sizes)


def _unit(crs: CRS) -> float:
    return crs.linear_units_factor[1] if crs.is_projected else 1.0


def _within_area(
    scenes: list[Scene], footprints: list[Any], area: Any, target: CRS, boundary: Any
) -> tuple[list[Scene], list[Any]]:
    """The scenes that share some area with the boundary; the others named in a warning."""
    if area is None:
        return scenes, footprints
    import shapely

    shape = shapely.union_all(list(area.to_crs(target).geometry.make_valid()))
    keep = [shape.intersects(shapely.box(*f)) for f in footprints]
    left_out = [s.source for s, k in zip(scenes, keep, strict=True) if not k]
    if not any(keep):
        raise BoundaryError(
            f"no scene shares any area with the boundary {boundary}: "
            f"{', '.join(s.source for s in scenes)}. Check that the scenes cover the study "
            "area and that the boundary's CRS is right"
        )
    if left_out:
        warnings.warn(
            f"{len(left_out)} scene(s) share no area with the boundary {boundary} and are "
            f"left out: {', '.join(left_out)}",
            stacklevel=3,
        )
    kept = [(s, f) for s, f, k in zip(scenes, footprints, keep, strict=True) if k]
    return [s for s, _ in kept], [f for _, f in kept]


def _anchor(scenes: Sequence[Scene], target: CRS, res: float) -> tuple[float, float]:
    """Grid origin modulo the pixel size: the first scene already on such a grid keeps
    its pixels unresampled (Landsat grids sit at 15 m past a multiple of 30 m)."""
    for s in scenes:
        if s.crs == target and math.isclose(min(s.res), res) and math.isclose(*s.res):
            return s.transform.c % res, s.transform.f % res
    return 0.0, 0.0


def _grid(
    footprints: Sequence[Any], area: Any, target: CRS, res: float, anchor: tuple[float, float]
) -> Grid:
    """The grid over the scenes' union (cut to the boundary's bounds), snapped to ``anchor``."""
    west = min(f[0] for f in footprints)
    south = min(f[1] for f in footprints)
    east = max(f[2] for f in footprints)
    north = max(f[3] for f in footprints)
    if area is not None:
        aw, as_, ae, an = area.to_crs(target).total_bounds
        west, south, east, north = max(west, aw), max(south, as_), min(east, ae), min(north, an)
    ax, ay = anchor
    west = math.floor((west - ax) / res) * res + ax
    north = math.ceil((north - ay) / res) * res + ay
    width = max(1, math.ceil(round((east - west) / res, 6)))
    height = max(1, math.ceil(round((north - south) / res, 6)))
    return Grid(target, from_origin(west, north, res, res), width, height)


def _check_compact(grid: Grid, footprints: Sequence[Any], scenes: Sequence[Scene]) -> None:
    """Refuse a grid mostly empty because the scenes lie far apart (another region, a typo)."""
    res = abs(grid.transform.a)
    covered = sum((f[2] - f[0]) * (f[3] - f[1]) for f in footprints) / res**2
    if grid.width * grid.height > max(4 * covered, 1e6):
        listed = ", ".join(f"{s.source} ({s.crs})" for s in scenes)
        raise SceneError(
            f"the scenes lie far apart: one grid over them would be {grid.width:,} x "
            f"{grid.height:,} pixels for {covered:,.0f} pixels of scene ({listed}). Map them "
            "separately, or give a boundary of the study area"
        )


def _order(
    scenes: Sequence[Scene], footprints: Sequence[Any], date: str | dt.date | None
) -> tuple[list[tuple[Scene, Any]], str]:
    """The scenes in the mosaic's order, and how it was decided."""
    pairs = list(zip(scenes, footprints, strict=True))
    if date is None:
        return pairs, "as given"
    wanted = parse_date(date)

    def distance(pair: tuple[Scene, Any]) -> float:
        d = pair[0].date
        return abs((d - wanted).days) if d is not None else math.inf

    return sorted(pairs, key=distance), f"acquisition date closest to {wanted.isoformat()}"


def _footprint(bounds: Sequence[float], grid: Grid) -> tuple[int, int, int, int]:
    """Rows and columns of ``grid`` that ``bounds`` touches: (row0, col0, row1, col1)."""
    inverse = ~grid.transform
    c0, r0 = inverse * (bounds[0], bounds[3])
    c1, r1 = inverse * (bounds[2], bounds[1])
    return (
        max(0, math.floor(r0) - 1),
        max(0, math.floor(c0) - 1),
        min(grid.height, math.ceil(r1) + 1),
        min(grid.width, math.ceil(c1) + 1),
    )

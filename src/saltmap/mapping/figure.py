"""The class map figure (the study's figure 6), drawn from the class COG's overviews.

pyplot is imported only when a figure is drawn: every mapping worker imports
this stage, and pyplot would add about 14 MiB to each of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import rasterio
from rasterio.enums import Resampling

from saltmap.atomic import atomic_savefig
from saltmap.errors import InputFileError
from saltmap.mapping.blocks import ClassPlan
from saltmap.mapping.plan import read_boundary

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def read_classes_overview(path: str | Path, max_pixels: int = 1600) -> tuple[np.ndarray, Any]:
    """Read the class COG decimated to at most ``max_pixels`` on its longer side.

    Returns the codes and their ``(left, right, bottom, top)`` extent; the COG's
    overviews make this cheap whatever the scene size.
    """
    try:
        with rasterio.open(path) as src:
            factor = max(1, math.ceil(max(src.width, src.height) / max_pixels))
            shape = (max(1, src.height // factor), max(1, src.width // factor))
            codes = src.read(1, out_shape=shape, resampling=Resampling.nearest)
            b = src.bounds
            crs = src.crs
    except rasterio.errors.RasterioIOError as err:
        raise InputFileError(f"cannot read the class map {path}: {err}") from err
    return codes, ((b.left, b.right, b.bottom, b.top), crs)


def boundary_frame(
    boundary: str | Path, raster_path: str | Path
) -> tuple[float, float, float, float]:
    """The ``(left, right, bottom, top)`` bounds of a boundary's polygons within a raster,
    in the raster's CRS: the area a map figure shows when the map has a boundary."""
    with rasterio.open(raster_path) as src:
        b, crs = src.bounds, src.crs
    area = read_boundary(boundary, crs, (b.left, b.bottom, b.right, b.top))[0]
    west, south, east, north = area.bounds
    # Within the raster: the part of a boundary beyond the scene is not mapped.
    return (max(west, b.left), min(east, b.right), max(south, b.bottom), min(north, b.top))


def _crop_to_frame(
    layers: Mapping[str, np.ndarray],
    extent: tuple[float, float, float, float],
    frame: tuple[float, float, float, float],
) -> tuple[dict[str, np.ndarray], tuple[float, float, float, float]]:
    """Arrays of one grid (bounds ``extent``, north up) cut to the pixels that cover
    ``frame``, and the bounds of the cut (``frame`` widened to whole pixels, within
    ``extent``)."""
    left, right, bottom, top = extent
    height, width = next(iter(layers.values())).shape
    dx, dy = (right - left) / width, (top - bottom) / height
    # A small tolerance keeps a frame on pixel edges from taking one more pixel.
    c0 = max(0, math.floor((frame[0] - left) / dx + 1e-6))
    c1 = min(width, math.ceil((frame[1] - left) / dx - 1e-6))
    r0 = max(0, math.floor((top - frame[3]) / dy + 1e-6))
    r1 = min(height, math.ceil((top - frame[2]) / dy - 1e-6))
    if c1 <= c0 or r1 <= r0:
        return dict(layers), extent
    cut = {name: array[r0:r1, c0:c1] for name, array in layers.items()}
    return cut, (left + c0 * dx, left + c1 * dx, top - r1 * dy, top - r0 * dy)


def class_map_of(
    classes_path: Path,
    plan: ClassPlan,
    *,
    title: str,
    percent: list[float] | None = None,
    aoa_path: Path | None = None,
    boundary: str | Path | None = None,
) -> Figure:
    """The class COG drawn as the study's figure 6 (a matplotlib Figure).

    With ``aoa_path`` (the AOA COG) pixels outside the area of applicability are
    greyed, read decimated exactly as the classes are. The figure frames the
    ``boundary``'s polygons when one is given (:func:`boundary_frame`), else the
    pixels with a class (:func:`saltmap.map_figures.valid_frame`).
    """
    from saltmap.map_figures import class_map_figure, valid_frame

    codes, (extent, crs) = read_classes_overview(classes_path)
    layers = {"codes": codes}
    if aoa_path is not None:
        aoa, _ = read_classes_overview(aoa_path)
        layers["outside_aoa"] = aoa == 0
    # Framed so that a small mapped patch is not lost in an empty raster.
    frame = boundary_frame(boundary, classes_path) if boundary else valid_frame(codes != 0, extent)
    layers, extent = _crop_to_frame(layers, extent, frame)
    codes = layers.pop("codes")
    return class_map_figure(
        codes,
        extent,
        labels=plan.labels,
        colours=plan.colours,
        crs=crs,
        title=title,
        percent=percent,
        **layers,
    )


def draw_class_map(
    classes_path: Path,
    figure_path: Path,
    plan: ClassPlan,
    *,
    title: str,
    percent: list[float] | None = None,
    aoa_path: Path | None = None,
    boundary: str | Path | None = None,
) -> Path:
    """Draw the class COG as the study's figure 6 (:func:`class_map_of`) and save it as PNG."""
    import matplotlib.pyplot as plt

    fig = class_map_of(classes_path, plan, title=title, percent=percent, aoa_path=aoa_path,
                       boundary=boundary)  # fmt: skip
    try:
        return atomic_savefig(fig, figure_path, dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)


def figure_title(tags: Mapping[str, str], plan: ClassPlan) -> str:
    """Title of the class map: the scheme, the model and what it predicts."""
    s = plan.scheme
    return (
        f"Soil salinity classes ({s.name}, {s.quantity} in {s.unit}) from {tags['model']} "
        f"predicting {tags['target']} ({tags['unit']})"
    )


def draw_provenance(provenance: Mapping[str, Path], scenes: list[str], figure_path: Path) -> Path:
    """Draw a mosaic's provenance layers (:func:`saltmap.map_figures.provenance_figure`)."""
    import matplotlib.pyplot as plt

    from saltmap.map_figures import provenance_figure

    source, (extent, crs) = read_classes_overview(provenance["source"])
    observations, _ = read_classes_overview(provenance["observations"])
    fig = provenance_figure(source, observations, extent, scenes, crs=crs)
    try:
        return atomic_savefig(fig, figure_path, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)

"""The class map figure (the study's figure 6), drawn from the class COG's overviews."""

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
    import shapely

    from saltmap.mapping.plan import read_boundary

    with rasterio.open(raster_path) as src:
        b, crs = src.bounds, src.crs
    area = read_boundary(boundary, crs, (b.left, b.bottom, b.right, b.top))[0]
    west, south, east, north = area.intersection(shapely.box(*b)).bounds
    return (west, east, south, north)


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
    ``boundary``'s polygons when one is given, else the pixels with a class.
    """
    from saltmap.plots import class_map_figure

    codes, (extent, crs) = read_classes_overview(classes_path)
    extra: dict[str, Any] = {}
    if boundary is not None:
        extra["frame"] = boundary_frame(boundary, classes_path)
    if aoa_path is not None:
        aoa, _ = read_classes_overview(aoa_path)
        extra["outside_aoa"] = aoa == 0
    return class_map_figure(
        codes,
        extent,
        labels=plan.labels,
        colours=plan.colours,
        crs=crs,
        title=title,
        percent=percent,
        **extra,
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

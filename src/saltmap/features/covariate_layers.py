"""Covariate layers derived on a scene's grid: distance to features, terrain.

:func:`distance_to_features` (distance in metres from each pixel of the scene
grid to the nearest line or polygon of a vector file, by a Euclidean distance
transform [3]_ of the rasterised features, exact where a feature lies beyond
the padded grid) and :func:`terrain` (elevation and slope in degrees from a
DEM resampled to the scene grid); :func:`write_covariate` writes either as a
GeoTIFF, which :class:`saltmap.features.covariate_rasters.CovariateRasters` reads.

References
----------
.. [3] Maurer, C. R., Qi, R., Raghavan, V. (2003). A linear time algorithm for
   computing exact Euclidean distance transforms of binary images in arbitrary
   dimensions. IEEE TPAMI 25(2), 265–270.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from saltmap.errors import InputFileError, SceneError
from saltmap.features.covariate_rasters import check_covers, open_raster, warped


def _projected_grid(scene: Any, what: str) -> tuple[float, float]:
    if scene.crs is None or not scene.crs.is_projected:
        raise SceneError(
            f"{what} is computed in metres on the scene grid, but the scene's CRS {scene.crs} is "
            "not projected; reproject the scene to a metric CRS (UTM)"
        )
    return scene.res


def read_vector(path: str | Path, crs: Any) -> Any:
    """Lines or polygons of a vector file, in ``crs``; an error names what is wrong."""
    import geopandas as gpd

    try:
        frame = gpd.read_file(path)
    except Exception as err:  # pyogrio raises several types for unreadable files
        raise InputFileError(f"cannot read vector file {path}: {err}") from err
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.empty:
        raise InputFileError(f"vector file {path} has no geometries to measure distance to")
    if frame.crs is None:
        raise InputFileError(
            f"vector file {path} has no CRS; set it (e.g. ogr2ogr -a_srs EPSG:4326) so saltmap "
            "can place it on the scene"
        )
    kinds = set(frame.geom_type)
    if kinds & {"Point", "MultiPoint"}:
        raise InputFileError(
            f"vector file {path} holds points ({', '.join(sorted(kinds))}); distance is measured "
            "to lines (a coastline, a river) or polygons (the sea, a lake)"
        )
    return frame.to_crs(crs).geometry


def distance_to_features(
    vector: str | Path, scene: Any, *, margin: float = 5_000.0, block_size: int = 1024
) -> np.ndarray:
    """Distance in metres from each pixel centre of the scene grid to the nearest feature.

    Block by block, the features (lines or polygons, any CRS) near a block are
    rasterised (all touched cells) onto the block's grid padded by ``margin`` on
    every side, and the Euclidean distance transform of the empty cells [3]_
    gives each pixel's distance to the nearest burnt cell, in metres (pixel size
    as sampling). Inside a polygon the distance is 0. Rasterising moves a feature
    by at most half a pixel diagonal (7.1 m at 10 m), the error bound of these
    distances. Where the nearest burnt cell is farther than ``margin`` a feature
    outside the padded block could be nearer, so those pixels are measured with
    shapely's STRtree nearest-segment query instead: exactly when they are few,
    else exactly on a lattice every 8 pixels and bilinearly between (error at most
    one lattice-cell diagonal, 113 m at 10 m pixels, on distances beyond the
    margin). Memory is bounded by the padded block, not the scene (besides the
    output).

    Parameters
    ----------
    vector : path
        A vector file geopandas reads (GeoPackage, shapefile, GeoJSON), with a CRS.
    scene : Scene
        Gives the grid (projected CRS in metres).
    margin : float, default=5000
        Padding of each block in metres: a larger one costs memory and time per
        block, a smaller one more exact measurements of far pixels.
    block_size : int, default=1024
        Side of the blocks in pixels.

    Returns
    -------
    ndarray (rows, cols), float32
    """
    import shapely

    res_x, res_y = _projected_grid(scene, "distance to features")
    geoms = np.asarray(read_vector(vector, scene.crs))
    trees = (shapely.STRtree(geoms), shapely.STRtree(_segments(geoms)))
    pad = max(1, int(np.ceil(margin / min(res_x, res_y))))
    out = np.empty(scene.shape, dtype=np.float32)
    for window in scene.block_windows(block_size):
        rows, cols = window.toslices()
        out[rows, cols] = _block_distance(scene, window, geoms, trees, pad, (res_x, res_y))
    return out


def _segments(geoms: np.ndarray) -> np.ndarray:
    """Every straight segment of the lines and polygon rings, for nearest-segment queries.

    A pixel measured exactly lies outside every polygon (inside, its own cell is
    burnt), so its distance to a polygon is the distance to the polygon's rings.
    """
    import shapely

    lines = [shapely.boundary(g) if g.geom_type.endswith("Polygon") else g for g in geoms]
    parts = shapely.get_parts(shapely.get_parts(np.asarray(lines, dtype=object)))
    segments = []
    for part in parts:
        coords = shapely.get_coordinates(part)
        if len(coords) >= 2:
            segments.append(shapely.linestrings(np.stack([coords[:-1], coords[1:]], axis=1)))
    return np.concatenate(segments)


def _block_distance(
    scene: Any,
    window: Any,
    geoms: np.ndarray,
    trees: tuple[Any, Any],
    pad: int,
    res: tuple[float, float],
) -> np.ndarray:
    import shapely
    from affine import Affine
    from rasterio.features import rasterize
    from rasterio.windows import bounds as window_bounds
    from scipy.ndimage import distance_transform_edt

    res_x, res_y = res
    height, width = int(window.height), int(window.width)
    transform = scene.window_transform(window)
    west, south, east, north = window_bounds(window, scene.transform)
    box = shapely.box(
        west - pad * res_x, south - pad * res_y, east + pad * res_x, north + pad * res_y
    )
    near = [g for g in shapely.intersection(geoms[trees[0].query(box)], box) if not g.is_empty]
    distance = np.full((height, width), np.inf)
    if near:
        burnt = rasterize(
            ((g, 1) for g in near), out_shape=(height + 2 * pad, width + 2 * pad),
            transform=transform * Affine.translation(-pad, -pad), all_touched=True, dtype="uint8",
        )  # fmt: skip
        edt = distance_transform_edt(burnt == 0, sampling=(res_y, res_x))
        distance = edt[pad : pad + height, pad : pad + width]
    far = distance > pad * min(res_x, res_y)
    if far.any():
        distance = _far_distance(distance, far, transform, trees[1])
    return distance.astype(np.float32)


#: Lattice step (pixels) of the far-pixel measurements that are interpolated between.
FAR_STEP = 8


def _nearest(tree: Any, transform: Any, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    import shapely

    xs, ys = transform * (cols + 0.5, rows + 0.5)
    pairs, exact = tree.query_nearest(
        shapely.points(xs, ys), return_distance=True, all_matches=False
    )
    out = np.empty(rows.size)
    out[pairs[0]] = exact
    return out


def _far_distance(distance: np.ndarray, far: np.ndarray, transform: Any, tree: Any) -> np.ndarray:
    """Distances of pixels beyond the padded grid, by nearest-segment queries.

    Few far pixels are each measured exactly. Many (a block far inland) are measured
    exactly on a lattice every :data:`FAR_STEP` pixels (and the block's last row and
    column) and interpolated bilinearly between: distance is 1-Lipschitz, so the
    error is at most one lattice-cell diagonal (113 m at 10 m pixels), beyond a
    margin of kilometres.
    """
    from scipy.interpolate import RegularGridInterpolator

    height, width = distance.shape
    rows = np.unique(np.r_[np.arange(0, height, FAR_STEP), height - 1])
    cols = np.unique(np.r_[np.arange(0, width, FAR_STEP), width - 1])
    fr, fc = np.nonzero(far)
    distance = distance.copy()
    if fr.size <= rows.size * cols.size or rows.size < 2 or cols.size < 2:
        distance[fr, fc] = _nearest(tree, transform, fr, fc)
        return distance
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    lattice = _nearest(tree, transform, rr.ravel(), cc.ravel()).reshape(rr.shape)
    interpolate = RegularGridInterpolator((rows, cols), lattice, method="linear")
    distance[fr, fc] = interpolate(np.column_stack([fr, fc]))
    return distance


def terrain(dem: str | Path, scene: Any) -> tuple[np.ndarray, np.ndarray]:
    """Elevation and slope (degrees) from a DEM, resampled to the scene grid.

    The DEM (any CRS and resolution, heights in metres) is warped bilinearly onto
    the scene grid; slope is ``arctan(|grad z|)`` with the gradient by central
    differences (:func:`numpy.gradient`) over the scene's pixel size in metres.

    Raises
    ------
    SceneError
        If the DEM does not cover the scene or the scene's CRS is not projected.
    """
    res_x, res_y = _projected_grid(scene, "slope")
    with open_raster(dem, "elevation") as src:
        check_covers(src, scene, "DEM")
        with warped(src, scene, categorical=False) as vrt:
            elevation = vrt.read(1, out_dtype="float32")
    # Rows run north to south, so d/drow is -d/dy; the sign does not change the slope.
    dz_drow, dz_dcol = np.gradient(elevation.astype(np.float64), res_y, res_x)
    slope = np.degrees(np.arctan(np.hypot(dz_drow, dz_dcol)))
    return elevation, slope.astype(np.float32)


def write_covariate(
    path: str | Path,
    values: np.ndarray,
    scene: Any,
    *,
    description: str,
    unit: str = "",
    overwrite: bool = False,
) -> Path:
    """Write a covariate on the scene grid as a tiled, compressed float32 GeoTIFF."""
    import rasterio

    from saltmap.atomic import atomic_output

    path = Path(path)
    profile = {
        **scene.profile,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
    }
    with atomic_output(path, overwrite=overwrite) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(np.asarray(values, dtype=np.float32), 1)
            dst.set_band_description(1, description)
            dst.update_tags(1, unit=unit, description=description, software="saltmap")
    return path

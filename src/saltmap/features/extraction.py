"""Surface reflectance of a scene at field sample points.

:func:`extract_at_points` turns field samples with coordinates and a scene into
a samples table — band roles as reflectance, the target, id and coordinates —
that :func:`saltmap.io.samples.read_samples` reads back directly, so screening,
evaluation and training can run on reflectance taken from the image.

Each point takes the value of the pixel it falls in, or the mean of an n × n
window around it over the pixels every band has and the scene classification
keeps. Averaging a small window lowers the effect of GPS error and of the
mismatch between a soil sample's footprint and a pixel. Points outside the
scene, or whose pixels are all masked, are not dropped silently: the report
gives the reason for each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from rasterio.windows import Window

from saltmap.atomic import atomic_output, atomic_to_csv
from saltmap.bands import ROLES
from saltmap.errors import InputFileError, OutputExistsError, SampleDataError, SceneError
from saltmap.io.landsat import QA_PIXEL_MASKED, QA_PIXEL_WATER
from saltmap.io.samples import Samples
from saltmap.io.scene import Scene, open_scene
from saltmap.io.sentinel2 import SCL_MASKED, SCL_WATER

#: Columns of the extraction report.
REPORT_COLUMNS = ("id", "x", "y", "row", "col", "status", "n_pixels", "reason")
_SCL_NAMES = {**SCL_MASKED, SCL_WATER: "water"}


def extract_at_points(
    samples_or_points: Samples | pd.DataFrame,
    scene: Scene,
    *,
    window: int = 1,
    crs: str | None = None,
    block_size: int = 512,
    covariates: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reflectance of a scene at sample points.

    Parameters
    ----------
    samples_or_points : Samples or DataFrame or GeoDataFrame
        Field samples with coordinates (:attr:`Samples.coords` in
        :attr:`Samples.crs`), a GeoDataFrame of points, or a DataFrame with
        ``x`` and ``y`` columns in ``crs``. The index is the sample id.
    scene : Scene or ArrayScene
        The scene, from :func:`saltmap.io.scene.open_scene`; anything else (a path, an
        xarray object of float reflectance) is opened by it with defaults.
    window : int
        Side of the square window averaged around each point's pixel, odd:
        1 takes the pixel itself, 3 the mean of a 3 × 3 window over the pixels
        that are not masked.
    crs : str, optional
        CRS of ``x``/``y`` for a plain DataFrame.
    block_size : int
        Points are read block by block of the scene grid, this many pixels a side,
        so memory stays bounded however many points there are.
    covariates : saltmap.features.covariates.CovariateRasters, optional
        Covariate rasters sampled at each point's pixel as mapping reads them
        (warped onto the scene grid); one column each, after ``n_pixels``. A
        raster that does not cover the scene, or a name the samples already
        have as a column, is an error before anything is read.

    Returns
    -------
    table : DataFrame
        One row per point that has reflectance: index ``id``; the scene's band roles
        (reflectance); the target (under its own name) when the samples have one;
        ``x`` and ``y`` as given; ``n_pixels`` averaged; then the other columns of
        the samples. ``table.attrs`` holds ``crs``, ``target_name``, ``target_unit``,
        ``window`` and ``scene``.
    report : DataFrame
        One row per point: ``id``, ``x``, ``y`` (as given), ``row``, ``col`` (scene
        pixel, -1 outside), ``status`` (``ok``, ``outside``, ``masked``),
        ``n_pixels`` and ``reason``.
    """
    if window < 1 or window % 2 == 0:
        raise SceneError(f"the extraction window must be an odd number of pixels, not {window}")
    if not hasattr(scene, "block_windows"):  # a path or an xarray object
        scene = open_scene(scene)
    frame, point_crs, target_name, target_unit = _points(samples_or_points, crs)
    if covariates is not None:
        _check_covariates(covariates, frame, scene)
    x, y = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
    sx, sy = _to_scene_crs(x, y, point_crs, scene)
    row, col, inside = _pixels(sx, sy, scene)
    values, counts, scl_class = _read_all(scene, row, col, inside, window, block_size)
    status = np.where(~inside, "outside", np.where(counts > 0, "ok", "masked"))
    reasons = [_reason(s, sx[i], sy[i], scene, window, scl_class[i]) for i, s in enumerate(status)]
    report = _report(frame, row, col, inside, status, counts, reasons)
    table = _table(frame, values, counts, status, scene, target_name)
    if covariates is not None:
        ok = status == "ok"
        _insert_covariates(table, covariates, scene, row[ok], col[ok])
    table.attrs.update(
        crs=point_crs,
        target_name=target_name,
        target_unit=target_unit,
        window=window,
        scene=scene.source,
    )
    return table, report


def _read_all(
    scene: Scene,
    row: np.ndarray,
    col: np.ndarray,
    inside: np.ndarray,
    window: int,
    block_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean reflectance per point and band, pixels averaged, and the scene class (or
    Landsat QA_PIXEL value) of each point's pixel (-1 where none), read block by block."""
    values = np.full((len(row), len(scene.roles)), np.nan)
    counts = np.zeros(len(row), dtype=np.int64)
    scl_class = np.full(len(row), -1)
    _read_points(scene, row, col, inside, window, block_size, values, counts, scl_class)
    return values, counts, scl_class


def _report(
    frame: pd.DataFrame,
    row: np.ndarray,
    col: np.ndarray,
    inside: np.ndarray,
    status: np.ndarray,
    counts: np.ndarray,
    reasons: list[str],
) -> pd.DataFrame:
    """The extraction report: one row per point, in :data:`REPORT_COLUMNS`."""
    return pd.DataFrame(
        {
            "id": frame.index.astype(str),
            "x": frame["x"].to_numpy(float),
            "y": frame["y"].to_numpy(float),
            "row": np.where(inside, row, -1),
            "col": np.where(inside, col, -1),
            "status": status,
            "n_pixels": counts,
            "reason": reasons,
        }
    )


def _check_covariates(covariates: Any, frame: pd.DataFrame, scene: Scene) -> None:
    """Refuse, before anything is read, covariate names already taken and rasters that
    do not cover the scene."""
    taken = [n for n in covariates.paths if n in frame.columns or n in scene.roles]
    if taken:
        raise SampleDataError(
            f"the samples already have column(s) {', '.join(taken)}; give the covariate "
            "raster(s) another name (--covariate NEW_NAME=PATH)"
        )
    covariates.check(scene)


def _pixels(
    sx: np.ndarray, sy: np.ndarray, scene: Scene
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of the scene pixel under each point (-1 where not finite), and
    whether the point falls inside the scene."""
    inv = ~scene.transform
    fcol, frow = inv.a * sx + inv.b * sy + inv.c, inv.d * sx + inv.e * sy + inv.f
    finite = np.isfinite(fcol) & np.isfinite(frow)
    row = np.where(finite, np.floor(np.where(finite, frow, 0)), -1).astype(np.int64)
    col = np.where(finite, np.floor(np.where(finite, fcol, 0)), -1).astype(np.int64)
    inside = finite & (row >= 0) & (row < scene.height) & (col >= 0) & (col < scene.width)
    return row, col, inside


def _insert_covariates(
    table: pd.DataFrame, covariates: Any, scene: Scene, row: np.ndarray, col: np.ndarray
) -> None:
    """The covariates at the extracted points' pixels, as columns after ``n_pixels``."""
    # covariates imports scikit-learn; an extraction without covariates does not need it.
    from saltmap.features.covariate_rasters import covariates_at_points

    extra = covariates_at_points(covariates, scene, row, col)
    at = table.columns.get_loc("n_pixels") + 1
    for i, name in enumerate(extra.columns):
        table.insert(at + i, name, extra[name].to_numpy())


def _points(
    obj: Samples | pd.DataFrame, crs: str | None
) -> tuple[pd.DataFrame, str, str | None, str | None]:
    """Coordinates (``x``, ``y``), CRS, target name and unit of whatever the user gave."""
    if isinstance(obj, Samples):
        if obj.coords is None:
            raise SampleDataError(
                f"the samples of {obj.source} have no coordinates, so they cannot be placed on a "
                "scene; name the coordinate columns (--x, --y, --crs)"
            )
        if obj.crs is None:
            raise SampleDataError(f"the coordinates of {obj.source} have no CRS; give --crs")
        frame = obj.table.drop(columns=[r for r in ROLES if r in obj.table.columns])
        frame = frame.rename(columns={"target": obj.target_name})
        return frame, obj.crs, obj.target_name, obj.target_unit
    geometry = getattr(obj, "geometry", None) if hasattr(obj, "geometry") else None
    if geometry is not None and getattr(obj, "crs", None) is not None:
        frame = pd.DataFrame(obj.drop(columns=obj.geometry.name))
        points = geometry.representative_point()
        frame["x"], frame["y"] = points.x.to_numpy(), points.y.to_numpy()
        return frame, obj.crs.to_string(), None, None
    if "x" not in obj.columns or "y" not in obj.columns or crs is None:
        raise SampleDataError(
            "points must be Samples, a GeoDataFrame with a CRS, or a DataFrame with x and y "
            "columns and crs=..."
        )
    return obj.copy(), crs, None, None


def _to_scene_crs(
    x: np.ndarray, y: np.ndarray, point_crs: str, scene: Scene
) -> tuple[np.ndarray, np.ndarray]:
    if scene.crs is None:
        raise SceneError(f"scene {scene.source} has no CRS, so points cannot be placed on it")
    src = CRS.from_user_input(point_crs)
    dst = CRS.from_user_input(scene.crs.to_wkt())
    if src == dst:
        return x, y
    to_scene = Transformer.from_crs(src, dst, always_xy=True)
    sx, sy = to_scene.transform(x, y)
    return np.asarray(sx, dtype=float), np.asarray(sy, dtype=float)


def _read_points(
    scene: Scene,
    row: np.ndarray,
    col: np.ndarray,
    inside: np.ndarray,
    window: int,
    block_size: int,
    values: np.ndarray,
    counts: np.ndarray,
    scl_class: np.ndarray,
) -> None:
    """Fill values/counts block by block: one read of each block holding points, with a halo."""
    half = window // 2
    idx = np.flatnonzero(inside)
    block_of = (row[idx] // block_size) * (scene.width // block_size + 1) + col[idx] // block_size
    for block in np.unique(block_of):
        members = idx[block_of == block]
        r0 = max(0, int(row[members].min()) - half)
        c0 = max(0, int(col[members].min()) - half)
        r1 = min(scene.height, int(row[members].max()) + half + 1)
        c1 = min(scene.width, int(col[members].max()) + half + 1)
        win = Window(c0, r0, c1 - c0, r1 - r0)
        data = scene.read(win)
        # The cloud mask at each point says why a masked point is masked (SCL or QA_PIXEL).
        scl = scene.read_scl(win) if scene.scl is not None else None
        if scl is None and scene.qa is not None:
            scl = scene.read_qa(win)
        valid = np.all(np.isfinite(data), axis=0)
        for i in members:
            rr, cc = int(row[i]) - r0, int(col[i]) - c0
            rs = slice(max(0, rr - half), rr + half + 1)
            cs = slice(max(0, cc - half), cc + half + 1)
            ok = valid[rs, cs]
            counts[i] = int(ok.sum())
            if counts[i]:
                values[i] = data[:, rs, cs][:, ok].mean(axis=1, dtype=np.float64)
            if scl is not None:
                scl_class[i] = int(scl[rr, cc])


def _reason(status: str, sx: float, sy: float, scene: Scene, window: int, scl_class: int) -> str:
    if status == "ok":
        return ""
    if status == "outside":
        b = scene.bounds
        return (
            f"outside the scene: ({sx:.1f}, {sy:.1f}) in {scene.crs} is not within "
            f"x {b.left:.1f}–{b.right:.1f}, y {b.bottom:.1f}–{b.top:.1f}"
        )
    what = "its pixel is" if window == 1 else f"all {window}×{window} pixels are"
    why = _mask_reason(scene, scl_class) or "no data in a band"
    return f"masked: {what} masked ({why})"


def _mask_reason(scene: Scene, value: int) -> str | None:
    """What the cloud mask says at a point (``value``: its SCL class or QA_PIXEL bits), or
    None where it does not mask the point."""
    if value < 0:
        return None
    if scene.scl is not None:
        if value in _SCL_NAMES and (value in SCL_MASKED or scene.mask_water):
            return f"scene classification {value} ({_SCL_NAMES[value]}) at the point"
        return None
    if scene.qa is None:
        return None
    names = {**QA_PIXEL_MASKED, **({QA_PIXEL_WATER: "water"} if scene.mask_water else {})}
    bits = [f"bit {b} {name}" for b, name in sorted(names.items()) if value >> b & 1]
    if not bits:
        return None
    return f"QA_PIXEL {value} at the point: {', '.join(bits)}"


def _table(
    frame: pd.DataFrame,
    values: np.ndarray,
    counts: np.ndarray,
    status: np.ndarray,
    scene: Scene,
    target_name: str | None,
) -> pd.DataFrame:
    keep = status == "ok"
    if "id" in frame.columns:
        # read_samples keeps the id column beside the index; one copy is enough.
        same = frame["id"].astype(str).tolist() == frame.index.astype(str).tolist()
        frame = frame.drop(columns="id") if same else frame.rename(columns={"id": "id_original"})
    bands = pd.DataFrame(values[keep], index=frame.index[keep], columns=list(scene.roles))
    first = [c for c in (target_name, "x", "y") if c is not None and c in frame.columns]
    rest = frame.loc[keep, [c for c in frame.columns if c not in first]]
    n_pixels = pd.Series(counts[keep], index=bands.index, name="n_pixels")
    table = pd.concat([bands, frame.loc[keep, first], n_pixels, rest], axis=1)
    table.index.name = "id"
    return table


def write_extracted(table: pd.DataFrame, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write an extraction table as CSV or GeoPackage, readable by ``read_samples``.

    In CSV, coordinates in EPSG:4326 are written as ``lon``/``lat`` (found
    without options); other CRSs as ``x``/``y``, to be read with ``--crs``
    (GeoPackage carries its CRS).
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass --overwrite to replace it")
    crs = table.attrs.get("crs")
    out = table.reset_index()
    # Names read_samples could take for coordinates or ids must not be left in extra columns.
    taken = {"id", "x", "y", "lon", "lat"}
    out = out.rename(
        columns={
            c: f"{c}_original"
            for c in out.columns
            if str(c).lower() in taken and c not in ("id", "x", "y")
        }
    )
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if crs is not None and CRS.from_user_input(crs) == CRS.from_epsg(4326):
            out = out.rename(columns={"x": "lon", "y": "lat"})
        atomic_to_csv(out, path, index=False, overwrite=overwrite)
        return path
    if suffix in (".gpkg", ".geojson"):
        import geopandas as gpd

        geometry = gpd.points_from_xy(out.pop("x"), out.pop("y"), crs=crs)
        gdf = gpd.GeoDataFrame(out, geometry=geometry)
        # A fresh temporary file each time, so GPKG never appends a layer to an old file;
        # the layer is named after the final file, not the temporary one.
        with atomic_output(path, overwrite=overwrite) as tmp:
            driver = "GPKG" if suffix == ".gpkg" else "GeoJSON"
            gdf.to_file(tmp, driver=driver, layer=path.stem)
        return path
    raise InputFileError(f"cannot write {path}: use a .csv, .gpkg or .geojson file name")


def summary(report: pd.DataFrame) -> dict[str, Any]:
    """Counts of points by status, for printing."""
    return {s: int((report["status"] == s).sum()) for s in ("ok", "outside", "masked")}

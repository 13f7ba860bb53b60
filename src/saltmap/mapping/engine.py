"""Salinity maps: blockwise prediction of every valid pixel, classes and COG outputs.

The core is pure: :func:`predict_block` turns a block of reflectance shaped
``(band, row, col)`` into salinity and :func:`classify_block` turns salinity into
class codes. :func:`map_scene` is the shell around it: it checks everything that
can fail before writing anything, reads the scene block by block, spreads the
blocks over local processes or a Dask distributed cluster, writes them into a
tiled GeoTIFF and finally converts that into a Cloud-Optimized GeoTIFF.

Memory is bounded by the block size and the number of blocks in flight, never by
the scene size. Each finished block is also kept in a work store in the output
folder until the map is written, so a killed run started again with the same inputs
continues where it stopped (:func:`map_scene`, ``resume``).

References
----------
.. [1] GDAL. COG -- Cloud Optimized GeoTIFF generator.
   https://gdal.org/en/stable/drivers/raster/cog.html
.. [2] Gillies, S. and others (2013–). Rasterio: geospatial raster I/O for Python
   programmers. https://github.com/rasterio/rasterio
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import math
import multiprocessing
import pickle
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from rasterio.windows import Window

from saltmap.atomic import (
    BlockStore,
    atomic_output,
    atomic_savefig,
    atomic_to_csv,
    atomic_write_text,
    check_output_folder,
    clean_stale_partials,
    fingerprint,
    temp_path_for,
)
from saltmap.bands import check_roles
from saltmap.errors import (
    BoundaryError,
    ConfigError,
    InputFileError,
    ModelFileError,
    OutputExistsError,
    UnitError,
)

#: Nodata of the salinity COG and code of "no class" in the class COG.
SALINITY_NODATA = float("nan")
CLASS_NODATA = 0
#: Rows predicted at once inside a block: keeps the hidden layers of an MLP and the
#: per-tree outputs of a forest small and in cache, whatever the block size.
CHUNK_ROWS = 65_536


# --------------------------------------------------------------------------- core


def model_bands(model: Any) -> tuple[str, ...]:
    """Band roles a fitted ``IndexFeatures -> regressor`` pipeline reads, in its column order.

    Raises
    ------
    ModelFileError
        If the model does not start with a fitted :class:`~saltmap.features.indices.IndexFeatures`.
    """
    steps = getattr(model, "named_steps", None)
    first = None
    if steps is not None:
        first = steps.get("indices") or (model.steps[0][1] if model.steps else None)
    bands = getattr(first, "bands_", None)
    if bands is None:
        raise ModelFileError(
            f"the model {type(model).__name__} does not start with a fitted IndexFeatures step "
            "named 'indices', so saltmap cannot tell which bands it reads; train it with "
            "`saltmap train` or saltmap.models.building.make_model"
        )
    return tuple(bands)


def predict_block(
    model: Any,
    reflectance: np.ndarray,
    roles: Sequence[str],
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """Predict salinity for every valid pixel of a block.

    Parameters
    ----------
    model : fitted estimator
        A pipeline ``IndexFeatures -> regressor`` whose input is reflectance by band
        role (see :func:`model_bands`).
    reflectance : ndarray of shape (n_roles, rows, cols)
        Surface reflectance, NaN where there is no data or the pixel is masked.
    roles : sequence of str
        The band role of each plane of ``reflectance``.
    chunk_rows : int, default=65536
        Pixels handed to ``model.predict`` at once; results do not depend on it.

    Returns
    -------
    ndarray of shape (rows, cols), float32
        The model's prediction, NaN where any band the model reads is NaN, where
        an index the model reads is undefined for the pixel (see
        :mod:`saltmap.features.indices`), or where the model's own output is not finite.

    Notes
    -----
    Each valid pixel is passed to ``model.predict`` as one row of reflectance in the
    model's band order, so a mapped value equals the model's prediction for that
    pixel's band values taken as a sample.
    """
    bands = model_bands(model)
    check_roles(bands, roles, "the reflectance block")
    if reflectance.ndim != 3 or reflectance.shape[0] != len(roles):
        raise ValueError(
            f"reflectance must be shaped (n_roles={len(roles)}, rows, cols), "
            f"got {reflectance.shape}"
        )
    planes = [list(roles).index(b) for b in bands]
    _, rows, cols = reflectance.shape
    # Pixels as rows, bands as columns, in the model's order (one copy, float32).
    pixels = np.ascontiguousarray(reflectance[planes].reshape(len(bands), -1).T, np.float32)
    valid = np.isfinite(pixels).all(axis=1)
    out = np.full(rows * cols, np.nan, dtype=np.float32)
    index = np.flatnonzero(valid)
    # The pipeline's own steps, run as Pipeline.predict runs them, so that pixels
    # whose indices are undefined (a zero denominator: NaN by the domain rule of
    # saltmap.features.indices) can be left out rather than failing the whole block.
    features, regressor = model[:-1], model[-1]
    for start in range(0, index.size, chunk_rows):
        take = index[start : start + chunk_rows]
        feats = features.transform(pixels[take])
        defined = np.isfinite(feats).all(axis=1)
        if defined.any():
            pred = regressor.predict(feats[defined])
            out[take[defined]] = np.asarray(pred, dtype=np.float32).ravel()
    out[~np.isfinite(out)] = np.nan
    return out.reshape(rows, cols)


def classify_block(
    values: np.ndarray, scheme: Any, to_scheme_unit: Callable[[np.ndarray], np.ndarray] | None
) -> np.ndarray:
    """Class codes (uint8, 1 = first class, 0 = no data) of salinity ``values``.

    ``to_scheme_unit`` first converts the model's target into the scheme's quantity
    and unit (for example EC in µS/cm into salt content in g/kg).
    """
    from saltmap.salinity.units import classify

    values = np.asarray(values, dtype=np.float64)
    if to_scheme_unit is not None:
        values = np.asarray(to_scheme_unit(values), dtype=np.float64)
    return classify(values, scheme)


# ------------------------------------------------------------------ class schemes


@dataclass(frozen=True)
class ToSchemeUnit:
    """Converts the model's target into the class scheme's quantity and unit.

    EC units are converted by a factor; EC to salt content (or back) goes through
    a :class:`~saltmap.salinity.units.SaltConversion`. Picklable, so it travels to workers.
    """

    from_unit: str
    to_unit: str
    conversion: Any = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        from saltmap.salinity.units import convert_ec, quantity_of

        src, dst = quantity_of(self.from_unit), quantity_of(self.to_unit)
        if src == dst:
            return convert_ec(values, self.from_unit, self.to_unit)
        if src == "EC":
            return convert_ec(self.conversion.to_salt(values, ec_unit=self.from_unit), "g/kg",
                              self.to_unit)  # fmt: skip
        return self.conversion.to_ec(convert_ec(values, self.from_unit, "g/kg"), self.to_unit)

    def describe(self) -> str:
        from saltmap.salinity.units import quantity_of

        if quantity_of(self.from_unit) == quantity_of(self.to_unit):
            return f"values in {self.from_unit} classed in {self.to_unit}"
        return f"converted by {str(self.conversion).split('   ')[0]}"


@dataclass(frozen=True)
class ClassPlan:
    """How predicted salinity becomes classes: the scheme and the unit conversion."""

    scheme: Any
    convert: ToSchemeUnit

    @property
    def labels(self) -> list[str]:
        return list(self.scheme.labels)

    @property
    def colours(self) -> list[str]:
        return list(self.scheme.colours)

    @property
    def description(self) -> str:
        s = self.scheme
        how = self.convert.describe()
        return f"{s.name} classes on {s.quantity} ({s.unit}); {how}"


_THRESHOLDS = re.compile(r"^\s*[-+0-9.eE]+(\s*[,;\s]\s*[-+0-9.eE]+)*\s*$")


def plan_classes(
    scheme: Any,
    target_name: str | None,
    target_unit: str | None,
    conversion: Any = None,
) -> ClassPlan:
    """Resolve a class scheme and decide how the model's target reaches its unit.

    Parameters
    ----------
    scheme : str or ClassScheme
        ``"study"`` (salt content in g/kg, the study's Table 5), ``"fao-ec"`` (EC of
        the saturated paste, dS/m), another name of
        :data:`saltmap.salinity.units.SCHEMES`, thresholds such as ``"1,2,4,6"`` in the
        model's unit, or a :class:`~saltmap.salinity.units.ClassScheme`.
    target_name, target_unit : str or None
        What the model predicts (``"EC"``, ``"µS/cm"``), from its metadata.
    conversion : SaltConversion or None
        EC to salt content; needed when the model predicts EC and the scheme is on
        salt content (or the reverse).

    Raises
    ------
    UnitError
        If the model's unit is unknown, or the scheme's quantity cannot be reached
        from the model's without a conversion that was not given.
    """
    from saltmap.salinity import units as salinity

    what = f"the model's target {target_name or ''}".rstrip()
    if target_unit is None:
        raise UnitError(
            f"the unit of {what} is unknown, so its values cannot be classed; "
            "give it (target_unit='µS/cm', 'dS/m', 'g/kg', ...) or use a model saved by "
            "`saltmap train`, which records it"
        )
    unit = salinity.normalise_unit(target_unit)
    if isinstance(scheme, str) and _THRESHOLDS.match(scheme):
        resolved = salinity.scheme_from_thresholds(scheme, unit=unit)
    else:
        resolved = salinity.get_scheme(scheme)
    source_q, scheme_q = salinity.quantity_of(unit), resolved.quantity
    if source_q != scheme_q and conversion is None:
        raise UnitError(
            f"{what} is {source_q} in {unit}, but the class scheme {resolved.name!r} is on "
            f"{scheme_q} in {resolved.unit}: an EC → salt content conversion for your soils is "
            "needed. Give one (--conversion conv.toml, fitted with saltmap.salinity.units."
            "fit_lab_sheet), or choose a scheme on "
            f"{source_q} (for EC: --scheme fao-ec), or thresholds in {unit} (--scheme 2,4,8,16)"
        )
    return ClassPlan(resolved, ToSchemeUnit(unit, resolved.unit, conversion))


# --------------------------------------------------------------------- boundary


def read_boundary(path: str | Path, crs: Any, bounds: Sequence[float]) -> list[Any]:
    """Polygons of a boundary file, reprojected to ``crs``, that overlap ``bounds``.

    Raises
    ------
    BoundaryError
        If the file cannot be read, holds no polygon, or does not overlap the scene.
    """
    import geopandas as gpd
    import shapely

    path = Path(path)
    try:
        frame = gpd.read_file(path)
    except Exception as err:
        raise BoundaryError(
            f"cannot read the boundary {path}: {err}. Give a polygon file that GDAL reads "
            "(GeoPackage, shapefile, GeoJSON, ...)"
        ) from err
    polygons = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    polygons = polygons[polygons.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        raise BoundaryError(
            f"the boundary {path} holds no polygon ({len(frame)} features of types "
            f"{sorted(set(frame.geom_type.dropna()))}); give the study area as polygons"
        )
    if polygons.crs is None:
        raise BoundaryError(
            f"the boundary {path} has no coordinate reference system; "
            "save it with its CRS (for example a GeoPackage or a .prj beside the shapefile)"
        )
    geoms = list(polygons.to_crs(crs).geometry.make_valid())
    area = shapely.union_all(geoms)
    scene_box = shapely.box(*bounds)
    if area.intersection(scene_box).area <= 0:
        lo = polygons.to_crs(crs).total_bounds
        raise BoundaryError(
            f"the boundary {path} does not overlap the scene: boundary bounds "
            f"{[round(v) for v in lo]} and scene bounds {[round(v) for v in bounds]} in "
            f"{crs}. Check that both cover the same area and that the boundary's CRS is right"
        )
    return [area]


def boundary_mask(geoms: Sequence[Any] | None, window: Window, transform: Any) -> np.ndarray:
    """True inside the boundary for the pixels of ``window`` (all True without a boundary)."""
    from rasterio.features import geometry_mask
    from rasterio.windows import transform as window_transform

    shape = (int(window.height), int(window.width))
    if not geoms:
        return np.ones(shape, dtype=bool)
    return geometry_mask(
        geoms, out_shape=shape, transform=window_transform(window, transform), invert=True
    )


# ------------------------------------------------------------------ block job


@dataclass
class BlockJob:
    """Everything a worker needs to map a block: shipped to each worker once.

    Calling it with a window returns ``(window, salinity, classes, trust)``; ``trust``
    is the :func:`saltmap.trust.intervals.trust_block` result of the block (None without a
    trust model), computed here so it runs in the worker beside the prediction.
    """

    model: Any
    scene: Any
    plan: ClassPlan
    boundary: list[Any] | None = None
    chunk_rows: int = CHUNK_ROWS
    gdal_cache_mb: int = 64
    covariates: Any = None
    trust: Any = None
    exclude_outside_aoa: bool = False
    _ready: bool = field(default=False, repr=False)

    def prepare(self) -> None:
        """Run inner models single-threaded: the parallelism is over blocks."""
        if not self._ready:
            _single_threaded(self.model)
            self._ready = True

    def __call__(self, window: Window) -> BlockResult:
        import rasterio

        self.prepare()
        inside = boundary_mask(self.boundary, window, self.scene.transform)
        if not inside.any():
            shape = inside.shape
            empty = _empty_trust(shape) if self.trust is not None else None
            return window, _empty_salinity(shape), np.zeros(shape, np.uint8), empty
        bands = model_bands(self.model)
        roles = bands if self.trust is None else tuple(dict.fromkeys([*bands, *self.trust.bands]))
        # GDAL's block cache defaults to 5 % of RAM per process; blocks are read
        # once, so a small cache keeps each worker's memory bounded by the block.
        with rasterio.Env(GDAL_CACHEMAX=self.gdal_cache_mb):
            reflectance = self.scene.read(window=window, roles=roles)
            covariates = self.covariates and self.covariates.read(self.scene, window)
        reflectance[:, ~inside] = np.nan
        if not covariates:
            salinity = predict_block(self.model, reflectance, roles, chunk_rows=self.chunk_rows)
        else:
            # Pixels with a categorical level the model never saw are left without a value.
            from saltmap.features.covariates import predict_block as predict_with_covariates

            salinity, _ = predict_with_covariates(
                self.model, reflectance, roles, covariates, chunk_rows=self.chunk_rows
            )
        classes = classify_block(salinity, self.plan.scheme, self.plan.convert)
        if self.trust is None:
            return window, salinity, classes, None
        from saltmap.trust.intervals import trust_block

        layers = trust_block(
            self.trust, reflectance, roles, prediction=salinity, chunk_rows=self.chunk_rows,
            **({"covariates": covariates} if covariates else {}),
        )  # fmt: skip
        if self.exclude_outside_aoa:
            classes[layers["aoa"] == 0] = CLASS_NODATA
        return window, salinity, classes, layers


def _empty_salinity(shape: tuple[int, int]) -> np.ndarray:
    return np.full(shape, np.nan, dtype=np.float32)


def _empty_trust(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    from saltmap.trust.intervals import TRUST_LAYERS

    return {
        name: np.full(shape, nodata, dtype=dtype)
        for name, (dtype, nodata, _) in TRUST_LAYERS.items()
    }


#: What a block job yields: window, salinity, class codes and the trust layers (or None).
BlockResult = tuple[Window, np.ndarray, np.ndarray, "dict[str, np.ndarray] | None"]


def _single_threaded(model: Any) -> None:
    """Set ``n_jobs=1`` on every fitted estimator inside ``model`` (in place)."""
    from sklearn.base import BaseEstimator

    seen: set[int] = set()

    def visit(obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, BaseEstimator):
            if "n_jobs" in getattr(obj, "__dict__", {}):
                obj.n_jobs = 1
                booster = getattr(obj, "_Booster", None)
                if booster is not None:  # xgboost predicts with the booster's nthread
                    booster.set_param({"nthread": 1})
            for value in vars(obj).values():
                visit(value)
        elif isinstance(obj, list | tuple):
            for item in obj:
                visit(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                visit(item)

    visit(model)


# Worker side of the process pool: the job arrives once, through the initializer.
_WORKER_JOB: BlockJob | None = None


def _init_worker(payload: bytes) -> None:
    from threadpoolctl import threadpool_limits

    global _WORKER_JOB
    # One BLAS/OpenMP thread per worker process: the workers already fill the cores.
    threadpool_limits(1)
    _WORKER_JOB = pickle.loads(payload)
    _WORKER_JOB.prepare()


def _run_block(window: Window) -> BlockResult:
    assert _WORKER_JOB is not None, "worker was not initialised"
    return _WORKER_JOB(window)


def _run_block_with(job: BlockJob, window: Window) -> BlockResult:
    return job(window)


def run_blocks(
    job: BlockJob,
    windows: Sequence[Window],
    *,
    jobs: int = 1,
    scheduler: str | Any | None = None,
    in_flight: int | None = None,
) -> Iterator[BlockResult]:
    """Map ``windows`` with ``job`` and yield results as blocks finish (in any order).

    With ``jobs == 1`` and no scheduler the blocks run in this process; with
    ``jobs > 1`` in a pool of that many processes, each receiving the job once; with
    ``scheduler`` (an address such as ``"tcp://host:8786"`` or a
    ``distributed.Client``) on that Dask cluster, the job broadcast to every worker
    once. At most ``in_flight`` blocks (default two per worker) are pending at any
    time, which bounds memory.
    """
    if scheduler is not None:
        yield from _run_dask(job, windows, scheduler, in_flight)
    elif jobs <= 1:
        from threadpoolctl import threadpool_limits

        job.prepare()
        with threadpool_limits(1):
            for window in windows:
                yield job(window)
    else:
        yield from _run_pool(job, windows, jobs, in_flight or 2 * jobs)


def _run_pool(
    job: BlockJob, windows: Sequence[Window], jobs: int, in_flight: int
) -> Iterator[BlockResult]:
    payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    # spawn: a fresh interpreter per worker, safe whatever threads the parent runs.
    context = multiprocessing.get_context("spawn")
    todo = iter(windows)
    with cf.ProcessPoolExecutor(
        max_workers=jobs, mp_context=context, initializer=_init_worker, initargs=(payload,)
    ) as pool:
        pending = {pool.submit(_run_block, w) for w in _take(todo, in_flight)}
        while pending:
            done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                yield fut.result()
            pending |= {pool.submit(_run_block, w) for w in _take(todo, len(done))}


def _run_dask(
    job: BlockJob, windows: Sequence[Window], scheduler: Any, in_flight: int | None
) -> Iterator[BlockResult]:
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler, set_as_default=False) if own else scheduler
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        job_future = client.scatter(job, broadcast=True, hash=False)
        todo = iter(windows)
        first = [
            client.submit(_run_block_with, job_future, w, pure=False)
            for w in _take(todo, in_flight or 2 * n_workers)
        ]
        running = as_completed(first, loop=client.loop)
        for fut in running:
            result = fut.result()
            fut.release()
            yield result
            for w in _take(todo, 1):
                running.add(client.submit(_run_block_with, job_future, w, pure=False))
    finally:
        if own:
            client.close()


def _take(it: Iterator[Window], n: int) -> list[Window]:
    out = []
    for _ in range(n):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


# -------------------------------------------------------------------- outputs


#: File of each trust layer (keys of :data:`saltmap.trust.intervals.TRUST_LAYERS`).
TRUST_FILES: dict[str, str] = {
    "lower": "salinity_lower.tif",
    "upper": "salinity_upper.tif",
    "width": "salinity_width.tif",
    "di": "dissimilarity.tif",
    "aoa": "aoa.tif",
}


@dataclass(frozen=True)
class MapOutputs:
    """Files written by :func:`map_scene` in its output folder.

    ``trust`` maps each trust layer to its COG; it is empty when the map is made
    without a trust model.
    """

    salinity: Path
    classes: Path
    style: Path
    areas: Path
    figure: Path
    trust: dict[str, Path] = field(default_factory=dict)

    @property
    def salinity_style(self) -> Path:
        """QGIS default style of the salinity COG (a colour ramp over its 2–98 %): QGIS
        loads a .qml of the raster's own name with it."""
        return self.salinity.with_suffix(".qml")

    @classmethod
    def in_folder(cls, out_dir: str | Path, *, trust: bool = False) -> MapOutputs:
        out = Path(out_dir)
        return cls(
            salinity=out / "salinity.tif",
            classes=out / "salinity_classes.tif",
            style=out / "salinity_classes.qml",
            areas=out / "class_areas.csv",
            figure=out / "salinity_map.png",
            trust={name: out / file for name, file in TRUST_FILES.items()} if trust else {},
        )

    def all(self) -> list[Path]:
        return [self.salinity, self.classes, *self.trust.values(), self.style,
                self.salinity_style, self.areas, self.figure]  # fmt: skip


@dataclass
class MapResult:
    """What :func:`map_scene` wrote and measured."""

    outputs: MapOutputs
    areas: pd.DataFrame
    n_pixels: int
    n_valid: int
    n_blocks: int
    seconds: float
    target_name: str | None
    target_unit: str | None
    scheme: str
    #: Share of valid pixels inside the AOA and median interval width (None without trust).
    trust: Any = None
    #: Whether the classes and class areas leave out pixels outside the AOA.
    excluded_outside_aoa: bool = False
    #: Blocks taken from the work store of an interrupted run with the same inputs.
    n_resumed: int = 0
    #: Blocks computed by this run (the others were resumed or outside the boundary).
    n_computed: int = 0

    @property
    def pixels_per_second(self) -> float:
        return self.n_pixels / self.seconds if self.seconds > 0 else float("nan")


def pixel_area_km2(transform: Any, crs: Any) -> float:
    """Ground area of one pixel in km² (the grid must be in a projected CRS)."""
    if crs is None or not crs.is_projected:
        raise UnitError(
            f"class areas need a scene on a projected grid (metres), but its CRS is {crs}; "
            "reproject the scene to a UTM zone first"
        )
    metres = crs.linear_units_factor[1]
    return abs(transform.a * transform.e - transform.b * transform.d) * metres**2 / 1e6


def class_area_table(counts: np.ndarray, labels: Sequence[str], pixel_km2: float) -> pd.DataFrame:
    """Area in km² and share in % of each class from pixel counts (index 0 = no data)."""
    counts = np.asarray(counts, dtype=np.int64)[1 : len(labels) + 1]
    total = counts.sum()
    return pd.DataFrame(
        {
            "code": np.arange(1, len(labels) + 1),
            "class": list(labels),
            "pixels": counts,
            "area_km2": counts * pixel_km2,
            "percent": 100.0 * counts / total if total else np.zeros(len(labels)),
        }
    )


def qml_style(labels: Sequence[str], colours: Sequence[str]) -> str:
    """A QGIS paletted-raster style (``.qml``) for the class COG."""
    from matplotlib.colors import to_hex

    entries = "\n".join(
        f'        <paletteEntry value="{code}" label="{escape(label, {chr(34): "&quot;"})}" '
        f'color="{to_hex(colour)}" alpha="255"/>'
        for code, (label, colour) in enumerate(zip(labels, colours, strict=True), start=1)
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28">\n  <pipe>\n'
        '    <rasterrenderer type="paletted" band="1" opacity="1" nodataColor="">\n'
        f"      <colorPalette>\n{entries}\n      </colorPalette>\n"
        "    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    )


#: Share of values left below and above the default stretch (QGIS's own cumulative cut).
STRETCH_CUT = (0.02, 0.98)


def salinity_stretch(
    path: str | Path, cut: tuple[float, float] = STRETCH_CUT, max_pixels: int = 2048
) -> tuple[float, float]:
    """The 2nd and 98th percentiles of the valid values of a salinity COG.

    Read decimated to at most ``max_pixels`` on the longer side (from the COG's
    overviews, so cheap and bounded in memory whatever the scene size). Returns
    ``(nan, nan)`` when the map has no valid pixel.
    """
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path) as src:
        factor = max(1, math.ceil(max(src.width, src.height) / max_pixels))
        shape = (max(1, src.height // factor), max(1, src.width // factor))
        values = src.read(1, out_shape=shape, resampling=Resampling.nearest, masked=True)
    valid = values.compressed()
    valid = valid[np.isfinite(valid)]
    if valid.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(valid, cut)
    return float(low), float(high)


def qml_stretch_style(
    low: float, high: float, unit: str | None = None, cmap: str = "YlOrBr", stops: int = 9
) -> str:
    """A QGIS pseudocolour style (``.qml``) stretching ``cmap`` from ``low`` to ``high``.

    The limits are recorded as QGIS's own 2–98 % cumulative cut, so QGIS shows the
    map as saltmap measured it and can recompute the same stretch for a new extent.
    A map without valid pixels gets the range 0–1.
    """
    import matplotlib
    from matplotlib.colors import to_hex

    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        low, high = (0.0, 1.0) if not np.isfinite(low) else (low, low + 1.0)
    ramp = matplotlib.colormaps[cmap]
    suffix = f" {escape(unit, {chr(34): '&quot;'})}" if unit else ""
    items = "\n".join(
        f'          <item value="{v:.6g}" label="{v:.4g}{suffix}" '
        f'color="{to_hex(ramp(t))}" alpha="255"/>'
        for t, v in zip(np.linspace(0, 1, stops), np.linspace(low, high, stops), strict=True)
    )
    lo, hi = STRETCH_CUT
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28">\n  <pipe>\n'
        '    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" '
        f'nodataColor="" classificationMin="{low:.6g}" classificationMax="{high:.6g}">\n'
        "      <minMaxOrigin><limits>CumulativeCut</limits><extent>WholeRaster</extent>"
        f"<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>{lo}</cumulativeCutLower>"
        f"<cumulativeCutUpper>{hi}</cumulativeCutUpper></minMaxOrigin>\n"
        "      <rastershader>\n"
        '        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" '
        f'clip="0" minimumValue="{low:.6g}" maximumValue="{high:.6g}">\n'
        f"{items}\n        </colorrampshader>\n      </rastershader>\n"
        "    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    )


def _to_cog(tmp: Path, final: Path, *, resampling: str, predictor: int) -> None:
    """Convert a tiled GeoTIFF into a COG under ``final``, atomically [1]_."""
    import rasterio
    import rasterio.shutil

    with (
        atomic_output(final) as staged,
        rasterio.Env(GDAL_CACHEMAX=256, GDAL_NUM_THREADS="ALL_CPUS"),
    ):
        rasterio.shutil.copy(
            tmp,
            staged,
            driver="COG",
            compress="DEFLATE",
            predictor=predictor,
            blocksize=512,
            overview_resampling=resampling,
            num_threads="ALL_CPUS",
            bigtiff="IF_SAFER",
        )


# ----------------------------------------------------------------- the shell


def map_scene(
    model: Any,
    scene: Any,
    out_dir: str | Path,
    *,
    block_size: int = 512,
    jobs: int = 1,
    scheduler: str | Any | None = None,
    boundary: str | Path | None = None,
    scheme: Any = "study",
    conversion: Any = None,
    target_name: str | None = None,
    target_unit: str | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    figure: bool = True,
    covariates: Mapping[str, str | Path] | None = None,
    trust: Any = None,
    exclude_outside_aoa: bool = False,
    resume: bool = True,
) -> MapResult:
    """Map salinity over a scene, block by block, and write COGs, class areas and a figure.

    Parameters
    ----------
    model : fitted estimator
        ``IndexFeatures -> regressor`` pipeline taking reflectance by band role.
    scene : Scene or path
        The scene (see :func:`saltmap.io.scene.open_scene`); a path is opened with defaults.
    out_dir : path
        Output folder; the files are listed in :class:`MapOutputs`.
    block_size : int, default=512
        Side of the square blocks in pixels; memory grows with its square.
    jobs : int, default=1
        Local worker processes.
    scheduler : str or distributed.Client, optional
        Address of a Dask distributed scheduler (``"tcp://host:8786"``) on whose
        workers the blocks run; saltmap must be installed there.
    boundary : path, optional
        Polygon file in any CRS; pixels outside are left without data.
    scheme : str or ClassScheme, default="study"
        Class scheme, see :func:`plan_classes`.
    conversion : SaltConversion, optional
        EC to salt content, needed for a g/kg scheme on an EC model.
    target_name, target_unit : str, optional
        What the model predicts, from its metadata; written in the COG tags.
    model_name : str, optional
        Written in the COG tags.
    overwrite : bool, default=False
        Replace existing outputs.
    progress : bool, default=True
        Show a progress bar.
    figure : bool, default=True
        Draw the class map figure.
    covariates : mapping or CovariateRasters, optional
        ``{name: raster path}`` (or a :class:`~saltmap.features.covariates.CovariateRasters`
        with ``labels`` for coded categorical rasters) for a model trained with covariates
        (:mod:`saltmap.features.covariates`): each raster, in any CRS and resolution, is read
        on the scene grid block by block. Pixels whose categorical level the model
        never saw are left without a value and counted in a warning. A covariate
        without a raster, a raster that does not cover the scene, or a categorical
        raster with no training level at all is an error before any output.
    trust : TrustModel, optional
        Intervals and area of applicability of ``model``
        (:func:`saltmap.trust.intervals.fit_trust`, :func:`saltmap.models.persistence.load_trust`).
        Each block's :func:`saltmap.trust.intervals.trust_block` runs in the worker beside
        its prediction, and the layers of :data:`TRUST_FILES` are written as COGs
        (dtype, no-data and description of :data:`saltmap.trust.intervals.TRUST_LAYERS`);
        the result's ``trust`` holds the share of valid pixels inside the AOA and
        the median interval width, and the figure greys pixels outside the AOA.
    exclude_outside_aoa : bool, default=False
        With ``trust``: pixels outside the AOA get class 0 (no data) and are left
        out of the class areas (the CSV says so in its ``scope`` column). The
        salinity COG keeps their values.
    resume : bool, default=True
        Keep each finished block in a work store inside ``out_dir`` (a hidden
        ``.map.work-KEY`` folder, see :class:`saltmap.atomic.BlockStore`), so that
        a run killed mid-way and started again with the same inputs continues from
        its finished blocks and gives the same values. ``KEY`` is
        :func:`block_store_key`: the model, scene (and its files' size and time),
        trust model, boundary, covariates, class plan and block size; with other
        inputs the run starts afresh and the old work is removed. The store is
        removed once every output is written. Outputs a resumed run finds of its
        own interrupted attempt do not need ``overwrite``; a finished map does.
        The store takes about 5 bytes per pixel (22 with ``trust``) of disk while
        the map runs, beside the first-stage GeoTIFFs.

    Raises
    ------
    MissingBandError
        If the scene lacks a band the model reads.
    BoundaryError
        If the boundary cannot be read or does not overlap the scene.
    UnitError
        If the class scheme needs a conversion that was not given.
    ConfigError
        If ``exclude_outside_aoa`` is asked for without ``trust``.
    OutputExistsError
        If an output exists and ``overwrite`` is False.

    All of these are raised before any file is written.

    Notes
    -----
    With ``jobs > 1`` the workers are started with the ``spawn`` method, which
    re-imports the calling script: a script calling :func:`map_scene` needs the
    usual ``if __name__ == "__main__":`` guard (the ``saltmap`` command has it).
    The model is sent to each worker once; inner models run single-threaded,
    because the blocks already use every core. Pixels whose band values are
    missing, or whose indices are undefined (a zero denominator), get no value.
    """
    import rasterio

    started = time.perf_counter()
    if isinstance(scene, str | Path):
        from saltmap.io.scene import open_scene

        scene = open_scene(scene)
    outputs = MapOutputs.in_folder(out_dir, trust=trust is not None)
    if exclude_outside_aoa and trust is None:
        raise ConfigError(
            "exclude_outside_aoa needs a trust model (trust=...) that defines the AOA; "
            "train with `saltmap train` (which fits one) or saltmap.trust.intervals.fit_trust"
        )

    # Every check before the first byte is written.
    bands = model_bands(model)
    check_roles(bands, scene.roles, f"the scene {scene.source}")
    if trust is not None:
        check_roles(trust.bands, scene.roles, f"the scene {scene.source}")
    rasters = _covariate_rasters(model, covariates, scene)
    plan = plan_classes(scheme, target_name, target_unit, conversion)
    geoms = None
    if boundary is not None:
        geoms = read_boundary(boundary, scene.crs, _scene_bounds(scene))
    pixel_km2 = pixel_area_km2(scene.transform, scene.crs)
    if block_size < 16:
        raise ValueError(f"block_size must be at least 16 pixels, got {block_size}")
    job = BlockJob(
        model=copy.deepcopy(model), scene=scene, plan=plan, boundary=geoms, covariates=rasters,
        trust=copy.deepcopy(trust), exclude_outside_aoa=exclude_outside_aoa,
    )  # fmt: skip
    key = block_store_key(job, block_size) if resume else None
    existing = [str(p) for p in outputs.all() if p.exists()]
    # Outputs beside the work store of these very inputs are this run's own, from an
    # attempt killed while it wrote them: only a finished map (no store) needs overwrite.
    own_work = key is not None and _store_path(out_dir, key).is_dir()
    if existing and not overwrite and not own_work:
        raise OutputExistsError(
            f"{', '.join(existing)} already exist(s); pass overwrite=True (--overwrite) to "
            "replace them, or choose another output folder"
        )

    windows = scene.block_windows(block_size)
    todo, skipped = _split_by_boundary(windows, geoms, scene.transform)

    check_output_folder(out_dir)
    # A killed run leaves its first-stage GeoTIFFs behind; remove those of dead processes.
    for path in outputs.all():
        clean_stale_partials(out_dir, path.stem)
    store = BlockStore(out_dir, STORE_NAME, key) if key is not None else None
    stored = store.done() if store is not None else set()
    resumed = [w for w in todo if block_name(w) in stored]
    compute = [w for w in todo if block_name(w) not in stored]
    # First stage: private tiled GeoTIFFs; only the COGs get the final names.
    tmp_sal = temp_path_for(outputs.salinity)
    tmp_cls = temp_path_for(outputs.classes)
    tmp_trust = {name: temp_path_for(path) for name, path in outputs.trust.items()}
    tags = {
        "target": target_name or "unknown",
        "unit": target_unit or "unknown",
        "model": model_name or type(model[-1]).__name__,
        "bands": ",".join(bands),
        "scene": str(scene.source),
        "software": "saltmap",
    }
    base = {
        "driver": "GTiff",
        "width": scene.width,
        "height": scene.height,
        "count": 1,
        "crs": scene.crs,
        "transform": scene.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    counts = np.zeros(256, dtype=np.int64)
    n_valid = 0
    summary = None
    if trust is not None:
        from saltmap.trust.intervals import TrustSummary

        summary = TrustSummary()
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=128))
            sal = stack.enter_context(
                rasterio.open(tmp_sal, "w", **base, dtype="float32", nodata=SALINITY_NODATA)
            )
            cls = stack.enter_context(
                rasterio.open(tmp_cls, "w", **base, dtype="uint8", nodata=CLASS_NODATA)
            )
            layers_out = {
                name: stack.enter_context(rasterio.open(tmp, "w", **base, **_layer_profile(name)))
                for name, tmp in tmp_trust.items()
            }
            what = f"mapping {scene.source}"
            if resumed:
                what += f" ({len(resumed)} of {len(windows)} blocks resumed)"
            advance = stack.enter_context(_progress(progress, len(windows), what))

            def write(window: Window, values: np.ndarray, codes: np.ndarray, layers: Any) -> None:
                nonlocal n_valid
                sal.write(values, 1, window=window)
                cls.write(codes, 1, window=window)
                if layers:
                    for name, dst in layers_out.items():
                        dst.write(layers[name], 1, window=window)
                    summary.add(layers)
                counts[:] += np.bincount(codes.ravel(), minlength=256)
                n_valid += int(np.isfinite(values).sum())
                advance()

            for window in skipped:
                shape = (int(window.height), int(window.width))
                sal.write(_empty_salinity(shape), 1, window=window)
                cls.write(np.zeros(shape, np.uint8), 1, window=window)
                for name, layer in _empty_trust(shape).items() if layers_out else ():
                    layers_out[name].write(layer, 1, window=window)
                advance()
            for window in resumed:
                arrays = store.load(block_name(window))
                write(window, arrays.pop("salinity"), arrays.pop("classes"), arrays)
            for window, values, codes, layers in run_blocks(
                job, compute, jobs=jobs, scheduler=scheduler
            ):
                if store is not None:  # stored first: a block is never half in the store
                    store.save(block_name(window), salinity=values, classes=codes,
                               **(layers or {}))  # fmt: skip
                write(window, values, codes, layers)
            _describe(sal, cls, tags, plan)
            if layers_out:
                _describe_trust(layers_out, tags, trust)
        _to_cog(tmp_sal, outputs.salinity, resampling="average", predictor=3)
        _to_cog(tmp_cls, outputs.classes, resampling="nearest", predictor=1)
        for name, tmp in tmp_trust.items():
            categorical = name == "aoa"
            _to_cog(tmp, outputs.trust[name], resampling="nearest" if categorical else "average",
                    predictor=1 if categorical else 3)  # fmt: skip
    finally:
        tmp_sal.unlink(missing_ok=True)
        tmp_cls.unlink(missing_ok=True)
        for tmp in tmp_trust.values():
            tmp.unlink(missing_ok=True)

    areas = class_area_table(counts, plan.labels, pixel_km2)
    if exclude_outside_aoa:
        outside = summary.n_valid - summary.n_inside
        areas["scope"] = (
            f"valid pixels inside the area of applicability only; {outside} valid pixel(s) "
            "outside it excluded"
        )
    atomic_to_csv(areas, outputs.areas, index=False, float_format="%.6g")
    atomic_write_text(outputs.style, qml_style(plan.labels, plan.colours))
    low, high = salinity_stretch(outputs.salinity)
    atomic_write_text(outputs.salinity_style, qml_stretch_style(low, high, target_unit))
    if figure:
        draw_class_map(
            outputs.classes,
            outputs.figure,
            plan,
            title=_figure_title(tags, plan),
            percent=list(areas["percent"]),
            aoa_path=outputs.trust.get("aoa"),
        )
    if store is not None:
        store.clear()
    return MapResult(
        outputs=outputs,
        areas=areas,
        n_pixels=scene.width * scene.height,
        n_valid=n_valid,
        n_blocks=len(windows),
        seconds=time.perf_counter() - started,
        target_name=target_name,
        target_unit=target_unit,
        scheme=plan.description,
        trust=summary,
        excluded_outside_aoa=exclude_outside_aoa,
        n_resumed=len(resumed),
        n_computed=len(compute),
    )


def _covariate_rasters(model: Any, paths: Mapping[str, Any] | None, scene: Any) -> Any:
    """The model's covariate rasters, checked against the scene (None for a model without)."""
    import warnings

    from saltmap.features.covariates import CovariateRasters, model_covariates

    labels = None
    if isinstance(paths, CovariateRasters):  # with labels for coded categorical rasters
        paths, labels = paths.paths, paths.labels
    if not model_covariates(model):
        if paths:
            raise ModelFileError(
                f"covariate raster(s) {', '.join(paths)} were given, but the model was trained "
                "without covariates; leave them out or train with --covariate"
            )
        return None
    rasters = CovariateRasters.for_model(model, paths or {}, labels=labels)
    rasters.check(scene)
    for name, counts in rasters.check_levels(scene, model).items():
        warnings.warn(
            f"covariate {name!r}: {sum(counts.values()):,} pixel(s) have level(s) the model was "
            f"not trained with ({', '.join(f'{lv!r}: {n:,}' for lv, n in counts.items())}); "
            "they are left without a value",
            stacklevel=3,
        )
    return rasters


#: Name of the work store of :func:`map_scene` (``.map.work-KEY`` in the output folder).
STORE_NAME = "map"
_STORE_VERSION = "saltmap map blocks 1"


def block_name(window: Window) -> str:
    """Name of a block in the work store: its row and column offsets."""
    return f"r{int(window.row_off)}-c{int(window.col_off)}"


def _store_path(out_dir: str | Path, key: str) -> Path:
    # Where BlockStore(out_dir, STORE_NAME, key) keeps its blocks (saltmap.atomic).
    return Path(out_dir) / f".{STORE_NAME}.work-{key}"


def block_store_key(job: BlockJob, block_size: int) -> str:
    """Fingerprint of everything that decides the values of the blocks of a map.

    The pickled :class:`BlockJob` (the model, scene description, class plan,
    boundary, covariate rasters, trust model and AOA exclusion, exactly as the
    workers receive them), the block size, the saltmap version, and the size and
    modification time of every scene and covariate file, so a file changed in
    place starts the map afresh. The number of workers and the scheduler are left
    out: they do not change a value.
    """
    from saltmap import __version__

    scene = job.scene
    files = [f.path for f in scene.files.values()]
    if scene.scl is not None:
        files.append(scene.scl.path)
    if job.covariates is not None:
        files.extend(job.covariates.paths.values())
    return fingerprint(
        _STORE_VERSION, __version__, stable_digest(job), int(block_size),
        [_file_stamp(f) for f in files],
    )  # fmt: skip


def stable_digest(obj: Any) -> bytes:
    """SHA-256 of ``obj`` pickled, the same in every process for equal objects.

    Plain pickle bytes are not: a structured NumPy array (a decision tree's nodes)
    carries padding bytes of uninitialised memory, and skops does not restore the
    state of a random generator, so both differ between two loads of the same model
    file. Structured arrays are digested field by field, and random generators are
    left out: a fitted model does not draw from them to predict.
    """
    import hashlib
    import io

    buffer = io.BytesIO()
    _DigestPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return hashlib.sha256(buffer.getvalue()).digest()


def _digested(*parts: Any) -> None:  # pragma: no cover
    """Stand-in reconstructor named in digests; digests are never unpickled."""


class _DigestPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and obj.dtype.names:
            fields = tuple((name, np.ascontiguousarray(obj[name])) for name in obj.dtype.names)
            return _digested, (str(obj.dtype), obj.shape, fields)
        if isinstance(obj, np.random.RandomState | np.random.Generator):
            return _digested, ("random generator",)
        return NotImplemented


def _file_stamp(path: str) -> Path | str:
    """The local file behind a raster path (a ``/vsizip/`` path: its zip), else the text."""
    found = re.match(r"^(?:/vsizip/)?(.*?\.zip)(?:/|$)", str(path), flags=re.IGNORECASE)
    local = Path(found[1] if found else path)
    return local if local.is_file() else str(path)


def _scene_bounds(scene: Any) -> tuple[float, float, float, float]:
    from rasterio.transform import array_bounds

    return array_bounds(scene.height, scene.width, scene.transform)  # west, south, east, north


def _split_by_boundary(
    windows: Sequence[Window], geoms: Sequence[Any] | None, transform: Any
) -> tuple[list[Window], list[Window]]:
    """Windows to compute and windows entirely outside the boundary (left as no data)."""
    if not geoms:
        return list(windows), []
    import shapely
    from rasterio.windows import bounds as window_bounds

    area = geoms[0]
    shapely.prepare(area)
    todo, skipped = [], []
    for w in windows:
        box = shapely.box(*window_bounds(w, transform))
        (todo if area.intersects(box) else skipped).append(w)
    return todo, skipped


def _describe(sal: Any, cls: Any, tags: Mapping[str, str], plan: ClassPlan) -> None:
    unit = tags["unit"]
    sal.update_tags(**tags)
    sal.set_band_description(1, f"{tags['target']} ({unit})")
    sal.update_tags(1, units=unit)
    cls.update_tags(**tags, scheme=plan.description)
    cls.update_tags(1, **{f"class_{i}": label for i, label in enumerate(plan.labels, start=1)})
    cls.update_tags(1, class_names="|".join(plan.labels), nodata_code=str(CLASS_NODATA))
    cls.set_band_description(1, f"salinity class ({plan.description})")
    cls.write_colormap(1, plan.scheme.colour_table())


def _layer_profile(name: str) -> dict[str, Any]:
    from saltmap.trust.intervals import TRUST_LAYERS

    dtype, nodata, _ = TRUST_LAYERS[name]
    return {"dtype": dtype, "nodata": nodata}


def _describe_trust(layers: Mapping[str, Any], tags: Mapping[str, str], trust: Any) -> None:
    from saltmap.trust.intervals import TRUST_LAYERS

    info = {f"trust_{k}": str(v) for k, v in getattr(trust, "info", {}).items()}
    info["aoa_threshold"] = repr(float(trust.aoa.threshold_))
    for name, dst in layers.items():
        _, _, description = TRUST_LAYERS[name]
        dst.update_tags(**tags, **info)
        dst.set_band_description(1, description.format(unit=tags["unit"]))
        if name in ("lower", "upper", "width"):
            dst.update_tags(1, units=tags["unit"])


def _figure_title(tags: Mapping[str, str], plan: ClassPlan) -> str:
    s = plan.scheme
    return (
        f"Soil salinity classes ({s.name}, {s.quantity} in {s.unit}) from {tags['model']} "
        f"predicting {tags['target']} ({tags['unit']})"
    )


@contextlib.contextmanager
def _progress(show: bool, total: int, what: str) -> Iterator[Callable[[], None]]:
    if not show:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("blocks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


def read_classes_overview(path: str | Path, max_pixels: int = 1600) -> tuple[np.ndarray, Any]:
    """Read the class COG decimated to at most ``max_pixels`` on its longer side.

    Returns the codes and their ``(left, right, bottom, top)`` extent; the COG's
    overviews make this cheap whatever the scene size.
    """
    import rasterio
    from rasterio.enums import Resampling

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


def class_map_of(
    classes_path: Path,
    plan: ClassPlan,
    *,
    title: str,
    percent: list[float] | None = None,
    aoa_path: Path | None = None,
) -> Any:
    """The class COG drawn as the study's figure 6 (a matplotlib Figure).

    With ``aoa_path`` (the AOA COG) pixels outside the area of applicability are
    greyed, read decimated exactly as the classes are.
    """
    from saltmap.plots import class_map_figure

    codes, (extent, crs) = read_classes_overview(classes_path)
    extra = {}
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
) -> Path:
    """Draw the class COG as the study's figure 6 (:func:`class_map_of`) and save it as PNG."""
    import matplotlib.pyplot as plt

    fig = class_map_of(classes_path, plan, title=title, percent=percent, aoa_path=aoa_path)
    try:
        return atomic_savefig(fig, figure_path, dpi=150, bbox_inches="tight")
    finally:
        plt.close(fig)

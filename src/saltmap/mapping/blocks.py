"""The pure core of a map: one block of reflectance in, salinity and class codes out.

:func:`predict_block` turns a block shaped ``(band, row, col)`` into salinity, with
the model's covariate rasters when it reads any; :func:`classify_block` turns
salinity into class codes. :class:`BlockJob` bundles what a worker needs to map a
window of the scene (model, scene, class plan, boundary, covariates, trust model),
so that the engines (:mod:`saltmap.mapping.engine`) only hand out windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import rasterio
from rasterio.features import geometry_mask
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from sklearn.base import BaseEstimator

from saltmap.bands import check_roles
from saltmap.errors import ModelFileError
from saltmap.features.covariate_rasters import assemble_predictors
from saltmap.mapping.provenance import empty_provenance, has_provenance
from saltmap.models.inference import predict_rows
from saltmap.rowwise import finite_rows
from saltmap.salinity.classes import classify
from saltmap.salinity.units import convert_ec, quantity_of
from saltmap.trust.maps import TRUST_LAYERS, trust_block

if TYPE_CHECKING:
    from saltmap.features.covariate_rasters import CovariateRasters
    from saltmap.io.grid import GriddedScene
    from saltmap.salinity.classes import ClassScheme
    from saltmap.salinity.conversion import SaltConversion
    from saltmap.trust.maps import TrustModel

#: Nodata of the salinity COG and code of "no class" in the class COG.
SALINITY_NODATA = float("nan")
CLASS_NODATA = 0
#: Rows predicted at once inside a block: bounds the memory of the hidden layers of an
#: MLP and the per-tree outputs of a forest, whatever the block size. Larger chunks
#: hold more pixels per cell of a tree ensemble (:mod:`saltmap.models.inference`):
#: 262144 rows took 0.89x the CPU of 65536 with the stacking models of
#: ``benchmarks/predict_levers.py`` (whole 1024 x 1024 blocks were no better).
CHUNK_ROWS = 262_144

#: What a block job yields: window, salinity, class codes and the trust layers (or None).
BlockResult = tuple[Window, np.ndarray, np.ndarray, "dict[str, np.ndarray] | None"]


def model_bands(model: BaseEstimator) -> tuple[str, ...]:
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


# --------------------------------------------------------------------- prediction


def predict_block(
    model: BaseEstimator,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariates: Mapping[str, np.ndarray] | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> np.ndarray:
    """Predict salinity for every valid pixel of a block.

    Parameters
    ----------
    model : fitted estimator
        A pipeline ``IndexFeatures -> regressor`` whose input is reflectance by band
        role (see :func:`model_bands`), and the covariates it was trained with, if any.
    reflectance : ndarray of shape (n_roles, rows, cols)
        Surface reflectance, NaN where there is no data or the pixel is masked.
    roles : sequence of str
        The band role of each plane of ``reflectance``.
    covariates : mapping, optional
        ``{name: (rows, cols) array}`` of every covariate the model reads, as
        :meth:`saltmap.features.covariates.CovariateRasters.read` returns them for
        the block's window. Leave out for a model without covariates.
    chunk_rows : int, default=262144
        Pixels handed to ``model.predict`` at once; results do not depend on it.

    Returns
    -------
    ndarray of shape (rows, cols), float32
        The model's prediction, NaN where any band or covariate the model reads has
        no value, where an index the model reads is undefined for the pixel (see
        :mod:`saltmap.features.indices`), where a categorical covariate has a level
        the model never saw, or where the model's own output is not finite.

    Notes
    -----
    Each valid pixel is passed to ``model.predict`` as one row of the model's input
    (reflectance in the model's band order, then its covariates), so a mapped value
    equals the model's prediction for that pixel's values taken as a sample.
    """
    salinity, _ = predict_block_with_unseen(
        model, reflectance, roles, covariates, chunk_rows=chunk_rows
    )
    return salinity


def predict_block_with_unseen(
    model: BaseEstimator,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariates: Mapping[str, np.ndarray] | None = None,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> tuple[np.ndarray, int]:
    """:func:`predict_block` and the number of pixels left out for an unseen categorical level.

    Returns
    -------
    salinity : ndarray of shape (rows, cols), float32
        As :func:`predict_block`.
    n_unseen : int
        Pixels otherwise valid whose categorical covariate level the model was not
        trained with (0 without covariates).
    """
    if covariates:
        rows, valid, n_unseen = _covariate_rows(model, reflectance, roles, covariates)
    else:
        rows, valid, n_unseen = _reflectance_rows(model, reflectance, roles)
    out = np.full(valid.size, np.nan, dtype=np.float32)
    index = np.flatnonzero(valid)
    # The pipeline's own steps, run as Pipeline.predict runs them, so that pixels
    # whose indices are undefined (a zero denominator: NaN by the domain rule of
    # saltmap.features.indices) can be left out rather than failing the whole block.
    features, regressor = model[:-1], model[-1]
    for start in range(0, index.size, chunk_rows):
        take = index[start : start + chunk_rows]
        at = _as_slice(take)
        chunk = rows.iloc[at] if isinstance(rows, pd.DataFrame) else rows[at]
        feats = features.transform(chunk)
        defined = finite_rows(feats)
        if not defined.all():
            at, feats = take[defined], feats[defined]
        if len(feats):
            # Equal to regressor.predict, with less CPU for tree ensembles (see inference).
            out[at] = np.asarray(predict_rows(regressor, feats), dtype=np.float32).ravel()
    out[~np.isfinite(out)] = np.nan
    return out.reshape(reflectance.shape[1:]), n_unseen


def _as_slice(take: np.ndarray) -> slice | np.ndarray:
    """``take`` (sorted, distinct pixel numbers) as a slice when it is one run."""
    # A block with every pixel valid is one run: a slice reads and writes it in place,
    # where a pixel list copies the rows and scatters the results, which shows in the
    # time of a cheap model's block.
    if take.size and int(take[-1]) - int(take[0]) + 1 == take.size:
        return slice(int(take[0]), int(take[-1]) + 1)
    return take


def _reflectance_rows(
    model: BaseEstimator, reflectance: np.ndarray, roles: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Pixels as rows, bands as columns in the model's order (one float32 copy,
    column-major), and the rows where every band has a value."""
    bands = model_bands(model)
    check_roles(bands, roles, "the reflectance block")
    if reflectance.ndim != 3 or reflectance.shape[0] != len(roles):
        raise ValueError(
            f"reflectance must be shaped (n_roles={len(roles)}, rows, cols), "
            f"got {reflectance.shape}"
        )
    planes = [list(roles).index(b) for b in bands]
    # Column-major: each band stays one run of memory, as the indices read it.
    pixels = np.asarray(reflectance[planes].reshape(len(bands), -1).T, np.float32)
    return pixels, finite_rows(pixels), 0


def _covariate_rows(
    model: BaseEstimator,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariates: Mapping[str, np.ndarray],
) -> tuple[pd.DataFrame, np.ndarray, int]:
    """The model's input table of the block, its valid rows and the unseen-level count."""
    predictors = assemble_predictors(model, reflectance, roles, covariates)
    return predictors.table, predictors.valid, int(predictors.unseen.sum())


# ------------------------------------------------------------------------ classes


def classify_block(
    values: np.ndarray,
    scheme: ClassScheme,
    to_scheme_unit: Callable[[np.ndarray], np.ndarray] | None,
) -> np.ndarray:
    """Class codes (uint8, 1 = first class, 0 = no data) of salinity ``values``.

    ``to_scheme_unit`` first converts the model's target into the scheme's quantity
    and unit (for example EC in µS/cm into salt content in g/kg).
    """
    values = np.asarray(values, dtype=np.float64)
    if to_scheme_unit is not None:
        values = np.asarray(to_scheme_unit(values), dtype=np.float64)
    return classify(values, scheme)


@dataclass(frozen=True)
class ToSchemeUnit:
    """Converts the model's target into the class scheme's quantity and unit.

    EC units are converted by a factor; EC to salt content (or back) goes through
    a :class:`~saltmap.salinity.units.SaltConversion`. Picklable, so it travels to workers.
    """

    from_unit: str
    to_unit: str
    conversion: SaltConversion | None = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        src, dst = quantity_of(self.from_unit), quantity_of(self.to_unit)
        if src == dst:
            return convert_ec(values, self.from_unit, self.to_unit)
        if src == "EC":
            return convert_ec(self.conversion.to_salt(values, ec_unit=self.from_unit), "g/kg",
                              self.to_unit)  # fmt: skip
        return self.conversion.to_ec(convert_ec(values, self.from_unit, "g/kg"), self.to_unit)

    def describe(self) -> str:
        if quantity_of(self.from_unit) == quantity_of(self.to_unit):
            return f"values in {self.from_unit} classed in {self.to_unit}"
        return f"converted by {str(self.conversion).split('   ')[0]}"


@dataclass(frozen=True)
class ClassPlan:
    """How predicted salinity becomes classes: the scheme and the unit conversion."""

    scheme: ClassScheme
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


# ----------------------------------------------------------------------- the job


def boundary_mask(geoms: Sequence[Any] | None, window: Window, transform: Any) -> np.ndarray:
    """True inside the boundary for the pixels of ``window`` (all True without a boundary)."""
    shape = (int(window.height), int(window.width))
    if not geoms:
        return np.ones(shape, dtype=bool)
    return geometry_mask(
        geoms, out_shape=shape, transform=window_transform(window, transform), invert=True
    )


@dataclass
class BlockJob:
    """Everything a worker needs to map a block: shipped to each worker once.

    Calling it with a window returns ``(window, salinity, classes, trust)``; ``trust``
    is the :func:`saltmap.trust.intervals.trust_block` result of the block (None without a
    trust model), computed here so it runs in the worker beside the prediction.
    """

    model: BaseEstimator
    scene: GriddedScene
    plan: ClassPlan
    boundary: list[Any] | None = None
    chunk_rows: int = CHUNK_ROWS
    gdal_cache_mb: int = 64
    covariates: CovariateRasters | None = None
    trust: TrustModel | None = None
    exclude_outside_aoa: bool = False
    _ready: bool = field(default=False, repr=False)

    def prepare(self) -> None:
        """Run inner models single-threaded: the parallelism is over blocks."""
        if not self._ready:
            single_threaded(self.model)
            self._ready = True

    @property
    def roles(self) -> tuple[str, ...]:
        """Band roles read from the scene: the model's, then the trust model's."""
        bands = model_bands(self.model)
        return bands if self.trust is None else tuple(dict.fromkeys([*bands, *self.trust.bands]))

    def __call__(self, window: Window) -> BlockResult:
        self.prepare()
        inside = boundary_mask(self.boundary, window, self.scene.transform)
        if not inside.any():
            shape = inside.shape
            return window, empty_salinity(shape), np.zeros(shape, np.uint8), self._empty(shape)
        roles = self.roles
        reflectance, covariates, provenance = self._read(window, roles)
        reflectance[:, ~inside] = np.nan
        for layer in (provenance or {}).values():
            layer[~inside] = 0
        # Pixels with a categorical level the model never saw are left without a value.
        salinity = predict_block(
            self.model, reflectance, roles, covariates, chunk_rows=self.chunk_rows
        )
        classes = classify_block(salinity, self.plan.scheme, self.plan.convert)
        if self.trust is None:
            return window, salinity, classes, provenance
        # The classes each interval spans, classed as the map classes its prediction.
        spans = partial(classify_block, scheme=self.plan.scheme, to_scheme_unit=self.plan.convert)
        layers = trust_block(
            # trust's own chunks: its DI holds a distance to every training row
            self.trust, reflectance, roles, prediction=salinity,
            classify=spans, **({"covariates": covariates} if covariates else {}),
        )  # fmt: skip
        if self.exclude_outside_aoa:
            classes[layers["aoa"] == 0] = CLASS_NODATA
        return window, salinity, classes, {**layers, **(provenance or {})}

    def _empty(self, shape: tuple[int, int]) -> dict[str, np.ndarray] | None:
        """The trust and provenance layers of a block outside the boundary (None without)."""
        layers = {
            **(empty_trust(shape) if self.trust is not None else {}),
            **(empty_provenance(shape) if has_provenance(self.scene) else {}),
        }
        return layers or None

    def _read(self, window: Window, roles: Sequence[str]) -> tuple[Any, Any, Any]:
        """Reflectance, covariates (None without) and a mosaic's provenance (None for a scene)."""
        # GDAL's block cache defaults to 5 % of RAM per process; blocks are read
        # once, so a small cache keeps each worker's memory bounded by the block.
        provenance = None
        with rasterio.Env(GDAL_CACHEMAX=self.gdal_cache_mb):
            if has_provenance(self.scene):
                reflectance, provenance = self.scene.read_with_provenance(window, roles)
            else:
                reflectance = self.scene.read(window=window, roles=roles)
            covariates = self.covariates and self.covariates.read(self.scene, window)
        return reflectance, covariates or None, provenance


def empty_salinity(shape: tuple[int, int]) -> np.ndarray:
    """A salinity block without any value."""
    return np.full(shape, np.nan, dtype=np.float32)


def empty_trust(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Trust layers of a block without any value (each layer's no-data)."""
    return {
        name: np.full(shape, nodata, dtype=dtype)
        for name, (dtype, nodata, _) in TRUST_LAYERS.items()
    }


def single_threaded(model: BaseEstimator) -> None:
    """Set ``n_jobs=1`` on every fitted estimator inside ``model`` (in place)."""
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

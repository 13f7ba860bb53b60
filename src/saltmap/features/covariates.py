"""Covariates beyond the spectrum: sample columns and rasters as predictors.

Salinity follows more than reflectance: distance to the sea, elevation, land use,
groundwater. The study names these as its future work [1]_; digital soil mapping
always uses them [2]_. This module makes them predictors beside the indices.

Models
    ``make_model(name, covariates=Covariates(numeric=["Dist_Sea"],
    categorical=["Land_cover"]))`` puts a :class:`PredictorFeatures` step
    (named ``"indices"``, as the plain model's first step, so every consumer
    finds its ``bands_``) before the regressor. It is a
    :class:`~sklearn.compose.ColumnTransformer` of
    :class:`~saltmap.features.indices.IndexFeatures` on the band-role columns, the numeric
    covariates passed through, and a :class:`~sklearn.preprocessing.OneHotEncoder`
    on the categorical ones. A fitted model takes a table of band roles plus the
    covariate columns. Numeric covariates are not rescaled: the trees do not need
    it and the MLP and PLSR standardise their inputs themselves.

Categorical levels never seen in training
    A level is compared as text (``3``, ``3.0`` and ``"3"`` are the same level).
    A level the model was not fitted with has no column to go to, so a value for
    it would be garbage. saltmap decides, explicitly:

    * predicting **samples** (:meth:`PredictorFeatures.transform`) with an unseen
      level raises :class:`UnseenLevelError` naming the covariate, the levels, the
      rows and the known levels;
    * **mapping** (:func:`assemble_predictors`) flags such pixels: they are left
      out of prediction (NaN in the map) and counted, like masked pixels;
    * **cross-validation** (:func:`covariate_gain`, and tuning's inner folds)
      leaves test rows whose level is missing from their training fold out of the
      scores of *every* model compared, and counts them;
    * ``Covariates(..., min_count=k)`` pools levels seen fewer than ``k`` times in
      training into one ``infrequent`` level; unseen levels then join that pool
      (scikit-learn's ``handle_unknown="infrequent_if_exist"``), a choice the
      user makes knowingly. Without a pool they are still refused or flagged.

Rasters for mapping
    :class:`CovariateRasters` reads covariate rasters in any CRS and resolution
    onto the scene's grid window by window through a
    :class:`rasterio.vrt.WarpedVRT` (bilinear for numeric, nearest for
    categorical covariates), as :mod:`saltmap.io.scene` does for 20 m bands.
    :meth:`CovariateRasters.check` fails before any output when a covariate the
    model needs has no raster or a raster does not cover the scene.

Mapping hook (the contract)
    Before any output: ``rasters = CovariateRasters.for_model(model, {name: path})``
    (error if the model reads a covariate without a raster) and
    ``rasters.check(scene)`` (error if a raster is unreadable or does not cover
    the scene). ``model_covariates(model)`` is ``{}`` for a model without
    covariates, which keeps the plain path. Per block (window):
    ``blocks = rasters.read(scene, window)`` (a picklable object; it opens its
    files lazily in each worker/thread), then
    ``salinity, n_unseen = predict_block(model, reflectance, roles, blocks)`` with
    the block's reflectance ``(n_roles, rows, cols)`` as ``Scene.read`` gives it.
    It is built on the pure :func:`assemble_predictors`, which returns a
    :class:`Predictors`: the table in the model's input columns (one row per
    pixel, row-major), a ``valid`` mask (every band and covariate defined, every
    level known) and the ``unseen`` mask of flagged pixels.

Derived covariates
    :func:`distance_to_features` (distance in metres from each pixel of the scene
    grid to the nearest line or polygon of a vector file, by a Euclidean distance
    transform [3]_ of the rasterised features, exact where a feature lies beyond
    the padded grid) and :func:`terrain` (elevation and slope in degrees from a
    DEM resampled to the scene grid); :func:`write_covariate` writes either as a
    GeoTIFF.

What covariates add
    :func:`covariate_gain` scores the same models with and without covariates on
    the same repeated k-fold splits, with the paired difference and its CI, and
    the permutation importance [4]_ of every predictor on each test fold.

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025.
.. [2] McBratney, A. B., Mendonça Santos, M. L., Minasny, B. (2003). On digital
   soil mapping. Geoderma 117, 3–52.
.. [3] Maurer, C. R., Qi, R., Raghavan, V. (2003). A linear time algorithm for
   computing exact Euclidean distance transforms of binary images in arbitrary
   dimensions. IEEE TPAMI 25(2), 265–270.
.. [4] Breiman, L. (2001). Random forests. Machine Learning 45, 5–32.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from saltmap.bands import ROLES
from saltmap.errors import (
    ConfigError,
    InputFileError,
    MissingColumnError,
    SampleDataError,
    SceneError,
)
from saltmap.features.indices import IndexFeatures, required_bands, resolve
from saltmap.io.scene import ThreadLocalDatasets

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: Name of the pooled level of rare (and, with a pool, unseen) categorical levels.
INFREQUENT = "infrequent"


class UnseenLevelError(SampleDataError):
    """A categorical covariate has a level the model was not trained with."""


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Covariates:
    """Which sample columns (or rasters) are covariates, and of which kind.

    Parameters
    ----------
    numeric : sequence of str
        Continuous or ordinal covariates (distance, elevation, a 1–5 class).
    categorical : sequence of str
        Nominal covariates (land cover, soil type), one-hot encoded.
    min_count : int, optional
        Pool categorical levels seen fewer than this many times in training into
        one ``infrequent`` level, which unseen levels then join. ``None`` keeps
        every level and refuses (or flags) unseen ones.
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    min_count: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", _names(self.numeric))
        object.__setattr__(self, "categorical", _names(self.categorical))
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ConfigError(
                f"covariate(s) {', '.join(sorted(both))} are both numeric and categorical; "
                "give each once"
            )
        roles = set(self.names) & set(ROLES)
        if roles:
            raise ConfigError(
                f"{', '.join(sorted(roles))} are band roles, not covariates; the model reads "
                "the bands already"
            )
        if self.min_count is not None and int(self.min_count) < 1:
            raise ConfigError(f"min_count must be at least 1, not {self.min_count}")

    @property
    def names(self) -> tuple[str, ...]:
        """All covariates, numeric first: the order of the model's covariate columns."""
        return self.numeric + self.categorical

    @property
    def kinds(self) -> dict[str, str]:
        """``{name: "numeric" | "categorical"}``."""
        return {
            **{n: NUMERIC for n in self.numeric},
            **{n: CATEGORICAL for n in self.categorical},
        }

    def __bool__(self) -> bool:
        return bool(self.names)


def _names(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    names = tuple(str(v).strip() for v in values)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes or "" in names:
        raise ConfigError(f"covariate names must be unique and non-empty, got {list(names)}")
    return names


def level_text(values: Any) -> np.ndarray:
    """Categorical levels as text, so that a raster's ``3.0`` matches a sheet's ``"3"``.

    Missing values (None, NaN, empty text) become None.
    """
    # Each distinct value is converted once: a map block has few levels, many pixels.
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)), sort=False)
    text = _level_text_each(np.asarray(uniques, dtype=object))
    out = np.empty(len(codes), dtype=object)
    present = codes >= 0
    out[present] = text[codes[present]]
    out[~present] = None
    return out


def _level_text_each(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float | np.floating) and not np.isfinite(v)):
            out[i] = None
            continue
        if isinstance(v, int | np.integer | float | np.floating) and not isinstance(v, bool):
            out[i] = str(int(v)) if float(v).is_integer() else repr(float(v))
            continue
        text = str(v).strip()
        try:
            number = float(text)
        except ValueError:
            out[i] = text or None
        else:
            out[i] = str(int(number)) if np.isfinite(number) and number.is_integer() else text
    return out


def numeric_values(values: Any, name: str, where: str = "the table") -> np.ndarray:
    """A numeric covariate as floats (NaN where missing); text that is not a number is an error."""
    series = pd.Series(np.asarray(values, dtype=object))
    blank = series.isna() | series.astype(str).str.strip().isin(["", "nan", "NaN", "None"])
    numbers = pd.to_numeric(series.where(~blank), errors="coerce")
    bad = numbers.isna() & ~blank
    if bad.any():
        shown = ", ".join(repr(v) for v in series[bad].unique()[:5])
        raise SampleDataError(
            f"numeric covariate {name!r} in {where} has value(s) that are not numbers: {shown}; "
            f"fix them, or declare {name!r} categorical"
        )
    return numbers.to_numpy(dtype=float)


# --------------------------------------------------------------------------- transformer


def _refuse_missing_levels(
    table: pd.DataFrame, categorical: Sequence[str], rows: str, fix: str
) -> None:
    # A missing level one-hot encodes as a row of zeros, which would silently read as
    # "none of the levels": refuse it instead.
    for name in categorical:
        missing = table[name].isna()
        if missing.any():
            raise SampleDataError(
                f"categorical covariate {name!r} is missing for {int(missing.sum())} {rows}"
                f"row(s) ({', '.join(map(str, table.index[missing][:5]))}); {fix}"
            )


class PredictorFeatures(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from band reflectance + covariate columns to predictors.

    A :class:`~sklearn.compose.ColumnTransformer` of
    :class:`~saltmap.features.indices.IndexFeatures` (band roles -> indices), the numeric
    covariates as they are, and a one-hot encoding of the categorical ones.

    Parameters
    ----------
    indices : str or list of str, default="novel"
        Index features, see :func:`saltmap.features.indices.resolve`.
    numeric, categorical : tuple of str
        Covariate column names (see :class:`Covariates`).
    min_count : int, optional
        Pool rare categorical levels, see :class:`Covariates`.

    Attributes
    ----------
    index_names_, bands_ : as in IndexFeatures
    covariates_ : dict
        ``{name: {"kind": ..., "categories": [...]}}`` (categories for categorical
        covariates: the levels with a column of their own, plus ``infrequent``
        when rare levels are pooled).
    transformer_ : ColumnTransformer
    feature_names_out_ : ndarray of str
        The predictors, in the order the regressor sees them.
    """

    def __init__(
        self,
        indices: str | list[str] = "novel",
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        min_count: int | None = None,
    ):
        self.indices = indices
        self.numeric = numeric
        self.categorical = categorical
        self.min_count = min_count

    @property
    def spec(self) -> Covariates:
        return Covariates(self.numeric, self.categorical, self.min_count)

    @property
    def columns_(self) -> list[str]:
        """The input columns the fitted step reads, in order: band roles, then covariates."""
        check_is_fitted(self, "transformer_")
        return [*self.bands_, *self.spec.names]

    def fit(self, X: Any, y: Any = None) -> PredictorFeatures:
        spec = self.spec
        table = self._frame(X, [*required_bands(resolve(self.indices)), *spec.names], "training")
        self.index_names_ = resolve(self.indices)
        needed = required_bands(self.index_names_)
        self.bands_ = tuple(r for r in ROLES if r in needed)
        prepared = self._prepare(table, "the training table")
        _refuse_missing_levels(
            prepared, spec.categorical, "training ", "fill it or drop those rows"
        )
        encoder = OneHotEncoder(
            handle_unknown="error" if spec.min_count is None else "infrequent_if_exist",
            min_frequency=spec.min_count,
            sparse_output=False,
            dtype=np.float64,
        )
        parts = [("indices", IndexFeatures(self.indices), list(self.bands_))]
        if spec.numeric:
            parts.append((NUMERIC, "passthrough", list(spec.numeric)))
        if spec.categorical:
            parts.append((CATEGORICAL, encoder, list(spec.categorical)))
        self.transformer_ = ColumnTransformer(parts, verbose_feature_names_out=False)
        self.transformer_.fit(prepared)
        self.covariates_ = {n: {"kind": NUMERIC} for n in spec.numeric}
        if spec.categorical:
            fitted = self.transformer_.named_transformers_[CATEGORICAL]
            for i, name in enumerate(spec.categorical):
                infrequent = (
                    fitted.infrequent_categories_[i] if spec.min_count is not None else None
                )
                kept = [
                    c for c in fitted.categories_[i] if infrequent is None or c not in infrequent
                ]
                self.covariates_[name] = {
                    "kind": CATEGORICAL,
                    "categories": [str(c) for c in kept],
                    "pooled": [] if infrequent is None else [str(c) for c in infrequent],
                }
        self.feature_names_out_ = np.asarray(self.transformer_.get_feature_names_out(), object)
        self.n_features_in_ = table.shape[1]
        self.feature_names_in_ = np.asarray(table.columns, dtype=object)
        return self

    def _frame(self, X: Any, columns: list[str], what: str) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise SampleDataError(
                f"this model also reads covariate(s) {', '.join(self.spec.names)}, so its "
                f"{what} input must be a table with columns {', '.join(columns)}, not an array "
                f"of shape {np.shape(X)}; for a scene, give the covariate rasters "
                "(saltmap.features.covariates.CovariateRasters, assemble_predictors)"
            )
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise MissingColumnError(
                f"the {what} table lacks column(s) {', '.join(missing)} that the model reads; "
                f"it has {', '.join(map(str, X.columns[:20]))}"
            )
        return X

    def _prepare(self, X: pd.DataFrame, where: str) -> pd.DataFrame:
        out = pd.DataFrame(index=X.index)
        for role in required_bands(resolve(self.indices)):
            out[role] = pd.to_numeric(X[role], errors="coerce").to_numpy(dtype=float)
        for name in self.numeric:
            out[name] = numeric_values(X[name].to_numpy(), name, where)
        for name in self.categorical:
            out[name] = pd.Series(level_text(X[name].to_numpy()), index=X.index, dtype=object)
        return out

    def unseen(self, X: pd.DataFrame) -> pd.DataFrame:
        """Boolean table (rows × categorical covariates): True where a level is unknown.

        A level is unknown when it has no column of its own and no pool of rare
        levels exists to take it. Missing levels are not unknown (they are missing).
        """
        check_is_fitted(self, "transformer_")
        X = self._frame(X, self.columns_, "prediction")
        out = pd.DataFrame(False, index=X.index, columns=list(self.categorical))
        for name in self.categorical:
            info = self.covariates_[name]
            if info["pooled"]:
                continue
            levels = pd.Series(level_text(X[name].to_numpy()), index=X.index)
            out[name] = levels.notna() & ~levels.isin(info["categories"])
        return out

    def seen_rows(self, X: pd.DataFrame) -> np.ndarray:
        """True for rows whose every categorical level the model knows."""
        return ~self.unseen(X).any(axis=1).to_numpy()

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        X = self._frame(X, self.columns_, "prediction")
        unseen = self.unseen(X)
        if unseen.any(axis=None):
            raise UnseenLevelError(_unseen_message(self, X, unseen))
        prepared = self._prepare(X, "the prediction table")
        _refuse_missing_levels(prepared, self.categorical, "", "the model cannot predict them")
        return np.asarray(self.transformer_.transform(prepared), dtype=np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        return self.feature_names_out_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _unseen_message(step: PredictorFeatures, X: pd.DataFrame, unseen: pd.DataFrame) -> str:
    parts = []
    for name in unseen.columns[unseen.any(axis=0)]:
        rows = unseen[name].to_numpy()
        levels = sorted(set(level_text(X[name].to_numpy()[rows])))
        known = step.covariates_[name]["categories"]
        parts.append(
            f"{name!r} has level(s) {', '.join(map(repr, levels))} in {int(rows.sum())} row(s) "
            f"({', '.join(map(str, X.index[rows][:5]))}) that the model was not trained with "
            f"(known: {', '.join(map(repr, known))})"
        )
    return (
        "; ".join(parts) + ". A level without training rows has no effect the model could "
        "know: drop those rows, recode them to a known level, or retrain with "
        "Covariates(min_count=...) to pool rare and unseen levels"
    )


def model_covariates(model: Any) -> dict[str, dict[str, Any]]:
    """``{name: {"kind", "categories"}}`` of the covariates a fitted model reads ({} if none)."""
    inner = getattr(model, "model_", model)
    steps = getattr(inner, "named_steps", None) or {}
    step = steps.get("indices")
    return dict(getattr(step, "covariates_", {}) or {})


def model_columns(model: Any) -> list[str]:
    """Input columns of a fitted saltmap model: band roles, then covariates."""
    inner = getattr(model, "model_", model)
    step = inner.named_steps["indices"]
    return list(getattr(step, "columns_", None) or step.bands_)


def predictor_table(samples: Any, covariates: Covariates | None) -> pd.DataFrame:
    """Band roles and covariate columns of samples: the input of a model with covariates.

    Raises
    ------
    MissingColumnError
        If a covariate is not a column of the samples (the message lists them).
    """
    reflectance = samples.reflectance
    if not covariates:
        return reflectance
    table = samples.table
    missing = [c for c in covariates.names if c not in table.columns]
    if missing:
        raise MissingColumnError(
            f"{samples.source}: no column {', '.join(map(repr, missing))} for the covariate(s); "
            f"columns are {', '.join(map(str, table.columns))}"
        )
    out = reflectance.copy()
    for name in covariates.numeric:
        out[name] = numeric_values(table[name].to_numpy(), name, str(samples.source))
    for name in covariates.categorical:
        out[name] = pd.Series(level_text(table[name].to_numpy()), index=table.index, dtype=object)
    return out


def model_input(model: Any, samples: Any) -> pd.DataFrame:
    """The table a fitted model predicts samples from: reflectance, plus its covariates.

    For a model without covariates this is ``samples.reflectance``; otherwise the
    covariate columns of the samples are added (an error names a missing one).
    """
    info = model_covariates(model)
    if not info:
        return samples.reflectance
    kinds = {n: v["kind"] for n, v in info.items()}
    spec = Covariates(
        [n for n, k in kinds.items() if k == NUMERIC],
        [n for n, k in kinds.items() if k == CATEGORICAL],
    )
    return predictor_table(samples, spec)


def check_covariates_defined(table: pd.DataFrame, covariates: Covariates, source: Any) -> None:
    """Refuse training rows where a covariate is missing; filling them would invent data."""
    from saltmap.io.samples import missing_by_sample

    bad = table[list(covariates.names)].isna()
    if bad.any(axis=None):
        n, where = missing_by_sample(bad)
        raise SampleDataError(
            f"{source}: {n} sample(s) lack covariate values ({where}); fill them or remove "
            "those samples"
        )


# --------------------------------------------------------------------------- rasters


def _open_raster(path: str | Path, name: str) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise InputFileError(
            f"covariate {name!r}: cannot open raster {path} ({err}); give a GeoTIFF or another "
            "file GDAL reads"
        ) from err


def _check_covers(src: Any, grid: Any, what: str) -> None:
    """Refuse a raster that does not cover the whole grid (in the raster's own CRS)."""
    from rasterio.warp import transform_bounds

    if src.crs is None:
        raise SceneError(f"{what} {src.name} has no CRS; assign one (gdal_edit.py -a_srs) first")
    west, south, east, north = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    r = src.bounds
    # Half a raster pixel of slack: edges that meet within rounding still cover.
    tol_x, tol_y = abs(src.transform.a) / 2, abs(src.transform.e) / 2
    if (
        west < r.left - tol_x
        or east > r.right + tol_x
        or south < r.bottom - tol_y
        or north > r.top + tol_y
    ):
        raise SceneError(
            f"{what} {src.name} does not cover the scene: the scene spans "
            f"({west:.6g}, {south:.6g}, {east:.6g}, {north:.6g}) in the raster's CRS {src.crs}, "
            f"the raster ({r.left:.6g}, {r.bottom:.6g}, {r.right:.6g}, {r.top:.6g}); give a "
            "raster that covers the whole scene (a mosaic or a larger extent)"
        )


def _warped(src: Any, grid: Any, categorical: bool) -> Any:
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    return WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=Resampling.nearest if categorical else Resampling.bilinear,
        src_nodata=src.nodata,
        nodata=np.nan,
        dtype="float32",
    )


class CovariateRasters(ThreadLocalDatasets):
    """Covariate rasters, read window by window on a scene's grid.

    Each raster may have any CRS and resolution; it is warped onto the scene grid
    by a :class:`rasterio.vrt.WarpedVRT`, bilinear for numeric and nearest for
    categorical covariates, and only the window asked for is read. The raster's
    nodata becomes NaN (numeric) or a missing level (categorical).

    Parameters
    ----------
    paths : mapping
        ``{covariate name: raster path}``; names match the model's training columns.
    kinds : mapping, optional
        ``{name: "numeric" | "categorical"}``; taken from the model by
        :meth:`for_model`, numeric when not given.
    labels : mapping, optional
        ``{name: {raster value: training level}}`` for a categorical raster whose
        codes differ from the levels in the samples (``{1: "Rice field"}``).
        Unlisted values keep their own text (``3.0`` -> ``"3"``).
    """

    def __init__(
        self,
        paths: Mapping[str, str | Path],
        kinds: Mapping[str, str] | None = None,
        labels: Mapping[str, Mapping[Any, str]] | None = None,
    ) -> None:
        self.paths = {str(k): str(v) for k, v in paths.items()}
        self.kinds = {n: (kinds or {}).get(n, NUMERIC) for n in self.paths}
        bad = {n: k for n, k in self.kinds.items() if k not in (NUMERIC, CATEGORICAL)}
        if bad:
            raise ConfigError(f"covariate kind(s) {bad} must be 'numeric' or 'categorical'")
        self.labels = {
            n: {level_text([k])[0]: str(v) for k, v in m.items()} for n, m in (labels or {}).items()
        }
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"CovariateRasters({self.paths}, kinds={self.kinds})"

    @classmethod
    def for_model(
        cls,
        model: Any,
        paths: Mapping[str, str | Path],
        labels: Mapping[str, Mapping[Any, str]] | None = None,
    ) -> CovariateRasters:
        """The rasters of the covariates ``model`` reads, with their kinds taken from it.

        Raises
        ------
        ConfigError
            If the model reads a covariate that has no raster in ``paths``.
        """
        needed = model_covariates(model)
        missing = [n for n in needed if n not in paths]
        if missing:
            raise ConfigError(
                f"the model reads covariate(s) {', '.join(map(repr, missing))} but no raster was "
                f"given for {'it' if len(missing) == 1 else 'them'}; pass --covariate NAME=PATH "
                f"for each of {', '.join(needed)} (given: {', '.join(paths) or 'none'})"
            )
        return cls({n: paths[n] for n in needed}, {n: v["kind"] for n, v in needed.items()}, labels)

    def check(self, scene: Any) -> None:
        """Fail before any output if a raster cannot be read or does not cover the scene."""
        for name, path in self.paths.items():
            with _open_raster(path, name) as src:
                _check_covers(src, scene, f"covariate raster {name!r}")

    def unseen_levels(
        self, scene: Any, model: Any, block_size: int = 1024
    ) -> dict[str, dict[str, int]]:
        """Pixels per categorical level of the rasters that ``model`` was not trained with.

        Read block by block on the scene grid (nearest), before mapping, so that a
        code/label mismatch is caught before any output. Levels pooled as rare
        (``min_count``) are not unseen.

        Returns
        -------
        dict
            ``{name: {level: pixel count}}`` for covariates with unseen levels, plus
            the count of pixels with a known level under ``"__known__"``.
        """
        from collections import Counter

        info = model_covariates(model)
        out: dict[str, dict[str, int]] = {}
        for name, meta in info.items():
            if meta["kind"] != CATEGORICAL or meta.get("pooled") or name not in self.paths:
                continue
            known = set(meta["categories"])
            counts: Counter[str] = Counter()
            for window in scene.block_windows(block_size):
                values = self._reader(name, scene).read(1, window=window, out_dtype="float32")
                codes, n = np.unique(values[np.isfinite(values)], return_counts=True)
                for level, k in zip(
                    _levels_of_codes(codes, self.labels.get(name, {})), n, strict=True
                ):
                    counts[level] += int(k)
            unseen = {lv: k for lv, k in counts.items() if lv is not None and lv not in known}
            if unseen:
                out[name] = dict(sorted(unseen.items(), key=lambda kv: -kv[1]))
                out[name]["__known__"] = sum(
                    k for lv, k in counts.items() if lv is not None and lv in known
                )
        return out

    def check_levels(self, scene: Any, model: Any) -> dict[str, dict[str, int]]:
        """Refuse rasters whose levels the model knows none of; return the unseen counts.

        A categorical raster none of whose pixels has a training level is almost
        surely coded differently from the samples (numbers for names): an error that
        asks for ``labels``. Otherwise the unseen pixels are returned, to be flagged.
        """
        unseen = self.unseen_levels(scene, model)
        for name, counts in unseen.items():
            known = counts.pop("__known__")
            if known == 0:
                levels = model_covariates(model)[name]["categories"]
                raise ConfigError(
                    f"covariate raster {name!r} ({self.paths[name]}) has no pixel with a level "
                    f"the model was trained with: its values are "
                    f"{', '.join(map(repr, list(counts)[:8]))}, the training levels "
                    f"{', '.join(map(repr, levels[:8]))}. Give the raster's legend as labels "
                    f"(saltmap map --labels {name}=legend.csv with columns value,level; "
                    "CovariateRasters(..., labels={name: {code: level}}) in Python)"
                )
        return unseen

    def _reader(self, name: str, scene: Any) -> Any:
        # One open dataset and warped VRT per thread and scene grid: GDAL handles
        # must not be shared between threads.
        handles = self._handles()
        key = (name, str(scene.crs), tuple(scene.transform), scene.width, scene.height)
        if key not in handles:
            src = _open_raster(self.paths[name], name)
            handles[key] = (src, _warped(src, scene, self.kinds[name] == CATEGORICAL))
        return handles[key][1]

    def read(self, scene: Any, window: Any = None) -> dict[str, np.ndarray]:
        """Each covariate on ``window`` of the scene grid.

        Returns
        -------
        dict
            ``{name: array (rows, cols)}``: float32 for numeric covariates (NaN =
            no data), object arrays of level text for categorical ones (None = no
            data), with ``labels`` applied.
        """
        from rasterio.windows import Window

        if window is None:
            window = Window(0, 0, scene.width, scene.height)
        out = {}
        for name in self.paths:
            values = self._reader(name, scene).read(1, window=window, out_dtype="float32")
            if self.kinds[name] == CATEGORICAL:
                values = _levels_of_codes(values, self.labels.get(name, {}))
            out[name] = values
        return out


def _levels_of_codes(values: np.ndarray, labels: Mapping[str, str]) -> np.ndarray:
    """Raster codes as level text, converting each distinct code once."""
    codes, inverse = np.unique(values, return_inverse=True)
    text = level_text(codes)
    text = np.array([labels.get(t, t) if t is not None else None for t in text], dtype=object)
    return text[inverse.reshape(values.shape)]


# --------------------------------------------------------------------------- mapping hook


@dataclass
class Predictors:
    """The predictors of one block of pixels, in the model's input columns.

    Attributes
    ----------
    table : DataFrame
        One row per pixel (row-major), columns :func:`model_columns` of the model.
    valid : ndarray of bool
        True where every band and covariate is defined and every categorical level
        is one the model was trained with: the rows to predict.
    unseen : ndarray of bool
        True where a pixel is otherwise valid but has a categorical level the model
        never saw: flagged, left out of the prediction, and counted.
    """

    table: pd.DataFrame
    valid: np.ndarray
    unseen: np.ndarray


def assemble_predictors(
    model: Any,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariate_blocks: Mapping[str, np.ndarray],
) -> Predictors:
    """The model's input table for a block of reflectance and covariate rasters.

    A pure function (no I/O): the mapping hook. ``covariate_blocks`` is what
    :meth:`CovariateRasters.read` returns for the same window.

    Parameters
    ----------
    model : fitted saltmap model
        With or without covariates.
    reflectance : ndarray of shape (n_roles, rows, cols)
        Surface reflectance, NaN where masked.
    roles : sequence of str
        Band role of each plane of ``reflectance``.
    covariate_blocks : mapping
        ``{name: (rows, cols) array}`` for every covariate the model reads.

    Returns
    -------
    Predictors
    """
    from saltmap.bands import check_roles

    columns = model_columns(model)
    info = model_covariates(model)
    bands = [c for c in columns if c not in info]
    check_roles(bands, roles, "the reflectance block")
    if reflectance.ndim != 3 or reflectance.shape[0] != len(roles):
        raise ValueError(
            f"reflectance must be shaped (n_roles={len(roles)}, rows, cols), got "
            f"{reflectance.shape}"
        )
    shape = reflectance.shape[1:]
    missing = [n for n in info if n not in covariate_blocks]
    if missing:
        raise ConfigError(
            f"no raster block for covariate(s) {', '.join(missing)} that the model reads; "
            "read them with CovariateRasters.for_model(model, paths).read(scene, window)"
        )
    data: dict[str, Any] = {}
    valid = np.ones(int(np.prod(shape)), dtype=bool)
    for band in bands:
        values = reflectance[list(roles).index(band)].reshape(-1)
        data[band] = values
        valid &= np.isfinite(values)
    unseen = np.zeros_like(valid)
    for name, meta in info.items():
        block = np.asarray(covariate_blocks[name])
        if block.shape != shape:
            raise ValueError(f"covariate block {name!r} is {block.shape}, the block is {shape}")
        if meta["kind"] == NUMERIC:
            values = block.reshape(-1).astype(np.float64)
            valid &= np.isfinite(values)
        else:
            values = block.reshape(-1)
            if values.dtype != object:
                values = _levels_of_codes(values, {})
            levels = pd.Series(values)
            present = levels.notna().to_numpy()
            valid &= present
            if not meta.get("pooled"):
                unseen |= present & ~levels.isin(meta["categories"]).to_numpy()
        data[name] = values
    unseen &= valid
    valid &= ~unseen
    return Predictors(pd.DataFrame(data, columns=columns), valid, unseen)


def predict_block(
    model: Any,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariate_blocks: Mapping[str, np.ndarray],
    *,
    chunk_rows: int = 65_536,
) -> tuple[np.ndarray, int]:
    """Salinity of every valid pixel of a block, with covariates.

    Returns
    -------
    salinity : ndarray (rows, cols), float32
        NaN where a band or covariate has no data, where an index is undefined,
        where a categorical level was never seen in training, or where the model's
        output is not finite. Every other pixel equals ``model.predict`` of that
        pixel's row of :func:`assemble_predictors`.
    n_unseen : int
        Pixels left out because of an unseen categorical level.
    """
    predictors = assemble_predictors(model, reflectance, roles, covariate_blocks)
    out = np.full(predictors.valid.size, np.nan, dtype=np.float32)
    index = np.flatnonzero(predictors.valid)
    # The pipeline's steps run as Pipeline.predict runs them, so that pixels whose
    # indices are undefined (NaN by the domain rule) are left out, as saltmap.mapping.engine does.
    features, regressor = model[:-1], model[-1]
    for start in range(0, index.size, chunk_rows):
        take = index[start : start + chunk_rows]
        feats = features.transform(predictors.table.iloc[take])
        defined = np.isfinite(feats).all(axis=1)
        if defined.any():
            pred = regressor.predict(feats[defined])
            out[take[defined]] = np.asarray(pred, dtype=np.float32).ravel()
    out[~np.isfinite(out)] = np.nan
    return out.reshape(reflectance.shape[1:]), int(predictors.unseen.sum())


# --------------------------------------------------------------------------- derived covariates


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
    with _open_raster(dem, "elevation") as src:
        _check_covers(src, scene, "DEM")
        with _warped(src, scene, categorical=False) as vrt:
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


def covariates_at_points(
    rasters: CovariateRasters, scene: Any, rows: np.ndarray, cols: np.ndarray
) -> pd.DataFrame:
    """Covariate values at scene pixels, exactly as mapping reads them.

    Each point takes the value of the covariate warped onto the scene grid at its
    pixel (bilinear or nearest, see :class:`CovariateRasters`), so a sample's
    covariate is the value a map pixel at the same place would get.

    Returns
    -------
    DataFrame
        One column per covariate, one row per pixel given (NaN / None where the
        raster has no data).
    """
    from rasterio.windows import Window

    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    out: dict[str, list[Any]] = {name: [] for name in rasters.paths}
    for r, c in zip(rows, cols, strict=True):
        values = rasters.read(scene, Window(int(c), int(r), 1, 1))
        for name, block in values.items():
            out[name].append(block[0, 0])
    return pd.DataFrame(
        {n: pd.Series(v, dtype=float if rasters.kinds[n] == NUMERIC else object)
         for n, v in out.items()}
    )  # fmt: skip


# --------------------------------------------------------------------------- what covariates add


class _OnPredictors(RegressorMixin, BaseEstimator):
    """A fitted covariate model seen from its predictors (indices and raw covariates).

    Permutation importance shuffles one column at a time; shuffling a band would
    change several indices at once, and shuffling a one-hot column alone would
    make rows of no level. Here each index and each covariate (all its one-hot
    columns together) is one column.
    """

    def __init__(self, model: Any = None):
        self.model = model

    def fit(self, X: Any, y: Any = None) -> _OnPredictors:
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        step = self.model.named_steps["indices"]
        parts = [X[list(step.index_names_)].to_numpy(dtype=float)]
        if step.numeric:
            parts.append(X[list(step.numeric)].to_numpy(dtype=float))
        if step.categorical:
            encoder = step.transformer_.named_transformers_[CATEGORICAL]
            parts.append(encoder.transform(X[list(step.categorical)]))
        return np.asarray(self.model[1:].predict(np.hstack(parts)), dtype=float).ravel()


def predictors_of(model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """The predictor table of a fitted covariate model: index values and raw covariates."""
    step = model.named_steps["indices"]
    indices = step.transformer_.named_transformers_["indices"]
    out = pd.DataFrame(
        indices.transform(X[list(step.bands_)]), index=X.index, columns=list(step.index_names_)
    )
    prepared = step._prepare(X, "the table")
    for name in step.spec.names:
        out[name] = prepared[name].to_numpy()
    return out


@dataclass
class CovariateGain:
    """What covariates add: the same models with and without them on the same folds.

    Attributes
    ----------
    summary : DataFrame
        One row per model and predictor set (``indices`` or ``indices+covariates``):
        mean ± sd over folds of R², RMSE, MAE, the pooled out-of-fold R², and for
        the covariate rows the paired difference to the same model without them
        (``dR2``, ``dRMSE``, ``dR2_pooled``) with a paired bootstrap 95 % CI.
    folds : DataFrame
        Every fold's metrics.
    importance : DataFrame
        Permutation importance (mean decrease of R² on the test fold, shuffled
        ``n_repeats`` times) of each predictor of each covariate model:
        mean and sd over folds.
    n_flagged : int
        Test rows left out of every score because their categorical level was not
        in their training fold (summed over folds).
    settings : dict
    """

    summary: pd.DataFrame
    folds: pd.DataFrame
    importance: pd.DataFrame
    n_flagged: int
    settings: dict[str, Any]


def _gain_fold(
    names: Sequence[str],
    X0: pd.DataFrame,
    X1: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    covariates: Covariates,
    indices: Any,
    params: Mapping[str, Any],
    random_state: int,
    n_repeats: int,
    log_target: bool = False,
) -> dict[str, Any]:
    import time
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.inspection import permutation_importance

    from saltmap.models.building import make_model

    jobs: dict[str, dict[str, Any]] = {}
    importance = []
    kept = test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = {}
        for name in names:
            start = time.perf_counter()
            with_cov = make_model(
                name, indices=indices, covariates=covariates, params=params.get(name),
                random_state=random_state, log_target=log_target,
            ).fit(X1.iloc[train], y[train])  # fmt: skip
            fitted[name] = (with_cov, time.perf_counter() - start)
            seen = with_cov.named_steps["indices"].seen_rows(X1.iloc[test])
            kept = kept[np.isin(kept, test[seen])]
        for name in names:
            start = time.perf_counter()
            without = make_model(
                name, indices=indices, params=params.get(name), random_state=random_state,
                log_target=log_target,
            ).fit(X0.iloc[train], y[train])  # fmt: skip
            pred0 = np.asarray(without.predict(X0.iloc[kept]), dtype=float).ravel()
            seconds0 = time.perf_counter() - start
            with_cov, seconds1 = fitted[name]
            pred1 = np.asarray(with_cov.predict(X1.iloc[kept]), dtype=float).ravel()
            jobs[name] = {"test": pred0, "train": None, "seconds": seconds0, "selected": ""}
            jobs[f"{name}+covariates"] = {
                "test": pred1, "train": None, "seconds": seconds1, "selected": "",
            }  # fmt: skip
            table = predictors_of(with_cov, X1.iloc[kept])
            result = permutation_importance(
                _OnPredictors(with_cov), table, y[kept], scoring="r2",
                n_repeats=n_repeats, random_state=random_state,
            )  # fmt: skip
            importance.append(
                pd.DataFrame(
                    {
                        "model": name,
                        "predictor": table.columns,
                        "importance": result.importances_mean,
                    }
                )
            )
    return {"kept": kept, "n_flagged": len(test) - len(kept), "jobs": jobs,
            "importance": pd.concat(importance)}  # fmt: skip


def covariate_gain(
    samples: Any,
    covariates: Covariates,
    *,
    models: Sequence[str] = ("RF",),
    indices: str | list[str] = "novel",
    cv: Any = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    random_state: int = 0,
    n_repeats: int = 10,
    n_boot: int = 2000,
    n_jobs: int | None = None,
    log_target: bool = False,
) -> CovariateGain:
    """Score the same models with and without covariates on the same folds.

    Each fold fits every model twice, on the indices alone and on the indices
    plus the covariates, with the same hyperparameters and seed, and scores
    both on the same held-out rows. Test rows whose categorical level is not in
    their training fold cannot be predicted by the covariate model; they are
    left out of *both* scores (and counted), so the comparison stays paired.
    The difference's 95 % CI is the paired bootstrap of
    :func:`saltmap.validation.protocols.paired_difference` (the same resampled rows for
    both). The permutation importance [4]_ of each predictor is computed on each
    test fold (:func:`sklearn.inspection.permutation_importance`, R²), each
    categorical covariate shuffled as one column.

    Parameters
    ----------
    samples : Samples
        Field samples with the covariate columns.
    covariates : Covariates
    models : sequence of str, default=("RF",)
        Names of :data:`saltmap.models.building.MODEL_NAMES`, fitted with their default
        (untuned) parameters unless ``params`` gives others.
    indices : str or list of str, default="novel"
    cv : splitter, optional
        Default ``RepeatedKFold(5, 5, random_state)``.
    params : mapping, optional
        ``{model name: parameters}`` as :func:`saltmap.models.building.make_model` takes.
    random_state : int
        Seed of the folds, the models, the shuffles and the bootstrap.
    n_repeats : int
        Shuffles per predictor and fold.
    n_boot : int
        Bootstrap draws of the CIs.
    n_jobs : int, optional
        Folds in parallel (joblib).
    log_target : bool, default=False
        Model log10 of the target (both variants); scores stay in the target's unit.

    Returns
    -------
    CovariateGain
    """
    from joblib import Parallel, delayed
    from sklearn.model_selection import RepeatedKFold

    from saltmap.models.building import check_indices_defined
    from saltmap.validation.protocols import (
        bootstrap_draws,
        collect_folds,
        materialise_splits,
        paired_difference,
    )

    if not covariates:
        raise ConfigError("give at least one covariate to measure what it adds")
    y = samples.target.to_numpy(dtype=float)
    check_indices_defined(samples, indices)
    X0 = samples.reflectance
    X1 = predictor_table(samples, covariates)
    check_covariates_defined(X1, covariates, samples.source)
    cv = cv if cv is not None else RepeatedKFold(n_splits=5, n_repeats=5, random_state=random_state)
    splits = materialise_splits(cv, X0, y)
    per_repeat = getattr(cv, "cvargs", {}).get("n_splits") or getattr(cv, "n_splits", None)
    out = Parallel(n_jobs=n_jobs)(
        delayed(_gain_fold)(
            list(models), X0, X1, y, train, test, covariates, indices, dict(params or {}),
            random_state, n_repeats, log_target,
        )
        for train, test in splits
    )  # fmt: skip
    kept_splits = [(train, job["kept"]) for (train, _), job in zip(splits, out, strict=True)]
    results = collect_folds([job["jobs"] for job in out], kept_splits, y, per_repeat)
    draws = bootstrap_draws(len(y), n_boot, random_state)
    rows = []
    for name in models:
        for key, label in ((name, "indices"), (f"{name}+covariates", "indices+covariates")):
            row = {"model": name, "predictors": label, **results[key].summary(draws)}
            if key != name:
                row.update(paired_difference(results[key], results[name], draws))
            rows.append(row)
    folds = pd.concat(
        [r.folds.assign(model=k.split("+")[0], predictors="indices+covariates" if "+" in k
                        else "indices") for k, r in results.items()]
    )  # fmt: skip
    importance = (
        pd.concat([job["importance"] for job in out])
        .groupby(["model", "predictor"], sort=False)["importance"]
        .agg(["mean", "std"])
        .rename(columns={"std": "sd"})
        .reset_index()
    )
    settings = {
        "covariates": covariates.kinds,
        "min_count": covariates.min_count,
        "indices": resolve(indices),
        "cv": repr(cv),
        "n_folds": len(splits),
        "random_state": random_state,
        "n_repeats": n_repeats,
        "n_boot": n_boot,
        "n_samples": len(y),
        "log_target": log_target,
    }
    return CovariateGain(
        summary=pd.DataFrame(rows),
        folds=folds.reset_index(drop=True),
        importance=importance,
        n_flagged=int(sum(job["n_flagged"] for job in out)),
        settings=settings,
    )

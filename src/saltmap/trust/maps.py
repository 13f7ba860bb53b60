"""Trust for mapping: intervals and area of applicability per pixel, and per map.

:func:`fit_trust` bundles the intervals (:mod:`saltmap.trust.intervals`) and the
area of applicability (:mod:`saltmap.trust.aoa`) of one model into a picklable
:class:`TrustModel`; :func:`trust_block` is the pure per-block core that mapping
calls on ``(band, row, col)`` reflectance, and :class:`TrustSummary` accumulates
the per-map figures (share of valid pixels inside the AOA, median interval width).

Models trained with covariates (:mod:`saltmap.features.covariates`) are handled
alike: the DI's predictors are the indices, the numeric covariates and one column
per categorical level, and :func:`trust_block` takes the covariate blocks of the
window beside the reflectance.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from saltmap.bands import check_roles
from saltmap.errors import ConfigError
from saltmap.features.covariate_rasters import assemble_predictors
from saltmap.models.inspect import model_covariates, model_parts, predictor_of_column
from saltmap.rowwise import finite_rows
from saltmap.trust.aoa import CHUNK_ROWS, AreaOfApplicability, importance_weights
from saltmap.trust.intervals import ConformalIntervals
from saltmap.trust.settings import TrustSettings

#: Code of "no data" in the uint8 AOA raster (1 = inside, 0 = outside).
AOA_NODATA = 255
#: The rasters :func:`trust_block` returns, as mapping writes them: name ->
#: (dtype, nodata, band description). ``{unit}`` is the target's unit.
TRUST_LAYERS: dict[str, tuple[str, float, str]] = {
    "lower": ("float32", float("nan"), "lower bound of the prediction interval ({unit})"),
    "upper": ("float32", float("nan"), "upper bound of the prediction interval ({unit})"),
    "width": ("float32", float("nan"), "width of the prediction interval ({unit})"),
    "di": ("float32", float("nan"), "dissimilarity index (Meyer & Pebesma 2021)"),
    "aoa": ("uint8", AOA_NODATA, "area of applicability (1 inside, 0 outside)"),
    "class_confidence": (
        "uint8",
        AOA_NODATA,
        "salinity classes the prediction interval spans (1: all inside the predicted class)",
    ),
}
#: Named categories of the categorical trust layers (code -> name), for styles and legends.
TRUST_CATEGORIES: dict[str, dict[int, str]] = {
    "aoa": {0: "outside the area of applicability", 1: "inside the area of applicability"},
    "class_confidence": {
        1: "interval inside the predicted class",
        2: "interval spans 2 classes",
        3: "interval spans 3 classes",
        4: "interval spans 4 or more classes",
    },
}

# --------------------------------------------------------------------------- bundle


@dataclass
class TrustModel:
    """Intervals and area of applicability of one fitted model, ready for mapping.

    Built by :func:`fit_trust`; picklable (all parts are). ``bands`` are the band
    roles the model reads, in the order :func:`trust_block` expects them;
    ``feature_names`` are the DI's predictors: the indices, then (for a model
    trained with covariates) the numeric covariates and one column per level of
    each categorical one.
    """

    intervals: ConformalIntervals
    aoa: AreaOfApplicability
    bands: tuple[str, ...]
    feature_names: tuple[str, ...]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def weights(self) -> pd.Series:
        """The DI weight of each predictor column."""
        return pd.Series(self.aoa.weights_, index=list(self.feature_names))

    @property
    def model(self) -> Any:
        """The model fitted on all rows (the intervals' centre)."""
        return self.intervals.estimator_

    @property
    def index_features(self) -> Any:
        """The model's first step: IndexFeatures, or PredictorFeatures with covariates."""
        return model_parts(self.intervals.estimator_)[0]

    @property
    def covariates(self) -> dict[str, dict[str, Any]]:
        """``{name: {"kind", "categories", ...}}`` of the covariates the model reads."""
        return model_covariates(self.intervals.estimator_)

    def features(self, X: Any) -> np.ndarray:
        """The DI's predictors of rows of model input.

        ``X`` is pixels given as (n, len(bands)) reflectance for a model of indices
        only, or a table of band roles plus the covariate columns for a model
        trained with covariates (unseen categorical levels are refused there; see
        :func:`trust_block` for blocks, which leaves them out).
        """
        return np.asarray(self.index_features.transform(X), dtype=float)


def fit_trust(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    settings: TrustSettings | None = None,
    *,
    groups: Any = None,
    **options: Any,
) -> TrustModel:
    """Fit intervals and the AOA for a saltmap model on its training samples.

    Parameters
    ----------
    model : estimator
        The (unfitted or fitted) saltmap model; it is cloned and refitted on all
        rows and on each fold with the same parameters. It may read covariates
        (:mod:`saltmap.features.covariates`).
    X : DataFrame
        The model's input on the training samples: reflectance by band role, plus
        the covariate columns for a model with covariates
        (:func:`saltmap.models.inspect.model_input`, ``predictor_table``).
    y : array-like
        The target.
    settings : TrustSettings, optional
        The keywords below as one object; keywords given beside it win over its
        fields. An unknown keyword is a TypeError naming it.
    groups : array-like, optional
        Groups for a group splitter ``cv``.
    confidence, cv, method, conformity_score, random_state
        See :class:`ConformalIntervals`. The same folds give the AOA's
        cross-validated DI.
    weights : "permutation", None or array-like, default="permutation"
        Predictor weights of the DI: the permutation importance of the full model
        (:func:`importance_weights`), equal weights, or given ones (one per
        predictor: the indices, then the covariates).
    keep_fold_models : bool, default=False
        With ``method="normalized"`` or ``"base"`` the fold models and the MAPIE
        object are not needed once the residuals are known; they are dropped unless
        this is True, so a saved trust model holds one model, not K + 1.

    Returns
    -------
    TrustModel

    Notes
    -----
    With covariates the DI uses every predictor the regressor reads: the indices,
    the numeric covariates, and one 0/1 column per level of each categorical
    covariate, each standardised over the training rows and weighted by its
    covariate's importance (as CAST's ``trainDI`` expands factors into dummy
    variables with the factor's weight [5]_).
    """
    s = replace(settings or TrustSettings(), **options)
    intervals = ConformalIntervals(model, **asdict(s.interval_settings()))
    intervals.fit(X, y, groups=groups)
    step, _ = model_parts(intervals.estimator_)
    w = _predictor_weights(intervals.estimator_, X, y, s.weights, s.random_state)
    names = tuple(str(n) for n in getattr(step, "feature_names_out_", step.index_names_))
    features = pd.DataFrame(step.transform(X), columns=list(names))
    aoa = AreaOfApplicability(weights=w[predictor_of_column(step)].to_numpy())
    aoa.fit(features, folds=intervals.folds_)
    if s.method in ("normalized", "base") and not s.keep_fold_models:
        intervals.mapie_, intervals.fold_estimators_ = None, []
    return TrustModel(
        intervals, aoa, tuple(step.bands_), names, _trust_info(intervals, np.asarray(y).size)
    )


def _predictor_weights(
    model: Any, X: Any, y: Any, weights: Any, random_state: int | None
) -> pd.Series:
    """The DI weight of each predictor (index or covariate), as :func:`fit_trust` takes it."""
    step, _ = model_parts(model)
    predictors = list(step.index_names_) + list(model_covariates(model))
    if isinstance(weights, str) and weights == "permutation":
        return importance_weights(model, X, y, random_state=random_state)
    if weights is None:
        return pd.Series(np.ones(len(predictors)), index=predictors)
    values = np.asarray(weights, dtype=float).ravel()
    if values.shape != (len(predictors),):
        raise ConfigError(
            f"weights must be {len(predictors)} numbers, one per predictor "
            f"({', '.join(predictors)}), got {values.size}"
        )
    return pd.Series(values, index=predictors)


def _trust_info(intervals: ConformalIntervals, n_samples: int) -> dict[str, Any]:
    """What a trust model records of how it was fitted (saved with the model)."""
    info = {
        "confidence": intervals.confidence,
        "method": intervals.method,
        "conformity_score": intervals.conformity_score,
        "n_samples": n_samples,
        "n_folds": int(intervals.folds_.max() + 1),
    }
    covariates = model_covariates(intervals.estimator_)
    if covariates:
        info["covariates"] = {name: meta["kind"] for name, meta in covariates.items()}
        info["n_unscored"] = intervals.n_unscored_
    return info


def trust_block(
    trust: TrustModel,
    reflectance: np.ndarray,
    roles: Sequence[str],
    *,
    prediction: np.ndarray | None = None,
    covariates: Mapping[str, np.ndarray] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    classify: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Interval bounds, DI and AOA of every valid pixel of a block.

    Parameters
    ----------
    trust : TrustModel
    reflectance : ndarray of shape (n_roles, rows, cols)
        Surface reflectance, NaN where there is no data.
    roles : sequence of str
        Band role of each plane.
    prediction : ndarray of shape (rows, cols), optional
        The map's salinity for the block (from the same model fitted on the same
        rows, e.g. :func:`saltmap.mapping.blocks.predict_block`). With ``method="base"``
        the bounds are then computed without running any model; otherwise the full
        model predicts the pixels here.
    covariates : mapping, optional
        For a model trained with covariates: ``{name: (rows, cols) array}`` of
        every covariate it reads on the same window, as
        :meth:`saltmap.features.covariate_rasters.CovariateRasters.read` returns it (float for
        numeric covariates, level text for categorical ones). Pixels where a
        covariate has no data, or whose categorical level the model never saw, get
        no trust values, as they get no salinity.
    chunk_rows : int
        Pixels processed at once; results do not depend on it.
    classify : callable, optional
        Salinity -> class codes, as the map classes its prediction (for example
        ``functools.partial(classify_block, scheme=..., to_scheme_unit=...)``);
        gives the ``class_confidence`` layer (:func:`classes_spanned`).

    Returns
    -------
    dict
        ``lower``, ``upper``, ``width``, ``di`` (float32, NaN where no data),
        ``aoa`` (uint8: 1 inside, 0 outside, :data:`AOA_NODATA` where no data) and
        ``class_confidence`` (uint8: classes the interval spans, :data:`AOA_NODATA`
        where no data or without ``classify``), each shaped (rows, cols).

    Raises
    ------
    ConfigError
        If the model reads covariates and ``covariates`` lacks one, or covariate
        blocks are given for a model that reads none.
    """
    check_roles(trust.bands, roles, "the reflectance block")
    if reflectance.ndim != 3 or reflectance.shape[0] != len(roles):
        raise ValueError(
            f"reflectance must be shaped (n_roles={len(roles)}, rows, cols), "
            f"got {reflectance.shape}"
        )
    _, rows, cols = reflectance.shape
    rows_of, valid = _block_rows(trust, reflectance, roles, covariates)
    pred_flat = _flat_prediction(prediction, rows * cols)
    if pred_flat is not None:
        valid &= np.isfinite(pred_flat)
    out = {k: np.full(rows * cols, np.nan, np.float32) for k in ("lower", "upper", "width", "di")}
    index = np.flatnonzero(valid)
    for start in range(0, index.size, chunk_rows):
        take = index[start : start + chunk_rows]
        chunk = rows_of(take)
        given = None if pred_flat is None else pred_flat[take]
        # The predictors once, for both the interval's scale and the DI.
        features = trust.features(chunk)
        _, lower, upper = trust.intervals.predict_interval(chunk, given, features)
        out["lower"][take] = lower
        out["upper"][take] = upper
        # In float64, before rounding: a constant width stays constant (upper - lower of
        # the float32 bounds would carry their rounding, ~1e-4 of the value).
        out["width"][take] = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
        out["di"][take] = trust.aoa.dissimilarity(features)
    result = {k: v.reshape(rows, cols) for k, v in out.items()}
    result["aoa"] = _aoa_codes(out["di"], trust.aoa.threshold_).reshape(rows, cols)
    result["class_confidence"] = classes_spanned(result["lower"], result["upper"], classify)
    return result


def classes_spanned(
    lower: np.ndarray, upper: np.ndarray, classify: Callable[[np.ndarray], np.ndarray] | None
) -> np.ndarray:
    """How many salinity classes each interval reaches (uint8; 255 where unknown).

    ``classify`` turns salinity into class codes (1, 2, … in increasing salinity, 0
    for no class), as the map classes its prediction. 1 means the whole interval
    lies in one class, the predicted one; 4 stands for 4 or more. Without
    ``classify`` every pixel is 255 (no data).
    """
    out = np.full(lower.shape, AOA_NODATA, np.uint8)
    if classify is None:
        return out
    low = np.asarray(classify(lower), dtype=np.int16)
    high = np.asarray(classify(upper), dtype=np.int16)
    known = (low > 0) & (high > 0)
    out[known] = np.clip(high[known] - low[known] + 1, 1, 4).astype(np.uint8)
    return out


def _aoa_codes(di: np.ndarray, threshold: float) -> np.ndarray:
    """uint8 AOA of each pixel: 1 inside, 0 outside, :data:`AOA_NODATA` without a DI."""
    aoa = np.full(di.size, AOA_NODATA, np.uint8)
    has_di = np.isfinite(di)
    aoa[has_di] = (di[has_di] <= threshold).astype(np.uint8)
    return aoa


def _flat_prediction(prediction: np.ndarray | None, n_pixels: int) -> np.ndarray | None:
    """The block's given prediction as one float32 row per pixel (None if not given)."""
    if prediction is None:
        return None
    flat = np.asarray(prediction, dtype=np.float32).reshape(-1)
    if flat.size != n_pixels:
        raise ValueError(f"prediction has {flat.size} pixels, the block {n_pixels}")
    return flat


def _block_rows(
    trust: TrustModel,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariates: Mapping[str, np.ndarray] | None,
) -> tuple[Callable[[np.ndarray], Any], np.ndarray]:
    """The model input of a block's pixels, one row per pixel (row-major), and which
    pixels have every input defined: ``(rows_of(index) -> input, valid)``."""
    needed = trust.covariates
    if not needed:
        if covariates:
            raise ConfigError(
                f"covariate block(s) {', '.join(covariates)} were given, but the trust model's "
                "model reads no covariates; fit the trust model on the model that maps"
            )
        planes = [list(roles).index(b) for b in trust.bands]
        pixels = reflectance[planes].reshape(len(planes), -1).T
        pixels = np.ascontiguousarray(pixels, np.float32)
        return (lambda take: pixels[take]), finite_rows(pixels)
    missing = [n for n in needed if n not in (covariates or {})]
    if missing:
        raise ConfigError(
            f"the trust model's model reads covariate(s) {', '.join(missing)}, but no block "
            "was given for them; pass covariates=CovariateRasters.read(scene, window) "
            "(saltmap.features.covariate_rasters) for the same window"
        )
    # The same table, validity and unseen-level rule as the map's own prediction.
    predictors = assemble_predictors(trust.model, reflectance, roles, covariates)
    table = predictors.table
    return (lambda take: table.iloc[take]), predictors.valid.copy()


# ------------------------------------------------------------------ per-map figures


#: Edges of the DI bins of :class:`TrustSummary` (the DI is a distance in units of the
#: training samples' mean distance to each other; AOA thresholds are typically 0.2–1).
DI_BINS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, np.inf)
_LOG_LO, _LOG_STEP, _NBINS = -6.0, 0.001, 15_000


@dataclass
class TrustSummary:
    """Per-map trust figures accumulated block by block in bounded memory.

    ``add`` takes a :func:`trust_block` result. Width quantiles come from a
    histogram of log10(width) in steps of 0.001 (relative error < 0.12 %), exact
    when all widths are equal (``"base"`` with absolute scores); one such
    histogram per DI bin (:data:`DI_BINS`) gives how the width follows the DI.
    """

    n_valid: int = 0
    n_inside: int = 0
    _hist: np.ndarray = field(
        default_factory=lambda: np.zeros((len(DI_BINS) - 1, _NBINS), np.int64), repr=False
    )
    _spans: np.ndarray = field(default_factory=lambda: np.zeros(256, np.int64), repr=False)
    _wmin: float = np.inf
    _wmax: float = -np.inf

    def add(self, block: dict[str, np.ndarray]) -> None:
        aoa = block["aoa"]
        self.n_valid += int(np.sum(aoa != AOA_NODATA))
        self.n_inside += int(np.sum(aoa == 1))
        if "class_confidence" in block:
            self._spans += np.bincount(block["class_confidence"].ravel(), minlength=256)
        ok = np.isfinite(block["width"]) & (block["width"] > 0)
        w = block["width"][ok]
        if not w.size:
            return
        self._wmin = min(self._wmin, float(w.min()))
        self._wmax = max(self._wmax, float(w.max()))
        bins = np.clip(((np.log10(w) - _LOG_LO) / _LOG_STEP).astype(np.int64), 0, _NBINS - 1)
        # A pixel without a DI (none beside a width) would go to the last bin.
        di = np.nan_to_num(block["di"][ok], nan=np.inf)
        di_bin = np.searchsorted(np.asarray(DI_BINS[1:-1]), di, side="right")
        flat = np.bincount(di_bin * _NBINS + bins, minlength=self._hist.size)
        self._hist += flat.reshape(self._hist.shape)

    @property
    def share_inside_aoa(self) -> float:
        """Share of valid pixels inside the area of applicability."""
        return self.n_inside / self.n_valid if self.n_valid else float("nan")

    def width_quantile(self, q: float, di_bin: int | None = None) -> float:
        """The ``q`` quantile of the width (of one DI bin if given; NaN without pixels)."""
        hist = self._hist.sum(axis=0) if di_bin is None else self._hist[di_bin]
        total = int(hist.sum())
        if total == 0:
            return float("nan")
        if self._wmin == self._wmax:
            return self._wmin
        k = int(np.searchsorted(np.cumsum(hist), max(1.0, q * total)))
        return float(10 ** (_LOG_LO + (k + 0.5) * _LOG_STEP))

    @property
    def median_width(self) -> float:
        return self.width_quantile(0.5)

    def width_by_di(self) -> pd.DataFrame:
        """Pixels and median, 5th and 95th percentile width per DI bin (bins with pixels)."""
        rows = []
        for i, (lo, hi) in enumerate(itertools.pairwise(DI_BINS)):
            n = int(self._hist[i].sum())
            if n:
                rows.append({"di_from": lo, "di_to": hi, "pixels": n,
                             "width_p05": self.width_quantile(0.05, i),
                             "median_width": self.width_quantile(0.5, i),
                             "width_p95": self.width_quantile(0.95, i)})  # fmt: skip
        return pd.DataFrame(rows)

    def class_spans(self) -> dict[int, int]:
        """Pixels per ``class_confidence`` code (1-4), those with a code only."""
        return {k: int(self._spans[k]) for k in range(1, 5) if self._spans[k]}

    def as_dict(self) -> dict[str, float]:
        spans = self.class_spans()
        known = sum(spans.values())
        return {
            "valid_pixels": self.n_valid,
            "inside_aoa_pixels": self.n_inside,
            "share_inside_aoa": self.share_inside_aoa,
            "width_p05": self.width_quantile(0.05),
            "median_interval_width": self.median_width,
            "width_p95": self.width_quantile(0.95),
            "share_one_class": spans.get(1, 0) / known if known else float("nan"),
        }

"""How far to trust a salinity map: prediction intervals and the area of applicability.

Two questions are answered for every pixel:

*How wide is the error?* :class:`ConformalIntervals` gives a lower and an upper
bound at a chosen confidence (default 90 %) by cross-conformal prediction on the
model's out-of-fold residuals [1]_ [2]_, computed with MAPIE [3]_.

*Is the model applicable here at all?* :class:`AreaOfApplicability` computes the
dissimilarity index (DI) of Meyer & Pebesma [4]_ — the distance of a pixel's
standardised, importance-weighted predictors to the nearest training sample — and
marks the pixels whose DI exceeds what cross-validation met inside the training
data as outside the area of applicability (AOA), as the R package CAST does [5]_.

:func:`fit_trust` bundles both into a picklable :class:`TrustModel`;
:func:`trust_block` is the pure per-block core that mapping calls on
``(band, row, col)`` reflectance, and :class:`TrustSummary` accumulates the per-map
figures (share of valid pixels inside the AOA, median interval width).
:func:`evaluate_coverage` measures the intervals' coverage on held-out samples.

Models trained with covariates (:mod:`saltmap.features.covariates`) are handled alike:
their input is reflectance plus the covariate columns, the DI's predictors are
the indices, the numeric covariates and one column per categorical level, and
:func:`trust_block` takes the covariate blocks of the window beside the
reflectance. A fold model cannot predict a categorical level its fold lacked:
those rows are left out of the conformity scores and of coverage, and counted.

Which interval, and what it guarantees
--------------------------------------
``method="base"`` (default) — "CV" in Barber et al. [1]_ (MAPIE's ``"base"``):
the full model's prediction ± the conformal quantile of the K-fold out-of-fold
absolute residuals (for ``conformity_score="gamma"``, of the relative residuals
``(y - ŷ)/ŷ``, one quantile per side). It costs nothing beyond the prediction a
map makes anyway, which is why mapping uses it. Its coverage guarantee is only
approximate: exact ``1 - α`` holds for split conformal, and CV/jackknife intervals
reach ``1 - α`` asymptotically when the fitting algorithm is stable (adding or
removing a few samples changes predictions little); for an unstable learner they
can under-cover in the worst case [1]_. Its coverage is therefore *measured*
(:func:`evaluate_coverage`), not assumed.

``method="plus"`` — CV+ [1]_: the quantiles are taken over the n values
``ŷ_{-k(i)}(x) ± R_i`` built from the K fold models. Under exchangeability it
guarantees ``P(y ∈ C(x)) ≥ 1 - 2α - min{2(1 - 1/K)/(n/K + 1), (1 - K/n)/(K + 1)}``
for any algorithm, and about ``1 - α`` in practice. ``method="minmax"`` (CV-minmax)
guarantees ``≥ 1 - α``, with wider intervals. Both predict with every fold model,
K times the cost of the map's own prediction, and hold an ``(n_pixels × n)``
array per chunk.

All of these assume the pixels are exchangeable with the training samples. A
scene far from the samples is not, which is what the AOA flags.

References
----------
.. [1] Barber, R. F., Candès, E. J., Ramdas, A., Tibshirani, R. J. (2021).
   Predictive inference with the jackknife+. Annals of Statistics 49(1), 486–507.
.. [2] Vovk, V. (2015). Cross-conformal predictors. Annals of Mathematics and
   Artificial Intelligence 74, 9–28.
.. [3] Taquet, V., Blot, V., Morzadec, T., Lacombe, L., Brunel, N. (2022). MAPIE: an
   open-source library for distribution-free uncertainty quantification.
   arXiv:2207.12274. https://github.com/scikit-learn-contrib/MAPIE
.. [4] Meyer, H., Pebesma, E. (2021). Predicting into unknown space? Estimating the
   area of applicability of spatial prediction models. Methods in Ecology and
   Evolution 12, 1620–1633. https://doi.org/10.1111/2041-210X.13650
.. [5] Meyer, H. and others. CAST: 'caret' Applications for Spatial-Temporal Models,
   functions ``trainDI`` and ``aoa``. https://github.com/HannaMeyer/CAST
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import KFold, PredefinedSplit
from sklearn.utils.validation import check_is_fitted

from saltmap.errors import ConfigError, SampleDataError
from saltmap.features.covariates import assemble_predictors
from saltmap.models.inspect import (
    OnPredictors,
    categorical_of,
    model_covariates,
    model_parts,
    predictor_of_column,
    predictors_of,
    seen_rows,
    take_rows,
)

#: Pixels handled at once inside a block: bounds the (chunk × n_train) arrays of
#: CV+ and the neighbour search's scratch memory, whatever the block size.
CHUNK_ROWS = 65_536
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
}
METHODS: tuple[str, ...] = ("base", "plus", "minmax")
CONFORMITY_SCORES: tuple[str, ...] = ("absolute", "gamma")


# --------------------------------------------------------------------------- helpers


def _as_1d(y: Any) -> np.ndarray:
    return np.asarray(y, dtype=float).ravel()


def fold_ids(
    cv: Any, X: Any, y: Any, groups: Any = None, random_state: int | None = 0
) -> np.ndarray:
    """Fold number of every row under ``cv``, where each row is held out exactly once.

    Parameters
    ----------
    cv : int or splitter
        An int k gives ``KFold(k, shuffle=True, random_state=random_state)``; a
        splitter (e.g. :class:`saltmap.validation.protocols.SpatialBlockKFold`,
        :class:`~sklearn.model_selection.GroupKFold`) is used as it is.
    X, y, groups
        Passed to ``cv.split``.

    Raises
    ------
    ConfigError
        If the splitter holds a row out never or more than once (repeated or
        shuffle-split schemes): cross-conformal intervals need a partition.
    """
    if isinstance(cv, int | np.integer):
        cv = KFold(int(cv), shuffle=True, random_state=random_state)
    n = len(y)
    fold = np.full(n, -1, dtype=int)
    for k, (_, test) in enumerate(cv.split(X, y, groups)):
        if np.any(fold[test] >= 0):
            raise ConfigError(
                f"the splitter {cv!r} holds some rows out more than once; cross-conformal "
                "intervals and the cross-validated DI need each row held out exactly once "
                "(KFold, GroupKFold, SpatialBlockKFold)"
            )
        fold[test] = k
    if np.any(fold < 0):
        raise ConfigError(
            f"the splitter {cv!r} never holds out {int(np.sum(fold < 0))} of {n} rows; "
            "use a splitter that partitions the samples (KFold, GroupKFold, SpatialBlockKFold)"
        )
    return fold


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The finite-sample conformal quantile: the ⌈level·(n+1)⌉-th smallest score.

    This is MAPIE's correction (``numpy.quantile`` at ``⌈level(n+1)⌉/n`` with
    ``method="lower"``), so the same scores give the same bound.

    Raises
    ------
    SampleDataError
        If there are too few scores for the level (``⌈level(n+1)⌉ > n``).
    """
    scores = np.asarray(scores, dtype=float)
    scores = scores[np.isfinite(scores)]
    n = scores.size
    need = math.ceil(level * (n + 1))
    if n == 0 or need > n:
        raise SampleDataError(
            f"{n} out-of-fold residuals are too few for a {level:.1%} conformal quantile; "
            f"at least {math.ceil(level / (1 - level))} samples are needed — lower the "
            "confidence or add samples"
        )
    return float(np.quantile(scores, need / n, method="lower"))


class _KnownLevelsOnly(RegressorMixin, BaseEstimator):
    """A covariate model that predicts NaN for rows of a level it was not fitted with.

    A fold model of cross-conformal fitting may lack a rare level that its held-out
    rows have; it cannot predict them (:class:`saltmap.features.covariates.UnseenLevelError`).
    Their residuals describe no prediction a map makes (the final model knows every
    training level, and mapping leaves pixels of other levels empty), so they are
    left out of the conformity scores, as :func:`saltmap.validation.covariate_gain.covariate_gain`
    leaves them out of its scores.
    """

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> _KnownLevelsOnly:
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        out = np.full(len(X), np.nan)
        seen = seen_rows(self.estimator_, X)
        if seen.any():
            out[seen] = _as_1d(self.estimator_.predict(take_rows(X, np.flatnonzero(seen))))
        return out


# --------------------------------------------------------------------------- intervals


class ConformalIntervals(RegressorMixin, BaseEstimator):
    """Cross-conformal prediction intervals around a saltmap model.

    Fitting refits ``estimator`` on all rows (the model whose prediction is the
    interval's centre) and on each of the K training folds, and records the
    out-of-fold residuals; :class:`mapie.regression.CrossConformalRegressor` does
    both. The intervals and their guarantees are described in the module
    docstring (``method``).

    Parameters
    ----------
    estimator : estimator
        A saltmap model (``IndexFeatures -> regressor`` pipeline, possibly with a
        log target, or :class:`~saltmap.models.building.TunedModel`), with or without
        covariates (:mod:`saltmap.features.covariates`); it is cloned. ``X`` is then what
        the model reads: reflectance by band role, plus its covariate columns.
    confidence : float, default=0.9
        Nominal coverage of the interval.
    cv : int or splitter, default=5
        The folds of the out-of-fold residuals (see :func:`fold_ids`). A spatial
        splitter gives residuals of prediction away from the samples, hence wider,
        more cautious intervals.
    method : {"base", "plus", "minmax"}, default="base"
        See the module docstring. ``"base"`` costs nothing beyond the prediction.
    conformity_score : {"absolute", "gamma"}, default="absolute"
        ``"absolute"``: ``|y - ŷ|``, intervals of constant width. ``"gamma"``:
        ``(y - ŷ)/ŷ``, intervals proportional to the prediction (suits a skewed
        target such as EC; needs positive predictions, pixels predicted ≤ 0 get NaN
        bounds with ``"base"``).
    random_state : int or None, default=0
        Seed of the folds when ``cv`` is an int.
    n_jobs : int or None, default=None
        Fold models fitted in parallel (MAPIE's ``n_jobs``).

    Attributes
    ----------
    estimator_ : estimator
        The model fitted on all rows: ``predict`` uses it.
    fold_estimators_ : list of estimator
        The K fold models (used by ``"plus"`` and ``"minmax"``).
    folds_ : ndarray of int
        Fold of each training row.
    conformity_scores_ : ndarray
        Out-of-fold conformity scores (absolute residuals, or signed relative ones
        for ``"gamma"``).
    quantiles_ : tuple of float
        ``(q_low, q_up)`` added to the prediction (``"absolute"``) or multiplying it
        as ``ŷ(1 + q)`` (``"gamma"``) by ``"base"``.
    n_unscored_ : int
        Training rows without a conformity score: with categorical covariates, rows
        whose level their fold's model never saw (NaN in ``conformity_scores_``,
        left out of the quantiles). Only ``method="base"`` is available then.
    mapie_ : mapie.regression.CrossConformalRegressor
        The fitted MAPIE object.

    Notes
    -----
    MAPIE is used for fitting and for ``"plus"``/``"minmax"``. For ``"base"`` the
    bound is computed here from MAPIE's conformity scores with MAPIE's quantile
    rule, because mapping already holds the prediction of each pixel and MAPIE's
    API can only recompute it (doubling the map's cost); the tests check that the
    two agree.
    """

    def __init__(
        self,
        estimator: Any,
        confidence: float = 0.9,
        cv: Any = 5,
        method: str = "base",
        conformity_score: str = "absolute",
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ):
        self.estimator = estimator
        self.confidence = confidence
        self.cv = cv
        self.method = method
        self.conformity_score = conformity_score
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown interval method {self.method!r}; choose one of {METHODS}")
        if self.conformity_score not in CONFORMITY_SCORES:
            raise ConfigError(
                f"unknown conformity score {self.conformity_score!r}; "
                f"choose one of {CONFORMITY_SCORES}"
            )
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")

    def fit(self, X: Any, y: Any, groups: Any = None) -> ConformalIntervals:
        """Fit the full and fold models and compute the out-of-fold conformity scores."""
        import warnings

        from mapie.regression import CrossConformalRegressor
        from sklearn.exceptions import ConvergenceWarning

        self._check_params()
        y = _as_1d(y)
        self.folds_ = fold_ids(self.cv, X, y, groups, self.random_state)
        categorical = categorical_of(self.estimator)
        if categorical and self.method != "base":
            raise ConfigError(
                f"method={self.method!r} predicts every pixel with every fold model, but a fold "
                f"model cannot predict a level of {', '.join(categorical)} it never saw; use "
                "method='base' for a model with categorical covariates"
            )
        estimator = clone(self.estimator)
        if categorical:
            estimator = _KnownLevelsOnly(estimator)
        # A PredefinedSplit pins MAPIE to exactly these folds, which the AOA reuses.
        mapie = CrossConformalRegressor(
            estimator,
            confidence_level=self.confidence,
            conformity_score=self.conformity_score,
            method=self.method,
            cv=PredefinedSplit(self.folds_),
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if categorical:
                # MAPIE's notes on the NaN predictions of unscored rows (counted below).
                warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
                warnings.filterwarnings("ignore", ".*belongs to every resamplings", UserWarning)
            try:
                mapie.fit_conformalize(X, y)
            except ValueError as err:
                if self.conformity_score == "gamma" and "negative" in str(err):
                    raise ConfigError(
                        "conformity_score='gamma' needs strictly positive predictions, but a "
                        "fold model predicted a value <= 0; model the target on a log scale "
                        "(log_target=True) or use conformity_score='absolute'"
                    ) from err
                raise
        inner = mapie._mapie_regressor  # MAPIE 1.x keeps the fitted v0 object here
        self.mapie_ = mapie
        self.estimator_ = inner.estimator_.single_estimator_
        if categorical:  # the full model knows every training level: no wrapper needed
            self.estimator_ = self.estimator_.estimator_
        self.fold_estimators_ = list(inner.estimator_.estimators_)
        self.conformity_scores_ = np.asarray(inner.conformity_scores_, dtype=float)
        # Rows a fold model could not predict (a categorical level its fold lacked).
        self.n_unscored_ = int(np.sum(~np.isfinite(self.conformity_scores_)))
        self.quantiles_ = self._score_quantiles(self.conformity_scores_)
        self.n_features_in_ = getattr(self.estimator_, "n_features_in_", None)
        return self

    def _score_quantiles(self, scores: np.ndarray) -> tuple[float, float]:
        alpha = 1.0 - self.confidence
        if self.conformity_score == "absolute":  # symmetric: one quantile of |r|
            q = conformal_quantile(np.abs(scores), 1 - alpha)
            return -q, q
        # Asymmetric (gamma): each side at 1 - α/2 of its own tail, as MAPIE does.
        q_low = -conformal_quantile(-scores, 1 - alpha / 2)
        q_up = conformal_quantile(scores, 1 - alpha / 2)
        return q_low, q_up

    def predict(self, X: Any) -> np.ndarray:
        """The full model's prediction (the interval's centre for ``"base"``)."""
        check_is_fitted(self, "estimator_")
        return _as_1d(self.estimator_.predict(X))

    def bounds_from_prediction(self, prediction: Any) -> tuple[np.ndarray, np.ndarray]:
        """``"base"`` bounds around given full-model predictions (no model is run).

        Raises
        ------
        ConfigError
            For ``"plus"``/``"minmax"``, whose bounds need the fold models.
        """
        check_is_fitted(self, "quantiles_")
        if self.method != "base":
            raise ConfigError(
                f"method={self.method!r} needs the fold models' predictions; "
                "call predict_interval(X) instead"
            )
        pred = np.asarray(prediction, dtype=float)
        q_low, q_up = self.quantiles_
        if self.conformity_score == "absolute":
            return pred + q_low, pred + q_up
        with np.errstate(invalid="ignore"):
            positive = pred > 0
            lower = np.where(positive, pred * (1 + q_low), np.nan)
            upper = np.where(positive, pred * (1 + q_up), np.nan)
        return lower, upper

    def predict_interval(
        self, X: Any, prediction: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction and interval bounds for the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array
            Reflectance by band role, as the model takes it.
        prediction : array-like, optional
            The full model's predictions for ``X`` when already computed (mapping);
            with ``"base"`` no model is run at all then.

        Returns
        -------
        pred, lower, upper : ndarray of shape (n,)
            ``pred`` is the full model's prediction.
        """
        check_is_fitted(self, "estimator_")
        pred = self.predict(X) if prediction is None else _as_1d(prediction)
        if self.method == "base":
            lower, upper = self.bounds_from_prediction(pred)
            return pred, lower, upper
        _, bounds = self.mapie_.predict_interval(X, aggregate_point_predictions=None)
        return pred, bounds[:, 0, 0].astype(float), bounds[:, 1, 0].astype(float)


def interval_coverage(y: Any, lower: Any, upper: Any) -> float:
    """Share of measurements inside their interval (bounds included)."""
    y, lower, upper = _as_1d(y), _as_1d(lower), _as_1d(upper)
    return float(np.mean((y >= lower) & (y <= upper)))


def evaluate_coverage(
    estimator: Any,
    X: Any,
    y: Any,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    confidence: float = 0.9,
    cv: Any = 5,
    method: str = "base",
    conformity_score: str = "absolute",
    random_state: int | None = 0,
    n_splits_per_repeat: int | None = None,
) -> pd.DataFrame:
    """Empirical coverage and width of the intervals on held-out samples.

    For every outer ``(train, test)`` split a :class:`ConformalIntervals` is fitted
    on the training rows only (with its own inner ``cv``) and its intervals are
    scored on the test rows, which it never saw.

    Parameters
    ----------
    estimator : estimator
        A saltmap model (cloned).
    X, y
        What the model reads (reflectance by band role, plus its covariate
        columns) and the target.
    splits : sequence of (train_idx, test_idx)
        Outer splits, e.g. from :func:`saltmap.validation.protocols.materialise_splits` with
        ``RepeatedKFold`` or ``SpatialBlockKFold``.
    confidence, cv, method, conformity_score, random_state
        As in :class:`ConformalIntervals`.
    n_splits_per_repeat : int, optional
        Folds per repeat, to label repeats.

    Returns
    -------
    DataFrame
        One row per outer fold: ``repeat``, ``fold``, ``n``, ``n_flagged`` (test
        rows left out because their categorical level is missing from the fold's
        training rows), ``covered`` (count), ``coverage``, ``mean_width``,
        ``median_width``. Pooled figures: :func:`coverage_summary`.
    """
    y = _as_1d(y)
    per_repeat = n_splits_per_repeat or len(splits)
    rows = []
    for i, (train, test) in enumerate(splits):
        model = ConformalIntervals(
            estimator, confidence=confidence, cv=cv, method=method,
            conformity_score=conformity_score, random_state=random_state,
        ).fit(take_rows(X, np.asarray(train)), y[train])  # fmt: skip
        test = np.asarray(test)
        # A test row of a categorical level absent from its training rows cannot be
        # predicted; it is left out and counted (as covariate_gain does).
        seen = seen_rows(model.estimator_, take_rows(X, test))
        kept = test[seen]
        _, lower, upper = model.predict_interval(take_rows(X, kept))
        inside = (y[kept] >= lower) & (y[kept] <= upper)
        width = upper - lower
        rows.append(
            {
                "repeat": i // per_repeat,
                "fold": i % per_repeat,
                "n": len(kept),
                "n_flagged": int(len(test) - len(kept)),
                "covered": int(inside.sum()),
                "coverage": float(inside.mean()),
                "mean_width": float(np.nanmean(width)),
                "median_width": float(np.nanmedian(width)),
            }
        )
    return pd.DataFrame(rows)


def coverage_summary(folds: pd.DataFrame) -> dict[str, float]:
    """Pooled coverage (all held-out predictions), its spread over repeats, and widths."""
    per_repeat = folds.groupby("repeat").apply(
        lambda f: f["covered"].sum() / f["n"].sum(), include_groups=False
    )
    return {
        "coverage": float(folds["covered"].sum() / folds["n"].sum()),
        "coverage_min_repeat": float(per_repeat.min()),
        "coverage_max_repeat": float(per_repeat.max()),
        "mean_width": float(np.average(folds["mean_width"], weights=folds["n"])),
        "median_width": float(folds["median_width"].median()),
        "n_predictions": int(folds["n"].sum()),
        "n_flagged": int(folds["n_flagged"].sum()) if "n_flagged" in folds else 0,
        "n_folds": len(folds),
    }


# ------------------------------------------------------------------ area of applicability


def _upper_whisker(values: np.ndarray) -> float:
    """CAST's threshold: Q3 + 1.5·IQR (R's default quantile type 7), capped by the maximum."""
    values = values[np.isfinite(values)]
    q1, q3 = np.quantile(values, [0.25, 0.75])  # numpy "linear" = R type 7
    return float(min(q3 + 1.5 * (q3 - q1), values.max()))


class AreaOfApplicability(BaseEstimator):
    """Dissimilarity index and area of applicability (Meyer & Pebesma 2021, CAST).

    The predictors are standardised with the training rows' mean and standard
    deviation (``n - 1``, as R's ``scale``) and multiplied by ``weights``. The DI of
    a point is its Euclidean distance to the nearest training row divided by the
    mean distance between training rows (over all ordered pairs of distinct rows).
    The cross-validated DI of a training row is its distance to the nearest
    training row *outside its own CV fold*, over the same mean; the threshold is
    ``Q3 + 1.5·IQR`` of those, capped by their maximum; a point is inside the AOA
    when its DI ≤ threshold.

    This follows CAST's ``trainDI``/``aoa`` (version of 2024, ``method="L2"``).
    Departures:

    - weights: CAST takes caret's ``varImp`` of the model; here any non-negative
      weight vector is given (:func:`importance_weights` gives the permutation
      importance of the fitted model, the decrease of R² when a predictor is
      shuffled, on the training rows). As in CAST, negative weights become 0.
    - training rows with a non-finite predictor (an index undefined there) are
      left out of the reference set; CAST would fail on them.
    - without folds (``cv=None``) each training row's DI uses all *other* rows,
      which is what CAST does when it is given no CV folds.
    - the Mahalanobis variant is not implemented. Categorical covariates reach
      this class already as 0/1 columns, one per level (:func:`fit_trust`), as
      CAST's ``trainDI`` expands factors.

    Parameters
    ----------
    weights : array-like of shape (n_features,) or None, default=None
        Importance of each predictor; ``None``: all 1.
    cv : int, splitter or None, default=5
        Folds of the cross-validated DI (see :func:`fold_ids`) when ``fit`` gets no
        ``folds``. Use the folds the model was validated with (spatial ones for a
        spatial validation).
    random_state : int or None, default=0
        Seed of the folds when ``cv`` is an int.

    Attributes
    ----------
    center_, scale_, weights_ : ndarray of shape (n_features,)
    reference_ : ndarray of shape (n_reference, n_features)
        Standardised, weighted training rows.
    mean_distance_ : float
        Mean distance between training rows (the DI's unit).
    train_di_ : ndarray
        Cross-validated DI of each reference row.
    threshold_ : float
        The AOA threshold.
    tree_ : scipy.spatial.cKDTree
        k-d tree of ``reference_`` for the nearest-neighbour search.

    Notes
    -----
    The nearest-neighbour search uses SciPy's ``cKDTree`` rather than scikit-learn's
    ``KDTree``/``NearestNeighbors``: on ~100 training rows and a few predictors it
    answered 1.3–1.5× faster per pixel in our measurement (same distances), and the
    DI is computed for every pixel of a map.
    """

    def __init__(self, weights: Any = None, cv: Any = 5, random_state: int | None = 0):
        self.weights = weights
        self.cv = cv
        self.random_state = random_state

    def fit(self, features: Any, y: Any = None, folds: Any = None) -> AreaOfApplicability:
        """Learn the scaling, the reference set, the mean distance and the threshold.

        Parameters
        ----------
        features : DataFrame or array of shape (n, n_features)
            The model's predictors on its training rows (the index features).
        y : ignored
        folds : array-like of int, optional
            Fold of each row (e.g. ``ConformalIntervals.folds_``); overrides ``cv``.
        """
        from scipy.spatial import cKDTree
        from scipy.spatial.distance import pdist

        if isinstance(features, pd.DataFrame):
            self.feature_names_in_ = np.asarray(features.columns, dtype=object)
        F = np.asarray(features, dtype=float)
        if F.ndim != 2:
            raise ValueError(f"features must be 2-D (n, n_features), got shape {F.shape}")
        self.n_features_in_ = F.shape[1]
        if folds is None and self.cv is not None:
            folds = fold_ids(self.cv, F, np.zeros(len(F)), None, self.random_state)
        finite = np.isfinite(F).all(axis=1)
        F = F[finite]
        fold = None if folds is None else np.asarray(folds)[finite]
        if len(F) < 3:
            raise SampleDataError(
                f"the area of applicability needs at least 3 training rows with every "
                f"predictor defined, got {len(F)}"
            )
        self.center_ = F.mean(axis=0)
        self.scale_ = F.std(axis=0, ddof=1)
        if np.any(self.scale_ == 0):
            names = getattr(self, "feature_names_in_", np.arange(F.shape[1]))
            flat = [str(n) for n, s in zip(names, self.scale_, strict=True) if s == 0]
            raise SampleDataError(
                f"predictor(s) {', '.join(flat)} do not vary over the training rows, so they "
                "cannot be standardised for the dissimilarity index; drop them from the model"
            )
        self.weights_ = self._check_weights(F.shape[1])
        self.reference_ = self._standardise(F)
        # Mean of all distances between distinct rows = CAST's mean of per-row means.
        self.mean_distance_ = float(np.mean(pdist(self.reference_)))
        if not self.mean_distance_ > 0:
            raise SampleDataError("all training rows have the same predictors; DI is undefined")
        self.tree_ = cKDTree(self.reference_)
        self.train_di_ = self._cv_distance(fold) / self.mean_distance_
        self.threshold_ = _upper_whisker(self.train_di_)
        self.n_reference_ = len(F)
        return self

    def __getstate__(self) -> dict[str, Any]:
        # The k-d tree is rebuilt from reference_ on load: the saved state stays plain
        # arrays (skops, model files) and the tree is not stored twice.
        state = super().__getstate__()
        state.pop("tree_", None)
        return state

    def _tree(self) -> Any:
        """The k-d tree of ``reference_``, rebuilt after loading."""
        from scipy.spatial import cKDTree

        if getattr(self, "tree_", None) is None:
            self.tree_ = cKDTree(self.reference_)
        return self.tree_

    def _check_weights(self, n_features: int) -> np.ndarray:
        if self.weights is None:
            return np.ones(n_features)
        w = np.asarray(self.weights, dtype=float).ravel()
        if w.shape != (n_features,) or not np.isfinite(w).all():
            raise ConfigError(
                f"weights must be {n_features} finite numbers (one per predictor), got {w}"
            )
        w = np.clip(w, 0, None)  # as CAST: negative importance counts as none
        if not np.any(w > 0):
            raise ConfigError(
                "every predictor has zero (or negative) importance, so the dissimilarity "
                "index would be 0 everywhere; give weights=None to weight them equally"
            )
        return w

    def _standardise(self, F: np.ndarray) -> np.ndarray:
        return (F - self.center_) / self.scale_ * self.weights_

    def _cv_distance(self, fold: np.ndarray | None) -> np.ndarray:
        """Distance of each reference row to the nearest reference row outside its fold."""
        from scipy.spatial import cKDTree

        if fold is None:
            # The two nearest rows include the row itself (or a duplicate, also at 0),
            # so the second distance is the nearest *other* row's.
            return self.tree_.query(self.reference_, k=2)[0][:, 1]
        out = np.full(len(self.reference_), np.nan)
        for k in np.unique(fold):
            held, rest = fold == k, fold != k
            if rest.any():
                out[held] = cKDTree(self.reference_[rest]).query(self.reference_[held])[0]
        return out

    def dissimilarity(self, features: Any) -> np.ndarray:
        """DI of each row of ``features`` (NaN where a predictor is not finite)."""
        check_is_fitted(self, "reference_")
        tree = self._tree()
        F = np.asarray(features, dtype=float)
        if F.ndim != 2 or F.shape[1] != self.n_features_in_:
            raise ValueError(f"features must have shape (n, {self.n_features_in_}), got {F.shape}")
        out = np.full(len(F), np.nan)
        for start in range(0, len(F), CHUNK_ROWS):
            chunk = F[start : start + CHUNK_ROWS]
            ok = np.isfinite(chunk).all(axis=1)
            if ok.any():
                dist, _ = tree.query(self._standardise(chunk[ok]))
                out[start + np.flatnonzero(ok)] = dist / self.mean_distance_
        return out

    def inside(self, features: Any) -> np.ndarray:
        """True where the DI is at most the threshold (False where it is undefined)."""
        with np.errstate(invalid="ignore"):
            return self.dissimilarity(features) <= self.threshold_


def importance_weights(
    model: Any, X: Any, y: Any, *, n_repeats: int = 10, random_state: int | None = 0
) -> pd.Series:
    """Permutation importance of each predictor of a fitted saltmap model.

    The predictors are the index features and, for a model trained with
    covariates, each covariate. They are computed once; each is shuffled in turn
    and fed to the model (a categorical covariate as one column: all its one-hot
    columns move together), and the mean decrease of R² over ``n_repeats``
    shuffles is its importance [6]_. Rows where an index is undefined are left
    out. Negative values (shuffling helped) are set to 0, as CAST does with
    caret's importance.

    Returns
    -------
    Series
        One weight per predictor: the indices, then the covariates (numeric, then
        categorical), as :func:`saltmap.validation.covariate_gain.covariate_gain` names them.

    References
    ----------
    .. [6] Breiman, L. (2001). Random forests. Machine Learning 45, 5–32.
    """
    from sklearn.inspection import permutation_importance

    step, regressor = model_parts(model)
    y = _as_1d(y)
    if not model_covariates(model):
        features = step.transform(X)
        ok = np.isfinite(features).all(axis=1)
        result = permutation_importance(
            regressor, features[ok], y[ok], n_repeats=n_repeats, random_state=random_state
        )
        names = list(step.index_names_)
    else:
        # The covariate module's view of the model: one column per index and per covariate.
        pipeline = getattr(model, "model_", model)
        table = predictors_of(pipeline, X)
        numeric = [*step.index_names_, *step.numeric]
        ok = np.isfinite(table[numeric].to_numpy(dtype=float)).all(axis=1)
        result = permutation_importance(
            OnPredictors(pipeline), table[ok], y[ok], n_repeats=n_repeats,
            random_state=random_state,
        )  # fmt: skip
        names = list(table.columns)
    return pd.Series(np.clip(result.importances_mean, 0, None), index=names)


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
    *,
    confidence: float = 0.9,
    cv: Any = 5,
    method: str = "base",
    conformity_score: str = "absolute",
    weights: Any = "permutation",
    groups: Any = None,
    random_state: int | None = 0,
    keep_fold_models: bool = False,
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
    confidence, cv, method, conformity_score, random_state
        See :class:`ConformalIntervals`. The same folds give the AOA's
        cross-validated DI.
    weights : "permutation", None or array-like, default="permutation"
        Predictor weights of the DI: the permutation importance of the full model
        (:func:`importance_weights`), equal weights, or given ones (one per
        predictor: the indices, then the covariates).
    groups : array-like, optional
        Groups for a group splitter ``cv``.
    keep_fold_models : bool, default=False
        With ``method="base"`` the fold models and the MAPIE object are not needed
        once the residuals are known; they are dropped unless this is True, so a
        saved trust model holds one model, not K + 1.

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
    intervals = ConformalIntervals(
        model, confidence=confidence, cv=cv, method=method,
        conformity_score=conformity_score, random_state=random_state,
    ).fit(X, y, groups=groups)  # fmt: skip
    step, _ = model_parts(intervals.estimator_)
    predictors = list(step.index_names_) + list(model_covariates(intervals.estimator_))
    columns = predictor_of_column(step)
    if isinstance(weights, str) and weights == "permutation":
        w = importance_weights(intervals.estimator_, X, y, random_state=random_state)
    elif weights is None:
        w = pd.Series(np.ones(len(predictors)), index=predictors)
    else:
        values = np.asarray(weights, dtype=float).ravel()
        if values.shape != (len(predictors),):
            raise ConfigError(
                f"weights must be {len(predictors)} numbers, one per predictor "
                f"({', '.join(predictors)}), got {values.size}"
            )
        w = pd.Series(values, index=predictors)
    names = tuple(str(n) for n in getattr(step, "feature_names_out_", step.index_names_))
    features = pd.DataFrame(step.transform(X), columns=list(names))
    aoa = AreaOfApplicability(weights=w[columns].to_numpy()).fit(features, folds=intervals.folds_)
    if method == "base" and not keep_fold_models:
        intervals.mapie_, intervals.fold_estimators_ = None, []
    info = {
        "confidence": confidence,
        "method": method,
        "conformity_score": conformity_score,
        "n_samples": len(_as_1d(y)),
        "n_folds": int(intervals.folds_.max() + 1),
    }
    covariates = model_covariates(intervals.estimator_)
    if covariates:
        info["covariates"] = {name: meta["kind"] for name, meta in covariates.items()}
        info["n_unscored"] = intervals.n_unscored_
    return TrustModel(intervals, aoa, tuple(step.bands_), names, info)


def trust_block(
    trust: TrustModel,
    reflectance: np.ndarray,
    roles: Sequence[str],
    *,
    prediction: np.ndarray | None = None,
    covariates: Mapping[str, np.ndarray] | None = None,
    chunk_rows: int = CHUNK_ROWS,
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
        rows, e.g. :func:`saltmap.mapping.engine.predict_block`). With ``method="base"``
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

    Returns
    -------
    dict
        ``lower``, ``upper``, ``width``, ``di`` (float32, NaN where no data) and
        ``aoa`` (uint8: 1 inside, 0 outside, :data:`AOA_NODATA` where no data), each
        shaped (rows, cols).

    Raises
    ------
    ConfigError
        If the model reads covariates and ``covariates`` lacks one, or covariate
        blocks are given for a model that reads none.
    """
    from saltmap.bands import check_roles

    check_roles(trust.bands, roles, "the reflectance block")
    if reflectance.ndim != 3 or reflectance.shape[0] != len(roles):
        raise ValueError(
            f"reflectance must be shaped (n_roles={len(roles)}, rows, cols), "
            f"got {reflectance.shape}"
        )
    _, rows, cols = reflectance.shape
    rows_of, valid = _block_rows(trust, reflectance, roles, covariates)
    pred_flat = None
    if prediction is not None:
        pred_flat = np.asarray(prediction, dtype=np.float32).reshape(-1)
        if pred_flat.size != rows * cols:
            raise ValueError(f"prediction has {pred_flat.size} pixels, the block {rows * cols}")
        valid &= np.isfinite(pred_flat)
    out = {k: np.full(rows * cols, np.nan, np.float32) for k in ("lower", "upper", "width", "di")}
    index = np.flatnonzero(valid)
    for start in range(0, index.size, chunk_rows):
        take = index[start : start + chunk_rows]
        chunk = rows_of(take)
        given = None if pred_flat is None else pred_flat[take]
        _, lower, upper = trust.intervals.predict_interval(chunk, prediction=given)
        out["lower"][take] = lower
        out["upper"][take] = upper
        # In float64, before rounding: a constant width stays constant (upper - lower of
        # the float32 bounds would carry their rounding, ~1e-4 of the value).
        out["width"][take] = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
        out["di"][take] = trust.aoa.dissimilarity(trust.features(chunk))
    aoa = np.full(rows * cols, AOA_NODATA, np.uint8)
    has_di = np.isfinite(out["di"])
    aoa[has_di] = (out["di"][has_di] <= trust.aoa.threshold_).astype(np.uint8)
    result = {k: v.reshape(rows, cols) for k, v in out.items()}
    result["aoa"] = aoa.reshape(rows, cols)
    return result


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
        return (lambda take: pixels[take]), np.isfinite(pixels).all(axis=1)
    missing = [n for n in needed if n not in (covariates or {})]
    if missing:
        raise ConfigError(
            f"the trust model's model reads covariate(s) {', '.join(missing)}, but no block "
            "was given for them; pass covariates=CovariateRasters.read(scene, window) "
            "(saltmap.features.covariates) for the same window"
        )
    # The same table, validity and unseen-level rule as the map's own prediction.
    predictors = assemble_predictors(trust.model, reflectance, roles, covariates)
    table = predictors.table
    return (lambda take: table.iloc[take]), predictors.valid.copy()


# ------------------------------------------------------------------ per-map figures


@dataclass
class TrustSummary:
    """Per-map trust figures accumulated block by block in bounded memory.

    ``add`` takes a :func:`trust_block` result. The median width comes from a
    histogram of log10(width) in steps of 0.001 (relative error < 0.12 %), exact
    when all widths are equal (``"base"`` with absolute scores).
    """

    n_valid: int = 0
    n_inside: int = 0
    _hist: np.ndarray = field(default_factory=lambda: np.zeros(_NBINS, np.int64), repr=False)
    _wmin: float = np.inf
    _wmax: float = -np.inf

    def add(self, block: dict[str, np.ndarray]) -> None:
        aoa = block["aoa"]
        self.n_valid += int(np.sum(aoa != AOA_NODATA))
        self.n_inside += int(np.sum(aoa == 1))
        w = block["width"][np.isfinite(block["width"]) & (block["width"] > 0)]
        if w.size:
            self._wmin = min(self._wmin, float(w.min()))
            self._wmax = max(self._wmax, float(w.max()))
            bins = np.clip(((np.log10(w) - _LOG_LO) / _LOG_STEP).astype(np.int64), 0, _NBINS - 1)
            self._hist += np.bincount(bins, minlength=_NBINS)

    @property
    def share_inside_aoa(self) -> float:
        """Share of valid pixels inside the area of applicability."""
        return self.n_inside / self.n_valid if self.n_valid else float("nan")

    @property
    def median_width(self) -> float:
        total = int(self._hist.sum())
        if total == 0:
            return float("nan")
        if self._wmin == self._wmax:
            return self._wmin
        k = int(np.searchsorted(np.cumsum(self._hist), (total + 1) / 2))
        return float(10 ** (_LOG_LO + (k + 0.5) * _LOG_STEP))

    def as_dict(self) -> dict[str, float]:
        return {
            "valid_pixels": self.n_valid,
            "inside_aoa_pixels": self.n_inside,
            "share_inside_aoa": self.share_inside_aoa,
            "median_interval_width": self.median_width,
        }


_LOG_LO, _LOG_STEP, _NBINS = -6.0, 0.001, 15_000

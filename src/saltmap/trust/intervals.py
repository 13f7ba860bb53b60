"""How wide is the error of a salinity prediction: cross-conformal intervals.

:class:`ConformalIntervals` gives a lower and an upper bound at a chosen
confidence (default 90 %) by cross-conformal prediction on the model's
out-of-fold residuals [1]_ [2]_, computed with MAPIE [3]_;
:func:`~saltmap.trust.calibration.evaluate_coverage` measures the intervals' coverage
on held-out samples. Whether the model is applicable at a pixel at all is
:mod:`saltmap.trust.aoa`; both bundled for mapping are :mod:`saltmap.trust.maps`.

Models trained with covariates (:mod:`saltmap.features.covariates`) are handled
alike: their input is reflectance plus the covariate columns. A fold model cannot
predict a categorical level its fold lacked: those rows are left out of the
conformity scores and of coverage, and counted.

Which interval, and what it guarantees
--------------------------------------
``method="normalized"`` (default) — normalized conformal scores [4]_ [5]_: the
full model's prediction ± ``q·σ̂(x)``, where ``σ̂`` (:class:`~saltmap.trust.spread.ResidualSpread`)
is the expected size of the model's error at ``x``, learned from the K-fold
out-of-fold absolute residuals on the model's predictors and its prediction, and
``q`` is the conformal quantile of the ratios ``|y - ŷ_{-k(i)}| / σ̂_{-k(i)}(x_i)``
(each row's scale from a ``σ̂`` fitted without its fold, so that the ratios are as
honest as the residuals). The width varies: wide where the model erred on similar
samples, narrow where it did not, and always around the map's own prediction. Its
guarantee is that of ``"base"`` below (the same K-fold residuals), and its coverage
is measured marginally and by tercile of prediction and of DI
(:mod:`saltmap.trust.calibration`). Mapping adds one small forest's prediction per
pixel.

``method="base"`` — "CV" in Barber et al. [1]_ (MAPIE's ``"base"``): one constant
width, the full model's prediction ± the conformal quantile of the K-fold
out-of-fold absolute residuals (for ``conformity_score="gamma"``, of the relative
residuals ``(y - ŷ)/ŷ``, one quantile per side). It costs nothing beyond the
prediction a map makes anyway. Its coverage guarantee is only
approximate: exact ``1 - α`` holds for split conformal, and CV/jackknife intervals
reach ``1 - α`` asymptotically when the fitting algorithm is stable (adding or
removing a few samples changes predictions little); for an unstable learner they
can under-cover in the worst case [1]_. Its coverage is therefore *measured*
(:func:`~saltmap.trust.calibration.evaluate_coverage`), not assumed.

``method="plus"`` — CV+ [1]_: the quantiles are taken over the n values
``ŷ_{-k(i)}(x) ± R_i`` built from the K fold models. Under exchangeability it
guarantees ``P(y ∈ C(x)) ≥ 1 - 2α - min{2(1 - 1/K)/(n/K + 1), (1 - K/n)/(K + 1)}``
for any algorithm, and about ``1 - α`` in practice. ``method="minmax"`` (CV-minmax)
guarantees ``≥ 1 - α``, with wider intervals. Both predict with every fold model,
K times the cost of the map's own prediction, and hold an ``(n_pixels × n)``
array per chunk.

All of these assume the pixels are exchangeable with the training samples. A
scene far from the samples is not, which is what the AOA flags.

Salinity is never negative: every method clips its bounds at ``lower_limit``
(default 0). Coverage is unchanged by it (no measurement lies below 0); the width
is then that of the physical interval.

References
----------
.. [1] Barber, R. F., Candès, E. J., Ramdas, A., Tibshirani, R. J. (2021).
   Predictive inference with the jackknife+. Annals of Statistics 49(1), 486–507.
.. [2] Vovk, V. (2015). Cross-conformal predictors. Annals of Mathematics and
   Artificial Intelligence 74, 9–28.
.. [3] Taquet, V., Blot, V., Morzadec, T., Lacombe, L., Brunel, N. (2022). MAPIE: an
   open-source library for distribution-free uncertainty quantification.
   arXiv:2207.12274. https://github.com/scikit-learn-contrib/MAPIE
.. [4] Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J., Wasserman, L. (2018).
   Distribution-free predictive inference for regression. JASA 113(523), 1094–1111.
.. [5] Papadopoulos, H., Vovk, V., Gammerman, A. (2011). Regression conformal
   prediction with nearest neighbours. JAIR 40, 815–840.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import PredefinedSplit
from sklearn.utils.validation import check_is_fitted

from saltmap.errors import ConfigError
from saltmap.models.inspect import categorical_of, model_parts, take_rows
from saltmap.rowwise import finite_rows
from saltmap.trust.conformal import KnownLevelsOnly, as_1d, conformal_quantile, fold_ids
from saltmap.trust.spread import ResidualSpread

#: Interval methods; the first is the default. "base" is the constant width.
METHODS: tuple[str, ...] = ("normalized", "base", "plus", "minmax")
CONFORMITY_SCORES: tuple[str, ...] = ("absolute", "gamma")
#: Methods whose bounds follow from the map's own prediction (no fold model is run).
_FROM_PREDICTION = ("normalized", "base")


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
        log target, or :class:`~saltmap.models.tuning.TunedModel`), with or without
        covariates (:mod:`saltmap.features.covariates`); it is cloned. ``X`` is then what
        the model reads: reflectance by band role, plus its covariate columns.
    confidence : float, default=0.9
        Nominal coverage of the interval.
    cv : int or splitter, default=5
        The folds of the out-of-fold residuals (see
        :func:`~saltmap.trust.conformal.fold_ids`). A spatial splitter gives residuals
        of prediction away from the samples, hence wider, more cautious intervals.
    method : {"normalized", "base", "plus", "minmax"}, default="normalized"
        See the module docstring. ``"normalized"``: a width that varies with the
        expected error; ``"base"``: one constant width, at no cost beyond the prediction.
    conformity_score : {"absolute", "gamma"}, default="absolute"
        ``"absolute"``: ``|y - ŷ|`` (normalized by ``σ̂(x)`` with ``"normalized"``).
        ``"gamma"`` (not with ``"normalized"``): ``(y - ŷ)/ŷ``, intervals
        proportional to the prediction (suits a skewed target such as EC; needs
        positive predictions, pixels predicted ≤ 0 get NaN bounds with ``"base"``).
    random_state : int or None, default=0
        Seed of the folds when ``cv`` is an int, and of the spread forest.
    n_jobs : int or None, default=None
        Fold models fitted in parallel (MAPIE's ``n_jobs``).
    lower_limit : float or None, default=0.0
        Bounds below it are raised to it (salinity is never negative); None keeps them.

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
        as ``ŷ(1 + q)`` (``"gamma"``): the constant-width (``"base"``) interval, kept
        by every method so that both can be compared on the same residuals.
    spread_ : ResidualSpread
        ``"normalized"`` only: the expected absolute error from the model's
        predictors and prediction, fitted on all rows.
    normalized_scores_ : ndarray
        ``"normalized"`` only: each row's ``|y - ŷ_{-k}| / σ̂_{-k}(x)``.
    normalized_quantile_ : float
        ``"normalized"`` only: ``q`` of ``ŷ ± q·σ̂(x)``.
    n_unscored_ : int
        Training rows without a conformity score: with categorical covariates, rows
        whose level their fold's model never saw (NaN in ``conformity_scores_``,
        left out of the quantiles). Only ``"normalized"`` and ``"base"`` are
        available then.
    mapie_ : mapie.regression.CrossConformalRegressor
        The fitted MAPIE object.

    Notes
    -----
    MAPIE is used for fitting and for ``"plus"``/``"minmax"``. For ``"base"`` and
    ``"normalized"`` the bound is computed here from MAPIE's conformity scores with
    MAPIE's quantile rule, because mapping already holds the prediction of each
    pixel and MAPIE's API can only recompute it (doubling the map's cost); the
    tests check that the two agree for ``"base"``.
    """

    def __init__(
        self,
        estimator: Any,
        confidence: float = 0.9,
        cv: Any = 5,
        method: str = "normalized",
        conformity_score: str = "absolute",
        random_state: int | None = 0,
        n_jobs: int | None = None,
        lower_limit: float | None = 0.0,
    ):
        self.estimator = estimator
        self.confidence = confidence
        self.cv = cv
        self.method = method
        self.conformity_score = conformity_score
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.lower_limit = lower_limit

    def _check_params(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown interval method {self.method!r}; choose one of {METHODS}")
        if self.conformity_score not in CONFORMITY_SCORES:
            raise ConfigError(
                f"unknown conformity score {self.conformity_score!r}; "
                f"choose one of {CONFORMITY_SCORES}"
            )
        if self.method == "normalized" and self.conformity_score != "absolute":
            raise ConfigError(
                "method='normalized' scales the absolute residual by its expected size; "
                "use conformity_score='absolute' with it, or method='base' for 'gamma'"
            )
        if not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")

    def fit(self, X: Any, y: Any, groups: Any = None) -> ConformalIntervals:
        """Fit the full and fold models and compute the out-of-fold conformity scores."""
        self._check_params()
        y = as_1d(y)
        self.folds_ = fold_ids(self.cv, X, y, groups, self.random_state)
        categorical = categorical_of(self.estimator)
        if categorical and self.method not in _FROM_PREDICTION:
            raise ConfigError(
                f"method={self.method!r} predicts every pixel with every fold model, but a fold "
                f"model cannot predict a level of {', '.join(categorical)} it never saw; use "
                "method='normalized' or 'base' for a model with categorical covariates"
            )
        mapie = self._mapie(bool(categorical))
        self._fit_mapie(mapie, X, y, bool(categorical))
        self._keep_fitted(mapie, bool(categorical))
        if self.method == "normalized":
            self._fit_spread(X, y)
        return self

    def _mapie(self, categorical: bool) -> Any:
        """MAPIE's cross-conformal regressor of a clone of the estimator, on our folds."""
        from mapie.regression import CrossConformalRegressor

        estimator = clone(self.estimator)
        if categorical:
            estimator = KnownLevelsOnly(estimator)
        # A PredefinedSplit pins MAPIE to exactly these folds, which the AOA reuses.
        return CrossConformalRegressor(
            estimator,
            confidence_level=self.confidence,
            conformity_score=self.conformity_score,
            # Normalized scores start from the same out-of-fold residuals as "base".
            method="base" if self.method == "normalized" else self.method,
            cv=PredefinedSplit(self.folds_),
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )

    def _fit_mapie(self, mapie: Any, X: Any, y: np.ndarray, categorical: bool) -> None:
        """Fit and conformalize; a gamma score's non-positive prediction is named."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

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

    def _keep_fitted(self, mapie: Any, categorical: bool) -> None:
        """The fitted attributes, taken from the fitted MAPIE object."""
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

    def _fit_spread(self, X: Any, y: np.ndarray) -> None:
        """The spread model and the normalized scores, each row scaled by a spread model
        fitted without its fold (as its residual comes from a model fitted without it)."""
        oof = np.full(len(y), np.nan)
        for k, fold_model in enumerate(self.fold_estimators_):
            rows = np.flatnonzero(self.folds_ == k)
            oof[rows] = as_1d(fold_model.predict(take_rows(X, rows)))
        Z = self._spread_input(self._features(X), oof)
        size = np.abs(y - oof)
        ok = np.isfinite(size) & finite_rows(Z)
        scale = np.full(len(y), np.nan)
        for k in np.unique(self.folds_):
            fit_rows, held = ok & (self.folds_ != k), ok & (self.folds_ == k)
            if held.any():
                spread = ResidualSpread(random_state=self.random_state)
                scale[held] = spread.fit(Z[fit_rows], size[fit_rows]).predict(Z[held])
        self.spread_ = ResidualSpread(random_state=self.random_state).fit(Z[ok], size[ok])
        self.normalized_scores_ = size / scale
        self.normalized_quantile_ = conformal_quantile(self.normalized_scores_, self.confidence)

    def _features(self, X: Any) -> np.ndarray:
        """The model's predictors of rows of ``X`` (indices, then covariate columns)."""
        return np.asarray(model_parts(self.estimator_)[0].transform(X), dtype=float)

    @staticmethod
    def _spread_input(features: Any, prediction: np.ndarray) -> np.ndarray:
        return np.column_stack([np.asarray(features, dtype=float), as_1d(prediction)])

    def _score_quantiles(
        self, scores: np.ndarray, confidence: float | None = None
    ) -> tuple[float, float]:
        alpha = 1.0 - (self.confidence if confidence is None else confidence)
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
        return as_1d(self.estimator_.predict(X))

    def bounds_from_prediction(
        self,
        prediction: Any,
        features: Any = None,
        *,
        confidence: float | None = None,
        method: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bounds around given full-model predictions (no model of the map is run).

        Parameters
        ----------
        prediction : array-like of shape (n,)
            The full model's predictions.
        features : array-like of shape (n, n_predictors), optional
            The model's predictors of the same rows (:meth:`TrustModel.features
            <saltmap.trust.maps.TrustModel.features>`); needed by ``"normalized"``.
        confidence : float, optional
            Another nominal level than the fitted one, from the same scores
            (calibration curves).
        method : {"normalized", "base"}, optional
            ``"base"`` gives the constant-width interval of any fitted method.

        Raises
        ------
        ConfigError
            For ``"plus"``/``"minmax"``, whose bounds need the fold models, and for
            ``"normalized"`` without ``features``.
        """
        check_is_fitted(self, "quantiles_")
        method = method or self.method
        if method not in _FROM_PREDICTION:
            raise ConfigError(
                f"method={method!r} needs the fold models' predictions; "
                "call predict_interval(X) instead"
            )
        pred = np.asarray(prediction, dtype=float)
        if method == "normalized":
            lower, upper = self._normalized_bounds(pred, features, confidence)
        elif confidence is None:
            lower, upper = self._base_bounds(pred, self.quantiles_)
        else:
            scores = self.conformity_scores_
            lower, upper = self._base_bounds(pred, self._score_quantiles(scores, confidence))
        return self._clip(lower), self._clip(upper)

    def _base_bounds(self, pred: np.ndarray, quantiles: tuple[float, float]) -> tuple[Any, Any]:
        q_low, q_up = quantiles
        if self.conformity_score == "absolute":
            return pred + q_low, pred + q_up
        with np.errstate(invalid="ignore"):
            positive = pred > 0
            lower = np.where(positive, pred * (1 + q_low), np.nan)
            upper = np.where(positive, pred * (1 + q_up), np.nan)
        return lower, upper

    def _normalized_bounds(
        self, pred: np.ndarray, features: Any, confidence: float | None
    ) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self, "spread_")
        if features is None:
            raise ConfigError(
                "method='normalized' scales each interval by the model's predictors; pass "
                "features=TrustModel.features(X) or call predict_interval(X)"
            )
        q = self.normalized_quantile_
        if confidence is not None:
            q = conformal_quantile(self.normalized_scores_, confidence)
        Z = self._spread_input(features, pred)
        # A pixel whose index is undefined (a zero denominator) gets no interval.
        half = np.full(len(Z), np.nan)
        ok = finite_rows(Z)
        if ok.any():
            half[ok] = q * self.spread_.predict(Z[ok])
        return pred - half, pred + half

    def _clip(self, bound: np.ndarray) -> np.ndarray:
        """The bound raised to ``lower_limit`` where below it (NaN stays NaN)."""
        # Trust models saved before lower_limit existed get physical bounds too.
        limit = getattr(self, "lower_limit", 0.0)
        if limit is None:
            return bound
        with np.errstate(invalid="ignore"):
            return np.where(bound < limit, limit, bound)

    def predict_interval(
        self, X: Any, prediction: Any = None, features: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction and interval bounds for the rows of ``X``.

        Parameters
        ----------
        X : DataFrame or array
            Reflectance by band role (plus covariate columns), as the model takes it.
        prediction : array-like, optional
            The full model's predictions for ``X`` when already computed (mapping);
            with ``"base"`` no model is run at all then.
        features : array-like, optional
            The model's predictors of ``X`` when already computed (``"normalized"``).

        Returns
        -------
        pred, lower, upper : ndarray of shape (n,)
            ``pred`` is the full model's prediction.
        """
        check_is_fitted(self, "estimator_")
        pred = self.predict(X) if prediction is None else as_1d(prediction)
        if self.method in _FROM_PREDICTION:
            if self.method == "normalized" and features is None:
                features = self._features(X)
            lower, upper = self.bounds_from_prediction(pred, features)
            return pred, lower, upper
        _, bounds = self.mapie_.predict_interval(X, aggregate_point_predictions=None)
        lower, upper = bounds[:, 0, 0].astype(float), bounds[:, 1, 0].astype(float)
        return pred, self._clip(lower), self._clip(upper)

"""Is the model applicable here at all: the dissimilarity index and area of applicability.

:class:`AreaOfApplicability` computes the dissimilarity index (DI) of Meyer &
Pebesma [4]_ — the distance of a pixel's standardised, importance-weighted
predictors to the nearest training sample — and marks the pixels whose DI exceeds
what cross-validation met inside the training data as outside the area of
applicability (AOA), as the R package CAST does [5]_. :func:`importance_weights`
gives the predictors' weights: the permutation importance of the fitted model.

References
----------
.. [4] Meyer, H., Pebesma, E. (2021). Predicting into unknown space? Estimating the
   area of applicability of spatial prediction models. Methods in Ecology and
   Evolution 12, 1620–1633. https://doi.org/10.1111/2041-210X.13650
.. [5] Meyer, H. and others. CAST: 'caret' Applications for Spatial-Temporal Models,
   functions ``trainDI`` and ``aoa``. https://github.com/HannaMeyer/CAST
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist
from sklearn.base import BaseEstimator
from sklearn.inspection import permutation_importance
from sklearn.utils.validation import check_is_fitted

from saltmap.errors import ConfigError, SampleDataError
from saltmap.models.inspect import OnPredictors, model_covariates, model_parts, predictors_of
from saltmap.rowwise import finite_rows
from saltmap.trust.conformal import fold_ids

#: Pixels handled at once: bounds the neighbour search's scratch memory (and, in
#: :func:`saltmap.trust.maps.trust_block`, the arrays of CV+), whatever the block size.
CHUNK_ROWS = 65_536


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
        if isinstance(features, pd.DataFrame):
            self.feature_names_in_ = np.asarray(features.columns, dtype=object)
        F = np.asarray(features, dtype=float)
        if F.ndim != 2:
            raise ValueError(f"features must be 2-D (n, n_features), got shape {F.shape}")
        self.n_features_in_ = F.shape[1]
        if folds is None and self.cv is not None:
            folds = fold_ids(self.cv, F, np.zeros(len(F)), None, self.random_state)
        finite = finite_rows(F)
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
            ok = finite_rows(chunk)
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
        categorical), as :func:`saltmap.validation.covariates.covariate_gain` names them.

    References
    ----------
    .. [6] Breiman, L. (2001). Random forests. Machine Learning 45, 5–32.
    """
    step, regressor = model_parts(model)
    y = np.asarray(y, dtype=float).ravel()
    if not model_covariates(model):
        features = step.transform(X)
        ok = finite_rows(features)
        result = permutation_importance(
            regressor, features[ok], y[ok], n_repeats=n_repeats, random_state=random_state
        )
        names = list(step.index_names_)
    else:
        # The covariate module's view of the model: one column per index and per covariate.
        pipeline = getattr(model, "model_", model)
        table = predictors_of(pipeline, X)
        numeric = [*step.index_names_, *step.numeric]
        ok = finite_rows(table[numeric].to_numpy(dtype=float))
        result = permutation_importance(
            OnPredictors(pipeline), table[ok], y[ok], n_repeats=n_repeats,
            random_state=random_state,
        )  # fmt: skip
        names = list(table.columns)
    return pd.Series(np.clip(result.importances_mean, 0, None), index=names)

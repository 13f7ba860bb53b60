"""How large a model's error is expected to be at a point: the scale of normalized scores.

:class:`ResidualSpread` learns the size of a model's out-of-fold error from the
model's own predictors and its prediction. :class:`saltmap.trust.intervals.ConformalIntervals`
with ``method="normalized"`` divides each out-of-fold residual by it, takes the
conformal quantile of these ratios and maps ``ŷ ± q·σ̂(x)``: intervals that are wide
where the model erred on similar samples and narrow where it did not, with the
same coverage rule as a constant width (the "locally weighted" or normalized
conformal scores of Lei et al. [1]_ and Papadopoulos et al. [2]_).

Why a small forest: it is invariant to the predictors' scales (indices of very
different ranges, 0/1 covariate columns, a prediction in µS/cm), needs no tuning
beyond a leaf size that keeps each estimate an average of several residuals, and
predicts a map's pixels in a fraction of the model's own time.

References
----------
.. [1] Lei, J., G'Sell, M., Rinaldo, A., Tibshirani, R. J., Wasserman, L. (2018).
   Distribution-free predictive inference for regression. JASA 113(523), 1094–1111.
.. [2] Papadopoulos, H., Vovk, V., Gammerman, A. (2011). Regression conformal
   prediction with nearest neighbours. JAIR 40, 815–840.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils.validation import check_is_fitted, validate_data

from saltmap.models.inference import predict_rows


class ResidualSpread(RegressorMixin, BaseEstimator):
    """A random forest of absolute residuals, floored so that no scale is zero.

    Parameters
    ----------
    n_estimators : int, default=50
        Trees of the forest.
    min_leaf_share : float, default=0.1
        Smallest leaf as a share of the training rows (at least 5 rows): each
        estimate averages that many residuals, which keeps it stable on the few
        hundred samples of a salinity survey.
    floor : float, default=0.1
        Smallest scale, as a share of the mean absolute residual: a pixel in a leaf
        of small residuals still gets a non-zero interval.
    random_state : int or None, default=0

    Attributes
    ----------
    forest_ : RandomForestRegressor
    floor_ : float
        The smallest scale predicted, in the residuals' unit.
    """

    def __init__(
        self,
        n_estimators: int = 50,
        min_leaf_share: float = 0.1,
        floor: float = 0.1,
        random_state: int | None = 0,
    ):
        self.n_estimators = n_estimators
        self.min_leaf_share = min_leaf_share
        self.floor = floor
        self.random_state = random_state

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # It predicts the size |y| of its target, so its R² against y itself is poor.
        tags.regressor_tags.poor_score = True
        return tags

    def fit(self, X: Any, y: Any) -> ResidualSpread:
        """Fit the forest on rows of predictors ``X`` and absolute residuals ``y``."""
        X, y = validate_data(self, X, y, ensure_all_finite=True, y_numeric=True)
        size = np.abs(np.asarray(y, dtype=float))
        leaf = max(5, int(self.min_leaf_share * len(size)))
        self.forest_ = RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=min(leaf, max(1, len(size) // 2)),
            max_features=0.5,
            random_state=self.random_state,
            n_jobs=1,  # mapping parallelises over blocks, not trees
        ).fit(X, size)
        mean = float(size.mean())
        self.floor_ = self.floor * mean if mean > 0 else 1e-12
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The expected absolute residual of each row (rows must be finite)."""
        check_is_fitted(self, "forest_")
        X = validate_data(self, X, reset=False, ensure_all_finite=True)
        # By cell: equal values, a fraction of the CPU on a map's many similar pixels.
        return np.maximum(predict_rows(self.forest_, X), self.floor_)

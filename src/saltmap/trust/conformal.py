"""The building blocks of cross-conformal intervals: folds, quantile, fold models.

:func:`fold_ids` partitions the samples into the folds that the intervals
(:mod:`saltmap.trust.intervals`) and the cross-validated dissimilarity threshold
(:mod:`saltmap.trust.aoa`) both hold out; :func:`conformal_quantile` is the
finite-sample quantile of the conformity scores, as MAPIE computes it [1]_.

References
----------
.. [1] Taquet, V., Blot, V., Morzadec, T., Lacombe, L., Brunel, N. (2022). MAPIE: an
   open-source library for distribution-free uncertainty quantification.
   arXiv:2207.12274. https://github.com/scikit-learn-contrib/MAPIE
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from saltmap.errors import ConfigError, SampleDataError
from saltmap.models.inspect import seen_rows, take_rows


def as_1d(y: Any) -> np.ndarray:
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


class KnownLevelsOnly(RegressorMixin, BaseEstimator):
    """A covariate model that predicts NaN for rows of a level it was not fitted with.

    A fold model of cross-conformal fitting may lack a rare level that its held-out
    rows have; it cannot predict them (:class:`saltmap.features.covariates.UnseenLevelError`).
    Their residuals describe no prediction a map makes (the final model knows every
    training level, and mapping leaves pixels of other levels empty), so they are
    left out of the conformity scores, as :func:`saltmap.validation.covariates.covariate_gain`
    leaves them out of its scores.
    """

    def __init__(self, estimator: Any = None):
        self.estimator = estimator

    def fit(self, X: Any, y: Any) -> KnownLevelsOnly:
        self.estimator_ = clone(self.estimator).fit(X, y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        out = np.full(len(X), np.nan)
        seen = seen_rows(self.estimator_, X)
        if seen.any():
            out[seen] = as_1d(self.estimator_.predict(take_rows(X, np.flatnonzero(seen))))
        return out

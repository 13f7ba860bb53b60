"""Protocols: cross-validation of one or several models, and index selection inside folds.

With about a hundred samples one calibration/validation split is a noisy
estimate, so saltmap puts two honest protocols beside the study's split:
repeated k-fold (default 5×5) and spatial block k-fold
(:mod:`saltmap.validation.splits`). Both report each metric as the mean ± sd
of its fold scores and a bootstrap 95 % interval (:mod:`saltmap.validation.metrics`).

Index selection by correlation with the target can be done inside each
training fold (:class:`SelectIndices`) so that its optimism is not hidden ([4]_).

References
----------
.. [4] Ambroise, C., McLachlan, G. J. (2002). Selection bias in gene extraction on
   the basis of microarray gene-expression data. PNAS 99, 6562–6566.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from saltmap.features.indices import IndexFeatures, compute_indices, item_name, resolve_items
from saltmap.models.physical import count_clipped
from saltmap.validation.cost import inference_speed
from saltmap.validation.metrics import (
    METRICS,
    CVResult,
    regression_metrics,
)

# --------------------------------------------------------------------------- selection


def _abs_pearson(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Pearson r| of each column with ``y``, on the rows where the column is defined."""
    out = np.zeros(features.shape[1])
    for j in range(features.shape[1]):
        ok = np.isfinite(features[:, j]) & np.isfinite(y)
        if ok.sum() > 2 and np.std(features[ok, j]) > 0:
            out[j] = abs(np.corrcoef(features[ok, j], y[ok])[0, 1])
    return out


class CorrelationSelector(SelectorMixin, BaseEstimator):
    """Keep the ``k`` features with the largest |Pearson r| with the target.

    This is the study's screening of indices by correlation, as a transformer,
    so that inside a pipeline it is refitted on each training fold.

    Parameters
    ----------
    k : int, default=4
        Number of features kept (all when there are fewer).

    Attributes
    ----------
    scores_ : ndarray
        |r| of each input feature with the target on the training rows.
    """

    def __init__(self, k: int = 4):
        self.k = k

    def fit(self, X: Any, y: Any) -> CorrelationSelector:
        features = np.asarray(X, dtype=float)
        self.n_features_in_ = features.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.scores_ = _abs_pearson(features, np.asarray(y, dtype=float))
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "scores_")
        keep = np.argsort(-self.scores_, kind="stable")[: self.k]
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[keep] = True
        return mask


def _index_param(estimator: Any) -> str:
    """Name of the parameter that sets the indices a model computes."""
    if "indices" in estimator.get_params(deep=False):
        return "indices"
    if isinstance(estimator, Pipeline):
        for name, step in estimator.steps:
            if isinstance(step, IndexFeatures):
                return f"{name}__indices"
    raise ValueError(
        f"{type(estimator).__name__} has no 'indices' parameter and no IndexFeatures step"
    )


class SelectIndices(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Choose the ``k`` indices best correlated with the target, then fit a model on them.

    The choice is made on the rows given to :meth:`fit` only, so inside a
    cross-validation it is redone in every training fold and its optimism shows
    ([4]_). The model takes reflectance by band role, like every saltmap model.

    Parameters
    ----------
    estimator : estimator
        A model with an ``indices`` parameter (e.g. ``TunedModel``) or a
        Pipeline with an :class:`~saltmap.features.indices.IndexFeatures` step.
    k : int, default=4
    candidates : str or list of str or None, default=None
        Indices to choose from; ``None``: those the estimator is set to.

    Attributes
    ----------
    selected_ : list of str
    scores_ : pandas.Series
        |r| of every candidate on the training rows.
    estimator_ : fitted estimator
    """

    def __init__(self, estimator: Any, k: int = 4, candidates: Any = None):
        self.estimator = estimator
        self.k = k
        self.candidates = candidates

    def fit(self, X: pd.DataFrame, y: Any) -> SelectIndices:
        param = _index_param(self.estimator)
        pool = self.candidates or self.estimator.get_params()[param]
        # Items, not names: a discovered index keeps its definition in the refitted model.
        items = resolve_items(pool)
        names = [item_name(item) for item in items]
        selector = CorrelationSelector(self.k).fit(compute_indices(X, items), y)
        keep = selector.get_support()
        self.scores_ = pd.Series(selector.scores_, index=names)
        self.selected_ = [n for n, kept in zip(names, keep, strict=True) if kept]
        chosen = [item for item, kept in zip(items, keep, strict=True) if kept]
        self.estimator_ = clone(self.estimator).set_params(**{param: chosen})
        self.estimator_.fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


# --------------------------------------------------------------------------- protocols


def _score_all(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """Scorer for :func:`~sklearn.model_selection.cross_validate` giving every metric."""
    scores = regression_metrics(y, estimator.predict(X))
    return {m: scores[m] for m in METRICS}


def cross_validate_model(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    splits: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    n_splits_per_repeat: int | None = None,
    n_jobs: int | None = None,
) -> CVResult:
    """Fit ``model`` on each training fold and score it on the held-out fold.

    Uses :func:`sklearn.model_selection.cross_validate`; everything the model
    does in ``fit`` — index selection, tuning with its inner CV — sees only
    the training rows of the fold.

    Parameters
    ----------
    model : estimator
        Takes reflectance by band role.
    X : DataFrame
        Reflectance by band role, one row per sample.
    y : array-like
        Target in its original unit.
    splits : iterable of (train_idx, test_idx)
        From :func:`materialise_splits`, so other models can reuse them.
    n_splits_per_repeat : int or None
        Folds per repeat, to label repeats (``None``: one repeat).
    n_jobs : int or None
        Folds fitted in parallel.
    """
    splits = list(splits)
    y = np.asarray(y, dtype=float)
    res = cross_validate(
        model,
        X,
        y,
        cv=splits,
        scoring=_score_all,
        return_estimator=True,
        return_indices=True,
        n_jobs=n_jobs,
        error_score="raise",
    )
    per_repeat = n_splits_per_repeat or len(splits)
    predictions, rows = [], []
    for i, (est, test) in enumerate(zip(res["estimator"], res["indices"]["test"], strict=True)):
        pred = np.asarray(est.predict(X.iloc[test]), dtype=float)
        predictions.append((np.asarray(test), pred))
        rows.append({"repeat": i // per_repeat, "fold": i % per_repeat, "n": len(test)})
        rows[-1].update({m: float(res[f"test_{m}"][i]) for m in METRICS})
    return CVResult(folds=pd.DataFrame(rows), predictions=predictions, y=y)


def fit_predict_fold(
    models: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    predict_train: bool = False,
    cost_rows: pd.DataFrame | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit each model on the ``train`` rows and predict the ``test`` rows.

    The models are fitted one after another in this process, so what one
    model's tuning remembers (Stacking tunes its bases exactly as the single
    models are tuned) is reused by the next on the same rows.

    Parameters
    ----------
    cost_rows : DataFrame, optional
        Scene-like input (:func:`saltmap.validation.cost.scene_like_rows`): each fitted
        model also predicts these rows once, and its inference cost is measured.

    Returns
    -------
    dict
        Per model: ``test`` predictions, ``train`` predictions (or None),
        ``seconds`` of fit and predict, ``selected`` indices when the model
        chose them (:class:`SelectIndices`), ``params`` (the tuned hyperparameters
        of a TunedModel, else None), the ``n_floor``/``n_ceiling`` test predictions
        held at a physical bound (:func:`saltmap.models.physical.count_clipped`), and
        ``kpx_per_cpu_s`` (thousands of pixels predicted per CPU-second, given
        ``cost_rows``, else NaN).
    """
    out: dict[str, dict[str, Any]] = {}
    X_train, y_train, X_test = X.iloc[train], y[train], X.iloc[test]
    for key, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            # MLP convergence notes would flood the output from every trial.
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = clone(model).fit(X_train, y_train)
            pred = np.asarray(est.predict(X_test), dtype=float).ravel()
            fitted = (
                np.asarray(est.predict(X_train), dtype=float).ravel() if predict_train else None
            )
        seconds = time.perf_counter() - start
        out[key] = {
            "test": pred,
            "train": fitted,
            "seconds": seconds,
            "selected": ",".join(getattr(est, "selected_", [])),
            "params": getattr(est, "best_params_", None),
            **count_clipped(est, pred),
            "kpx_per_cpu_s": np.nan if cost_rows is None else inference_speed(est, cost_rows),
        }
    return out


def cross_validate_models(
    models: dict[str, Any],
    X: pd.DataFrame,
    y: Any,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    n_splits_per_repeat: int | None = None,
    n_jobs: int | None = None,
) -> dict[str, CVResult]:
    """Cross-validate several models on the same splits, folds in parallel.

    Like :func:`cross_validate_model` for each model, but every fold fits all
    the models in one worker (see :func:`fit_predict_fold`), which lets
    tuning results be shared between them.
    """
    from joblib import Parallel, delayed

    y = np.asarray(y, dtype=float)
    jobs = Parallel(n_jobs=n_jobs)(
        delayed(fit_predict_fold)(models, X, y, train, test) for train, test in splits
    )
    return collect_folds(jobs, splits, y, n_splits_per_repeat)


def collect_folds(
    jobs: Sequence[dict[str, dict[str, Any]]],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    n_splits_per_repeat: int | None = None,
) -> dict[str, CVResult]:
    """Turn the outputs of :func:`fit_predict_fold`, one per split, into a CVResult per model."""
    per_repeat = n_splits_per_repeat or len(splits)
    results: dict[str, CVResult] = {}
    for key in jobs[0]:
        rows, preds = [], []
        for i, ((_, test), job) in enumerate(zip(splits, jobs, strict=True)):
            scores = regression_metrics(y[test], job[key]["test"])
            rows.append(
                {"repeat": i // per_repeat, "fold": i % per_repeat, "n": len(test)}
                | {m: scores[m] for m in METRICS}
                | {
                    "seconds": job[key]["seconds"],
                    "selected": job[key]["selected"],
                    "n_floor": job[key].get("n_floor", 0),
                    "n_ceiling": job[key].get("n_ceiling", 0),
                }
            )
            preds.append((np.asarray(test), job[key]["test"]))
        results[key] = CVResult(folds=pd.DataFrame(rows), predictions=preds, y=y)
    return results

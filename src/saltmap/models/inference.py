"""Exact, cheaper prediction of tree ensembles on the pixels of an image.

A tree compares each feature with its split thresholds and nothing else, so two
pixels that fall on the same side of every threshold of a forest get the same
prediction from it. The forests and boosted trees of the study are fitted on ~100
samples, so they have a few hundred thresholds per feature, and the pixels of a
block fall into far fewer such cells than there are pixels. :func:`predict_rows`
therefore predicts a tree ensemble on one pixel per occupied cell, sorted so that
neighbouring rows take the same branches, and gives each pixel its cell's value:
value for value what ``regressor.predict`` returns, at about half the CPU time on
the benchmark tile (``benchmarks/map_tile.py`` prints the levers it measured).

The stacking regressor is predicted base by base, each base learner through
:func:`predict_rows`, then its meta-learner on their outputs, as
:meth:`sklearn.ensemble.StackingRegressor.predict` does. Any other model is
predicted by its own ``predict``.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    ExtraTreesRegressor,
    RandomForestRegressor,
    StackingRegressor,
)

from saltmap.rowwise import rows_differ

__all__ = ["TreeCells", "predict_rows", "tree_cells"]


@dataclass(frozen=True)
class TreeCells:
    """The cells in which a tree ensemble's prediction is constant.

    Attributes
    ----------
    features : tuple of int
        Columns the ensemble splits on, most important first (the sort order).
    edges : tuple of ndarray
        Sorted distinct thresholds of each of those features, in the dtype the
        ensemble compares them in.
    side : {"left", "right"}
        ``"left"`` for ``x <= t`` goes left (scikit-learn), ``"right"`` for
        ``x < t`` goes left (XGBoost): how :func:`numpy.searchsorted` counts the
        thresholds below a value so that equal counts mean equal branches.
    """

    features: tuple[int, ...]
    edges: tuple[np.ndarray, ...]
    side: str

    def codes(self, X: np.ndarray) -> np.ndarray:
        """Cell index of each row, one column per split feature (int32)."""
        # Both libraries first cast the input to float32, then compare: so do we.
        x32 = np.asarray(X, dtype=np.float32)
        out = np.empty((len(x32), len(self.features)), dtype=np.int32)
        for j, (f, edges) in enumerate(zip(self.features, self.edges, strict=True)):
            out[:, j] = np.searchsorted(edges, x32[:, f].astype(edges.dtype), side=self.side)
        return out


#: Rows a model other than a tree ensemble predicts at once. A neural network's
#: hidden layers for this many pixels fit in the processor's cache, where those of a
#: 512² block do not: two threads predicting the 16 blocks of a 2048² crop with the
#: benchmark's tuned MLP took 0.95-0.97 s in slices of 65,536 rows against 1.02-1.05
#: s whole. A tree ensemble is predicted whole: a larger block shares more cells.
SLICE_ROWS = 65_536

# Cells of the estimators seen in this process, computed once per fitted estimator.
_CELLS: weakref.WeakKeyDictionary[Any, TreeCells | None] = weakref.WeakKeyDictionary()


def tree_cells(estimator: Any) -> TreeCells | None:
    """The cells of a fitted random forest, extra-trees or XGBoost regressor (else None)."""
    try:
        return _CELLS[estimator]
    except (KeyError, TypeError):
        pass
    cells = _forest_cells(estimator) or _xgboost_cells(estimator)
    try:
        _CELLS[estimator] = cells
    except TypeError:  # not weak-referenceable: compute again next time
        pass
    return cells


def _forest_cells(estimator: Any) -> TreeCells | None:
    if not isinstance(estimator, RandomForestRegressor | ExtraTreesRegressor):
        return None
    if not hasattr(estimator, "estimators_"):
        return None
    split: dict[int, list[np.ndarray]] = {}
    for tree in estimator.estimators_:
        t = tree.tree_
        inner = t.feature >= 0
        for f in np.unique(t.feature[inner]):
            split.setdefault(int(f), []).append(t.threshold[inner & (t.feature == f)])
    # scikit-learn compares float32 inputs with float64 thresholds: x <= t goes left.
    edges = {f: np.unique(np.concatenate(v)).astype(np.float64) for f, v in split.items()}
    return _ordered(edges, estimator.feature_importances_, "left")


def _xgboost_cells(estimator: Any) -> TreeCells | None:
    get_booster = getattr(estimator, "get_booster", None)
    if get_booster is None or not callable(get_booster):
        return None
    try:
        booster = get_booster()
    except Exception:  # not fitted, or not an XGBoost model after all
        return None
    model = json.loads(bytes(booster.save_raw("json")))["learner"]
    if model["gradient_booster"].get("name") != "gbtree":
        return None
    split: dict[int, list[float]] = {}
    gain = np.zeros(int(model["learner_model_param"]["num_feature"]))
    for tree in model["gradient_booster"]["model"]["trees"]:
        if any(tree.get("split_type", [])):  # categorical splits: not cells of thresholds
            return None
        for left, f, t, g in zip(
            tree["left_children"], tree["split_indices"], tree["split_conditions"],
            tree["loss_changes"], strict=True,
        ):  # fmt: skip
            if left != -1:
                split.setdefault(int(f), []).append(t)
                gain[f] += g
    # XGBoost compares float32 inputs with float32 thresholds: x < t goes left. The JSON
    # model writes each float32 in its shortest exact form, so the cast restores it.
    edges = {f: np.unique(np.asarray(v, dtype=np.float32)) for f, v in split.items()}
    return _ordered(edges, gain, "right")


def _ordered(edges: dict[int, np.ndarray], importance: np.ndarray, side: str) -> TreeCells:
    features = sorted(edges, key=lambda f: -float(importance[f]))
    return TreeCells(tuple(features), tuple(edges[f] for f in features), side)


def predict_rows(regressor: Any, X: np.ndarray) -> np.ndarray:
    """``regressor.predict(X)``, equal value for value, with less CPU for tree ensembles.

    Parameters
    ----------
    regressor : fitted regressor
        The model after its feature step (for example ``pipeline[-1]``).
    X : ndarray of shape (n_rows, n_features)
        Finite features, as the regressor's ``predict`` takes them.

    Returns
    -------
    ndarray of shape (n_rows,)
        What ``regressor.predict(X)`` returns (same dtype).
    """
    if _is_plain_target_transform(regressor):
        # As TransformedTargetRegressor.predict, with the inner regressor predicted by cell.
        inner = predict_rows(regressor.regressor_, X)
        back = regressor.transformer_.inverse_transform(inner.reshape(len(X), -1))
        return back.squeeze(axis=1) if back.ndim == 2 and back.shape[1] == 1 else back
    if _is_plain_stacking(regressor):
        outputs = [
            predict_rows(est, X).reshape(len(X), -1)
            for est in regressor.estimators_
            if not (isinstance(est, str) and est == "drop")
        ]
        return regressor.final_estimator_.predict(np.hstack(outputs))
    cells = tree_cells(regressor) if len(X) > 1 else None
    if cells is None or not cells.features:
        return _predict_in_slices(regressor, X)
    return _predict_by_cell(regressor, X, cells)


def _predict_in_slices(regressor: Any, X: np.ndarray) -> np.ndarray:
    """``regressor.predict`` on :data:`SLICE_ROWS` rows at a time, joined."""
    if len(X) <= SLICE_ROWS:
        return regressor.predict(X)
    return np.concatenate(
        [regressor.predict(X[start : start + SLICE_ROWS]) for start in range(0, len(X), SLICE_ROWS)]
    )


def _is_plain_target_transform(regressor: Any) -> bool:
    return (
        isinstance(regressor, TransformedTargetRegressor)
        and hasattr(regressor, "regressor_")
        and getattr(regressor, "_training_dim", 1) == 1
    )


def _is_plain_stacking(regressor: Any) -> bool:
    return (
        isinstance(regressor, StackingRegressor)
        and hasattr(regressor, "final_estimator_")
        and not regressor.passthrough
        and all(m == "predict" for m in regressor.stack_method_)
    )


def _predict_by_cell(regressor: Any, X: np.ndarray, cells: TreeCells) -> np.ndarray:
    """Predict one row per occupied cell, in cell order, and spread the values back."""
    codes = cells.codes(X)
    # lexsort's last key is the primary one: the most important feature.
    order = np.lexsort(codes.T[::-1])
    sorted_codes = codes[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = rows_differ(sorted_codes[1:], sorted_codes[:-1])
    values = np.asarray(regressor.predict(X[order[first]]))
    out = np.empty((len(X), *values.shape[1:]), dtype=values.dtype)
    out[order] = values[np.cumsum(first) - 1]
    return out

"""Nested cross-validation of the final model's choice: the score of "choose, then fit".

Taking the best of twenty candidates on the same folds is optimistic: on data with no
signal one of them still looks good. The honest number is the score of the whole
procedure on rows it never saw. Each outer fold ``k`` of the main protocol (its first
repeat) runs the choice of :func:`saltmap.validation.selection.choose` on its training
rows only, by an inner cross-validation whose folds are the other outer folds; the
candidate it picks is then scored on fold ``k``.

What keeps it cheap, and why that stays honest:

* The inner fit that holds out fold ``j`` inside outer fold ``k`` trains on the rows of
  neither — the folds other than ``k`` and ``j`` — with the hyperparameters that the
  candidate's tuning found on outer fold ``k``'s training rows (the evaluation already
  tuned every candidate there). So the inner fits are untuned refits, about a
  hundredth of a tuned fit each; the inner scores are a little optimistic for tuned
  models (their tuning saw fold ``j``), which can only bias *which* candidate is
  chosen, never the outer score, because nothing in outer fold ``k``'s choice ever saw
  fold ``k``.
* The chosen candidate's outer fit is the evaluation's own fit on outer fold ``k``'s
  training rows (tuned there, predicting fold ``k``): reused, not refitted.
* Stacking is not refitted inside (its own 5-fold stack made it 30 times dearer than
  a single model): its bases have exactly the single models' tuned parameters (they
  share one search), so its inner prediction of fold ``j`` is assembled
  (:func:`assemble_stacking`) from the MLP, RF and XGBoost inner predictions of fold
  ``j`` by its PLS meta-learner, fitted on those bases' inner predictions of the
  other folds of outer fold ``k``'s training rows — the out-of-fold stacking
  scheme, with the inner folds as its folds. When the parameters differ (models
  tuned apart), or with a log target (the stack then combines in log space), Stacking
  is refitted like the others.

* The plain random forest has no tuned parameters: one fit without folds ``k`` and
  ``j`` serves both outer folds.

With k folds this costs k·(k−1) untuned fits per candidate, e.g. 20 for 5 folds
(10 for the plain random forest).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cross_decomposition import PLSRegression

from saltmap.models.building import BASE_LEARNERS
from saltmap.validation.metrics import METRICS, CVResult, regression_metrics
from saltmap.validation.selection import Key, choose

Split = tuple[np.ndarray, np.ndarray]


@dataclass
class InnerTask:
    """One inner fit of one feature set: its training rows, and the held-out parts it
    predicts as ``(outer fold, inner fold, rows)``; ``test`` is their rows in order."""

    feature_set: str
    train: np.ndarray
    parts: list[tuple[int, int, np.ndarray]]
    models: dict[str, Any]
    covariates: bool = False

    @property
    def test(self) -> np.ndarray:
        return np.concatenate([rows for _, _, rows in self.parts])


def inner_tasks(
    splits: Sequence[Split],
    defined: Mapping[str, np.ndarray],
    models_for: Callable[[str, int], dict[str, Any]],
    feature_sets: Sequence[str],
    covariates: Mapping[str, bool],
    untuned: Sequence[str] = (),
) -> list[InnerTask]:
    """Every inner fit of the nested choice.

    ``splits`` are the outer folds of one repeat; ``defined[fs]`` marks the rows feature
    set ``fs`` can use; ``models_for(fs, k)`` gives the untuned candidates of ``fs`` with
    the hyperparameters tuned on outer fold ``k``'s training rows. A set in ``untuned``
    (the plain random forest) has no tuned parameters, so one fit without folds ``k`` and
    ``j`` serves both outer folds: it predicts ``j`` for outer fold ``k`` and ``k`` for
    outer fold ``j``.
    """
    tasks = []
    for k, (_, test_k) in enumerate(splits):
        for j, (_, test_j) in enumerate(splits):
            if j == k:
                continue
            train_all = np.setdiff1d(np.arange(len(next(iter(defined.values())))),
                                     np.union1d(test_k, test_j))  # fmt: skip
            for fs in feature_sets:
                ok = defined[fs]
                if fs in untuned and j < k:
                    continue  # the fit of the pair (j, k) serves this one
                parts = [(k, j, test_j[ok[test_j]])]
                if fs in untuned:
                    parts.append((j, k, test_k[ok[test_k]]))
                tasks.append(InnerTask(fs, train_all[ok[train_all]], parts,
                                       models_for(fs, k), covariates.get(fs, False)))  # fmt: skip
    return tasks


def _result(parts: Sequence[tuple[np.ndarray, np.ndarray]], y: np.ndarray) -> CVResult:
    """A one-repeat CVResult from (test rows, predictions) pairs."""
    rows = []
    for i, (idx, pred) in enumerate(parts):
        scores = regression_metrics(y[idx], pred)
        rows.append({"repeat": 0, "fold": i, "n": len(idx)} | {m: scores[m] for m in METRICS})
    return CVResult(folds=pd.DataFrame(rows), predictions=list(parts), y=y)


def bases_match(params: Mapping[str, Any], singles: Mapping[str, Mapping[str, Any] | None]) -> bool:
    """Whether Stacking's tuned ``params`` give each base the parameters of the single model
    of that name (``singles``: name -> its tuned parameters)."""
    for base in BASE_LEARNERS:
        own = singles.get(base)
        if own is None:
            return False
        mine = {k.partition("__")[2]: v for k, v in params.items() if k.startswith(f"{base}__")}
        if mine != dict(own):
            return False
    return True


def assemble_stacking(
    parts: Mapping[int, tuple[np.ndarray, dict[str, np.ndarray]]],
    y: np.ndarray,
    n_components: int = 2,
) -> dict[int, np.ndarray]:
    """Stacking's inner predictions from its bases' ones, inner fold by inner fold.

    ``parts``: inner fold -> (its rows, base name -> predictions of them). For fold
    ``j`` a PLS meta-learner is fitted on the bases' predictions of the other folds and
    predicts fold ``j`` from its own; a prediction below zero (or below the smallest
    training target, when that is negative) is held there, as every model's is.
    """
    out = {}
    for j, (_, preds_j) in parts.items():
        others = [i for i in parts if i != j]
        fit_X = np.vstack(
            [np.column_stack([parts[i][1][b] for b in BASE_LEARNERS]) for i in others]
        )
        fit_y = np.concatenate([y[parts[i][0]] for i in others])
        meta = PLSRegression(n_components=min(n_components, len(BASE_LEARNERS)))
        meta.fit(fit_X, fit_y)
        pred = np.asarray(meta.predict(np.column_stack([preds_j[b] for b in BASE_LEARNERS])))
        out[j] = np.maximum(pred.ravel(), min(0.0, float(fit_y.min())))
    return out


def _add_stacking(
    inner: dict[int, dict[Key, list[tuple[int, np.ndarray, np.ndarray]]]],
    assembled: Sequence[tuple[int, str, int]],
    y: np.ndarray,
) -> None:
    """Add the assembled Stacking predictions of (outer fold, feature set, meta
    components) in ``assembled`` to ``inner``."""
    for k, fs, n_components in assembled:
        bases = {b: {j: (rows, p) for j, rows, p in inner[k][(fs, b)]} for b in BASE_LEARNERS}
        folds = sorted(bases[BASE_LEARNERS[0]])
        parts = {j: (bases[BASE_LEARNERS[0]][j][0], {b: bases[b][j][1] for b in BASE_LEARNERS})
                 for j in folds}  # fmt: skip
        preds = assemble_stacking(parts, y, n_components)
        inner[k][(fs, "Stacking")] = [(j, parts[j][0], preds[j]) for j in folds]


@dataclass
class NestedOutcome:
    """Per outer fold the candidate chosen on its training rows, and the outer result."""

    folds: pd.DataFrame
    result: CVResult


def nested_choice(
    tasks: Sequence[InnerTask],
    outputs: Sequence[dict[str, dict[str, Any]]],
    outer: Mapping[Key, Sequence[tuple[np.ndarray, np.ndarray]]],
    *,
    y: np.ndarray,
    common: np.ndarray,
    n_features: Mapping[Key, int],
    winner: Key,
    assembled: Sequence[tuple[int, str, int]] = (),
) -> NestedOutcome:
    """Choose in every outer fold from its inner fits, and score the choices on the outer folds.

    Parameters
    ----------
    tasks, outputs : sequences
        :func:`inner_tasks` and their :func:`~saltmap.validation.protocols.fit_predict_fold`
        outputs.
    outer : mapping key -> list of (test rows, predictions)
        Each candidate's predictions of each outer fold (the evaluation's, first repeat).
    common : ndarray of bool
        Rows every candidate can use; only they are scored.
    winner : key
        The choice on all rows, to count how often the outer folds agree.
    assembled : sequence of (outer fold, feature set, meta components)
        Where Stacking was not refitted: its predictions are assembled from its bases'
        (:func:`assemble_stacking`).
    """
    inner: dict[int, dict[Key, list[tuple[int, np.ndarray, np.ndarray]]]] = {}
    for t, out in zip(tasks, outputs, strict=True):
        for model, got in out.items():
            start = 0
            for k, j, rows in t.parts:
                pred = got["test"][start : start + len(rows)]
                start += len(rows)
                inner.setdefault(k, {}).setdefault((t.feature_set, model), []).append(
                    (j, rows, pred)
                )
    _add_stacking(inner, assembled, y)
    rows, parts = [], []
    for k in sorted(inner):
        results = {
            key: _result([(rows[common[rows]], p[common[rows]]) for _, rows, p in parts_k], y)
            for key, parts_k in inner[k].items() if key in outer
        }  # fmt: skip
        chosen, _ = choose(results, n_features, len(next(iter(results.values())).folds))
        idx, pred = outer[chosen][k]
        keep = common[idx]
        parts.append((idx[keep], pred[keep]))
        rows.append({"outer_fold": k, "feature_set": chosen[0], "model": chosen[1],
                     "n_test": int(keep.sum()), "same_as_all_rows": chosen == winner})  # fmt: skip
    return NestedOutcome(pd.DataFrame(rows), _result(parts, y))

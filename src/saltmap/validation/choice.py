"""The evaluation's feature sets and the final model's choice made from its folds.

:class:`FeatureSets` holds every feature set an evaluation fits — the evaluated ones,
the extra candidates of the choice (six bands, all 21 indices; with covariates, each
set also with them), the references (plain random forest, null model) — with the rows
each can use: a sample whose index is undefined (a division by zero, the root of a
negative number) is set aside for the sets that need that index only, and listed.

:func:`choose_final` turns the main protocol's folds into a
:class:`~saltmap.validation.selection.Selection`: the choice on all rows, the
candidates' table with their inference cost, and the nested cross-validation of the
choice (:mod:`saltmap.validation.nested`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.dummy import DummyRegressor

from saltmap.features.indices import item_name, resolve, resolve_items
from saltmap.models.building import BASE_LEARNERS, make_model, undefined_rows
from saltmap.models.tuning_cache import TuningCache
from saltmap.validation.metrics import CVResult
from saltmap.validation.nested import bases_match, inner_tasks, nested_choice
from saltmap.validation.scoring import BASELINE, PLAIN_FOREST, plain_forest
from saltmap.validation.selection import NULL, Key, Selection, select, skill_verdict
from saltmap.validation.settings import EvaluationSettings

COVARIATE_SUFFIX = "+cov"


@dataclass
class FeatureSets:
    """Every feature set of an evaluation, with the rows each can use.

    Attributes
    ----------
    items : dict
        Label -> index items (the plain RF's are the 21 study indices; the null's none).
    defined : dict
        Label -> boolean mask of the rows the set can use.
    undefined : dict
        Label -> Series (sample -> undefined indices) of the rows it sets aside.
    covariates : dict
        Label -> whether its models also read the covariates.
    evaluated : list
        The evaluation's own sets (Table 4, the honest table).
    candidate_labels : list
        The sets of the final model's choice (evaluated, extra, with covariates).
    """

    items: dict[str, list[Any]]
    defined: dict[str, np.ndarray]
    undefined: dict[str, pd.Series]
    covariates: dict[str, bool] = field(default_factory=dict)
    evaluated: list[str] = field(default_factory=list)
    candidate_labels: list[str] = field(default_factory=list)

    def add_variants(self, honest: Mapping[str, Any]) -> None:
        """Rows of the index-selection variants (``"SI top-4 chosen in fold"``): their set's."""
        for label in honest:
            if label not in self.defined:
                base = next(fs for fs in self.evaluated if label.startswith(f"{fs} top-"))
                self.defined[label] = self.defined[base]

    def model_names(self, s: EvaluationSettings, fs: str) -> list[str]:
        """The models a candidate set is scored with: the evaluated ones. Quick settings
        leave Stacking out of the extra sets (its own 5-fold stack makes it 30 times
        dearer than a single model; the demo must stay within its minute)."""
        extra = fs not in self.evaluated
        return [m for m in s.models if not (s.quick and extra and m == "Stacking")]

    def models(self, s: EvaluationSettings, cache: TuningCache) -> dict[str, dict[str, Any]]:
        """The tuned models of the extra candidate sets (those not evaluated anyway)."""
        cov = s.covariates
        return {
            fs: {m: s.model(m, self.items[fs], cache=cache,
                            covariates=cov if self.covariates[fs] else None)
                 for m in self.model_names(s, fs)}
            for fs in self.candidate_labels if fs not in self.evaluated
        }  # fmt: skip

    def references(self, s: EvaluationSettings, *, with_forest: bool) -> dict[str, dict]:
        """The null model, and the plain random forest when asked for."""
        refs: dict[str, dict[str, Any]] = {NULL: {NULL: DummyRegressor(strategy="mean")}}
        if with_forest:
            refs[BASELINE] = {BASELINE: plain_forest(s.random_state)}
        return refs

    def set_aside_table(self, ids: pd.Index) -> pd.DataFrame:
        """One row per feature set and sample set aside: the indices undefined there."""
        rows = [
            {"feature_set": fs, "sample": sample, "undefined": names}
            for fs, series in self.undefined.items()
            for sample, names in series.items()
        ]
        return pd.DataFrame(rows, columns=["feature_set", "sample", "undefined"])


def feature_sets_of(X: pd.DataFrame, s: EvaluationSettings, choosing: bool) -> FeatureSets:
    """The evaluation's feature sets (and, when ``choosing``, the choice's candidates)."""
    items = {label: resolve_items(sel) for label, sel in s.feature_sets.items()}
    evaluated = list(items)
    if choosing:
        known = {tuple(resolve(v)) for v in items.values()}
        for label, sel in s.extra_sets.items():
            extra = resolve_items(sel)
            if label not in items and tuple(map(item_name, extra)) not in known:
                items[label] = extra
    covariates = dict.fromkeys(items, False)
    candidates = list(items) if choosing else []
    if choosing and s.covariates:
        for label in list(items):
            items[label + COVARIATE_SUFFIX] = items[label]
            covariates[label + COVARIATE_SUFFIX] = True
            candidates.append(label + COVARIATE_SUFFIX)
    items[BASELINE] = resolve_items("study")
    items[NULL] = []
    covariates |= {BASELINE: False, NULL: False}
    undefined = {fs: undefined_rows(X, ix) for fs, ix in items.items() if ix}
    defined = {fs: ~X.index.isin(undefined[fs].index) if ix else np.ones(len(X), bool)
               for fs, ix in items.items()}  # fmt: skip
    listed = [*evaluated, *candidates, BASELINE]
    shown = {fs: u for fs, u in undefined.items() if len(u) and fs in listed}
    return FeatureSets(items, defined, shown, covariates, evaluated, candidates)


def _params_by_fold(
    tasks: Sequence[Any], outputs: Sequence[dict[str, dict[str, Any]]], main: str
) -> dict[tuple[str, str, int], Any]:
    """The hyperparameters each candidate's tuning found on each training set of ``main``."""
    return {
        (t.feature_set, model, t.split): got.get("params")
        for t, out in zip(tasks, outputs, strict=True) if t.protocol == main
        for model, got in out.items()
    }  # fmt: skip


def _costs(tasks: Sequence[Any], outputs: Sequence[dict[str, dict[str, Any]]]) -> dict[Key, float]:
    return {
        (t.feature_set, model): got["kpx_per_cpu_s"]
        for t, out in zip(tasks, outputs, strict=True) if t.cost
        for model, got in out.items()
    }  # fmt: skip


def choose_final(
    main: str,
    tasks: Sequence[Any],
    outputs: Sequence[dict[str, dict[str, Any]]],
    cv_results: Mapping[tuple[str, str, str], CVResult],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    sets: FeatureSets,
    s: EvaluationSettings,
    *,
    y: np.ndarray,
    draws: np.ndarray,
    fit: Callable[[Sequence[Any]], list[dict[str, dict[str, Any]]]],
) -> Selection:
    """The final model's choice from the main protocol's folds, with its nested score.

    ``fit(tasks)`` fits inner tasks as the evaluation fits its own (in parallel).
    """
    keys: list[Key] = [(fs, m) for fs in sets.candidate_labels for m in sets.model_names(s, fs)]
    keys.append((BASELINE, BASELINE))
    common = np.logical_and.reduce([sets.defined[fs] for fs, _ in keys])
    results = {k: cv_results[(main, *k)].restricted(common) for k in keys}
    null = cv_results[(main, NULL, NULL)].restricted(common)
    n_cov = len(s.covariates.names) if s.covariates else 0
    n_features = {
        (fs, m): len(sets.items[fs]) + (n_cov if sets.covariates[fs] else 0) for fs, m in keys
    }
    usable = {(fs, m): int(sets.defined[fs].sum()) for fs, m in keys}
    winner, runner_up, table, gap, null_row = select(
        results, null, n_features=n_features, folds_per_repeat=s.plan.n_splits, draws=draws,
        costs=_costs(tasks, outputs), n_rows=usable,
    )  # fmt: skip
    nested, nested_score = pd.DataFrame(), {}
    if s.nested:
        nested, nested_score = _nested(main, tasks, outputs, cv_results, splits, sets, s,
                                       keys, common, n_features, winner, y, draws, fit)  # fmt: skip
    w = table[table["chosen"]].iloc[0]
    return Selection(
        protocol=main, candidates=table, winner=winner, runner_up=runner_up, gap=gap,
        null=null_row, nested=nested, nested_score=nested_score,
        skill=skill_verdict(w, null_row, nested_score),
        indices={fs: sets.items[fs] for fs in [*sets.candidate_labels, BASELINE]},
        covariates={fs: sets.covariates[fs] for fs in [*sets.candidate_labels, BASELINE]},
    )  # fmt: skip


def _assembled_stacking(
    params: Mapping[tuple[str, str, int], Any], sets: FeatureSets, s: EvaluationSettings, k: int
) -> dict[tuple[int, str, str], int]:
    """(outer fold, feature set, "Stacking") -> meta components, where the nested choice
    assembles Stacking from its bases instead of refitting it (see
    :mod:`saltmap.validation.nested`)."""
    if s.log_target or not set(BASE_LEARNERS) <= set(s.models):
        return {}
    out = {}
    for fs in sets.candidate_labels:
        if "Stacking" not in sets.model_names(s, fs):
            continue
        for fold in range(k):
            stack = params.get((fs, "Stacking", fold)) or {}
            singles = {b: params.get((fs, b, fold)) for b in BASE_LEARNERS}
            if bases_match(stack, singles):
                out[(fold, fs, "Stacking")] = int(stack.get("meta_n_components", 2))
    return out


def _nested(main, tasks, outputs, cv_results, splits, sets, s, keys, common, n_features,
            winner, y, draws, fit) -> tuple[pd.DataFrame, dict[str, float]]:  # fmt: skip
    """Nested CV of the choice on the main protocol's first repeat."""
    outer_splits = list(splits)[: s.plan.n_splits]
    params = _params_by_fold(tasks, outputs, main)
    cov = s.covariates

    assembled = _assembled_stacking(params, sets, s, len(outer_splits))

    def models_for(fs: str, k: int) -> dict[str, Any]:
        if fs == BASELINE:
            return {BASELINE: plain_forest(s.random_state)}
        return {
            m: make_model(m, indices=sets.items[fs], log_target=s.log_target,
                          random_state=s.random_state, params=params.get((fs, m, k)),
                          covariates=cov if sets.covariates[fs] else None)
            for m in sets.model_names(s, fs) if (k, fs, m) not in assembled
        }  # fmt: skip

    labels = [*sets.candidate_labels, BASELINE]
    inner = inner_tasks(outer_splits, sets.defined, models_for, labels, sets.covariates,
                        untuned=[BASELINE])  # fmt: skip
    outer = {k: cv_results[(main, *k)].predictions[: len(outer_splits)] for k in keys}
    stacked = [(k, fs, n) for (k, fs, _), n in assembled.items()]
    outcome = nested_choice(inner, fit(inner), outer, y=y, common=common,
                            n_features=n_features, winner=winner, assembled=stacked)  # fmt: skip
    summary = outcome.result.summary(draws)
    score = {
        "R2_pooled": summary["R2_pooled"],
        "R2_pooled_ci_low": summary["R2_pooled_ci_low"],
        "R2_pooled_ci_high": summary["R2_pooled_ci_high"],
        "RMSE": outcome.result.pooled_rmse(),
        "n": int(outcome.folds["n_test"].sum()),
        "outer_folds": len(outcome.folds),
        "inner_fits": sum(len(t.models) for t in inner),
    }
    return outcome.folds, score


def winner_spec(selection: Selection) -> dict[str, Any]:
    """How to train the chosen candidate on all samples: ``name`` (for ``make_model``),
    ``label`` (as the report names it), ``indices`` (items), ``covariates`` (whether it
    reads them), ``fixed`` parameters, ``untuned`` (the plain random forest) and ``skill``
    (the verdict against the null model, which the model file keeps for its maps)."""
    fs, model = selection.winner
    skill = dict(selection.skill)
    if model == BASELINE:
        return {"name": "RF", "label": model, "indices": list(selection.indices[fs]),
                "covariates": False, "fixed": dict(PLAIN_FOREST), "untuned": True,
                "skill": skill}  # fmt: skip
    covariates = bool(selection.covariates.get(fs))
    return {"name": model, "label": model, "indices": list(selection.indices[fs]),
            "covariates": covariates, "fixed": None, "untuned": False,
            "skill": skill}  # fmt: skip

"""The study's evaluation, and the honest one beside it.

:func:`evaluate_study` fits the study's five models on its two feature sets —
N-SI, the 4 novel indices, and SI, the 17 classic ones — and scores them

* as the study does: one stratified 70/30 calibration/validation split,
  giving Table 4 (R², RMSE and MAE on calibration, c, and validation, v) and
  the predictions of figure 5;
* honestly: repeated k-fold (5×5) and spatial block k-fold, as mean ± sd over
  folds with a bootstrap 95 % interval (see :mod:`saltmap.validation.protocols`).

Every model is a :class:`~saltmap.models.building.TunedModel`, so its Optuna search
runs on the training rows of each split only. Optionally the choice of
indices by correlation is made inside each training fold too, beside the
study's way of choosing them once on all rows, so that selection bias shows.

:func:`~saltmap.validation.scoring.baseline_comparison` sets each model against a
plain random forest (300 trees, scikit-learn defaults, all 21 study indices) on the
same repeated-CV folds, with a paired bootstrap interval of the difference.

The work runs as small steps — settings, splits, tasks, fits, scores, comparison —
each a function below; :mod:`saltmap.validation.results` writes what they measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import RepeatedKFold

from saltmap.errors import SampleDataError
from saltmap.features.covariates import check_covariates_defined, predictor_table
from saltmap.features.indices import IndexItem, compute_indices, resolve, resolve_items
from saltmap.models.tuning_cache import TuningCache
from saltmap.progress import Progress, task
from saltmap.validation.choice import FeatureSets, choose_final, feature_sets_of
from saltmap.validation.metrics import CVResult, bootstrap_draws
from saltmap.validation.protocols import (
    CorrelationSelector,
    SelectIndices,
    collect_folds,
    fit_predict_fold,
)
from saltmap.validation.results import (
    EvaluationResult,
)
from saltmap.validation.scoring import (
    BASELINE,
    baseline_comparison,
    study_split_scores,
)
from saltmap.validation.settings import PROTOCOLS, EvaluationSettings
from saltmap.validation.splits import SpatialBlockKFold, materialise_splits, study_split


@dataclass
class _Task:
    """One training set of one feature set: its rows (those the set can use) and models."""

    protocol: str
    feature_set: str
    split: int
    train: np.ndarray
    test: np.ndarray
    models: dict[str, Any]
    covariates: bool = False
    cost: bool = False


def select_on_all_rows(
    X: pd.DataFrame, y: Any, indices: str | list[IndexItem], k: int
) -> list[IndexItem]:
    """The ``k`` indices best correlated with the target on every row, as the study screens.

    Used before a cross-validation, this choice has seen the test rows; it is
    the optimistic reference for :class:`~saltmap.validation.protocols.SelectIndices`.
    The indices come back as items (names, or definitions of discovered indices).
    """
    items = resolve_items(indices)
    selector = CorrelationSelector(k).fit(compute_indices(X, items), y)
    return [item for item, keep in zip(items, selector.get_support(), strict=True) if keep]


def _feature_variants(
    X: pd.DataFrame,
    y: np.ndarray,
    feature_sets: Mapping[str, str],
    models: Sequence[str],
    make: Callable[[str, Any], Any],
    *,
    nested_selection: bool,
    k: int,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Models per feature set for the study split and for the honest protocols."""
    plain = {fs: {m: make(m, ix) for m in models} for fs, ix in feature_sets.items()}
    honest = dict(plain)
    if nested_selection:
        for fs, ix in feature_sets.items():
            if len(resolve(ix)) <= k:
                continue  # nothing to choose
            chosen = select_on_all_rows(X, y, ix, k)
            honest[f"{fs} top-{k} chosen on all rows"] = {m: make(m, chosen) for m in models}
            honest[f"{fs} top-{k} chosen in fold"] = {
                m: SelectIndices(make(m, ix), k=k) for m in models
            }
    return plain, honest


def _samples_arrays(samples: Any) -> tuple[pd.DataFrame, np.ndarray]:
    X = samples.reflectance
    y = samples.target.to_numpy(dtype=float)
    if not np.isfinite(y).all() or X.isna().any().any():
        raise SampleDataError(
            f"{samples.source if hasattr(samples, 'source') else 'the samples'}: the evaluation "
            "needs reflectance and target on every row; rows with gaps should have been "
            "rejected by read_samples"
        )
    return X, y


def _check_evaluable(
    samples: Any,
    y: np.ndarray,
    feature_sets: Mapping[str, str],
    n_splits: int,
    protocols: Sequence[str],
) -> None:
    """Refuse, with the reason and the fix, samples no protocol can evaluate."""
    if np.ptp(y) == 0:
        raise SampleDataError(
            f"{samples.source}: the target is constant ({y[0]:g} on all {len(y)} samples), so "
            "there is nothing to model; check the target column (--target)"
        )
    folds = [p for p in protocols if p in ("repeated", "spatial")]
    if folds and len(y) < 2 * n_splits:
        raise SampleDataError(
            f"{samples.source}: {len(y)} samples are too few for {n_splits}-fold "
            f"cross-validation ({', '.join(folds)}); it needs at least {2 * n_splits} "
            "(two per fold). Add samples, or evaluate with protocols=['study'] only"
        )
    # A row whose index is undefined is set aside for the sets needing that index only
    # (FeatureSets.defined); the run goes on.


def evaluate_study(
    samples: Any,
    settings: EvaluationSettings | None = None,
    *,
    progress: Progress | Callable[[int, int], None] | None = None,
    **options: Any,
) -> EvaluationResult:
    """Evaluate the study's models as the study did and as a reviewer would.

    Parameters
    ----------
    samples : saltmap.io.samples.Samples
        Reflectance by band role, target and (for the spatial protocol)
        coordinates of each sample.
    settings : EvaluationSettings, optional
        Everything that decides the numbers, built once (by the CLI, the study
        or the caller); None: the defaults.
    progress : Progress or callable, optional
        A :class:`saltmap.progress.Progress` (task ``"evaluation"``, one tick per
        training set). A plain ``progress(done, total)`` callable is still
        accepted for one release.
    **options
        Fields of :class:`EvaluationSettings` (``quick=True``, ``n_jobs=1``, ...):
        they build the settings, or replace those fields of ``settings``. A name
        that is not a field is a TypeError.

    Returns
    -------
    EvaluationResult

    Examples
    --------
    >>> settings = EvaluationSettings(quick=True, protocols=("study",))
    >>> result = evaluate_study(samples, settings)  # doctest: +SKIP
    """
    return run_evaluation(samples, settings_with(settings, options), progress=progress)


def settings_with(
    settings: EvaluationSettings | None, options: Mapping[str, Any]
) -> EvaluationSettings:
    """``settings`` (None: the defaults) with the fields named in ``options`` replaced.

    Raises
    ------
    TypeError
        When an option is not a field of :class:`EvaluationSettings`, naming it.
    """
    known = {f.name for f in dataclasses.fields(EvaluationSettings)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(
            f"evaluate_study() got unexpected option(s) {', '.join(map(repr, unknown))}; "
            f"the options are the fields of EvaluationSettings: {', '.join(sorted(known))}"
        )
    if settings is None:
        return EvaluationSettings(**options)
    return dataclasses.replace(settings, **options) if options else settings


def run_evaluation(
    samples: Any,
    settings: EvaluationSettings,
    *,
    progress: Progress | Callable[[int, int], None] | None = None,
    cache: TuningCache | None = None,
) -> EvaluationResult:
    """:func:`evaluate_study` with its settings built: split, fit every fold, score, compare.

    ``cache`` holds the tuning searches shared by every model and fold of this
    evaluation (the Stacking model's bases are tuned as the single models are, on
    the same rows); None: a new one. A worker process tunes with a copy of its own,
    so less is shared there; the numbers are the same either way.
    """
    start = time.perf_counter()
    s = settings
    cache = TuningCache() if cache is None else cache
    X, y = _samples_arrays(samples)
    _check_evaluable(samples, y, s.feature_sets, s.plan.n_splits, s.protocols)
    Xc = None
    if s.covariates and s.covariates.categorical and s.covariates.min_count is None:
        # A level missing from a training fold would stop its test fold's predictions: in
        # the cross-validation levels seen fewer than 3 times are pooled, and unseen ones
        # join them (the example study's min_count).
        s = dataclasses.replace(s, covariates=dataclasses.replace(s.covariates, min_count=3))
    if s.covariates:
        Xc = predictor_table(samples, s.covariates)
        check_covariates_defined(Xc, s.covariates, samples.source)
    main = s.main_protocol(samples.coords is not None) if s.select else None
    # Each set resolved once, here: discovered indices travel to the workers as their
    # definitions, so no worker needs this session's registry (any n_jobs works).
    sets = feature_sets_of(X, s, main is not None)
    plain, honest_sets = _feature_variants(
        X, y, {fs: sets.items[fs] for fs in sets.evaluated}, s.models,
        functools.partial(s.model, cache=cache),
        nested_selection=s.nested_selection, k=s.selection_k,
    )  # fmt: skip
    sets.add_variants(honest_sets)
    splits, spatial_info = _protocol_splits(samples, X, y, s)
    tasks = _tasks(splits, plain, honest_sets, sets.models(s, cache), sets, main, s)
    inputs = _Inputs(X, Xc, s.cost_rows if main else 0, s.random_state)
    outputs = _fit_tasks(tasks, inputs, y, s.n_jobs, progress)
    scored = _score(tasks, outputs, X.index, y, s)
    selection = None
    if main is not None:
        fit = functools.partial(_fit_tasks, inputs=inputs, y=y, n_jobs=s.n_jobs,
                                progress=progress, what="nested choice")  # fmt: skip
        selection = choose_final(
            main, tasks, outputs, scored.cv_results, splits[main], sets, s, y=y,
            draws=scored.draws, fit=fit,
        )  # fmt: skip
    comparison = _compare_with_baseline(scored.cv_results, scored.draws) if s.baseline else None
    return EvaluationResult(
        table4=pd.DataFrame(scored.table4),
        honest=_ordered(pd.DataFrame(scored.honest)),
        baseline=comparison,
        predictions=pd.DataFrame(scored.predictions),
        folds=pd.concat(scored.folds, ignore_index=True) if scored.folds else pd.DataFrame(),
        settings=s.record(samples, spatial_info) | {"main_protocol": main},
        seconds=time.perf_counter() - start,
        selection=selection,
        set_aside=sets.set_aside_table(X.index),
    )


def _protocol_splits(
    samples: Any, X: pd.DataFrame, y: np.ndarray, s: EvaluationSettings
) -> tuple[dict[str, list[tuple[np.ndarray, np.ndarray]]], dict[str, Any]]:
    """The (train, test) pairs of every protocol, and facts about the spatial blocks."""
    splits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    spatial_info: dict[str, Any] = {}
    if "study" in s.protocols:
        splits["study"] = [
            study_split(y, validation_fraction=s.validation_fraction, random_state=s.random_state)
        ]
    if "repeated" in s.protocols:
        cv = RepeatedKFold(
            n_splits=s.plan.n_splits, n_repeats=s.n_repeats, random_state=s.random_state
        )
        splits["repeated"] = materialise_splits(cv, X, y)
    if "spatial" in s.protocols:
        splits["spatial"], spatial_info = _spatial_splits(samples, X, y, s)
    return splits, spatial_info


def _spatial_splits(
    samples: Any, X: pd.DataFrame, y: np.ndarray, s: EvaluationSettings
) -> tuple[list[tuple[np.ndarray, np.ndarray]], dict[str, Any]]:
    if samples.coords is None:
        raise SampleDataError(
            "the spatial protocol needs sample coordinates; give the x and y columns "
            "(and their CRS) when reading the samples, or leave 'spatial' out of protocols"
        )
    blocks = SpatialBlockKFold(
        s.plan.n_splits,
        coords=samples.coords,
        crs=samples.crs,
        block_size=s.block_size,
        random_state=s.random_state,
    )
    splits = materialise_splits(blocks, X, y)
    info = {
        "block_size_m": round(blocks.block_size_, 1),
        "n_blocks": int(blocks.blocks_.max() + 1),
        "metric_crs": blocks.crs_,
        "spatial_fold_sizes": [len(test) for _, test in splits],
    }
    return splits, info


def _tasks(
    splits: Mapping[str, list[tuple[np.ndarray, np.ndarray]]],
    plain: Mapping[str, dict[str, Any]],
    honest_sets: Mapping[str, dict[str, Any]],
    candidates: Mapping[str, dict[str, Any]],
    sets: FeatureSets,
    main: str | None,
    s: EvaluationSettings,
) -> list[_Task]:
    """One task per protocol, feature set and split. The cross-validations also fit the
    references (the plain random forest and the null model); the main protocol also fits
    the extra candidates of the final model's choice, and measures each candidate's
    inference cost on its first split. Each set keeps only the rows it can use."""
    tasks: list[_Task] = []
    for protocol, protocol_splits in splits.items():
        if protocol == "study":
            chosen = dict(plain)
        else:
            chosen = dict(honest_sets) | (dict(candidates) if protocol == main else {})
            chosen |= sets.references(s, with_forest=s.baseline or protocol == main)
        for fs, fs_models in chosen.items():
            ok = sets.defined[fs]
            cost = protocol == main and fs in [*sets.candidate_labels, BASELINE]
            tasks += [
                _Task(protocol, fs, i, train[ok[train]], test[ok[test]], fs_models,
                      covariates=sets.covariates.get(fs, False), cost=cost and i == 0)
                for i, (train, test) in enumerate(protocol_splits)
            ]  # fmt: skip
    return tasks


@dataclass
class _Inputs:
    """The model inputs of an evaluation: reflectance, with covariates, and scene-like rows."""

    X: pd.DataFrame
    Xc: pd.DataFrame | None
    n_cost: int
    random_state: int

    def __post_init__(self) -> None:
        from saltmap.validation.cost import scene_like_rows

        widest = self.X if self.Xc is None else self.Xc
        self.cost = scene_like_rows(widest, self.n_cost, self.random_state) if self.n_cost else None

    def table(self, covariates: bool) -> pd.DataFrame:
        return self.Xc if covariates and self.Xc is not None else self.X

    def cost_rows(self, covariates: bool) -> pd.DataFrame | None:
        if self.cost is None:
            return None
        return self.cost if covariates else self.cost[list(self.X.columns)]


def _fit_tasks(
    tasks: Sequence[Any],
    inputs: _Inputs,
    y: np.ndarray,
    n_jobs: int | None,
    progress: Progress | Callable[[int, int], None] | None,
    what: str = "evaluation",
) -> list[dict[str, dict[str, Any]]]:
    """Fit and predict every task, ``n_jobs`` at a time, reporting each one done."""
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(fit_predict_fold)(
            t.models, inputs.table(t.covariates), y, t.train, t.test,
            predict_train=getattr(t, "protocol", None) == "study",
            cost_rows=inputs.cost_rows(t.covariates) if getattr(t, "cost", False) else None,
        )
        for t in tasks
    )  # fmt: skip
    outputs = []
    with _ticker(progress, what, len(tasks)) as tick:
        for done, out in enumerate(jobs, start=1):
            outputs.append(out)
            tick(done, len(tasks))
    return outputs


def _ticker(
    progress: Progress | Callable[[int, int], None] | None, what: str, total: int
) -> contextlib.AbstractContextManager[Callable[[int, int | None], None]]:
    """A task of a :class:`~saltmap.progress.Progress`, or a plain ``progress(done, total)``
    callable (the older form, which the CLI and the study still pass) as one."""
    if progress is None or hasattr(progress, "task"):
        return task(progress, what, total)  # type: ignore[arg-type]
    return contextlib.nullcontext(progress)  # type: ignore[arg-type]


@dataclass
class _Scored:
    """The rows of every table, before they become DataFrames."""

    draws: np.ndarray
    table4: list[dict[str, Any]] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    honest: list[dict[str, Any]] = field(default_factory=list)
    folds: list[pd.DataFrame] = field(default_factory=list)
    cv_results: dict[tuple[str, str, str], CVResult] = field(default_factory=dict)


def _score(
    tasks: Sequence[_Task],
    outputs: Sequence[dict[str, dict[str, Any]]],
    ids: pd.Index,
    y: np.ndarray,
    s: EvaluationSettings,
) -> _Scored:
    """Table 4 and figure 5 rows from the study split; CV results from the other protocols."""
    grouped: dict[tuple[str, str], list[tuple[_Task, dict[str, Any]]]] = {}
    for t, out in zip(tasks, outputs, strict=True):
        grouped.setdefault((t.protocol, t.feature_set), []).append((t, out))
    scored = _Scored(draws=bootstrap_draws(len(y), s.n_boot, s.random_state))
    for (protocol, fs), pairs in grouped.items():
        outs = [out for _, out in pairs]
        fs_splits = [(t.train, t.test) for t, _ in pairs]
        if protocol == "study":
            rows, preds, val_rows = study_split_scores(
                fs, outs[0], ids, y, fs_splits[0], s.n_boot, s.random_state
            )
            scored.table4 += rows
            scored.predictions += preds
            scored.honest += val_rows
            continue
        for model, res in collect_folds(outs, fs_splits, y, s.plan.n_splits).items():
            scored.cv_results[(protocol, fs, model)] = res
            labels = {"protocol": protocol, "feature_set": fs, "model": model}
            clipped = {c: int(res.folds[c].sum()) for c in ("n_floor", "n_ceiling")}
            scored.honest.append(labels | res.summary(scored.draws) | clipped)
            scored.folds.append(res.folds.assign(**labels))
    return scored


def _compare_with_baseline(
    cv_results: dict[tuple[str, str, str], CVResult], draws: np.ndarray
) -> pd.DataFrame | None:
    """:func:`baseline_comparison` on the repeated folds (the null model among the others)."""
    reference = cv_results.get(("repeated", BASELINE, BASELINE))
    if reference is None:
        return None
    contenders = {
        (fs, model): res
        for (protocol, fs, model), res in cv_results.items()
        if protocol == "repeated" and fs != BASELINE
    }
    return baseline_comparison(contenders, reference, draws)


def _ordered(honest: pd.DataFrame) -> pd.DataFrame:
    """The honest table in protocol order (study, repeated, spatial), then by feature set."""
    if not len(honest):
        return honest
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    return honest.sort_values(
        ["protocol", "feature_set"], key=lambda s: s.map(order) if s.name == "protocol" else s,
        kind="stable",
    ).reset_index(drop=True)  # fmt: skip

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

:func:`baseline_comparison` sets each model against a plain random forest
(300 trees, scikit-learn defaults, all 21 study indices) on the same
repeated-CV folds, with a paired bootstrap interval of the difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import RepeatedKFold
from sklearn.pipeline import Pipeline

from saltmap.atomic import atomic_to_csv, atomic_write_text
from saltmap.errors import SampleDataError
from saltmap.features.indices import IndexFeatures, compute_indices, resolve
from saltmap.models.building import MODEL_NAMES, TunedModel, check_indices_defined
from saltmap.validation.metrics import (
    CI_METRICS,
    CVResult,
    bootstrap_draws,
    bootstrap_fold_means,
    paired_difference,
    percentile_ci,
    regression_metrics,
)
from saltmap.validation.protocols import (
    CorrelationSelector,
    SelectIndices,
    collect_folds,
    fit_predict_fold,
)
from saltmap.validation.splits import SpatialBlockKFold, materialise_splits, study_split

PROTOCOLS: tuple[str, ...] = ("study", "repeated", "spatial")
FEATURE_SETS: dict[str, str] = {"N-SI": "novel", "SI": "classic"}
BASELINE = "plain RF"


@dataclass(frozen=True)
class Plan:
    """How much work an evaluation does (full or quick)."""

    n_splits: int
    n_repeats: int
    n_boot: int
    budget: str


FULL = Plan(n_splits=5, n_repeats=5, n_boot=2000, budget="default")
# Faithful in kind (every protocol, model and feature set, tuning in every fold),
# small in size: one repeat, a few trials, small forests.
QUICK = Plan(n_splits=5, n_repeats=1, n_boot=300, budget="quick")


@dataclass
class EvaluationResult:
    """What :func:`evaluate_study` measured.

    Attributes
    ----------
    table4 : DataFrame
        The study's Table 4: per feature set and model, R², RMSE, MAE on
        calibration (``R2_c`` …) and validation (``R2_v`` …), plus validation
        bias and RPIQ.
    honest : DataFrame
        Per protocol, feature set and model: ``<metric>_mean``, ``_sd``,
        ``_ci_low``, ``_ci_high`` (and ``R2_pooled``). Protocol ``study``
        holds the validation set with a bootstrap interval over its rows.
    baseline : DataFrame or None
        :func:`baseline_comparison` on the repeated folds.
    predictions : DataFrame
        Study split: ``feature_set``, ``model``, ``sample``, ``set``
        (calibration / validation), ``measured``, ``predicted`` (figure 5).
    folds : DataFrame
        Every fold's scores, per protocol, feature set and model.
    settings : dict
        Everything that decides the numbers.
    seconds : float
        Wall time.
    """

    table4: pd.DataFrame
    honest: pd.DataFrame
    baseline: pd.DataFrame | None
    predictions: pd.DataFrame
    folds: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")


@dataclass
class _Task:
    protocol: str
    feature_set: str
    split: int
    train: np.ndarray
    test: np.ndarray
    models: dict[str, Any]


def study_estimator(
    name: str,
    indices: str | list[str],
    *,
    quick: bool = False,
    n_trials: int | None = None,
    log_target: bool = False,
    random_state: int = 0,
) -> TunedModel:
    """One of the study's models, tuned on whatever rows it is fitted on."""
    return TunedModel(
        name,
        indices=indices,
        budget=QUICK.budget if quick else FULL.budget,
        n_trials=n_trials,
        log_target=log_target,
        random_state=random_state,
    )


def plain_forest(random_state: int = 0) -> Pipeline:
    """The reference model: a random forest of 300 trees with scikit-learn's defaults
    on all 21 study indices (17 classic + 4 novel), untuned."""
    return Pipeline(
        [
            ("indices", IndexFeatures("study")),
            ("model", RandomForestRegressor(n_estimators=300, random_state=random_state)),
        ]
    )


def select_on_all_rows(X: pd.DataFrame, y: Any, indices: str | list[str], k: int) -> list[str]:
    """The ``k`` indices best correlated with the target on every row, as the study screens.

    Used before a cross-validation, this choice has seen the test rows; it is
    the optimistic reference for :class:`~saltmap.validation.protocols.SelectIndices`.
    """
    names = resolve(indices)
    selector = CorrelationSelector(k).fit(compute_indices(X, names), y)
    return [n for n, keep in zip(names, selector.get_support(), strict=True) if keep]


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
    for indices in feature_sets.values():
        check_indices_defined(samples, indices)


def evaluate_study(
    samples: Any,
    *,
    feature_sets: Mapping[str, str] = FEATURE_SETS,
    models: Sequence[str] = MODEL_NAMES,
    protocols: Sequence[str] = PROTOCOLS,
    quick: bool = False,
    n_trials: int | None = None,
    n_repeats: int | None = None,
    validation_fraction: float = 0.3,
    block_size: float | None = None,
    nested_selection: bool = False,
    selection_k: int = 4,
    baseline: bool = True,
    n_boot: int | None = None,
    random_state: int = 0,
    log_target: bool = False,
    n_jobs: int | None = 2,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationResult:
    """Evaluate the study's models as the study did and as a reviewer would.

    Parameters
    ----------
    samples : saltmap.io.samples.Samples
        Reflectance by band role, target and (for the spatial protocol)
        coordinates of each sample.
    feature_sets : mapping, default={"N-SI": "novel", "SI": "classic"}
        Label -> index set (see :func:`saltmap.features.indices.resolve`).
    models : sequence of str, default=MODEL_NAMES
    protocols : sequence of {"study", "repeated", "spatial"}
        ``study``: one stratified calibration/validation split (Table 4,
        figure 5); ``repeated``: repeated k-fold; ``spatial``: spatial block
        k-fold (blocks as in :class:`~saltmap.validation.protocols.SpatialBlockKFold`).
    quick : bool, default=False
        A faithful miniature: one repeat, the ``quick`` tuning budget (few
        trials, small forests), fewer bootstrap draws.
    n_trials : int or None
        Optuna trials per model (per base learner for Stacking); ``None``:
        the budget's. 0 fits untuned defaults.
    n_repeats : int or None
        Repeats of the k-fold (5 folds); ``None``: 5, or 1 when ``quick``.
    validation_fraction : float, default=0.3
        The study's validation share.
    block_size : float or None
        Side of the spatial blocks in metres; ``None``: 4 × the median
        nearest-neighbour distance.
    nested_selection : bool, default=False
        Also evaluate, for feature sets of more than ``selection_k`` indices,
        the top ``selection_k`` by |Pearson r| chosen on all rows (as the study
        screens) and chosen inside each training fold.
    baseline : bool, default=True
        Compare with :func:`plain_forest` on the repeated folds.
    n_boot : int or None
        Bootstrap draws for the intervals; ``None``: 2000 (300 when quick).
    random_state : int, default=0
        Seed of the splits, the tuning, the models and the bootstrap.
    log_target : bool, default=False
        Model log10 of the target; metrics stay in the target's unit.
    n_jobs : int or None, default=2
        Training sets fitted in parallel.
    progress : callable, optional
        ``progress(done, total)`` after each training set.

    Returns
    -------
    EvaluationResult
    """
    start = time.perf_counter()
    plan = QUICK if quick else FULL
    n_repeats = plan.n_repeats if n_repeats is None else n_repeats
    n_boot = plan.n_boot if n_boot is None else n_boot
    unknown = set(protocols) - set(PROTOCOLS)
    if unknown:
        raise ValueError(f"unknown protocol(s) {sorted(unknown)}; choose from {PROTOCOLS}")
    X, y = _samples_arrays(samples)
    _check_evaluable(samples, y, feature_sets, plan.n_splits, protocols)

    def make(name: str, indices: Any) -> TunedModel:
        return study_estimator(
            name, indices, quick=quick, n_trials=n_trials, log_target=log_target,
            random_state=random_state,
        )  # fmt: skip

    plain, honest_sets = _feature_variants(
        X, y, feature_sets, models, make, nested_selection=nested_selection, k=selection_k
    )
    splits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    spatial_info: dict[str, Any] = {}
    if "study" in protocols:
        splits["study"] = [
            study_split(y, validation_fraction=validation_fraction, random_state=random_state)
        ]
    if "repeated" in protocols:
        cv = RepeatedKFold(n_splits=plan.n_splits, n_repeats=n_repeats, random_state=random_state)
        splits["repeated"] = materialise_splits(cv, X, y)
    if "spatial" in protocols:
        if samples.coords is None:
            raise SampleDataError(
                "the spatial protocol needs sample coordinates; give the x and y columns "
                "(and their CRS) when reading the samples, or leave 'spatial' out of protocols"
            )
        blocks = SpatialBlockKFold(
            plan.n_splits,
            coords=samples.coords,
            crs=samples.crs,
            block_size=block_size,
            random_state=random_state,
        )
        splits["spatial"] = materialise_splits(blocks, X, y)
        spatial_info = {
            "block_size_m": round(blocks.block_size_, 1),
            "n_blocks": int(blocks.blocks_.max() + 1),
            "metric_crs": blocks.crs_,
            "spatial_fold_sizes": [len(test) for _, test in splits["spatial"]],
        }

    tasks: list[_Task] = []
    for protocol, protocol_splits in splits.items():
        sets = plain if protocol == "study" else honest_sets
        for fs, fs_models in sets.items():
            for i, (train, test) in enumerate(protocol_splits):
                tasks.append(_Task(protocol, fs, i, train, test, fs_models))
        if protocol == "repeated" and baseline:
            for i, (train, test) in enumerate(protocol_splits):
                tasks.append(
                    _Task(
                        protocol, BASELINE, i, train, test, {BASELINE: plain_forest(random_state)}
                    )
                )

    outputs = []
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(fit_predict_fold)(
            t.models, X, y, t.train, t.test, predict_train=t.protocol == "study"
        )
        for t in tasks
    )
    for done, out in enumerate(jobs, start=1):
        outputs.append(out)
        if progress is not None:
            progress(done, len(tasks))

    grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for task, out in zip(tasks, outputs, strict=True):
        grouped.setdefault((task.protocol, task.feature_set), []).append(out)

    draws = bootstrap_draws(len(y), n_boot, random_state)
    table4, predictions, honest_rows, fold_tables = [], [], [], []
    cv_results: dict[tuple[str, str, str], CVResult] = {}
    for (protocol, fs), outs in grouped.items():
        if protocol == "study":
            cal, val = splits["study"][0]
            rows, preds, val_rows = _study_tables(
                fs, outs[0], X.index, y, cal, val, n_boot, random_state
            )
            table4 += rows
            predictions += preds
            honest_rows += val_rows
            continue
        per_repeat = plan.n_splits
        for model, res in collect_folds(outs, splits[protocol], y, per_repeat).items():
            cv_results[(protocol, fs, model)] = res
            summary = res.summary(draws)
            honest_rows.append({"protocol": protocol, "feature_set": fs, "model": model} | summary)
            fold_tables.append(res.folds.assign(protocol=protocol, feature_set=fs, model=model))

    comparison = None
    if baseline and ("repeated", BASELINE, BASELINE) in cv_results:
        reference = cv_results.pop(("repeated", BASELINE, BASELINE))
        contenders = {
            (fs, model): res
            for (protocol, fs, model), res in cv_results.items()
            if protocol == "repeated"
        }
        comparison = baseline_comparison(contenders, reference, draws)
    honest = pd.DataFrame(honest_rows)
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    if len(honest):
        honest = honest.sort_values(
            ["protocol", "feature_set"], key=lambda s: s.map(order) if s.name == "protocol" else s,
            kind="stable",
        ).reset_index(drop=True)  # fmt: skip
    settings = {
        "n_samples": len(y),
        "target": getattr(samples, "target_name", "target"),
        "target_unit": getattr(samples, "target_unit", None),
        "feature_sets": dict(feature_sets),
        "models": list(models),
        "protocols": list(protocols),
        "quick": quick,
        "budget": plan.budget,
        "n_trials": n_trials,
        "n_splits": plan.n_splits,
        "n_repeats": n_repeats,
        "validation_fraction": validation_fraction,
        "block_size": block_size,
        **spatial_info,
        "nested_selection": nested_selection,
        "selection_k": selection_k,
        "n_boot": n_boot,
        "random_state": random_state,
        "log_target": log_target,
    }
    return EvaluationResult(
        table4=pd.DataFrame(table4),
        honest=honest,
        baseline=comparison,
        predictions=pd.DataFrame(predictions),
        folds=pd.concat(fold_tables, ignore_index=True) if fold_tables else pd.DataFrame(),
        settings=settings,
        seconds=time.perf_counter() - start,
    )


def _study_tables(
    fs: str,
    out: dict[str, dict[str, Any]],
    ids: pd.Index,
    y: np.ndarray,
    cal: np.ndarray,
    val: np.ndarray,
    n_boot: int,
    random_state: int,
) -> tuple[list[dict], list[dict], list[dict]]:
    """Table 4 rows, figure 5 predictions and the validation row of the honest table."""
    draws = bootstrap_draws(len(val), n_boot, random_state)
    table4, preds, honest = [], [], []
    for model, fitted in out.items():
        c = regression_metrics(y[cal], fitted["train"])
        v = regression_metrics(y[val], fitted["test"])
        table4.append(
            {"feature_set": fs, "model": model}
            | {f"{m}_c": c[m] for m in ("R2", "RMSE", "MAE")}
            | {f"{m}_v": v[m] for m in ("R2", "RMSE", "MAE", "bias", "RPIQ")}
            | {"n_c": len(cal), "n_v": len(val)}
        )
        for part, rows, p in (
            ("calibration", cal, fitted["train"]),
            ("validation", val, fitted["test"]),
        ):
            preds += [
                {"feature_set": fs, "model": model, "sample": ids[r], "set": part,
                 "measured": y[r], "predicted": float(q)}
                for r, q in zip(rows, p, strict=True)
            ]  # fmt: skip
        boot = bootstrap_fold_means(y[val], [(np.arange(len(val)), fitted["test"])], draws)
        row = {"protocol": "study", "feature_set": fs, "model": model, "n_folds": 1}
        for m in ("R2", "RMSE", "MAE", "bias", "RPIQ"):
            row[f"{m}_mean"], row[f"{m}_sd"] = v[m], np.nan
        row["R2_pooled"] = v["R2"]
        boot["R2_pooled"] = boot["R2"]
        for m in (*CI_METRICS, "R2_pooled"):
            row[f"{m}_ci_low"], row[f"{m}_ci_high"] = percentile_ci(boot[m])
        honest.append(row)
    return table4, preds, honest


def baseline_comparison(
    results: Mapping[tuple[str, str], CVResult], baseline: CVResult, draws: np.ndarray
) -> pd.DataFrame:
    """Each model against the plain random forest on the same folds.

    Parameters
    ----------
    results : mapping (feature_set, model) -> CVResult
        Repeated-CV results, on the same splits as ``baseline``.
    baseline : CVResult
        :func:`plain_forest` on those splits.
    draws : ndarray
        Bootstrap draws (:func:`~saltmap.validation.protocols.bootstrap_draws`); the
        same draws re-weight both models, so the intervals are paired.

    Returns
    -------
    DataFrame
        Per feature set and model: its and the baseline's pooled R² and mean
        RMSE, the differences ``dR2_pooled``, ``dR2`` (fold mean), ``dRMSE``,
        ``dMAE`` (model − baseline) with paired 95 % intervals, and ``verdict``:
        ``better`` when the whole RMSE interval is below 0, ``worse`` when
        above, else ``no clear difference``.
    """
    rows = []
    for (fs, model), res in results.items():
        diff = paired_difference(res, baseline, draws)
        lo, hi = diff["dRMSE_ci_low"], diff["dRMSE_ci_high"]
        verdict = "better" if hi < 0 else "worse" if lo > 0 else "no clear difference"
        rows.append(
            {"feature_set": fs, "model": model,
             "R2_pooled": res.pooled_r2(), "R2_pooled_baseline": baseline.pooled_r2(),
             "RMSE_mean": res.folds["RMSE"].mean(), "RMSE_baseline": baseline.folds["RMSE"].mean()}
            | {k: v for k, v in diff.items() if not k.startswith("dbias")}
            | {"verdict": verdict}
        )  # fmt: skip
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- tables as text


def _digits(values: Any) -> int:
    """Decimals for values in the target's unit: none for hundreds, more for small units."""
    typical = float(np.nanmedian(np.abs(np.asarray(values, dtype=float))))
    if not np.isfinite(typical) or typical >= 100:
        return 0
    return 1 if typical >= 10 else 2 if typical >= 1 else 3


def _num(value: float, digits: int) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.{digits}f}"


def _mean_sd_ci(row: pd.Series, metric: str, digits: int, ci: bool = True) -> str:
    text = _num(row[f"{metric}_mean"], digits)
    sd = row.get(f"{metric}_sd", np.nan)
    if sd is not None and np.isfinite(sd):
        text += f" ± {_num(sd, digits)}"
    lo, hi = row.get(f"{metric}_ci_low", np.nan), row.get(f"{metric}_ci_high", np.nan)
    if ci and np.isfinite(lo):
        text += f" [{_num(lo, digits)}, {_num(hi, digits)}]"
    return text


def format_table4(table4: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """Table 4 as the study prints it: R², RMSE, MAE for calibration (c) and validation (v)."""
    u = f" ({unit})" if unit else ""
    digits = _digits(table4["RMSE_v"])
    out = table4[["feature_set", "model"]].rename(columns={"feature_set": "features"})
    labels = {"R2_c": "R²c", "RMSE_c": f"RMSEc{u}", "MAE_c": f"MAEc{u}",
              "R2_v": "R²v", "RMSE_v": f"RMSEv{u}", "MAE_v": f"MAEv{u}"}  # fmt: skip
    for col, label in labels.items():
        out[label] = [_num(v, 2 if col.startswith("R2") else digits) for v in table4[col]]
    return out


def format_honest(honest: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """The honest table: per protocol, R² (fold mean ± sd; pooled with its 95 % CI), and
    RMSE and MAE (fold mean ± sd [95 % CI])."""
    u = f" ({unit})" if unit else ""
    digits = _digits(honest["RMSE_mean"])
    rows = [r for _, r in honest.iterrows()]
    out = honest[["protocol", "feature_set", "model", "n_folds"]].rename(
        columns={"feature_set": "features", "n_folds": "folds"}
    )
    out["R² folds mean ± sd"] = [_mean_sd_ci(r, "R2", 2, ci=False) for r in rows]
    out["R² pooled [95 % CI]"] = [
        f"{_num(r['R2_pooled'], 2)} [{_num(r['R2_pooled_ci_low'], 2)}, "
        f"{_num(r['R2_pooled_ci_high'], 2)}]"
        for r in rows
    ]
    for metric in ("RMSE", "MAE"):
        out[f"{metric}{u} mean ± sd [95 % CI]"] = [_mean_sd_ci(r, metric, digits) for r in rows]
    return out


def format_baseline(comparison: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """Each model against the plain random forest: differences with paired 95 % CIs."""
    u = f" ({unit})" if unit else ""
    digits = _digits(comparison["RMSE_baseline"])
    rows = [r for _, r in comparison.iterrows()]
    out = comparison[["feature_set", "model"]].rename(columns={"feature_set": "features"})
    out["pooled R² (model / plain RF)"] = [
        f"{_num(r['R2_pooled'], 2)} / {_num(r['R2_pooled_baseline'], 2)}" for r in rows
    ]
    out[f"RMSE{u} (model / plain RF)"] = [
        f"{_num(r['RMSE_mean'], digits)} / {_num(r['RMSE_baseline'], digits)}" for r in rows
    ]
    for key, label, d in (("R2_pooled", "Δ pooled R²", 2), ("RMSE", f"ΔRMSE{u}", digits),
                          ("MAE", f"ΔMAE{u}", digits)):  # fmt: skip
        out[f"{label} [95 % CI]"] = [
            f"{_num(r[f'd{key}'], d)} [{_num(r[f'd{key}_ci_low'], d)}, "
            f"{_num(r[f'd{key}_ci_high'], d)}]"
            for r in rows
        ]
    out["verdict (RMSE)"] = comparison["verdict"]
    return out


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (cells as they are)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def table4_markdown(table4: pd.DataFrame, unit: str | None = None) -> str:
    """:func:`format_table4` as Markdown."""
    return markdown_table(format_table4(table4, unit))


def honest_markdown(honest: pd.DataFrame, unit: str | None = None) -> str:
    """:func:`format_honest` as Markdown."""
    return markdown_table(format_honest(honest, unit))


def baseline_markdown(comparison: pd.DataFrame, unit: str | None = None) -> str:
    """:func:`format_baseline` as Markdown."""
    return markdown_table(format_baseline(comparison, unit))


# --------------------------------------------------------------------------- files


def evaluation_files(out: str | Path) -> dict[str, Path]:
    """The files :func:`write_evaluation` writes into the folder ``out``."""
    out = Path(out)
    names = {
        "table4": "table4.csv", "table4_md": "table4.md", "honest": "honest.csv",
        "honest_md": "honest.md", "baseline": "baseline.csv", "baseline_md": "baseline.md",
        "folds": "folds.csv", "predictions": "predictions.csv", "settings": "settings.json",
        "figure5": "figure5.png", "figure5_svg": "figure5.svg",
    }  # fmt: skip
    return {key: out / name for key, name in names.items()}


def write_evaluation(result: EvaluationResult, out: str | Path) -> list[Path]:
    """Write the tables (CSV and Markdown), fold scores, predictions, settings and
    figure 5 of an evaluation into the folder ``out``; return the files written."""
    import json

    from saltmap.plots import prediction_figure, save_figure

    files = evaluation_files(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    unit = result.settings.get("target_unit")
    target = result.settings.get("target", "target")
    written = []
    for key, frame, to_md in (
        ("table4", result.table4, table4_markdown),
        ("honest", result.honest, honest_markdown),
        ("baseline", result.baseline, baseline_markdown),
    ):
        if frame is None or frame.empty:
            continue
        atomic_to_csv(frame, files[key], index=False)
        atomic_write_text(files[f"{key}_md"], to_md(frame, unit))
        written += [files[key], files[f"{key}_md"]]
    for key, frame in (("folds", result.folds), ("predictions", result.predictions)):
        if not frame.empty:
            atomic_to_csv(frame, files[key], index=False)
            written.append(files[key])
    settings = {**result.settings, "seconds": round(result.seconds, 1)}
    atomic_write_text(files["settings"], json.dumps(settings, indent=2, default=str))
    written.append(files["settings"])
    if not result.predictions.empty:
        fig = prediction_figure(result.predictions, result.table4, target_label=target, unit=unit)
        written += save_figure(fig, files["figure5"], formats=("png", "svg"))
    return written

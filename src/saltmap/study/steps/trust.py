"""Part of the final fit, trust: the prediction intervals and the area of applicability of
the final model, and the intervals' coverage on held-out samples of the evaluation's folds."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from saltmap.models import make_model
from saltmap.plots import calibration_figure
from saltmap.progress import task
from saltmap.study.context import log
from saltmap.study.folds import outer_splits
from saltmap.trust import (
    COMPARED,
    TrustSettings,
    calibration_curve,
    calibration_summary,
    coverage_summary,
    evaluate_coverage,
    fit_trust,
    held_out_intervals,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from saltmap.study.config import StudyConfig
    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData
    from saltmap.trust import TrustModel


def unfitted_final_model(ctx: RunContext, params: dict[str, Any], indices: list[Any]) -> Pipeline:
    """The final model with its tuned hyperparameters, not fitted; ``indices`` as items
    (discovered ones as their definitions, which worker processes compute as they are)."""
    m, final = ctx.cfg.models, ctx.final
    # The evaluation's choice (issue 14) when it made one, else the model the study names.
    name = final.name if final is not None else m.final
    covariates = final.covariates if final is not None else ctx.covariates
    return make_model(name, indices=indices,
                      log_target=m.log_target, random_state=ctx.cfg.seed, params=params,
                      covariates=covariates)  # fmt: skip


def trust_settings(cfg: StudyConfig) -> TrustSettings:
    """The study's interval and AOA choices, as :func:`~saltmap.trust.maps.fit_trust` takes them."""
    iv = cfg.intervals
    return TrustSettings(
        confidence=iv.level, method=iv.method, conformity_score=iv.score, random_state=cfg.seed
    )


def fit_study_trust(ctx: RunContext, data: SampleData, model: Pipeline) -> TrustModel:
    """Intervals and AOA of ``model`` on all samples (a spinner while it runs)."""
    cfg = ctx.cfg
    what = "final fit: prediction intervals and area of applicability"
    with task(ctx.progress, what), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trust = fit_trust(
            model, data.predictors, data.samples.target.to_numpy(dtype=float),
            trust_settings(cfg),
        )  # fmt: skip
    log.info("intervals and AOA fitted (%s)", trust.info)
    return trust


def coverage_on(
    ctx: RunContext, data: SampleData, model: Pipeline, protocol: str
) -> dict[str, Any] | None:
    """Coverage of the nominal interval on the test samples of each fold of ``protocol``,
    the intervals fitted on the fold's training samples (two worker processes). Used for
    ``"plus"``/``"minmax"``, whose other levels the calibration does not recompute."""
    splits = outer_splits(ctx.cfg, data.samples, protocol)
    if splits is None:
        return None
    settings = trust_settings(ctx.cfg).interval_settings()
    X, y = data.predictors, data.samples.target.to_numpy(dtype=float)
    # The model's discovered indices are definitions: the workers compute them as they are.
    jobs = Parallel(n_jobs=2, return_as="generator")(
        delayed(evaluate_coverage)(model, X, y, [split], settings) for split in splits
    )
    parts = _gather(ctx, jobs, len(splits), f"interval coverage, {protocol} CV")
    folds = pd.concat(parts, ignore_index=True)
    folds["repeat"] = np.arange(len(folds)) // 5
    folds["fold"] = np.arange(len(folds)) % 5
    return {"protocol": protocol, "nominal": settings.confidence, **coverage_summary(folds)}


def _gather(ctx: RunContext, jobs: Any, total: int, what: str) -> list[Any]:
    """The results of a generator of jobs, ticking the progress as each arrives."""
    parts = []
    with warnings.catch_warnings(), task(ctx.progress, what) as tick:
        warnings.simplefilter("ignore")
        for part in jobs:
            parts.append(part)
            tick(len(parts), total)
    return parts


def calibration_on(
    ctx: RunContext, data: SampleData, model: Pipeline, protocol: str
) -> pd.DataFrame | None:
    """Held-out intervals of both methods (:func:`~saltmap.trust.calibration.held_out_intervals`)
    on the folds of ``protocol``, the trust model fitted on each fold's training samples."""
    splits = outer_splits(ctx.cfg, data.samples, protocol)
    if splits is None:
        return None
    settings = trust_settings(ctx.cfg)
    X, y = data.predictors, data.samples.target.to_numpy(dtype=float)
    jobs = Parallel(n_jobs=2, return_as="generator")(
        delayed(held_out_intervals)(model, X, y, [split], settings) for split in splits
    )
    parts = _gather(ctx, jobs, len(splits), f"interval calibration, {protocol} CV")
    for i, part in enumerate(parts):
        part["split"], part["repeat"] = i, i // 5
    return pd.concat(parts, ignore_index=True)


def coverage_row(protocol: str, table: pd.DataFrame, method: str, level: float) -> dict[str, Any]:
    """The coverage table's row of ``method`` from a held-out table."""
    summary = calibration_summary(table, level).set_index("method").loc[method]
    per_repeat = table[f"{method}_covered@{level:g}"].groupby(table["repeat"]).mean()
    return {
        "protocol": protocol, "method": method, "nominal": level,
        "coverage": summary["coverage"], "coverage_min_repeat": per_repeat.min(),
        "coverage_max_repeat": per_repeat.max(), "mean_width": summary["mean_width"],
        "median_width": summary["median_width"], "n_predictions": len(table),
        "n_folds": int(table["split"].nunique()),
    }  # fmt: skip


def write_calibration(ctx: RunContext, data: SampleData, tables: dict[str, pd.DataFrame]) -> None:
    """The calibration table (both methods, marginal and by tercile) and figure, in Maps."""
    level = ctx.cfg.intervals.level
    rows = [
        {"protocol": protocol, **row}
        for protocol, table in tables.items()
        for row in calibration_summary(table, level).to_dict("records")
    ]
    unit = data.samples.target_unit or ""
    sec = ctx.section("maps")
    sec.add(
        ctx.save_table(
            "interval_calibration",
            pd.DataFrame(rows),
            f"Calibration of the {level:.0%} intervals: adaptive against constant width",
            "Both methods from the same fits (the same out-of-fold residuals): normalized "
            "(the width follows the error expected at the sample) and base (one constant "
            "width). Coverage pooled over all held-out predictions, its range over repeats, "
            "and by tercile (t1 lowest) of the predicted value and of the dissimilarity "
            "index: a constant width over-covers where errors are small and under-covers "
            "where they are large. worst_gap: the largest distance of a tercile from nominal, "
            f"in points. Widths in {unit}; width_iqr_share: interquartile range of the width "
            "over its median (0 for a constant width, except where the lower bound is raised "
            "to 0).",
            digits=3,
        )
    )
    curves = {f"{p} CV": calibration_curve(t) for p, t in tables.items()}
    fig = calibration_figure(curves, title="Empirical against nominal coverage, held-out samples")
    sec.add(
        ctx.save_figure(
            "interval_calibration",
            fig,
            "Calibration of the prediction intervals",
            "Share of held-out samples inside their interval at nominal levels 50–95 %, one "
            "line per method; on the diagonal, an interval means what it says.",
        )
    )


def write_coverage(ctx: RunContext, data: SampleData, rows: list[dict[str, Any]]) -> None:
    """The coverage table (in the maps' section) and its summary sentence."""
    level = ctx.cfg.intervals.level
    ctx.highlights.append(
        f"{level:.0%} prediction intervals cover "
        + ", ".join(
            f"{r['coverage']:.1%} of held-out samples under {r['protocol']} CV" for r in rows
        )
        + f" ({ctx.cfg.intervals.method} method, mean width {rows[0]['mean_width']:.4g} "
        f"{data.samples.target_unit or ''}; Maps)."
    )
    ctx.section("maps").add(
        ctx.save_table(
            "interval_coverage",
            pd.DataFrame(rows),
            f"Coverage of the {level:.0%} prediction intervals on held-out samples",
            "Each outer fold fits the intervals on its training samples only and counts "
            "how many of its test samples fall inside. Random folds should come close to "
            "the nominal level; spatial folds show what to expect on new ground. The "
            "final model's hyperparameters (tuned on all samples) are reused, a mild "
            "optimism.",
            digits=3,
        )
    )


def measure_coverage(ctx: RunContext, data: SampleData, model: Pipeline) -> None:
    """Coverage of the study's method on each protocol and, for the methods that follow
    from the map's prediction, the calibration of adaptive against constant width."""
    cfg = ctx.cfg
    method, level = cfg.intervals.method, cfg.intervals.level
    if method in COMPARED:
        tables = {p: calibration_on(ctx, data, model, p) for p in cfg.intervals.coverage}
        tables = {p: t for p, t in tables.items() if t is not None}
        rows = [coverage_row(p, t, method, level) for p, t in tables.items()]
        if tables:
            write_calibration(ctx, data, tables)
    else:
        rows = [coverage_on(ctx, data, model, p) for p in cfg.intervals.coverage]
        rows = [{"method": method, **r} for r in rows if r is not None]
    if rows:
        write_coverage(ctx, data, rows)


def run_trust(
    ctx: RunContext, data: SampleData, params: dict[str, Any], indices: list[Any]
) -> TrustModel | None:
    """Fit intervals and AOA, measure the intervals' coverage and write it; the trust model
    (None when the study turns both off). ``indices``: the final model's, as items."""
    cfg = ctx.cfg
    if not (cfg.intervals.enabled or cfg.aoa.enabled):
        return None
    model = unfitted_final_model(ctx, params, indices)
    trust = fit_study_trust(ctx, data, model)
    if cfg.intervals.enabled and cfg.intervals.coverage:
        measure_coverage(ctx, data, model)
    return trust

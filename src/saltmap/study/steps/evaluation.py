"""Step 4, evaluation: the study's split (Table 4, figure 5) and the honest protocols beside
it (repeated and spatial cross-validation, the plain-forest baseline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from saltmap.features import item_name, resolve_items, resolve_selection
from saltmap.plots import prediction_figure
from saltmap.report import Note
from saltmap.study.context import FinalChoice
from saltmap.study.tables import compact_baseline_table, compact_cv_table, evaluation_highlights
from saltmap.tables import format_candidates
from saltmap.validation import (
    BASELINE,
    COVARIATE_SUFFIX,
    PLAIN_FOREST,
    EvaluationSettings,
    Selection,
    evaluate_study,
    no_skill_sentence,
)

if TYPE_CHECKING:
    from saltmap.features import Covariates
    from saltmap.study.config import StudyConfig
    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData
    from saltmap.validation import EvaluationResult

# Training sets fitted at once: the study runs on the two shared cores. Discovered indices
# travel to the workers as definitions, so they need no registry there.
JOBS = 2


def feature_sets(cfg: StudyConfig, discovered: Sequence[Mapping[str, Any]]) -> dict[str, list]:
    """The study's index sets as index items: catalogue names, and the definitions of the
    discovered indices they select (from ``discovered``, the discovery step's)."""
    return {
        label: resolve_selection(sel, discovered=discovered)
        for label, sel in cfg.indices.sets.items()
    }


def evaluation_settings(
    cfg: StudyConfig, sets: Mapping[str, list], covariates: Covariates | None = None
) -> EvaluationSettings:
    """The evaluation's settings, built once from the study's config (``covariates``: the
    study's, which the final model's candidates are also scored with)."""
    v, t = cfg.validation, cfg.tuning
    return EvaluationSettings(
        feature_sets=dict(sets),
        models=list(cfg.models.names),
        protocols=list(v.protocols),
        quick=t.budget == "quick",
        n_trials=t.n_trials,
        n_repeats=v.repeats,
        validation_fraction=v.test_size,
        block_size=v.block_size,
        nested_selection=v.nested_selection,
        selection_k=v.selection_k,
        baseline=v.baseline,
        n_boot=v.bootstrap,
        random_state=cfg.seed,
        log_target=cfg.models.log_target,
        n_jobs=JOBS,
        # The choice runs whenever a cross-validation does: with final = "auto" it picks
        # the final model; with a named one the report says how that one ranked.
        select=bool({"repeated", "spatial"} & set(v.protocols)),
        candidate_sets=None if cfg.models.candidates else {},
        covariates=covariates,
    )


def evaluate(ctx: RunContext, data: SampleData, settings: EvaluationSettings) -> EvaluationResult:
    """Every model on every feature set under the study's protocols (task "evaluation")."""
    return evaluate_study(data.samples, settings, progress=ctx.progress)


def write_study_split(
    ctx: RunContext, data: SampleData, result: EvaluationResult, sets: Mapping[str, list]
) -> None:
    """Table 4 and figure 5 (when the study protocol ran)."""
    if not len(result.table4):
        return
    sec, samples = ctx.section("evaluation"), data.samples
    unit = samples.target_unit or ""
    sets_text = "; ".join(f"{k} = {', '.join(map(item_name, items))}" for k, items in sets.items())
    sec.add(
        ctx.save_table(
            "table4_study_split",
            result.table4,
            "Table 4. Accuracy on the study's calibration (c) and validation (v) split",
            "R² = 1 − SSE/SST on the rows scored (it can be negative); RMSE, MAE and "
            f"bias in {unit}; RPIQ = interquartile range / RMSE. Feature sets: {sets_text}.",
            digits=3,
        )
    )
    ctx.save_table("figure5_predictions", result.predictions, markdown=False)
    fig = prediction_figure(result.predictions, result.table4, target_label=samples.target_name,
                            unit=samples.target_unit)  # fmt: skip
    sec.add(
        ctx.save_figure(
            "figure5_predicted_measured",
            fig,
            "Figure 5. Predicted against measured",
            "Calibration (open circles) and validation (filled triangles) samples of "
            "the study split, 1:1 line dashed; one panel per model and feature set.",
        )
    )


def write_honest(ctx: RunContext, data: SampleData, result: EvaluationResult) -> None:
    """The cross-validated table, the baseline comparison, the folds and the settings."""
    sec, unit = ctx.section("honest"), data.samples.target_unit or ""
    honest = result.honest
    if len(honest):
        sec.add(
            ctx.save_table(
                "cv_honest",
                honest,
                "Cross-validated accuracy: mean ± sd over folds [bootstrap 95 % CI]",
                "Protocol study: the single validation split, its CI by bootstrapping its "
                "rows; repeated: random k-fold; spatial: whole blocks of land held out, "
                "closer to mapping new ground. R² pooled: R² of all out-of-fold "
                f"predictions of a repeat together. RMSE and MAE in {unit}.",
                shown=compact_cv_table(honest),
            )
        )
    if result.baseline is not None and len(result.baseline):
        sec.add(
            ctx.save_table(
                "cv_baseline",
                result.baseline,
                "Against a plain random forest (300 trees, defaults, all 21 indices)",
                "Differences on the same repeated folds (model − plain RF) with a paired "
                "bootstrap 95 % CI; an interval spanning 0 means no demonstrated difference.",
                shown=compact_baseline_table(result.baseline),
            )
        )
    if len(result.folds):
        # Wall times differ between reruns; the run's timings are in run.json.
        folds = result.folds.drop(columns=["seconds"], errors="ignore")
        ctx.save_table("cv_folds", folds, markdown=False)
    ctx.highlights[0:0] = evaluation_highlights(result, unit)  # the headline goes first
    settings = {k: v for k, v in result.settings.items() if k != "feature_sets"}
    sec.add(
        Note(
            "Settings: "
            + ", ".join(f"{k} = {v}" for k, v in settings.items())
            + f"; wall time {result.seconds:.0f} s."
        )
    )


def run_evaluation(
    ctx: RunContext, data: SampleData, discovered: Sequence[Mapping[str, Any]] = ()
) -> EvaluationResult:
    """Step 4: evaluate, then write Table 4, figure 5 and the honest validation.

    ``discovered``: the definitions of the discovered indices (the discovery step's).
    """
    sets = feature_sets(ctx.cfg, discovered)
    result = evaluate(ctx, data, evaluation_settings(ctx.cfg, sets, ctx.covariates))
    write_study_split(ctx, data, result, sets)
    write_honest(ctx, data, result)
    ctx.final = final_choice(ctx, result.selection, discovered)
    write_choice(ctx, data, result)
    return result


def final_choice(
    ctx: RunContext, selection: Selection | None, discovered: Sequence[Mapping[str, Any]] = ()
) -> FinalChoice:
    """The final model: the evaluation's choice with ``final = "auto"``, else the one the
    study names (with its ``final_indices``)."""
    m = ctx.cfg.models
    warning = None
    if selection is not None and not selection.skill["evidence"]:
        warning = no_skill_sentence(selection.skill)
    if m.final != "auto" or selection is None:
        indices = resolve_selection(m.final_indices, discovered=discovered)
        name = "Stacking" if m.final == "auto" else m.final
        return FinalChoice(name, name, indices, ctx.covariates, warning=warning)
    fs, model = selection.winner
    if model == BASELINE:
        return FinalChoice(model, "RF", resolve_items("study"), None, dict(PLAIN_FOREST),
                           untuned=True, how="auto", feature_set=fs, warning=warning)  # fmt: skip
    covariates = ctx.covariates if selection.covariates.get(fs) else None
    return FinalChoice(model, model, list(selection.indices[fs]), covariates, how="auto",
                       feature_set=fs, warning=warning)  # fmt: skip


def forced_key(ctx: RunContext) -> tuple[str, str]:
    """The candidate a named final model is: (its feature set's label, its name)."""
    m, sets = ctx.cfg.models, ctx.cfg.indices.sets
    label = next((k for k, v in sets.items() if v == m.final_indices), m.final_indices)
    return (label + (COVARIATE_SUFFIX if ctx.covariates else ""), m.final)


def write_choice(ctx: RunContext, data: SampleData, result: EvaluationResult) -> None:
    """The candidates, the nested choice, the rows set aside, and the choice in words."""
    sec, unit = ctx.section("choice"), data.samples.target_unit or ""
    if len(result.set_aside):
        sets = result.set_aside.groupby("feature_set")["sample"].count()
        sec.add(
            ctx.save_table(
                "set_aside_by_feature_set",
                result.set_aside,
                "Samples set aside by feature set",
                "A sample where an index is undefined (a division by zero, the root of a "
                "negative number) is left out of the feature sets needing that index only: "
                + ", ".join(f"{n} sample(s) for {fs}" for fs, n in sets.items())
                + ". Candidates are compared on the samples every one of them can use.",
            )
        )
    sel = result.selection
    if sel is None:
        return
    sec.add(
        ctx.save_table(
            "final_model_candidates",
            sel.candidates,
            f"Candidates of the final model ({sel.protocol} CV)",
            "Pooled RMSE ± the standard error of its difference to the best; pooled R² with "
            "its bootstrap 95 % CI; kpx / CPU-s: thousands of scene-like pixels predicted per "
            "CPU-second (measured once per candidate on its first training fold's fit), and "
            "the CPU minutes that implies for a full Sentinel-2 tile (120.6 Mpx); clipped: "
            "held-out predictions set to zero (or, with a log target, to the widened "
            f"training range). RMSE in {unit}.",
            shown=format_candidates(sel.candidates, unit or None),
        )
    )
    if not sel.nested.empty:
        ctx.save_table("nested_choice", sel.nested, markdown=False)
    words = sel.words(unit)
    if ctx.final is not None and ctx.final.how == "forced":
        words += f" The study names its final model instead: {sel.rank_of(forced_key(ctx))}."
    sec.add(Note(words))
    # After the evaluation's headline sentences, which write_honest put first.
    ctx.highlights.insert(
        len(evaluation_highlights(result, unit)), f"{words} (Choosing the final model)"
    )

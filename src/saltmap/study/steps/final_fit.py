"""Step 5, final fit: the final model tuned and fitted on all samples, its trust (intervals,
AOA, coverage), and the model file that ``saltmap map`` and ``saltmap predict`` reuse."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from saltmap.features import resolve_selection
from saltmap.models import save_model, train_model
from saltmap.progress import task
from saltmap.report import Note
from saltmap.salinity import save_conversion
from saltmap.study.context import FinalChoice
from saltmap.study.steps.trust import run_trust
from saltmap.study.tables import param_text
from saltmap.validation import regression_metrics

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData
    from saltmap.trust import TrustModel


@dataclass(frozen=True)
class FinalFit:
    """The final model and what came with it.

    Attributes
    ----------
    model : Pipeline
        Fitted on all samples.
    metadata : dict
        What :func:`saltmap.models.building.train_model` recorded (params, training).
    trust : TrustModel or None
        Its intervals and AOA (None when the study turns both off).
    """

    model: Pipeline
    metadata: dict[str, Any]
    trust: TrustModel | None = None

    @property
    def params(self) -> dict[str, Any]:
        """The tuned hyperparameters."""
        return dict(self.metadata.get("params", {}))


def final_indices(ctx: RunContext, discovered: Sequence[Mapping[str, Any]]) -> list[Any]:
    """The final model's indices as items: catalogue names, and the definitions of the
    discovered indices they select (``discovered``: the discovery step's)."""
    return final_of(ctx, discovered).indices


def final_of(ctx: RunContext, discovered: Sequence[Mapping[str, Any]] = ()) -> FinalChoice:
    """The final model the evaluation chose (or the study names), as ``ctx.final`` holds it;
    without an evaluation (a study without cross-validation) the study's named model."""
    if ctx.final is not None:
        return ctx.final
    m = ctx.cfg.models
    name = "Stacking" if m.final == "auto" else m.final
    indices = resolve_selection(m.final_indices, discovered=discovered)
    return FinalChoice(name, name, indices, ctx.covariates)


def fit_final(
    ctx: RunContext, data: SampleData, discovered: Sequence[Mapping[str, Any]] = ()
) -> FinalFit:
    """Tune and fit the final model on all samples (a spinner while it runs: tuning
    reports no steps)."""
    m, t, final = ctx.cfg.models, ctx.cfg.tuning, final_of(ctx, discovered)
    trials = "untuned" if t.n_trials == 0 or final.untuned else f"{t.budget} tuning budget"
    with (
        task(ctx.progress, f"final fit: {final.model} on all samples ({trials})"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # MLP convergence notes from every trial
        fitted, metadata = train_model(
            data.samples,
            model=final.name,
            indices=final.indices,
            log_target=m.log_target,
            budget=t.budget,
            n_trials=0 if final.untuned else t.n_trials,
            random_state=ctx.cfg.seed,
            covariates=final.covariates,
            fixed=final.fixed,
        )
    metadata["final_choice"] = {
        "model": final.model,
        "how": final.how,
        "feature_set": final.feature_set,
        "warning": final.warning,
    }
    return FinalFit(fitted, metadata)


def write_fit_section(ctx: RunContext, data: SampleData, fit: FinalFit) -> None:
    """The final model's fit on its own samples (a caution) and its hyperparameters."""
    t, final = ctx.cfg.tuning, final_of(ctx)
    names = list(fit.model.named_steps["indices"].index_names_)
    aside = fit.metadata.get("training", {}).get("set_aside", {})
    used = ~data.samples.reflectance.index.isin(list(aside))
    y = data.samples.target.to_numpy(dtype=float)[used]
    on_training = regression_metrics(y, fit.model.predict(data.predictors[used]))
    seconds = fit.metadata.get("training", {}).get("tuning_seconds", float("nan"))
    covariates = final.covariates.names if final.covariates else ()
    how = "chosen by the evaluation" if final.how == "auto" else "named by the study"
    tuned = "untuned" if final.untuned else f"tuned with the {t.budget} budget"
    text = (
        f"{final.model} ({how}) on {', '.join([*names, *covariates])}, {tuned} on all "
        f"{len(y)} samples ({seconds:.0f} s of tuning), then fitted on all of them. "
        f"On its own training samples R² = {on_training['R2']:.3f}, RMSE = "
        f"{on_training['RMSE']:.4g}: optimistic by construction; quote the "
        "cross-validated figures above."
    )
    if aside:
        text += (
            f" Set aside (an index undefined): {', '.join(f'{k} ({v})' for k, v in aside.items())}."
        )
    if final.warning:
        text += f" {final.warning}"
    sec = ctx.section("final")
    sec.add(Note(text))
    params = pd.DataFrame(
        {"parameter": list(fit.params), "value": [param_text(v) for v in fit.params.values()]}
    )
    if len(params):
        sec.add(ctx.save_table("final_model_parameters", params, "Tuned hyperparameters"))


def save_final(ctx: RunContext, data: SampleData, fit: FinalFit) -> Path:
    """Write ``model/model.skops`` (and the salt conversion) and say how to reuse them."""
    folder = ctx.folder / "model"
    folder.mkdir(exist_ok=True)
    metadata = {**fit.metadata, "study": ctx.cfg.name}
    model_file = Path(save_model(folder / "model.skops", fit.model, metadata=metadata,
                                 trust=fit.trust))  # fmt: skip
    ctx.model_file = model_file
    final = final_of(ctx)
    covariates = final.covariates.names if final.covariates else ()
    flags = "".join(f" --covariate {n}=RASTER" for n in covariates)
    reuse = f"`saltmap map {model_file.relative_to(ctx.folder)} SCENE{flags}`"
    if data.conversion is not None:
        conv = save_conversion(data.conversion, folder / "salt_conversion.toml")
        reuse += f" (with --conversion {conv.relative_to(ctx.folder)} for g/kg classes)"
    ctx.section("final").add(
        Note(
            f"Model file: {model_file.relative_to(ctx.folder)}. Reuse it without "
            f"retraining: {reuse}, or `saltmap predict` on new samples."
        )
    )
    return model_file


def run_final_fit(
    ctx: RunContext, data: SampleData, discovered: Sequence[Mapping[str, Any]] = ()
) -> FinalFit:
    """Step 5: fit, describe, add its trust, save; the fitted model and its trust.

    ``discovered``: the definitions of the discovered indices (the discovery step's).
    """
    fit = fit_final(ctx, data, discovered)
    write_fit_section(ctx, data, fit)
    indices = final_indices(ctx, discovered)
    fit = FinalFit(fit.model, fit.metadata, run_trust(ctx, data, fit.params, indices))
    save_final(ctx, data, fit)
    return fit

"""``saltmap train``: tune and fit a model on field samples and save it."""

# No ``from __future__ import annotations``: the shared sample options wrap this
# command, and typer must see its annotations evaluated here, where their names live.

from pathlib import Path
from typing import Annotated

import typer

from saltmap.cli import _options as opt
from saltmap.covariates import Covariates
from saltmap.modelfile import save_model
from saltmap.models import BUDGETS, MODEL_NAMES, train_model


@opt.with_sample_options
def train_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.skops).")],
    model: Annotated[
        str, typer.Option("--model", help=f"One of {', '.join(MODEL_NAMES)}.")
    ] = "Stacking",
    indices: Annotated[
        str,
        typer.Option("--indices", help="Index features: novel (N-SI), classic (SI) or names."),
    ] = "novel",
    log_target: Annotated[
        bool, typer.Option("--log-target", help="Model log10 of the target (skewed salinity).")
    ] = False,
    budget: Annotated[
        str, typer.Option("--budget", help=f"Tuning budget: {', '.join(BUDGETS)}.")
    ] = "default",
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="Optuna trials per learner (0: untuned defaults)."),
    ] = None,
    covariate: Annotated[
        list[str] | None,
        typer.Option(
            "--covariate", help="Numeric sample column used as a predictor too (repeatable)."
        ),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option(
            "--categorical",
            help="Categorical sample column used as a predictor, one-hot encoded (repeatable).",
        ),
    ] = None,
    min_count: Annotated[
        int | None,
        typer.Option(
            "--min-count",
            help="Pool categorical levels seen fewer times into one 'infrequent' level "
            "(unseen levels then join it; without it they are refused).",
        ),
    ] = None,
    seed: int = opt.SEED,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Tune (Optuna, inner CV) and fit a model on all usable samples; save it.

    The model file holds the fitted model with its index features, band roles,
    reflectance scaling, target and unit, and a training summary. Its accuracy is
    measured by `saltmap evaluate`, not here.
    """
    from saltmap.cli import console

    opt.check_writable([out], overwrite)
    samples = sample_options.read(samples_file)
    covariates = Covariates(covariate or (), categorical or (), min_count)
    fitted, metadata = train_model(
        samples, model=model, indices=indices, log_target=log_target, budget=budget,
        n_trials=trials, random_state=seed, covariates=covariates or None,
    )  # fmt: skip
    save_model(out, fitted, metadata=metadata, overwrite=overwrite)
    training = metadata["training"]
    predictors = [*fitted.named_steps["indices"].index_names_, *covariates.names]
    console.print(
        f"{model} on {', '.join(predictors)}: "
        f"{training['n']} samples, tuned in {training['tuning_seconds']} s "
        f"({training['n_trials']} trials per learner)",
        highlight=False,
    )
    console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)

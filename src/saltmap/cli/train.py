"""``saltmap train``: tune and fit a model on field samples and save it."""

# No ``from __future__ import annotations``: the shared sample options wrap this
# command, and typer must see its annotations evaluated here, where their names live.

from pathlib import Path
from typing import Annotated, Any

import typer

from saltmap.cli import _options as opt
from saltmap.errors import ConfigError
from saltmap.features.covariates import Covariates
from saltmap.models.building import BUDGETS, MODEL_NAMES, train_model
from saltmap.models.persistence import save_model


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
    level: Annotated[
        float,
        typer.Option(
            "--level", help="Confidence of the prediction intervals saved with the model."
        ),
    ] = 0.9,
    interval_method: Annotated[
        str,
        typer.Option(
            "--interval-method",
            help="base: the map's own prediction ± one conformal width (no extra cost; "
            "coverage guaranteed only approximately); plus: CV+, a finite-sample guarantee "
            "(≥ 1 - 2α, about the level in practice) for K+1 model predictions per pixel; "
            "minmax: CV-minmax, ≥ the level, wider, same cost as plus.",
        ),
    ] = "base",
    interval_score: Annotated[
        str,
        typer.Option(
            "--interval-score",
            help="absolute: |y - ŷ|, intervals of one width; gamma: (y - ŷ)/ŷ, intervals "
            "proportional to the prediction (needs positive predictions, e.g. --log-target).",
        ),
    ] = "absolute",
    no_trust: Annotated[
        bool,
        typer.Option(
            "--no-trust",
            help="Save the model without prediction intervals and area of applicability.",
        ),
    ] = False,
    seed: int = opt.SEED,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Tune (Optuna, inner CV) and fit a model on all usable samples; save it.

    The model file holds the fitted model with its index features, band roles,
    reflectance scaling, target and unit, and a training summary. Unless --no-trust,
    it also holds prediction intervals (cross-conformal, at --level, by
    --interval-method and --interval-score) and the area of applicability of the
    model, which `saltmap map` turns into trust layers. Its accuracy is measured by
    `saltmap evaluate`, not here.
    """
    from saltmap.cli import console

    opt.check_writable([out], overwrite)
    covariates = Covariates(covariate or (), categorical or (), min_count)
    if not no_trust:
        _check_trust_options(level, interval_method, interval_score, covariates)
    samples = sample_options.read(samples_file)
    fitted, metadata = train_model(
        samples, model=model, indices=indices, log_target=log_target, budget=budget,
        n_trials=trials, random_state=seed, covariates=covariates or None,
    )  # fmt: skip
    trust = (
        None
        if no_trust
        else _fit_trust(fitted, samples, level, seed, interval_method, interval_score)
    )
    save_model(out, fitted, metadata=metadata, trust=trust, overwrite=overwrite)
    training = metadata["training"]
    predictors = [*fitted.named_steps["indices"].index_names_, *covariates.names]
    console.print(
        f"{model} on {', '.join(predictors)}: "
        f"{training['n']} samples, tuned in {training['tuning_seconds']} s "
        f"({training['n_trials']} trials per learner)",
        highlight=False,
    )
    if trust is not None:
        console.print(_describe_trust(trust, metadata), highlight=False)
    console.print(f"wrote {out}")


def _check_trust_options(level: float, method: str, score: str, covariates: Covariates) -> None:
    """Refuse bad interval options before the (long) training, naming the fix."""
    from saltmap.trust.intervals import CONFORMITY_SCORES, METHODS

    if not 0 < level < 1:
        raise ConfigError(
            f"--level {level} is not a confidence between 0 and 1 (exclusive); "
            "give for example --level 0.9 for 90 % intervals"
        )
    if method not in METHODS:
        raise ConfigError(
            f"--interval-method {method!r} is not an interval method; give one of "
            f"{', '.join(METHODS)} (base is the default)"
        )
    if score not in CONFORMITY_SCORES:
        raise ConfigError(
            f"--interval-score {score!r} is not a conformity score; give one of "
            f"{', '.join(CONFORMITY_SCORES)} (absolute is the default)"
        )
    if method != "base" and covariates.categorical:
        # A fold model cannot predict a level its fold never saw; fit_trust refuses too,
        # but only after the whole tuning.
        raise ConfigError(
            f"--interval-method {method} predicts every pixel with every fold model, which "
            f"cannot predict a level of {', '.join(covariates.categorical)} its fold never "
            "saw; use --interval-method base with --categorical"
        )


def _fit_trust(fitted: Any, samples: Any, level: float, seed: int, method: str, score: str) -> Any:
    """Intervals and AOA of the fitted model: refitted with its parameters on the same rows.

    With covariates the rows are the model's whole input (reflectance and covariate
    columns), and the AOA's dissimilarity covers the covariates too.
    """
    import warnings

    from saltmap.features.covariates import model_input
    from saltmap.trust.intervals import fit_trust

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of the MLP's fold fits
        return fit_trust(
            fitted, model_input(fitted, samples), samples.target.to_numpy(dtype=float),
            confidence=level, method=method, conformity_score=score, random_state=seed,
        )  # fmt: skip


def _describe_trust(trust: Any, metadata: dict[str, Any]) -> str:
    info = trust.info
    q_low, q_up = trust.intervals.quantiles_
    if info["method"] != "base":  # CV+/minmax: each pixel's width comes from the fold models
        width = f"{info['method']}, width varying per pixel"
    elif info["conformity_score"] == "gamma":
        width = f"base, width {q_up - q_low:.1%} of the prediction"
    else:
        width = f"base, width {q_up - q_low:.4g} {metadata.get('target_unit') or ''}".rstrip()
    return (
        f"{info['confidence']:.0%} prediction intervals ({width}, from "
        f"{info['n_folds']}-fold out-of-fold residuals) and area of applicability (DI "
        f"threshold {trust.aoa.threshold_:.3g}) saved with the model"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)

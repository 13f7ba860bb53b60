"""``saltmap train``: tune and fit a model on field samples and save it."""

# No ``from __future__ import annotations``: the shared sample options wrap this
# command, and typer must see its annotations evaluated here, where their names live.

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from saltmap.cli import _options as opt
from saltmap.cli._print import say
from saltmap.cli._progress import RichProgress
from saltmap.errors import ConfigError
from saltmap.features.covariates import Covariates
from saltmap.features.indices import resolve
from saltmap.models.budgets import BUDGETS
from saltmap.models.building import MODEL_NAMES
from saltmap.models.inspect import model_input
from saltmap.models.persistence import save_model
from saltmap.models.training import train_model
from saltmap.trust.intervals import CONFORMITY_SCORES, METHODS
from saltmap.trust.maps import fit_trust
from saltmap.trust.settings import TrustSettings
from saltmap.validation.choice import winner_spec
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.settings import FEATURE_SETS, EvaluationSettings

# The options of the command, declared here so its signature reads as a list.
Model = Annotated[
    str,
    typer.Option(
        "--model",
        help=f"auto (the evidence chooses: every model on N-SI, SI, the six bands and all 21 "
        "indices, and the plain random forest, under spatial CV (repeated CV without "
        "coordinates), lowest pooled RMSE with the one-standard-error rule, the choice "
        f"scored by nested CV), or one of {', '.join(MODEL_NAMES)}.",
    ),
]
Budget = Annotated[str, typer.Option("--budget", help=f"Tuning budget: {', '.join(BUDGETS)}.")]
Level = Annotated[
    float,
    typer.Option("--level", help="Confidence of the prediction intervals saved with the model."),
]
IntervalMethod = Annotated[
    str,
    typer.Option(
        "--interval-method",
        help="normalized (default): the map's own prediction ± a conformal multiple of the "
        "error expected at the pixel, a width that varies (one small forest per pixel); "
        "base: ± one constant conformal width (no extra cost); both with coverage "
        "guaranteed only approximately, measured; plus: CV+, a finite-sample guarantee "
        "(≥ 1 - 2α, about the level in practice) for K+1 model predictions per pixel; "
        "minmax: CV-minmax, ≥ the level, wider, same cost as plus.",
    ),
]
Calibration = Annotated[
    Path | None,
    typer.Option(
        "--calibration",
        help="Also draw the intervals' calibration (held-out coverage at nominal 50-95 %, "
        "adaptive and constant width, 5-fold CV repeated twice) to this PNG and print its "
        "table; refits the trust model 10 times.",
    ),
]
IntervalScore = Annotated[
    str,
    typer.Option(
        "--interval-score",
        help="absolute: |y - ŷ|, intervals of one width; gamma: (y - ŷ)/ŷ, intervals "
        "proportional to the prediction (needs positive predictions, e.g. --log-target).",
    ),
]


@opt.with_sample_options
def train_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: Annotated[Path, opt.out_option("Model file to write (.skops).")],
    model: Model = "auto",
    indices: opt.Indices = "novel",
    log_target: opt.LogTarget = False,
    budget: Budget = "default",
    trials: opt.Trials = None,
    covariate: opt.CovariateColumns = None,
    categorical: opt.CategoricalColumns = None,
    min_count: opt.MinCount = None,
    level: Level = 0.9,
    interval_method: IntervalMethod = "normalized",
    interval_score: IntervalScore = "absolute",
    no_trust: opt.NoTrust = False,
    calibration: Calibration = None,
    seed: int = opt.SEED,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Tune (Optuna: inner CV, out-of-bag for RF) and fit a model on all usable samples; save it.

    The model file holds the fitted model with its index features, band roles,
    reflectance scaling, target and unit, and a training summary. Unless --no-trust,
    it also holds prediction intervals (cross-conformal, at --level, by
    --interval-method and --interval-score) and the area of applicability of the
    model, which `saltmap map` turns into trust layers. Its accuracy is measured by
    `saltmap evaluate`, not here.
    """
    opt.check_writable([out], overwrite)
    covariates = Covariates(covariate or (), categorical or (), min_count)
    trust_options = None if no_trust else TrustOptions(level, interval_method, interval_score)
    if trust_options is not None:
        trust_options.check(covariates)
    if model != "auto" and model not in MODEL_NAMES:
        raise ConfigError(
            f"--model {model!r} is unknown; give auto or one of {', '.join(MODEL_NAMES)}"
        )
    samples = sample_options.read(samples_file)
    spec = {"name": model, "label": model, "indices": indices, "covariates": True,
            "fixed": None, "untuned": False}  # fmt: skip
    if model == "auto":
        spec = choose_model(samples, indices, log_target, budget, trials, seed, covariates)
    fitted, metadata = train_model(
        samples, model=spec["name"], indices=spec["indices"], log_target=log_target,
        budget=budget, n_trials=0 if spec["untuned"] else trials, random_state=seed,
        covariates=(covariates or None) if spec["covariates"] else None, fixed=spec["fixed"],
    )  # fmt: skip
    model = spec["label"]
    if spec.get("skill") is not None:  # `saltmap map` warns from it (issue 14)
        metadata["skill"] = spec["skill"]
    if not spec["covariates"]:
        covariates = Covariates()
    aside = metadata["training"].get("set_aside") or {}
    if aside:  # the intervals and AOA are fitted on the rows the model was trained on
        samples = dataclasses.replace(samples, table=samples.table.drop(index=list(aside)))
    trust = None if trust_options is None else trust_options.fit(fitted, samples, seed)
    save_model(out, fitted, metadata=metadata, trust=trust, overwrite=overwrite)
    training = metadata["training"]
    predictors = [*fitted.named_steps["indices"].index_names_, *covariates.names]
    say(
        f"{model} on {', '.join(predictors)}: "
        f"{training['n']} samples, tuned in {training['tuning_seconds']} s "
        f"({training['n_trials']} trials per learner)"
    )
    if trust is not None:
        say(_describe_trust(trust, metadata))
    if aside:
        listed = ", ".join(f"{k} ({v})" for k, v in aside.items())
        say(f"set aside (an index undefined there): {listed}")
    say(f"wrote {out}")
    if trust is not None and calibration is not None:
        _draw_calibration(calibration, fitted, samples, trust_options.settings(seed))


def _draw_calibration(path: Path, fitted: Any, samples: Any, settings: TrustSettings) -> None:
    """The calibration table and figure of ``--calibration`` (issue 15)."""
    from saltmap.plots import calibration_figure, save_figure
    from saltmap.tables import markdown_table
    from saltmap.trust.calibration import random_cv_calibration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary, curve = random_cv_calibration(
            fitted, model_input(fitted, samples), samples.target.to_numpy(dtype=float),
            settings, random_state=settings.random_state,
        )  # fmt: skip
    say(markdown_table(summary.set_index("method").T.reset_index(), digits=3))
    title = "Held-out coverage of the intervals, 5-fold CV x 2"
    for written in save_figure(calibration_figure({"random CV": curve}, title), path):
        say(f"wrote {written}")


def choose_model(
    samples: Any,
    indices: str,
    log_target: bool,
    budget: str,
    trials: int | None,
    seed: int,
    covariates: Covariates,
) -> dict[str, Any]:
    """``--model auto``: the evaluation's choice under the main protocol, said in words."""
    sets = dict(FEATURE_SETS)
    if not any(resolve(indices) == resolve(v) for v in sets.values()):
        sets[indices] = indices
    settings = EvaluationSettings(
        feature_sets=sets, protocols=("spatial",) if samples.coords is not None else ("repeated",),
        quick=budget == "quick", n_trials=trials, baseline=False, random_state=seed,
        log_target=log_target, covariates=covariates or None,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate_study(samples, settings, progress=RichProgress())
    say(result.selection.words(samples.target_unit or ""))
    return winner_spec(result.selection)


@dataclass(frozen=True)
class TrustOptions:
    """``--level``, ``--interval-method`` and ``--interval-score`` of ``saltmap train``."""

    level: float = 0.9
    method: str = "normalized"
    score: str = "absolute"

    def check(self, covariates: Covariates) -> None:
        """Refuse bad interval options before the (long) training, naming the fix."""
        _check_trust_options(self.level, self.method, self.score, covariates)

    def fit(self, fitted: Any, samples: Any, seed: int) -> Any:
        """Intervals and AOA of the fitted model: refitted with its parameters on the same rows.

        With covariates the rows are the model's whole input (reflectance and covariate
        columns), and the AOA's dissimilarity covers the covariates too.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence notes of the MLP's fold fits
            return fit_trust(
                fitted,
                model_input(fitted, samples),
                samples.target.to_numpy(dtype=float),
                self.settings(seed),
            )

    def settings(self, seed: int) -> TrustSettings:
        """These options as the trust settings, with the run's seed."""
        return TrustSettings(
            confidence=self.level,
            method=self.method,
            conformity_score=self.score,
            random_state=seed,
        )


def _check_trust_options(level: float, method: str, score: str, covariates: Covariates) -> None:
    if not 0 < level < 1:
        raise ConfigError(
            f"--level {level} is not a confidence between 0 and 1 (exclusive); "
            "give for example --level 0.9 for 90 % intervals"
        )
    if method not in METHODS:
        raise ConfigError(
            f"--interval-method {method!r} is not an interval method; give one of "
            f"{', '.join(METHODS)} (normalized is the default)"
        )
    if method == "normalized" and score != "absolute":
        raise ConfigError(
            f"--interval-score {score} does not go with --interval-method normalized, which "
            "scales absolute errors; use --interval-method base with --interval-score gamma"
        )
    if score not in CONFORMITY_SCORES:
        raise ConfigError(
            f"--interval-score {score!r} is not a conformity score; give one of "
            f"{', '.join(CONFORMITY_SCORES)} (absolute is the default)"
        )
    if method not in ("normalized", "base") and covariates.categorical:
        # A fold model cannot predict a level its fold never saw; fit_trust refuses too,
        # but only after the whole tuning.
        raise ConfigError(
            f"--interval-method {method} predicts every pixel with every fold model, which "
            f"cannot predict a level of {', '.join(covariates.categorical)} its fold never "
            "saw; use --interval-method normalized or base with --categorical"
        )


def _describe_trust(trust: Any, metadata: dict[str, Any]) -> str:
    info = trust.info
    q_low, q_up = trust.intervals.quantiles_
    if info["method"] == "normalized":
        q = trust.intervals.normalized_quantile_
        width = f"normalized, width varying per pixel: ± {q:.3g} × the expected error"
    elif info["method"] != "base":  # CV+/minmax: each pixel's width comes from the fold models
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

"""``saltmap evaluate``: the study's Table 4 and figure 5, and the honest protocols beside them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saltmap.cli import _options as opt
from saltmap.cli._print import frame_table, say
from saltmap.cli._progress import RichProgress
from saltmap.errors import ConfigError, SaltmapError
from saltmap.features.indices import resolve
from saltmap.models.building import MODEL_NAMES
from saltmap.tables import format_baseline, format_candidates, format_honest, format_table4
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.results import evaluation_files, write_evaluation
from saltmap.validation.settings import FEATURE_SETS, PROTOCOLS, EvaluationSettings

if TYPE_CHECKING:
    from saltmap.validation.results import EvaluationResult

# Text columns of the printed tables (aligned left; numbers align right).
_TEXT_COLUMNS = ("protocol", "features", "model", "verdict (RMSE)", "within 1 SE", "chosen")


def _names(text: str | None, what: str, known: tuple[str, ...]) -> tuple[str, ...] | None:
    names = opt.comma_list(text)
    if not names:
        return None
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"--{what} {', '.join(unknown)} unknown; choose from {', '.join(known)}")
    return names


def parse_feature_sets(items: list[str] | None) -> dict[str, str]:
    """Turn ``["D-SI=discovered:out/discovered.toml:5"]`` into ``{"D-SI": "discovered:..."}``.

    Without items, the study's two sets (N-SI = novel, SI = classic). Each
    selection is resolved here, so a bad name or a missing discovered-index
    file is reported before any samples are read or models fitted.
    """
    if not items:
        return dict(FEATURE_SETS)
    sets: dict[str, str] = {}
    for item in items:
        # The selection may hold ':' (discovered:PATH:K), so only the first '=' splits.
        label, sep, selection = (part.strip() for part in item.partition("="))
        if not (sep and label and selection):
            raise ConfigError(
                f"--set {item!r} is not NAME=SELECTION; for example --set N-SI=novel or "
                "--set D-SI=discovered:out/discovered.toml:5"
            )
        if label in sets:
            raise ConfigError(f"--set names the feature set {label!r} twice; give each a new name")
        try:
            resolve(selection)
        except SaltmapError as err:
            raise type(err)(f"--set {item!r}: {err.args[0] if err.args else err}") from err
        sets[label] = selection
    return sets


# The options of the command, declared here so its signature reads as a list.
Quick = Annotated[
    bool, typer.Option("--quick", help="A faithful miniature (one repeat, few trials), ~1 min.")
]
Nested = Annotated[
    bool,
    typer.Option(
        "--nested",
        help="Also choose the top --select-k indices by |r|, on all rows and inside each "
        "training fold, so selection bias shows.",
    ),
]
Protocols = Annotated[
    str | None,
    typer.Option("--protocols", help="Comma list of study, repeated, spatial (default: all)."),
]
CvRepeats = Annotated[
    int | None, typer.Option("--repeats", help="Repeats of the 5-fold CV (default 5).")
]
ValidationFraction = Annotated[
    float, typer.Option("--validation-fraction", help="The study split's validation share.")
]
SpatialBlockSize = Annotated[
    float | None,
    typer.Option("--block-size", help="Spatial block side in metres (default 4× spacing)."),
]
NoBaseline = Annotated[
    bool, typer.Option("--no-baseline", help="Skip the plain random-forest comparison.")
]
FeatureSet = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Feature set NAME=SELECTION, repeatable, e.g. --set D-SI=discovered:FILE:5 "
        "(default: N-SI=novel and SI=classic).",
    ),
]


@opt.with_sample_options
def evaluate_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: opt.OutFolder = Path("evaluation"),
    quick: Quick = False,
    log_target: opt.LogTarget = False,
    trials: opt.Trials = None,
    nested: Nested = False,
    select_k: Annotated[int, typer.Option("--select-k", help="Indices kept by --nested.")] = 4,
    models: opt.ModelList = None,
    protocols: Protocols = None,
    repeats: CvRepeats = None,
    validation_fraction: ValidationFraction = 0.3,
    block_size: SpatialBlockSize = None,
    jobs: opt.Jobs = 2,
    no_baseline: NoBaseline = False,
    feature_set: FeatureSet = None,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    seed: int = opt.SEED,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Evaluate the study's five models on its two feature sets (N-SI, SI), or on --set ones.

    Writes table4.csv/.md (the study's calibration/validation split),
    honest.csv/.md (repeated and spatial block CV: mean ± sd and bootstrap 95 % CI),
    baseline.csv/.md (each model against a plain random forest on the same folds),
    folds.csv, predictions.csv, settings.json and figure5.png/.svg; and, when a
    cross-validation runs, the final model's choice: candidates.csv/.md (every model on
    every feature set, the six bands and all 21 indices, the plain random forest; the
    1-SE rule; inference cost) and nested_choice.csv (the nested CV of the choice), and
    set_aside.csv (samples left out of a feature set whose index is undefined there).
    """
    # Every option is checked, and the settings built once, before the samples are read and
    # any model is fitted.
    settings = EvaluationSettings(
        models=_names(models, "models", MODEL_NAMES) or MODEL_NAMES,
        protocols=_names(protocols, "protocols", PROTOCOLS) or PROTOCOLS,
        feature_sets=parse_feature_sets(feature_set),
        quick=quick, n_trials=trials, n_repeats=repeats,
        validation_fraction=validation_fraction, block_size=block_size,
        nested_selection=nested, selection_k=select_k, baseline=not no_baseline,
        random_state=seed, log_target=log_target, n_jobs=jobs,
    )  # fmt: skip
    opt.check_writable(list(evaluation_files(out).values()), overwrite)
    samples = sample_options.read(samples_file)
    result = evaluate_study(samples, settings, progress=RichProgress())
    written = write_evaluation(result, out)
    print_evaluation(result, samples.target_unit)
    say(f"{result.seconds:.0f} s; wrote {len(written)} files to {out}")


def print_evaluation(result: EvaluationResult, unit: str | None) -> None:
    """The evaluation's tables and spatial blocks, as the terminal shows them."""
    for title, frame, fmt in (
        ("Table 4: the study's calibration/validation split", result.table4, format_table4),
        ("Honest protocols", result.honest, format_honest),
        ("Against a plain random forest (same repeated folds)", result.baseline, format_baseline),
    ):
        if frame is not None and not frame.empty:
            frame_table(title, fmt(frame, unit), left=_TEXT_COLUMNS, title_justify="left")
    print_choice(result, unit)
    st: dict[str, Any] = result.settings
    if "block_size_m" in st:
        say(
            f"spatial CV: {st['n_blocks']} blocks of {st['block_size_m']:.0f} m "
            f"({st['metric_crs']}), fold sizes {st['spatial_fold_sizes']}"
        )


def print_choice(result: EvaluationResult, unit: str | None) -> None:
    """The samples set aside per feature set, and the final model's choice in a table and words."""
    aside = result.set_aside
    for fs, part in aside.groupby("feature_set", sort=False) if len(aside) else ():
        listed = ", ".join(
            f"{s} ({u})" for s, u in zip(part["sample"], part["undefined"], strict=True)
        )
        say(f"set aside for {fs} (an index undefined): {listed}")
    sel = result.selection
    if sel is None:
        return
    title = f"Candidates of the final model ({sel.protocol} CV)"
    frame_table(title, format_candidates(sel.candidates, unit), left=_TEXT_COLUMNS,
                title_justify="left")  # fmt: skip
    say(sel.words(unit or ""))


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate_command)

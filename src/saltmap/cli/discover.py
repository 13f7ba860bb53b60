"""``saltmap discover``: search band formulas for the best salinity index, honestly."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import typer

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say, table
from saltmap.features.discovery import METHODS, discover_cv, save_discovered
from saltmap.plots import discovery_figure, save_figure

if TYPE_CHECKING:
    from saltmap.features.discovery import CVDiscovery
    from saltmap.io.samples import Samples

OUTPUT_NAMES = ("discovery_ranked.csv", "discovery_cv.csv", "discovery_summary.csv",
                "discovered.toml", "discovery.png", "discovery.svg")  # fmt: skip


@opt.with_sample_options
def discover_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: opt.OutFolder = Path("discovery"),
    method: Annotated[
        str, typer.Option("--method", help=f"Correlation: {' or '.join(METHODS)}.")
    ] = "pearson",
    top: Annotated[
        int, typer.Option("--top", help="Indices to show, plot and save as D1..Dk.")
    ] = 20,
    folds: Annotated[
        int, typer.Option("--folds", help="Outer folds that measure the search's optimism.")
    ] = 5,
    repeats: opt.Repeats = 1,
    min_coverage: Annotated[
        float,
        typer.Option("--min-coverage", help="Drop formulas undefined on more than 1−this share."),
    ] = 0.9,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    seed: int = opt.SEED,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Search two- and three-band formulas for the index that best follows the target.

    Every ordered pair and triple of bands goes into the study's index shapes (and
    classic ones), on raw, reciprocal, squared, square-root and log reflectance.
    The same search then runs inside each of --folds outer folds on the training
    rows only, and the fold winner is scored on the fold's test rows: the gap to
    the in-sample best is the optimism of picking the best of thousands.

    Writes discovery_ranked.csv, discovery_cv.csv, discovery_summary.csv,
    discovered.toml (the best --top as D1..Dk; select them elsewhere with
    --indices discovered:OUT/discovered.toml:K) and discovery.png/.svg.
    """
    if method not in METHODS:
        raise typer.BadParameter(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    outputs = [out / n for n in OUTPUT_NAMES]
    opt.check_writable(outputs, overwrite)
    samples = sample_options.read(samples_file)
    report = discover_cv(
        samples.reflectance, samples.target, n_splits=folds, n_repeats=repeats,
        random_state=seed, method=method, min_coverage=min_coverage,
    )  # fmt: skip
    meta = {"seed": seed, "folds": folds, "repeats": repeats}
    summary = _write_discovery(report, samples, outputs, top=top, method=method, meta=meta)
    found = report.in_sample
    print_ranked_table(found.table, top, method)
    say(
        f"{found.n_candidates} candidates searched, {len(found.table)} distinct kept. "
        f"In-sample best |r| = {report.best_abs_r:.3f}; the fold winners score "
        f"r = {report.out_of_fold_r:.3f} ± {summary['out_of_fold_sd_r'].iloc[0]:.3f} "
        f"on their test rows ({folds} folds × {repeats}): optimism {report.optimism:+.3f}."
    )
    say(f"wrote {', '.join(str(p) for p in outputs)}")


def _write_discovery(
    report: CVDiscovery,
    samples: Samples,
    outputs: list[Path],
    *,
    top: int,
    method: str,
    meta: dict[str, object],
) -> pd.DataFrame:
    """Write the ranked, fold and summary tables, discovered.toml and the figure.

    Returns the summary table (the out-of-fold scores).
    """
    found = report.in_sample
    outputs[0].parent.mkdir(parents=True, exist_ok=True)
    atomic_to_csv(found.table, outputs[0], index=False)
    atomic_to_csv(report.folds, outputs[1], index=False)
    summary = report.summary()
    atomic_to_csv(summary, outputs[2], index=False)
    label = samples.target_name + (f" ({samples.target_unit})" if samples.target_unit else "")
    meta = {
        "source": str(samples.source),
        "target": label,
        **meta,
        "out_of_fold_mean_r": report.out_of_fold_r,
        "optimism": report.optimism,
    }
    save_discovered(found, outputs[3], k=top, meta=meta)
    fig = discovery_figure(found.table, report.folds, top=top, in_sample_abs_r=report.best_abs_r,
                           target_label=label, method=method)  # fmt: skip
    save_figure(fig, outputs[4], formats=("png", "svg"))
    return summary


def print_ranked_table(ranked: pd.DataFrame, limit: int, method: str) -> None:
    """The best ``limit`` discovered formulas, as the terminal shows them."""
    word = "ρ" if method == "spearman" else "r"
    rows = (
        (row.rank, row.formula, f"{row.r:+.3f}", f"{row.p:.2g}",
         f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]", row.n)
        for row in ranked.head(limit).itertuples()
    )  # fmt: skip
    title = f"Discovered indices (ranked by |{word}|, in-sample)"
    table(title, ("rank", "formula", word, "p", "95 % CI", "n"), rows, left=("formula",))


def register(app: typer.Typer) -> None:
    app.command("discover")(discover_command)

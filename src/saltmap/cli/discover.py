"""``saltmap discover``: search band formulas for the best salinity index, honestly."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.features.discovery import METHODS, discover_cv, save_discovered
from saltmap.plots import discovery_figure, save_figure


@opt.with_sample_options
def discover_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("discovery"),
    method: Annotated[
        str, typer.Option("--method", help=f"Correlation: {' or '.join(METHODS)}.")
    ] = "pearson",
    top: Annotated[
        int, typer.Option("--top", help="Indices to show, plot and save as D1..Dk.")
    ] = 20,
    folds: Annotated[
        int, typer.Option("--folds", help="Outer folds that measure the search's optimism.")
    ] = 5,
    repeats: Annotated[
        int, typer.Option("--repeats", help="Repeat the outer folds with new shuffles.")
    ] = 1,
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
    from saltmap.cli import console

    if method not in METHODS:
        raise typer.BadParameter(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    names = ["discovery_ranked.csv", "discovery_cv.csv", "discovery_summary.csv",
             "discovered.toml", "discovery.png", "discovery.svg"]  # fmt: skip
    outputs = [out / n for n in names]
    opt.check_writable(outputs, overwrite)
    samples = sample_options.read(samples_file)
    report = discover_cv(
        samples.reflectance,
        samples.target,
        n_splits=folds,
        n_repeats=repeats,
        random_state=seed,
        method=method,
        min_coverage=min_coverage,
    )
    found = report.in_sample
    out.mkdir(parents=True, exist_ok=True)
    atomic_to_csv(found.table, outputs[0], index=False)
    atomic_to_csv(report.folds, outputs[1], index=False)
    summary = report.summary()
    atomic_to_csv(summary, outputs[2], index=False)
    label = samples.target_name + (f" ({samples.target_unit})" if samples.target_unit else "")
    meta = {
        "source": str(samples.source),
        "target": label,
        "seed": seed,
        "folds": folds,
        "repeats": repeats,
        "out_of_fold_mean_r": report.out_of_fold_r,
        "optimism": report.optimism,
    }
    save_discovered(found, outputs[3], k=top, meta=meta)
    fig = discovery_figure(found.table, report.folds, top=top, in_sample_abs_r=report.best_abs_r,
                           target_label=label, method=method)  # fmt: skip
    save_figure(fig, outputs[4], formats=("png", "svg"))
    console.print(ranked_table(found.table, top, method))
    console.print(
        f"{found.n_candidates} candidates searched, {len(found.table)} distinct kept. "
        f"In-sample best |r| = {report.best_abs_r:.3f}; the fold winners score "
        f"r = {report.out_of_fold_r:.3f} ± {summary['out_of_fold_sd_r'].iloc[0]:.3f} on their "
        f"test rows ({folds} folds × {repeats}): optimism {report.optimism:+.3f}.",
        highlight=False,
    )
    console.print(f"wrote {', '.join(str(p) for p in outputs)}")


def ranked_table(table, limit: int, method: str) -> Table:
    word = "ρ" if method == "spearman" else "r"
    out = Table(title=f"Discovered indices (ranked by |{word}|, in-sample)")
    for col in ("rank", "formula", word, "p", "95 % CI", "n"):
        out.add_column(col, justify="left" if col == "formula" else "right")
    for row in table.head(limit).itertuples():
        out.add_row(
            str(row.rank), row.formula, f"{row.r:+.3f}", f"{row.p:.2g}",
            f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]", str(row.n),
        )  # fmt: skip
    return out


def register(app: typer.Typer) -> None:
    app.command("discover")(discover_command)

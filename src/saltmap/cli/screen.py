"""``saltmap screen``: correlation of every index with measured salinity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.features.screening import screen
from saltmap.plots import plot_screening, save_figure


@opt.with_sample_options
def screen_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("screening"),
    indices: Annotated[str, typer.Option("--indices", help="Index names or sets.")] = "study",
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Screen salinity indices by Pearson correlation with the measured target.

    Writes screening.csv, the rejected-row report and the study's figure 4.
    """
    from saltmap.cli import console

    outputs = [out / "screening.csv", out / "figure4_screening.png", out / "rejected.csv"]
    opt.check_writable(outputs, overwrite)
    samples = sample_options.read(samples_file)
    table = screen(samples, indices)
    out.mkdir(parents=True, exist_ok=True)
    atomic_to_csv(table, outputs[0], index=False)
    label = (
        f"{samples.target_name} ({samples.target_unit})"
        if samples.target_unit
        else samples.target_name
    )
    save_figure(plot_screening(table, target_label=label), outputs[1], formats=("png", "svg"))
    samples.save_rejected(outputs[2])
    console.print(rich_screening_table(table))
    console.print(f"wrote {outputs[0]}, {outputs[1]} (+ .svg), {outputs[2]}")


def rich_screening_table(table, limit: int = 25) -> Table:
    out = Table(title="Pearson screening (ranked by |r|)")
    for col in ("rank", "index", "group", "r", "p", "95 % CI", "n", "undefined"):
        out.add_column(col, justify="right" if col not in ("index", "group") else "left")
    for row in table.head(limit).itertuples():
        out.add_row(
            str(row.rank),
            row.index,
            row.group,
            f"{row.r:+.3f}",
            f"{row.p_value:.2g}",
            f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]",
            str(row.n),
            str(row.n_undefined),
        )
    return out


def register(app: typer.Typer) -> None:
    app.command("screen")(screen_command)

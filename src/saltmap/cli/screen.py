"""``saltmap screen``: correlation of every index with measured salinity."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say, table
from saltmap.features.screening import screen
from saltmap.plots import plot_screening, save_figure


@opt.with_sample_options
def screen_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: opt.OutFolder = Path("screening"),
    indices: opt.Indices = "study",
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Screen salinity indices by Pearson correlation with the measured target.

    Writes screening.csv, the rejected-row report and the study's figure 4.
    """
    outputs = [out / "screening.csv", out / "figure4_screening.png", out / "rejected.csv"]
    opt.check_writable(outputs, overwrite)
    samples = sample_options.read(samples_file)
    found = screen(samples, indices)
    out.mkdir(parents=True, exist_ok=True)
    atomic_to_csv(found, outputs[0], index=False)
    label = (
        f"{samples.target_name} ({samples.target_unit})"
        if samples.target_unit
        else samples.target_name
    )
    save_figure(plot_screening(found, target_label=label), outputs[1], formats=("png", "svg"))
    samples.save_rejected(outputs[2])
    print_screening_table(found)
    say(f"wrote {outputs[0]}, {outputs[1]} (+ .svg), {outputs[2]}")


def print_screening_table(found: pd.DataFrame, limit: int = 25) -> None:
    """The top ``limit`` rows of a screening table, as the terminal shows them."""
    rows = (
        (row.rank, row.index, row.group, f"{row.r:+.3f}", f"{row.p_value:.2g}",
         f"{row.q_value:.2g}", f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]", row.n, row.n_undefined)
        for row in found.head(limit).itertuples()
    )  # fmt: skip
    columns = ("rank", "index", "group", "r", "p", "q (BH)", "95 % CI", "n", "undefined")
    table("Pearson screening (ranked by |r|)", columns, rows, left=("index", "group"))


def register(app: typer.Typer) -> None:
    app.command("screen")(screen_command)

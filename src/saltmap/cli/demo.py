"""``saltmap demo``: the study on the real shared data, in one command."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from saltmap.plots import plot_screening, save_figure
from saltmap.samples import odisha
from saltmap.screening import screen


def demo(
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default runs/demo-<timestamp>).")
    ] = None,
) -> None:
    """Run saltmap on the real Odisha samples (SALTMAP_DATA_DIR or ../shared/data).

    Reads the 113 Odisha coastal samples (EC, Landsat surface reflectance),
    reports the rows it cannot use, and screens the study's 21 indices.
    """
    from saltmap.cli import console
    from saltmap.cli.screen import rich_screening_table

    out = out or Path("runs") / f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=False)
    samples = odisha()
    console.print(samples.summary())
    table = screen(samples, "study")
    table.to_csv(out / "screening.csv", index=False)
    samples.save_rejected(out / "rejected.csv")
    fig = plot_screening(table, target_label=f"EC ({samples.target_unit})")
    save_figure(fig, out / "figure4_screening", formats=("png", "svg"))
    console.print(rich_screening_table(table, limit=10))
    console.print(f"[bold]demo written to {out}[/]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

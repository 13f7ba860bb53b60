"""``saltmap demo``: the shipped demo study on the real shared data, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saltmap.cli.run import OUT, QUIET, VERBOSE, run_and_report


def demo(
    out: Annotated[Path, OUT] = Path("runs"),
    verbose: Annotated[int, VERBOSE] = 0,
    quiet: Annotated[bool, QUIET] = False,
) -> None:
    """Run the demo study: Odisha samples model salinity, the model maps a Patagonia scene.

    This is `saltmap run` on the study file shipped with saltmap
    (saltmap/data/demo.toml; copy it to start a study of your own) over the shared
    data (SALTMAP_DATA_DIR or ../shared/data), with quick evaluation settings.
    """
    from saltmap.study.config import demo_study_path

    run_and_report(demo_study_path(), out, verbose, quiet)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

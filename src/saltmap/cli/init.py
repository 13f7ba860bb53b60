"""``saltmap init``: write a commented example study file to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saltmap.cli import _options as opt
from saltmap.cli._print import say


def init_command(
    path: Annotated[Path, typer.Argument(help="Where to write the study file.")] = Path(
        "study.toml"
    ),
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Write a commented example study file (every key, with its default and meaning)."""
    from saltmap.study.config import write_example_study

    written = write_example_study(path, overwrite=overwrite)
    say(f"wrote {written}: set [samples] path and [[scenes]] path, then `saltmap run {written}`")


def register(app: typer.Typer) -> None:
    app.command("init")(init_command)

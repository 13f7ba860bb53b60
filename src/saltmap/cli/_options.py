"""Options shared by several verbs, so they read the same everywhere."""

from __future__ import annotations

from pathlib import Path

import typer

from saltmap.errors import OutputExistsError

OVERWRITE = typer.Option(False, "--overwrite", help="Replace output files that exist.")
SEED = typer.Option(0, "--seed", help="Random seed; the same seed gives the same numbers.")


def check_writable(paths: list[Path], overwrite: bool) -> None:
    """Refuse to clobber existing outputs unless ``--overwrite`` was given."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{', '.join(existing)} already exist(s); pass --overwrite to replace, "
            "or choose another output path"
        )

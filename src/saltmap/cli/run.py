"""``saltmap run``: run a study file end to end into a run folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.logging import RichHandler

from saltmap.cli._print import err_console, say
from saltmap.cli._progress import RichProgress

OUT = typer.Option("--out", help="Parent folder of the run folder <study>-<timestamp>/.")
VERBOSE = typer.Option("--verbose", "-v", count=True, help="Debug detail in the log and on screen.")
QUIET = typer.Option("--quiet", "-q", help="Only warnings and errors; no progress bars.")


def log_level(verbose: int, quiet: bool) -> int:
    """The logging level of ``-v``/``-q``: warnings with -q, info by default, debug with -v."""
    if quiet:
        return logging.WARNING
    return logging.DEBUG if verbose else logging.INFO


def console_logging(level: int) -> logging.Handler:
    """Show saltmap's log lines on the terminal (rich), at ``level``; returns the handler."""
    handler = RichHandler(
        console=err_console, show_path=False, show_level=level <= logging.DEBUG, markup=False
    )
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    # Records meant for the run's log file only (the error itself is printed once, by main).
    handler.addFilter(lambda record: getattr(record, "console", True))
    logger = logging.getLogger("saltmap")
    logger.addHandler(handler)
    logger.setLevel(min(logger.level or logging.WARNING, level))
    return handler


def run_and_report(study_file: Path, out: Path, verbose: int, quiet: bool) -> None:
    """Load, run and print where everything went (shared by ``run`` and ``demo``)."""
    from saltmap.study.config import load_study
    from saltmap.study.runner import run_study

    level = log_level(verbose, quiet)
    handler = console_logging(level)
    try:
        study = load_study(study_file)
        progress = None if quiet else RichProgress()
        result = run_study(study, out, progress=progress, log_level=min(level, logging.INFO))
    finally:
        logging.getLogger("saltmap").removeHandler(handler)
    left_out = [s for s in result.steps if s.status == "skipped"]
    for step in left_out:
        say(f"  left out: {step.name} ({step.note})")
    say(
        f"run written to {result.folder} in {result.seconds:.0f} s"
        + (f"; report: {result.report}" if result.report else "")
    )


def run_command(
    study_file: Annotated[Path, typer.Argument(help="The study file (TOML); see saltmap init.")],
    out: Annotated[Path, OUT] = Path("runs"),
    verbose: Annotated[int, VERBOSE] = 0,
    quiet: Annotated[bool, QUIET] = False,
) -> None:
    """Run a study: screening, discovery, evaluation, final fit, maps and report.

    Writes runs/<study>-<timestamp>/ with a copy of the study file, the software
    versions and seeds (versions.json, run.json), tables (CSV and Markdown),
    figures (PNG and SVG), maps (COG), the model file, run.log and report.html.
    """
    run_and_report(study_file, out, verbose, quiet)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)

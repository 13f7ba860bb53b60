"""Terminal bars for the library's progress reports (:mod:`saltmap.progress`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from saltmap.cli._print import err_console
from saltmap.progress import Tick


class RichProgress:
    """Draws each task as a rich bar (a spinner while its total is unknown).

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to draw (the command line's standard error by default, so output stays clean).
    transient : bool, default=True
        Remove each bar when its task ends.
    """

    def __init__(self, console: Console | None = None, *, transient: bool = True) -> None:
        self.console = console or err_console
        self.transient = transient

    @contextlib.contextmanager
    def task(self, what: str, total: int | None = None) -> Iterator[Tick]:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=self.transient) as bar:
            handle = bar.add_task(what, total=total)

            def tick(done: int, total: int | None) -> None:
                bar.update(handle, completed=done, total=total)

            yield tick

"""Progress of long work, reported through a callback: the library reports, the CLI draws.

A long function takes ``progress: Progress | None``. It opens one task per stage
of its work and reports ``(done, total)`` on it; ``total`` is None while unknown
(a spinner). The library never draws; :class:`saltmap.cli._progress.RichProgress`
turns the reports into terminal bars, and tests record them.

Examples
--------
>>> from saltmap.progress import task
>>> with task(None, "blocks", total=3) as tick:  # no reporter: ticks do nothing
...     for done in range(1, 4):
...         tick(done, 3)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Protocol

Tick = Callable[[int, int | None], None]
"""``tick(done, total)``: how much of a task is done (total None while unknown)."""


class Progress(Protocol):
    """Where long work reports: one task per stage, opened as a context."""

    def task(self, what: str, total: int | None = None) -> contextlib.AbstractContextManager[Tick]:
        """Open a task described by ``what`` and return its ``tick(done, total)``."""
        ...


def _ignore(done: int, total: int | None) -> None:
    """The tick of a hidden task."""


@contextlib.contextmanager
def task(progress: Progress | None, what: str, total: int | None = None) -> Iterator[Tick]:
    """Open ``what`` on ``progress``, or a silent task when there is no reporter."""
    if progress is None:
        yield _ignore
        return
    with progress.task(what, total) as tick:
        yield tick


class RecordedProgress:
    """A reporter that keeps every tick: ``{what: [(done, total), ...]}`` (tests, logs)."""

    def __init__(self) -> None:
        self.ticks: dict[str, list[tuple[int, int | None]]] = {}

    @contextlib.contextmanager
    def task(self, what: str, total: int | None = None) -> Iterator[Tick]:
        record = self.ticks.setdefault(what, [])

        def tick(done: int, total: int | None) -> None:
            record.append((done, total))

        yield tick

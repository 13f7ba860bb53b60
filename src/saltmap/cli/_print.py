"""The one printing path of the command line.

Every verb prints through :func:`say`, :func:`warn`, :func:`error` and :func:`table`.
None of them reads its text as rich markup or emoji codes: file names, column names,
units written ``[dS/m]`` and TOML sections such as ``[samples]`` come out as written.
Styles are given as arguments, never inside the text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def say(text: str, *, style: str = "") -> None:
    """Print one message on standard output, verbatim."""
    console.print(Text(str(text), style=style))


def warn(text: str, *, stderr: bool = False) -> None:
    """Print a caution (the run goes on), verbatim, in yellow; on standard output by default."""
    (err_console if stderr else console).print(Text(str(text), style="yellow"))


def error(text: str) -> None:
    """Print an error on standard error as ``error: <text>``, the text verbatim."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", str(text)))


def table(
    title: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    left: Iterable[str] = (),
    title_justify: str = "center",
) -> None:
    """Print a table; every cell is shown as ``str(cell)``, verbatim.

    Parameters
    ----------
    title : str
        Shown above the table, left-aligned.
    columns : sequence of str
        Column headers.
    rows : iterable of sequences
        One sequence of cells per row, in the order of ``columns``.
    left : iterable of str, optional
        Columns aligned left (text); the others align right (numbers).
    title_justify : str, default="center"
        Where the title sits: left, center or right.
    """
    left = set(left)
    out = Table(title=Text(title), title_justify=title_justify)  # type: ignore[arg-type]
    for col in columns:
        out.add_column(Text(str(col)), justify="left" if col in left else "right")
    for row in rows:
        out.add_row(*(Text(str(cell)) for cell in row))
    console.print(out)


def frame_table(title: str, frame: Any, *, left: Iterable[str] = (), **kwargs: Any) -> None:
    """Print a pandas DataFrame (its columns and rows as they are) with :func:`table`."""
    table(title, list(map(str, frame.columns)), frame.itertuples(index=False), left=left, **kwargs)

"""``saltmap indices``: print the index catalogue."""

from __future__ import annotations

import typer
from rich.table import Table

from saltmap.features.indices import catalogue_table


def indices(
    group: str = typer.Option(None, "--group", help="Only this group: classic, novel or other."),
) -> None:
    """Print the salinity index catalogue: name, group, formula and reference."""
    from saltmap.cli import console

    table = catalogue_table()
    if group:
        table = table[table["group"] == group]
    out = Table(title=f"saltmap index catalogue ({len(table)} indices)")
    for col in ("name", "group", "formula", "reference"):
        out.add_column(col)
    for row in table.itertuples():
        out.add_row(row.name, row.group, row.formula, row.reference)
    console.print(out)


def register(app: typer.Typer) -> None:
    app.command("indices")(indices)

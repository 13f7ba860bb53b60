"""``saltmap indices``: print the index catalogue."""

from __future__ import annotations

import typer

from saltmap.cli._print import table as print_table
from saltmap.features.indices import catalogue_table


def indices(
    group: str = typer.Option(None, "--group", help="Only this group: classic, novel or other."),
) -> None:
    """Print the salinity index catalogue: name, group, formula and reference."""
    table = catalogue_table()
    if group:
        table = table[table["group"] == group]
    columns = ("name", "group", "formula", "reference")
    print_table(
        f"saltmap index catalogue ({len(table)} indices)",
        columns,
        table[list(columns)].itertuples(index=False),
        left=columns,
    )


def register(app: typer.Typer) -> None:
    app.command("indices")(indices)

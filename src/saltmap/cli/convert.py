"""``saltmap convert``: EC units, and the EC → salt content conversion from lab data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say
from saltmap.plots import salt_conversion_figure, save_figure
from saltmap.salinity.conversion import load_conversion, save_conversion
from saltmap.salinity.labsheet import LabFit, fit_lab_sheet
from saltmap.salinity.units import convert_ec, normalise_unit, quantity_of

convert_app = typer.Typer(
    help="Convert EC units, or fit the EC to salt content conversion from lab data.",
    no_args_is_help=True,
)


def _rejected_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}_rejected.csv")


@convert_app.command("fit")
def fit(
    lab_file: Annotated[Path, typer.Argument(help="Lab sheet (.csv or .xlsx) with EC and salt.")],
    ec: Annotated[
        str | None, typer.Option("--ec", help="EC column (default: found by name).")
    ] = None,
    salt: Annotated[
        str | None, typer.Option("--salt", help="Salt content column (default: found by name).")
    ] = None,
    ec_unit: Annotated[
        str | None,
        typer.Option("--ec-unit", help="EC unit (uS/cm, mS/cm, dS/m) if the header lacks it."),
    ] = None,
    sheet: Annotated[str | None, typer.Option("--sheet", help="Workbook sheet name.")] = None,
    out: Annotated[Path, opt.out_option("Conversion file to write (.toml or .json).")] = Path(
        "conversion.toml"
    ),
    figure: Annotated[
        bool, typer.Option("--figure/--no-figure", help="Also draw the fit beside --out (.png).")
    ] = True,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Fit salt content (g/kg) = slope × EC + intercept by least squares on a lab sheet.

    Prints slope, intercept, r², n and every row that could not be used with its
    reason; writes the conversion to --out and the unusable rows to
    <out>_rejected.csv beside it.
    """
    rejected_csv = _rejected_path(out)
    figure_png = out.with_suffix(".png")
    opt.check_writable([out, rejected_csv, *([figure_png] if figure else [])], overwrite)
    result = fit_lab_sheet(lab_file, ec_column=ec, salt_column=salt, ec_unit=ec_unit, sheet=sheet)
    print_lab_fit(result)
    save_conversion(result.conversion, out)
    atomic_to_csv(result.rejected, rejected_csv, index=False)
    say(f"wrote        {out}, {rejected_csv}")
    if figure:
        _draw_fit(result, figure_png)
        say(f"wrote        {figure_png}")


def print_lab_fit(result: LabFit) -> None:
    """The fitted line, the rows read with a decimal comma, rejected and suspect rows."""
    conv, lab = result.conversion, result.sheet
    say(f"lab sheet    {lab.source}")
    say(
        f"columns      EC = {lab.ec_column!r} ({lab.ec_unit}), "
        f"salt = {lab.salt_column!r} ({lab.salt_unit})"
    )
    say(f"salt (g/kg) = {conv.slope:.6g} × EC ({conv.ec_unit}) {conv.intercept:+.6g}")
    say(f"slope        {conv.slope:.6g} g/kg per {conv.ec_unit}")
    say(f"intercept    {conv.intercept:.6g} g/kg")
    say(f"r²           {conv.r2:.6f}")
    say(f"n            {conv.n} rows used of {len(lab.cells)}")
    for row in result.decimal_commas.itertuples():
        say(f"  read row {row.row} {row.column} {row.cell!r} as {row.read_as:g} (decimal comma)")
    say(f"rejected     {len(result.rejected)} rows")
    for reason, count in result.rejected["reason"].value_counts().items():
        say(f"  {count} × {reason}")
    for row in result.rejected.itertuples():
        ident = f" ({row.id})" if row.id is not None and row.id == row.id else ""
        say(f"  row {row.row}{ident}: {row.reason}")
    if len(result.suspects):
        say(
            f"check        {len(result.suspects)} row(s) over 4 residual SD off the line "
            "(kept in the fit; a typo in the sheet?)"
        )
        for row in result.suspects.itertuples():
            say(
                f"  row {row.Index} ({row.id}): EC {row.ec:g}, salt {row.salt:g} g/kg, "
                f"line gives {row.fitted:.4g} (residual {row.residual:+.3g}, {row.z:+.1f} SD)"
            )


def _draw_fit(result: LabFit, path: Path) -> None:
    conv = result.conversion
    fig = salt_conversion_figure(
        result.usable["ec"],
        result.usable["salt"],
        slope=conv.slope,
        intercept=conv.intercept,
        ec_unit=conv.ec_unit,
        r2=conv.r2,
        title=f"EC to salt content: {Path(result.sheet.source.split(' sheet ')[0]).name}",
    )
    save_figure(fig, path)


@convert_app.command("ec")
def ec_units(
    value: Annotated[list[float], typer.Argument(help="One or more EC values.")],
    from_unit: Annotated[str, typer.Option("--from", help="Unit of VALUE, e.g. uS/cm.")],
    to_unit: Annotated[str, typer.Option("--to", help="Unit wanted, e.g. dS/m.")],
    conversion: Annotated[
        Path | None,
        typer.Option("--conversion", help="Conversion file, to go from EC to salt (g/kg)."),
    ] = None,
) -> None:
    """Convert EC values between µS/cm, mS/cm and dS/m (or to g/kg with --conversion)."""
    src, dst = normalise_unit(from_unit), normalise_unit(to_unit)
    values = np.asarray(value, dtype=float)
    if conversion is not None and quantity_of(src) == "EC" and quantity_of(dst) != "EC":
        result = convert_ec(load_conversion(conversion).to_salt(values, ec_unit=src), "g/kg", dst)
    else:
        result = convert_ec(values, src, dst)
    for v, r in zip(values, result, strict=True):
        say(f"{v:g} {src} = {r:.6g} {dst}")


def register(app: typer.Typer) -> None:
    app.add_typer(convert_app, name="convert")

"""Lab sheets: reading messy EC / salt content sheets and fitting the conversion on them.

:func:`read_lab_sheet` reads a CSV or XLSX sheet as raw cells and finds the EC and
salt content columns (and their units) by name; :func:`fit_lab_sheet` reads one and
fits the EC → salt content line (:func:`~saltmap.salinity.conversion.fit_salt_conversion`)
on it, with what was made of the sheet: rejected rows, cells read with a decimal
comma, the pairs fitted and the pairs far off the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from saltmap.errors import ConfigError, InputFileError, MissingColumnError, UnitError
from saltmap.salinity.conversion import SaltConversion, fit_salt_conversion, large_residuals
from saltmap.salinity.units import (
    convert_ec,
    normalise_unit,
    parse_numbers,
    quantity_of,
    unit_factor,
    unit_in_header,
)

# Column names (squashed: lower case, letters and digits only, unit in brackets
# removed) that obviously hold EC or salt content.
_EC_NAMES = frozenset(
    {"ec", "ece", "ecse", "ec15", "ec12", "ec125", "ec11", "ecsat", "ec25", "conductivity",
     "electricalconductivity", "soilec"}
)  # fmt: skip
_SALT_NAMES = frozenset(
    {"ssc", "salt", "salts", "saltcontent", "soilsaltcontent", "totalsalt", "tss",
     "totalsolublesalts", "totalsalts"}
)  # fmt: skip
_ID_NAMES = frozenset({"id", "sampleid", "sample", "name", "code", "labid", "no"})


def _bare_name(header: Any) -> str:
    name = re.sub(r"[(\[].*?[)\]]", "", str(header))
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass
class LabSheet:
    """A lab sheet read as raw cells, with the columns and units found in it.

    Attributes
    ----------
    cells : DataFrame
        Every cell as read (object dtype where cells are mixed), indexed by the
        row number a spreadsheet shows (header = row 1, first data row = 2).
    ec_column, salt_column : str
        The EC and salt content columns.
    ec_unit, salt_unit : str
        Their units (canonical spelling).
    id_column : str or None
        A sample id column, when one is obvious.
    source : str
        The file (and sheet).
    """

    cells: pd.DataFrame
    ec_column: str
    salt_column: str
    ec_unit: str
    salt_unit: str
    id_column: str | None
    source: str

    @property
    def ec(self) -> pd.Series:
        """Raw EC cells, indexed by sheet row number."""
        return self.cells[self.ec_column]

    @property
    def salt(self) -> pd.Series:
        """Raw salt content cells, indexed by sheet row number."""
        return self.cells[self.salt_column]


def _read_cells(path: Path, sheet: str | int | None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in {".xlsx", ".xlsm", ".xls", ".ods"}:
            cells = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, dtype=object)
        elif suffix in {".csv", ".txt", ".tsv"}:
            # Every cell as text, blank lines kept, so row numbers match the file and
            # "6,1" is not split or guessed at by the parser.
            cells = pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                skip_blank_lines=False,
                sep=None,
                engine="python",
                encoding_errors="replace",
            )
        else:
            raise InputFileError(
                f"{path}: unknown lab sheet format {suffix!r}; use .csv, .tsv, .xlsx or .ods"
            )
    except FileNotFoundError as err:
        raise InputFileError(f"lab sheet {path} does not exist") from err
    except ValueError as err:  # e.g. a sheet name that is not in the workbook
        raise InputFileError(f"cannot read lab sheet {path}: {err}") from err
    cells.index = pd.RangeIndex(2, len(cells) + 2, name="row")
    cells.columns = [str(c) for c in cells.columns]
    return cells


def _pick_column(cells: pd.DataFrame, given: str | None, names: frozenset, what: str, opt: str):
    columns = list(cells.columns)
    if given is not None:
        if given in columns:
            return given
        stripped = {c.strip(): c for c in columns}
        if given.strip() in stripped:
            return stripped[given.strip()]
        raise MissingColumnError(f"no column {given!r} for {what}; the columns are {columns}")
    found = [c for c in columns if _bare_name(c) in names]
    if len(found) == 1:
        return found[0]
    if not found:
        raise MissingColumnError(
            f"no column looks like {what}; the columns are {columns}. Name it with {opt}"
        )
    raise ConfigError(f"several columns look like {what}: {found}; choose one with {opt}")


def read_lab_sheet(
    path: str | Path,
    ec_column: str | None = None,
    salt_column: str | None = None,
    sheet: str | int | None = None,
    *,
    ec_unit: str | None = None,
    salt_unit: str | None = None,
) -> LabSheet:
    """Read a lab sheet (CSV or XLSX) pairing EC with salt content, cells as they are.

    Columns are found by name when obvious (``EC``, ``ECe``, ``EC1:5``, ``Electrical
    conductivity``; ``SSC``, ``Salt content``, ``TSS``), with the unit read from the
    header's brackets (``EC(ms cm-1)`` → mS/cm). Cells are not cleaned here:
    :func:`~saltmap.salinity.conversion.fit_salt_conversion` reads them and reports
    the unusable rows.

    Parameters
    ----------
    path : str or Path
        ``.csv``/``.tsv`` (separator sniffed) or ``.xlsx``/``.ods``.
    ec_column, salt_column : str, optional
        Column names, when not obvious.
    sheet : str or int, optional
        Workbook sheet (default the first).
    ec_unit, salt_unit : str, optional
        Units, when the headers do not say; they must agree with a unit a header says.

    Returns
    -------
    LabSheet

    Raises
    ------
    InputFileError, MissingColumnError, ConfigError, UnitError
    """
    path = Path(path)
    cells = _read_cells(path, sheet)
    ec_col = _pick_column(cells, ec_column, _EC_NAMES, "EC", "--ec")
    salt_col = _pick_column(cells, salt_column, _SALT_NAMES, "salt content", "--salt")
    ids = [c for c in cells.columns if _bare_name(c) in _ID_NAMES]
    source = f"{path}" + (f" sheet {sheet}" if sheet is not None else "")
    return LabSheet(
        cells=cells,
        ec_column=ec_col,
        salt_column=salt_col,
        ec_unit=_column_unit(ec_col, ec_unit, "EC", "--ec-unit", "mS/cm"),
        salt_unit=_column_unit(salt_col, salt_unit, "salt content", "--salt-unit", "g/kg"),
        id_column=ids[0] if ids else None,
        source=source,
    )


def _column_unit(column: str, given: str | None, what: str, opt: str, example: str) -> str:
    in_header = unit_in_header(column)
    unit = normalise_unit(given) if given else in_header
    if unit is None:
        raise UnitError(
            f"the unit of {what} column {column!r} is not known; give it ({opt} {example})"
        )
    if quantity_of(unit) != ("EC" if what == "EC" else "salt content"):
        raise UnitError(f"{unit} is not a unit of {what} (column {column!r}); see {opt}")
    if in_header and unit_factor(in_header) != unit_factor(unit):
        raise UnitError(
            f"column {column!r} says {in_header} but {unit} was given; drop {opt} or fix the header"
        )
    return unit


@dataclass
class LabFit:
    """The result of :func:`fit_lab_sheet`: the conversion and what was made of the sheet.

    Attributes
    ----------
    conversion : SaltConversion
    rejected : DataFrame
        Unusable rows: ``row`` (sheet row number), ``id``, ``ec``, ``salt``, ``reason``.
    decimal_commas : DataFrame
        Cells read with a decimal comma: ``row``, ``column``, ``cell``, ``read_as``.
    usable : DataFrame
        The pairs fitted: ``ec`` (in the conversion's unit) and ``salt`` (g/kg), by row.
    sheet : LabSheet
    suspects : DataFrame
        Fitted rows far off the line
        (:func:`~saltmap.salinity.conversion.large_residuals`): kept in the fit,
        listed so a typo in the lab sheet can be checked.
    """

    conversion: SaltConversion
    rejected: pd.DataFrame
    decimal_commas: pd.DataFrame
    usable: pd.DataFrame
    sheet: LabSheet
    suspects: pd.DataFrame


def fit_lab_sheet(
    path: str | Path,
    *,
    ec_column: str | None = None,
    salt_column: str | None = None,
    ec_unit: str | None = None,
    sheet: str | int | None = None,
) -> LabFit:
    """Read a lab sheet and fit the EC → salt content conversion on it.

    :func:`read_lab_sheet` then
    :func:`~saltmap.salinity.conversion.fit_salt_conversion`; see them for the rules.

    Examples
    --------
    >>> from saltmap.datasets import xinjiang_lab_sheet
    >>> fit = fit_lab_sheet(xinjiang_lab_sheet())  # doctest: +SKIP
    >>> print(fit.conversion)  # doctest: +SKIP
    """
    lab = read_lab_sheet(path, ec_column, salt_column, sheet, ec_unit=ec_unit)
    source = f"{lab.source} columns {lab.ec_column!r}, {lab.salt_column!r}"
    conversion, rejected = fit_salt_conversion(
        lab.ec, lab.salt, lab.ec_unit, salt_unit=lab.salt_unit, source=source
    )
    ids = lab.cells[lab.id_column] if lab.id_column else pd.Series(None, index=lab.cells.index)
    rejected.insert(1, "id", ids.reindex(rejected["row"]).to_numpy())
    decimal_commas = _decimal_commas(lab)
    keep = ~lab.cells.index.isin(rejected["row"])
    usable = pd.DataFrame(
        {
            "ec": parse_numbers(lab.ec[keep]).value,
            "salt": convert_ec(parse_numbers(lab.salt[keep]).value, lab.salt_unit, "g/kg"),
        }
    )
    suspects = large_residuals(usable["ec"], usable["salt"], conversion)
    suspects.insert(0, "id", ids.reindex(suspects.index).to_numpy())
    return LabFit(conversion, rejected, decimal_commas, usable, lab, suspects)


def _decimal_commas(lab: LabSheet) -> pd.DataFrame:
    """EC and salt cells read with a decimal comma: ``row``, ``column``, ``cell``, ``read_as``."""
    commas = []
    for column in (lab.ec_column, lab.salt_column):
        parsed = parse_numbers(lab.cells[column])
        for row in parsed.index[parsed.decimal_comma]:
            commas.append((row, column, str(lab.cells.at[row, column]), parsed.at[row, "value"]))
    return pd.DataFrame(commas, columns=["row", "column", "cell", "read_as"])

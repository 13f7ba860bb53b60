"""Salinity quantities: EC units, EC → salt content conversion, salinity classes.

Three small pieces a soil-salinity map needs between the lab and the legend:

* **Units.** Electrical conductivity (EC) comes as µS/cm, mS/cm or dS/m
  (1 dS/m = 1 mS/cm = 1000 µS/cm); soil salt content as g/kg (or %, 1 % = 10 g/kg).
  :func:`normalise_unit` reads the usual spellings, :func:`convert_ec` converts.
  EC and salt content are different quantities: going from one to the other needs
  a :class:`SaltConversion`, never a unit factor.
* **EC → salt content.** A linear conversion ``salt = slope · EC + intercept``
  fitted by ordinary least squares on paired lab data (:func:`fit_salt_conversion`,
  :func:`fit_lab_sheet`), read from messy lab sheets (:func:`read_lab_sheet`) whose
  unusable rows are reported with their row number and reason, never dropped silently.
* **Classes.** Salinity class schemes as data (:class:`ClassScheme`): the study's
  Table 5 on salt content, the USDA/FAO EC classes, or the user's own thresholds,
  and :func:`classify` that turns values into uint8 class codes for a map.

The EC → salt content relation depends on the soil, the extract (1:5, saturated
paste, ...) and the salt chemistry, so fit it on lab data from the same region and
method as the field samples [1]_.

References
----------
.. [1] Richards, L. A. (ed.) (1954). Diagnosis and Improvement of Saline and Alkali
   Soils. USDA Agriculture Handbook 60, Washington DC.
.. [2] Abrol, I. P., Yadav, J. S. P., Massoud, F. I. (1988). Salt-Affected Soils and
   their Management. FAO Soils Bulletin 39, Rome.
.. [3] FAO (2006). Guidelines for Soil Description, 4th ed. Rome.
.. [4] Agriculture and Agri-Food Canada, Canadian Soil Information Service: soil
   salinity rating, https://sis.agr.gc.ca/cansis/nsdb/dss/v3/prt/salsym.html

Class schemes
-------------
``study``: the study's Table 5, topsoil salt content (g/kg): < 1 normal, 1–2 mild,
2–4 moderate, 4–6 severe, ≥ 6 solonchak.

``fao-ec`` (alias ``usda-ec``): EC of the saturated paste extract, ECe (dS/m):
0–2 non-saline, 2–4 slightly, 4–8 moderately, 8–16 strongly, ≥ 16 very strongly
saline; the USDA classes of [1]_ that FAO uses in [2]_. The bounds were checked
against [4]_ (nonsaline 0–2, weakly 2–4, moderately 4–8, strongly 8–16, very strongly
> 16 dS/m) and against the "USDA" criterion of the R package soilassessment
(``saltSeverity``, citing [1]_).

``fao2006-ec``: the FAO soil description guidelines [3]_ use other bounds on ECse:
< 0.75 none, 0.75–2 slightly, 2–4 moderately, 4–8 strongly, 8–15 very strongly,
≥ 15 dS/m extremely saline (checked via soilassessment's "FAO" criterion, which
cites [3]_, not against the guidelines themselves).

Both EC schemes are for the saturated paste extract: EC of a 1:5 soil–water extract
is several times lower and must not be classed with them unconverted.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from saltmap.atomic import atomic_write_text
from saltmap.errors import (
    ConfigError,
    InputFileError,
    MissingColumnError,
    SampleDataError,
    UnitError,
)

# ---------------------------------------------------------------------------
# Units
# ---------------------------------------------------------------------------

EC_UNITS: tuple[str, ...] = ("µS/cm", "mS/cm", "dS/m")
SALT_UNITS: tuple[str, ...] = ("g/kg", "%")

# Factor that turns a value in the unit into the quantity's base unit
# (dS/m for EC, g/kg for salt content).
_FACTOR: dict[str, float] = {"µS/cm": 1e-3, "mS/cm": 1.0, "dS/m": 1.0, "g/kg": 1.0, "%": 10.0}
_QUANTITY: dict[str, str] = {
    "µS/cm": "EC",
    "mS/cm": "EC",
    "dS/m": "EC",
    "g/kg": "salt content",
    "%": "salt content",
}

# Spellings after squashing (lower case; µ/μ -> u; spaces, _, ·, *, ^, . and
# superscripts removed): "us/cm", "uscm-1", "us_cm" -> "uscm", ...
_SPELLINGS: dict[str, str] = {
    **dict.fromkeys(("us/cm", "uscm-1", "uscm", "umho/cm", "umhocm-1", "umhos/cm"), "µS/cm"),
    **dict.fromkeys(("ms/cm", "mscm-1", "mscm", "mmho/cm", "mmhocm-1", "mmhos/cm"), "mS/cm"),
    **dict.fromkeys(("ds/m", "dsm-1", "dsm"), "dS/m"),
    **dict.fromkeys(("g/kg", "gkg-1", "gkg"), "g/kg"),
    **dict.fromkeys(("%", "percent", "pct"), "%"),
}
_SUPERSCRIPTS = str.maketrans({"⁻": "-", "¹": "1", "µ": "u", "μ": "u"})


def _accepted() -> str:
    return "EC: µS/cm (uS/cm), mS/cm (ms cm-1), dS/m (ds m-1); salt content: g/kg (g kg-1), %"


def normalise_unit(text: str) -> str:
    """Return the canonical spelling of an EC or salt content unit.

    Case is ignored (lab sheets write ``ms cm-1`` for mS/cm), as are spaces,
    underscores, ``·`` and ``^``; ``u``, ``µ`` and ``μ`` all mean micro; ``mho``
    is the old name of the siemens.

    Parameters
    ----------
    text : str
        A unit as a user or a column header writes it, e.g. ``"uS/cm"``,
        ``"us_cm"``, ``"ds m-1"``, ``"dS·m⁻¹"``, ``"g kg-1"``.

    Returns
    -------
    str
        One of ``"µS/cm"``, ``"mS/cm"``, ``"dS/m"``, ``"g/kg"``, ``"%"``.

    Raises
    ------
    UnitError
        If the unit is not one of these; the message lists the accepted ones.

    Examples
    --------
    >>> normalise_unit("ms cm-1"), normalise_unit("us_cm"), normalise_unit("g kg-1")
    ('mS/cm', 'µS/cm', 'g/kg')
    """
    if not isinstance(text, str):
        raise UnitError(f"unit {text!r} is not text; accepted units: {_accepted()}")
    key = text.strip().translate(_SUPERSCRIPTS).lower()
    key = re.sub(r"[\s_·*^.]", "", key)
    if key in _SPELLINGS:
        return _SPELLINGS[key]
    raise UnitError(f"unknown unit {text!r}; accepted units: {_accepted()}")


def quantity_of(unit: str) -> str:
    """Return ``"EC"`` or ``"salt content"``: the quantity a unit measures."""
    return _QUANTITY[normalise_unit(unit)]


def convert_ec(values: Any, from_unit: str, to_unit: str) -> Any:
    """Convert EC (or salt content) values between units.

    Parameters
    ----------
    values : float, array-like, pandas or xarray object
        The values; lists and tuples become float ndarrays, other types keep theirs.
    from_unit, to_unit : str
        Units in any spelling :func:`normalise_unit` reads.

    Returns
    -------
    Same type as ``values`` (ndarray for lists), in ``to_unit``.

    Raises
    ------
    UnitError
        If a unit is unknown, or one is EC and the other salt content: that needs an
        EC → salt content conversion (:class:`SaltConversion`), not a unit factor.

    Examples
    --------
    >>> convert_ec(1500.0, "uS/cm", "dS/m")
    1.5
    """
    src, dst = normalise_unit(from_unit), normalise_unit(to_unit)
    if _QUANTITY[src] != _QUANTITY[dst]:
        raise UnitError(
            f"cannot convert {src} ({_QUANTITY[src]}) to {dst} ({_QUANTITY[dst]}) by a unit "
            "factor: EC to salt content needs a conversion for your soils. Give one "
            "(a SaltConversion; --conversion FILE on the command line) or fit it from "
            "paired lab data with "
            "`saltmap convert fit LAB_FILE` (saltmap.salinity.units.fit_lab_sheet)"
        )
    if isinstance(values, list | tuple):
        values = np.asarray(values, dtype=float)
    factor = _FACTOR[src] / _FACTOR[dst]
    return values if factor == 1.0 else values * factor


def unit_in_header(header: str) -> str | None:
    """Return the unit written in a column header's brackets, or None.

    ``"EC(ms cm-1)"`` → ``"mS/cm"``; ``"SSC [g/kg]"`` → ``"g/kg"``; ``"EC"`` → None.
    A bracketed text that is not a known unit also gives None.
    """
    found = re.search(r"[(\[]([^)\]]+)[)\]]", str(header))
    if not found:
        return None
    try:
        return normalise_unit(found.group(1))
    except UnitError:
        return None


# ---------------------------------------------------------------------------
# Messy numeric cells
# ---------------------------------------------------------------------------

_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")
# "1,234" may be 1.234 (decimal comma) or 1234 (thousands separator): not guessed.
_AMBIGUOUS_COMMA = re.compile(r"^[+-]?[1-9]\d{0,2},\d{3}$")
_POINT_DECIMAL = re.compile(r"^[+-]?\d*\.\d+$")


def _parse_cell(cell: Any, comma_column: bool = False) -> tuple[float, str | None, bool]:
    """(value, reason it cannot be used or None, read with a decimal comma).

    ``comma_column``: the column writes decimals with a comma, so "1,234" is 1.234.
    """
    if cell is None or (isinstance(cell, float) and math.isnan(cell)) or cell is pd.NA:
        return math.nan, "blank", False
    if isinstance(cell, bool):  # a TRUE/FALSE cell is not a measurement
        return math.nan, f"{cell!r} is not a number", False
    if isinstance(cell, int | float | np.integer | np.floating):
        value = float(cell)
        return (value, None, False) if math.isfinite(value) else (math.nan, "not finite", False)
    text = str(cell).replace("\u00a0", " ").strip()
    if not text:
        return math.nan, "blank", False
    if _AMBIGUOUS_COMMA.match(text) and not comma_column:
        plain = text.replace(",", "")
        return (
            math.nan,
            f"{text!r} is ambiguous (decimal comma or thousands separator?); "
            f"write {text.replace(',', '.')} or {plain}",
            False,
        )
    comma = bool(_DECIMAL_COMMA.match(text))
    try:
        value = float(text.replace(",", ".") if comma else text)
    except ValueError:
        hint = " (a censored value: enter a number)" if text[:1] in "<>" else ""
        return math.nan, f"{text!r} is not a number{hint}", False
    if not math.isfinite(value):
        return math.nan, f"{text!r} is not finite", False
    return value, None, comma


def parse_numbers(values: Sequence[Any] | pd.Series) -> pd.DataFrame:
    """Read the cells of a lab sheet column as numbers, saying why a cell is unusable.

    Numbers pass as they are; text is read as a number when it is one, including a
    decimal comma (``"6,1"`` → 6.1). ``"1,234"`` may be 1.234 or 1234: it is read
    as 1.234 only when the column writes decimals with a comma elsewhere (a cell such
    as ``"6,1"`` or ``"0,25"``) and no text cell uses a decimal point; otherwise it is
    reported, not guessed. A comma with a point (``"1,234.5"``) is reported. Blank,
    non-numeric and infinite cells become NaN with a reason.

    Parameters
    ----------
    values : sequence or Series
        Raw cells (object dtype is fine). A Series keeps its index.

    Returns
    -------
    DataFrame
        Columns ``value`` (float, NaN when unusable), ``reason`` (str or None) and
        ``decimal_comma`` (bool: read with a decimal comma), indexed like ``values``.

    Examples
    --------
    >>> parse_numbers(["6,1", 2, "", "n.d."]).value.tolist()[:2]
    [6.1, 2.0]
    """
    cells = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    texts = [c.strip() for c in cells if isinstance(c, str)]
    comma_column = any(
        _DECIMAL_COMMA.match(t) and not _AMBIGUOUS_COMMA.match(t) for t in texts
    ) and not any(_POINT_DECIMAL.match(t) for t in texts)
    parsed = [_parse_cell(c, comma_column) for c in cells.astype(object)]
    return pd.DataFrame(
        {
            "value": np.array([p[0] for p in parsed], dtype=float),
            # object dtype keeps None for "usable" (pandas 3 would make a str column of NaN)
            "reason": pd.Series([p[1] for p in parsed], dtype=object, index=cells.index),
            "decimal_comma": np.array([p[2] for p in parsed], dtype=bool),
        },
        index=cells.index,
    )


# ---------------------------------------------------------------------------
# EC -> salt content
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SaltConversion:
    """A linear conversion from EC to soil salt content: ``salt = slope · EC + intercept``.

    Parameters
    ----------
    slope : float
        g/kg of salt per unit of EC (in ``ec_unit``).
    intercept : float
        Salt content in g/kg at EC = 0.
    ec_unit : str
        The EC unit the slope refers to.
    r2 : float
        Coefficient of determination of the fit (NaN for a conversion given by hand).
    n : int
        Number of lab samples fitted (0 for a conversion given by hand).
    source : str
        Where it comes from (lab file and columns, or "given").
    """

    slope: float
    intercept: float
    ec_unit: str = "dS/m"
    r2: float = math.nan
    n: int = 0
    source: str = "given"
    salt_unit: str = field(default="g/kg", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ec_unit", normalise_unit(self.ec_unit))
        if _QUANTITY[self.ec_unit] != "EC":
            raise UnitError(f"ec_unit {self.ec_unit!r} of a SaltConversion must be an EC unit")
        if not (math.isfinite(self.slope) and math.isfinite(self.intercept)):
            raise ConfigError(
                f"a salt conversion needs finite slope and intercept, got slope={self.slope}, "
                f"intercept={self.intercept}"
            )

    def to_salt(self, ec: Any, ec_unit: str | None = None) -> Any:
        """Salt content (g/kg) from EC given in ``ec_unit`` (default: the conversion's unit).

        Works on scalars, numpy, pandas, xarray and dask arrays; NaN stays NaN.
        """
        if isinstance(ec, list | tuple):
            ec = np.asarray(ec, dtype=float)
        if ec_unit is not None:
            ec = convert_ec(ec, ec_unit, self.ec_unit)
        return ec * self.slope + self.intercept

    def to_ec(self, salt: Any, ec_unit: str | None = None) -> Any:
        """EC (in ``ec_unit``, default the conversion's unit) from salt content in g/kg."""
        if isinstance(salt, list | tuple):
            salt = np.asarray(salt, dtype=float)
        if self.slope == 0:
            raise ConfigError("a conversion with slope 0 cannot be inverted")
        ec = (salt - self.intercept) / self.slope
        return ec if ec_unit is None else convert_ec(ec, self.ec_unit, ec_unit)

    def __str__(self) -> str:
        return (
            f"salt (g/kg) = {self.slope:.4g} × EC ({self.ec_unit}) {self.intercept:+.4g}"
            f"   r² = {self.r2:.4f}, n = {self.n}"
        )


def _reject_table(rows: pd.Index, ec_raw, salt_raw, reasons) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row": np.asarray(rows),
            "ec": [None if c is None else str(c) for c in ec_raw],
            "salt": [None if c is None else str(c) for c in salt_raw],
            "reason": list(reasons),
        },
        columns=["row", "ec", "salt", "reason"],
    )


def fit_salt_conversion(
    ec: Sequence[Any] | pd.Series | np.ndarray,
    salt: Sequence[Any] | pd.Series | np.ndarray,
    ec_unit: str,
    *,
    salt_unit: str = "g/kg",
    source: str = "",
) -> tuple[SaltConversion, pd.DataFrame]:
    """Fit ``salt = slope · EC + intercept`` by ordinary least squares on paired lab data.

    Cells are read by :func:`parse_numbers` (decimal commas are numbers); a pair is
    unusable when either cell is blank or not a number, or when EC or salt content
    is negative. Unusable pairs are returned with their reasons, never dropped silently.

    Parameters
    ----------
    ec, salt : array-like or Series
        Paired EC and salt content values, possibly messy cells. A Series' index
        labels the rows in the report (:func:`read_lab_sheet` uses sheet row numbers);
        otherwise rows are positions from 0.
    ec_unit : str
        Unit of ``ec``; the conversion keeps it.
    salt_unit : str, default "g/kg"
        Unit of ``salt`` ("g/kg" or "%"); the conversion always gives g/kg.
    source : str
        Provenance written into the conversion.

    Returns
    -------
    conversion : SaltConversion
        Slope, intercept, r² (squared Pearson r of the fit) and n usable pairs.
    rejected : DataFrame
        Columns ``row``, ``ec``, ``salt`` (raw cells as text) and ``reason``.

    Raises
    ------
    SampleDataError
        Fewer than 3 usable pairs, or all EC values equal.
    UnitError
        If ``ec_unit`` is not an EC unit or ``salt_unit`` not a salt content unit.

    Notes
    -----
    OLS via :func:`scipy.stats.linregress`; no outlier removal, so look at the
    scatter (``saltmap convert fit --figure``) before trusting the line.
    """
    ec_unit, salt_unit = normalise_unit(ec_unit), normalise_unit(salt_unit)
    if _QUANTITY[ec_unit] != "EC":
        raise UnitError(f"ec_unit {ec_unit!r} is not an EC unit; use one of {EC_UNITS}")
    if _QUANTITY[salt_unit] != "salt content":
        raise UnitError(f"salt_unit {salt_unit!r} is not a salt content unit; use g/kg or %")
    ec_s = ec if isinstance(ec, pd.Series) else pd.Series(list(ec), dtype=object)
    salt_s = salt if isinstance(salt, pd.Series) else pd.Series(list(salt), dtype=object)
    if len(ec_s) != len(salt_s):
        raise SampleDataError(
            f"EC has {len(ec_s)} values but salt content {len(salt_s)}; give them in pairs"
        )
    salt_s = salt_s.set_axis(ec_s.index)
    e, s = parse_numbers(ec_s), parse_numbers(salt_s)
    reasons = []
    for er, sr, ev, sv in zip(e.reason, s.reason, e.value, s.value, strict=True):
        parts = [f"EC {er}"] if er else []
        parts += [f"salt content {sr}"] if sr else []
        if not er and ev < 0:
            parts.append(f"EC is negative ({ev:g})")
        if not sr and sv < 0:
            parts.append(f"salt content is negative ({sv:g})")
        reasons.append("; ".join(parts) or None)
    bad = np.array([r is not None for r in reasons])
    rejected = _reject_table(
        ec_s.index[bad],
        [c if not _is_blank(c) else None for c in ec_s[bad]],
        [c if not _is_blank(c) else None for c in salt_s[bad]],
        [r for r in reasons if r is not None],
    )
    x = e.value.to_numpy()[~bad]
    y = convert_ec(s.value.to_numpy()[~bad], salt_unit, "g/kg")
    if len(x) < 3:
        raise SampleDataError(
            f"only {len(x)} usable EC/salt pairs in {source or 'the data'} (need at least 3); "
            f"{len(rejected)} rows were unusable, e.g. {rejected.reason.head(3).tolist()}"
        )
    if np.ptp(x) == 0:
        raise SampleDataError(
            f"all {len(x)} EC values are {x[0]:g}: a slope cannot be fitted; check the EC column"
        )
    fit = stats.linregress(x, y)
    conversion = SaltConversion(
        slope=float(fit.slope),
        intercept=float(fit.intercept),
        ec_unit=ec_unit,
        r2=float(fit.rvalue**2),
        n=len(x),
        source=source,
    )
    return conversion, rejected


def _is_blank(cell: Any) -> bool:
    return cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell))


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
    :func:`fit_salt_conversion` reads them and reports the unusable rows.

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
    if _QUANTITY[unit] != ("EC" if what == "EC" else "salt content"):
        raise UnitError(f"{unit} is not a unit of {what} (column {column!r}); see {opt}")
    if in_header and _FACTOR[in_header] != _FACTOR[unit]:
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
        Fitted rows far off the line (:func:`large_residuals`): kept in the fit, listed
        so a typo in the lab sheet can be checked.
    """

    conversion: SaltConversion
    rejected: pd.DataFrame
    decimal_commas: pd.DataFrame
    usable: pd.DataFrame
    sheet: LabSheet
    suspects: pd.DataFrame


def large_residuals(
    ec: pd.Series, salt: pd.Series, conversion: SaltConversion, k: float = 4.0
) -> pd.DataFrame:
    """Pairs whose residual from the fitted line exceeds ``k`` residual standard deviations.

    A check, not a filter: the fit keeps them. Residual SD uses n - 2 degrees of freedom.

    Returns
    -------
    DataFrame
        Indexed like ``ec``; columns ``ec``, ``salt``, ``fitted``, ``residual`` and
        ``z`` (residual / SD), largest first.
    """
    fitted = conversion.to_salt(ec.astype(float))
    residual = salt.astype(float) - fitted
    sd = float(np.sqrt(np.sum(residual**2) / max(len(residual) - 2, 1)))
    z = residual / sd if sd > 0 else residual * 0.0
    table = pd.DataFrame({"ec": ec, "salt": salt, "fitted": fitted, "residual": residual, "z": z})
    return table[table["z"].abs() > k].sort_values("z", key=abs, ascending=False)


def fit_lab_sheet(
    path: str | Path,
    *,
    ec_column: str | None = None,
    salt_column: str | None = None,
    ec_unit: str | None = None,
    sheet: str | int | None = None,
) -> LabFit:
    """Read a lab sheet and fit the EC → salt content conversion on it.

    :func:`read_lab_sheet` then :func:`fit_salt_conversion`; see them for the rules.

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
    commas = []
    for column in (lab.ec_column, lab.salt_column):
        parsed = parse_numbers(lab.cells[column])
        for row in parsed.index[parsed.decimal_comma]:
            commas.append((row, column, str(lab.cells.at[row, column]), parsed.at[row, "value"]))
    decimal_commas = pd.DataFrame(commas, columns=["row", "column", "cell", "read_as"])
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


_CONVERSION_KEYS = ("slope", "intercept", "ec_unit", "r2", "n", "source")


def save_conversion(conversion: SaltConversion, path: str | Path) -> Path:
    """Write a conversion as a small TOML (``.toml``) or JSON (``.json``) file."""
    path = Path(path)
    record = {k: v for k, v in asdict(conversion).items() if k in _CONVERSION_KEYS}
    record["salt_unit"] = conversion.salt_unit
    if path.suffix.lower() == ".json":
        text = json.dumps({"salt_conversion": record}, indent=2, ensure_ascii=False) + "\n"
    elif path.suffix.lower() == ".toml":
        lines = ["# saltmap EC -> salt content conversion: salt = slope * EC + intercept", ""]
        lines.append("[salt_conversion]")
        for key, value in record.items():
            # json.dumps quotes strings the way TOML basic strings need; floats use
            # repr so they round-trip exactly (nan is valid TOML).
            text_value = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value
            lines.append(f"{key} = {text_value!r}" if isinstance(value, float) else
                         f"{key} = {text_value}")  # fmt: skip
        text = "\n".join(lines) + "\n"
    else:
        raise ConfigError(f"{path}: save a conversion as .toml or .json")
    atomic_write_text(path, text)
    return path


def load_conversion(path: str | Path) -> SaltConversion:
    """Read a conversion written by :func:`save_conversion` (or by hand).

    The file holds a ``[salt_conversion]`` table with ``slope``, ``intercept`` and
    ``ec_unit``; ``r2``, ``n`` and ``source`` are optional.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise InputFileError(f"conversion file {path} does not exist") from err
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path} is not valid {path.suffix[1:].upper()}: {err}") from err
    table = data.get("salt_conversion", data)
    missing = [k for k in ("slope", "intercept", "ec_unit") if k not in table]
    if missing:
        raise ConfigError(
            f"{path}: the salt conversion lacks {missing}; it needs slope, intercept and ec_unit"
        )
    unknown = set(table) - {*_CONVERSION_KEYS, "salt_unit"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} in the salt conversion")
    if normalise_unit(table.get("salt_unit", "g/kg")) != "g/kg":
        raise UnitError(f"{path}: salt_unit must be g/kg")
    try:
        return SaltConversion(
            slope=float(table["slope"]),
            intercept=float(table["intercept"]),
            ec_unit=str(table["ec_unit"]),
            r2=float(table.get("r2", math.nan)),
            n=int(table.get("n", 0)),
            source=str(table.get("source", str(path))),
        )
    except (TypeError, ValueError) as err:
        if isinstance(err, UnitError):
            raise
        raise ConfigError(f"{path}: bad value in the salt conversion: {err}") from err


# ---------------------------------------------------------------------------
# Salinity classes
# ---------------------------------------------------------------------------

# Anchors of the class ramp: green for non-saline, then yellow → orange → red → brown.
_RAMP = ("#1a9850", "#fee08b", "#fdae61", "#d73027", "#7f2704")


@dataclass(frozen=True)
class ClassScheme:
    """Salinity classes as data: ``k`` classes bounded by ``k - 1`` thresholds.

    Class ``i`` (code ``i``, 1-based) holds values ``v`` with
    ``thresholds[i-2] <= v < thresholds[i-1]``: **each class includes its lower
    bound**, so a value exactly on a threshold goes to the upper (more saline) class.
    The first class is open below (negative predictions land there), the last open above.

    Parameters
    ----------
    name : str
        Short name (``"study"``, ``"fao-ec"``, ...).
    quantity : str
        ``"salt content"`` or ``"EC"``.
    unit : str
        The unit of the thresholds.
    thresholds : tuple of float
        Strictly increasing inner class bounds.
    labels : tuple of str
        One label per class (``len(thresholds) + 1``).
    colours : tuple of str
        One ``#rrggbb`` colour per class, for the map's colour table.
    reference : str
        Where the classes come from.
    """

    name: str
    quantity: str
    unit: str
    thresholds: tuple[float, ...]
    labels: tuple[str, ...]
    colours: tuple[str, ...]
    reference: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", normalise_unit(self.unit))
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "colours", tuple(self.colours))
        t = np.asarray(self.thresholds)
        if len(t) == 0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise ConfigError(
                f"class scheme {self.name!r}: thresholds {list(self.thresholds)} must be finite "
                "and strictly increasing, at least one"
            )
        k = len(t) + 1
        if k > 254:
            raise ConfigError(f"class scheme {self.name!r}: at most 254 classes fit a uint8 map")
        if len(self.labels) != k or len(self.colours) != k:
            raise ConfigError(
                f"class scheme {self.name!r}: {len(t)} thresholds make {k} classes, but "
                f"{len(self.labels)} labels and {len(self.colours)} colours were given"
            )
        bad = [c for c in self.colours if not re.fullmatch(r"#[0-9a-fA-F]{6}", c)]
        if bad:
            raise ConfigError(f"class scheme {self.name!r}: colours {bad} are not #rrggbb")
        if self.quantity != _QUANTITY[self.unit]:
            raise UnitError(
                f"class scheme {self.name!r}: unit {self.unit} does not measure {self.quantity}"
            )

    @property
    def n_classes(self) -> int:
        return len(self.thresholds) + 1

    def bounds(self) -> list[tuple[float, float]]:
        """``(lower, upper)`` of each class; -inf/inf at the open ends."""
        edges = [-math.inf, *self.thresholds, math.inf]
        return list(itertools.pairwise(edges))

    def table(self) -> pd.DataFrame:
        """One row per class: code, label, lower, upper, colour."""
        lower, upper = zip(*self.bounds(), strict=True)
        return pd.DataFrame(
            {
                "code": np.arange(1, self.n_classes + 1, dtype=np.uint8),
                "label": self.labels,
                "lower": lower,
                "upper": upper,
                "colour": self.colours,
            }
        )

    def colour_table(self) -> dict[int, tuple[int, int, int, int]]:
        """``{code: (r, g, b, 255)}`` for ``rasterio``'s ``write_colormap``; 0 is transparent."""
        table = {0: (0, 0, 0, 0)}
        for code, hexcolour in enumerate(self.colours, start=1):
            r, g, b = (int(hexcolour[i : i + 2], 16) for i in (1, 3, 5))
            table[code] = (r, g, b, 255)
        return table

    def class_names(self) -> dict[int, str]:
        """``{code: label}``, with 0 as ``"no data"``."""
        return {0: "no data", **{i: lab for i, lab in enumerate(self.labels, start=1)}}


def ramp_colours(k: int) -> tuple[str, ...]:
    """``k`` hex colours: green for the first (non-saline) class, then yellow → orange →
    red → brown for the saline ones, interpolated when there are more than four."""
    from matplotlib.colors import LinearSegmentedColormap, to_hex

    if k < 1:
        raise ConfigError(f"a class scheme needs at least one class, not {k}")
    saline = _RAMP[1:]
    n = k - 1
    if n <= len(saline):
        picks = np.round(np.linspace(0, len(saline) - 1, n)).astype(int) if n > 1 else [0][:n]
        return (_RAMP[0], *(saline[i] for i in picks))
    cmap = LinearSegmentedColormap.from_list("saline", saline)
    return (_RAMP[0], *(to_hex(cmap(x)) for x in np.linspace(0, 1, n)))


def _range_labels(thresholds: Sequence[float], unit: str) -> tuple[str, ...]:
    t = [f"{x:g}" for x in thresholds]
    inner = [f"{a}–{b} {unit}" for a, b in itertools.pairwise(t)]
    return (f"< {t[0]} {unit}", *inner, f"≥ {t[-1]} {unit}")


STUDY = ClassScheme(
    name="study",
    quantity="salt content",
    unit="g/kg",
    thresholds=(1.0, 2.0, 4.0, 6.0),
    labels=("normal", "mild", "moderate", "severe", "solonchak"),
    colours=_RAMP,
    reference="ACRS 2025 study, Table 5: topsoil salt content classes (g/kg)",
)

FAO_EC = ClassScheme(
    name="fao-ec",
    quantity="EC",
    unit="dS/m",
    thresholds=(2.0, 4.0, 8.0, 16.0),
    labels=(
        "non-saline",
        "slightly saline",
        "moderately saline",
        "strongly saline",
        "very strongly saline",
    ),
    colours=_RAMP,
    reference=(
        "EC of the saturated paste extract (ECe, dS/m): Richards (1954) USDA Handbook 60 "
        "classes as used by FAO Soils Bulletin 39 (Abrol et al. 1988)"
    ),
)

FAO2006_EC = ClassScheme(
    name="fao2006-ec",
    quantity="EC",
    unit="dS/m",
    thresholds=(0.75, 2.0, 4.0, 8.0, 15.0),
    labels=(
        "none",
        "slightly saline",
        "moderately saline",
        "strongly saline",
        "very strongly saline",
        "extremely saline",
    ),
    colours=ramp_colours(6),
    reference="FAO (2006) Guidelines for soil description, 4th ed.: salt content classes (ECse)",
)

SCHEMES: dict[str, ClassScheme] = {s.name: s for s in (STUDY, FAO_EC, FAO2006_EC)}
SCHEMES["usda-ec"] = FAO_EC


def get_scheme(name: str | ClassScheme) -> ClassScheme:
    """Return a built-in scheme by name (or pass a :class:`ClassScheme` through)."""
    if isinstance(name, ClassScheme):
        return name
    try:
        return SCHEMES[name.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown class scheme {name!r}; built-in schemes: {sorted(SCHEMES)}, or give "
            "thresholds (scheme_from_thresholds)"
        ) from None


def scheme_from_thresholds(
    thresholds: Sequence[float] | str,
    labels: Sequence[str] | None = None,
    unit: str = "g/kg",
    *,
    name: str = "user",
    colours: Sequence[str] | None = None,
) -> ClassScheme:
    """A class scheme from the user's thresholds.

    Parameters
    ----------
    thresholds : sequence of float, or str
        Strictly increasing inner bounds, or text such as ``"1,2,4,6"`` or ``"1 2 4 6"``.
    labels : sequence of str, optional
        One per class; default range labels such as ``"1–2 g/kg"``.
    unit : str, default "g/kg"
        Unit of the thresholds; the quantity follows from it.
    colours : sequence of str, optional
        Default: :func:`ramp_colours`.

    Examples
    --------
    >>> scheme_from_thresholds("1,2,4,6").labels[0]
    '< 1 g/kg'
    """
    if isinstance(thresholds, str):
        try:
            thresholds = [float(t) for t in re.split(r"[,;\s]+", thresholds.strip()) if t]
        except ValueError as err:
            raise ConfigError(
                f"thresholds {thresholds!r} are not numbers; write them like '1,2,4,6'"
            ) from err
    unit = normalise_unit(unit)
    k = len(thresholds) + 1
    return ClassScheme(
        name=name,
        quantity=_QUANTITY[unit],
        unit=unit,
        thresholds=tuple(thresholds),
        labels=tuple(labels) if labels is not None else _range_labels(thresholds, unit),
        colours=tuple(colours) if colours is not None else ramp_colours(k),
        reference="user thresholds",
    )


def classify(
    values: Any,
    scheme: ClassScheme | str,
    *,
    unit: str | None = None,
    nodata: float | None = None,
) -> np.ndarray:
    """Class codes of ``values`` under ``scheme``: 1..k, 0 for no data.

    Lower bounds are inclusive: with thresholds (1, 2, 4, 6) a value of exactly 2
    is class 3 (2–4), 1.999 is class 2. NaN, ±inf and ``nodata`` give 0.

    Parameters
    ----------
    values : array-like of any shape
        Salinity values (e.g. a (row, col) map).
    scheme : ClassScheme or str
        A scheme or a built-in name.
    unit : str, optional
        Unit of ``values`` when it differs from the scheme's; EC units are converted,
        EC against a salt content scheme (or back) is a UnitError.
    nodata : float, optional
        A value meaning no data, besides NaN.

    Returns
    -------
    ndarray of uint8, shaped like ``values``.
    """
    scheme = get_scheme(scheme)
    data = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(data)
    if nodata is not None:
        missing |= data == nodata
    if unit is not None:
        data = convert_ec(data, unit, scheme.unit)
    codes = np.searchsorted(np.asarray(scheme.thresholds), data, side="right") + 1
    codes[missing] = 0
    return codes.astype(np.uint8)

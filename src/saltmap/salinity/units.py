"""Salinity units: EC and salt content units, their conversion, and messy numeric cells.

Electrical conductivity (EC) comes as µS/cm, mS/cm or dS/m (1 dS/m = 1 mS/cm =
1000 µS/cm); soil salt content as g/kg (or %, 1 % = 10 g/kg). :func:`normalise_unit`
reads the usual spellings, :func:`convert_ec` converts. EC and salt content are
different quantities: going from one to the other needs a
:class:`~saltmap.salinity.conversion.SaltConversion`, never a unit factor.

:func:`parse_numbers` reads the cells of a lab sheet or sample table column as
numbers (decimal commas included) and says why a cell cannot be used.

The rest of the stage builds on these: :mod:`saltmap.salinity.conversion` (the EC →
salt content line), :mod:`saltmap.salinity.labsheet` (reading lab sheets and fitting
the line on them) and :mod:`saltmap.salinity.classes` (salinity class schemes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from saltmap.errors import UnitError

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


def unit_factor(unit: str) -> float:
    """The factor that turns a value in ``unit`` into its quantity's base unit.

    The base units are dS/m for EC and g/kg for salt content, so mS/cm and dS/m
    share the factor 1: they are the same scale under two names.
    """
    return _FACTOR[normalise_unit(unit)]


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
        EC → salt content conversion
        (:class:`~saltmap.salinity.conversion.SaltConversion`), not a unit factor.

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

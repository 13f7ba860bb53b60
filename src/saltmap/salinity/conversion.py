"""EC → salt content: a linear conversion fitted on paired lab data, saved and loaded.

A linear conversion ``salt = slope · EC + intercept`` (:class:`SaltConversion`) is
fitted by ordinary least squares on paired lab data (:func:`fit_salt_conversion`);
unusable pairs are reported with their row and reason, never dropped silently.
:func:`large_residuals` lists the pairs far off the line, so a typo can be checked.
:func:`save_conversion` and :func:`load_conversion` keep a conversion in a small
TOML or JSON file.

The EC → salt content relation depends on the soil, the extract (1:5, saturated
paste, ...) and the salt chemistry, so fit it on lab data from the same region and
method as the field samples [1]_. Reading lab sheets is :mod:`saltmap.salinity.labsheet`.

References
----------
.. [1] Richards, L. A. (ed.) (1954). Diagnosis and Improvement of Saline and Alkali
   Soils. USDA Agriculture Handbook 60, Washington DC.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from saltmap.atomic import atomic_write_text
from saltmap.errors import ConfigError, InputFileError, SampleDataError, UnitError
from saltmap.salinity.units import (
    EC_UNITS,
    convert_ec,
    normalise_unit,
    parse_numbers,
    quantity_of,
)


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
        if quantity_of(self.ec_unit) != "EC":
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


def fit_salt_conversion(
    ec: Sequence[Any] | pd.Series | np.ndarray,
    salt: Sequence[Any] | pd.Series | np.ndarray,
    ec_unit: str,
    *,
    salt_unit: str = "g/kg",
    source: str = "",
) -> tuple[SaltConversion, pd.DataFrame]:
    """Fit ``salt = slope · EC + intercept`` by ordinary least squares on paired lab data.

    Cells are read by :func:`~saltmap.salinity.units.parse_numbers` (decimal commas are
    numbers); a pair is unusable when either cell is blank or not a number, or when EC
    or salt content is negative. Unusable pairs are returned with their reasons, never
    dropped silently. The fit is :func:`scipy.stats.linregress`, without outlier
    removal: look at the scatter (``saltmap convert fit --figure``) before trusting it.

    Parameters
    ----------
    ec, salt : array-like or Series
        Paired EC and salt content values, possibly messy cells. A Series' index
        labels the rows in the report (a lab sheet's are its row numbers); otherwise
        rows are positions from 0.
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
    """
    ec_unit, salt_unit = _check_units(ec_unit, salt_unit)
    ec_s, salt_s = _as_pairs(ec, salt)
    e, s = parse_numbers(ec_s), parse_numbers(salt_s)
    bad, rejected = _rejected_pairs(ec_s, salt_s, _pair_reasons(e, s))
    x = e.value.to_numpy()[~bad]
    y = convert_ec(s.value.to_numpy()[~bad], salt_unit, "g/kg")
    _check_fittable(x, rejected, source)
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


def _check_units(ec_unit: str, salt_unit: str) -> tuple[str, str]:
    """Both units in their canonical spelling, each of the quantity it must measure."""
    ec_unit, salt_unit = normalise_unit(ec_unit), normalise_unit(salt_unit)
    if quantity_of(ec_unit) != "EC":
        raise UnitError(f"ec_unit {ec_unit!r} is not an EC unit; use one of {EC_UNITS}")
    if quantity_of(salt_unit) != "salt content":
        raise UnitError(f"salt_unit {salt_unit!r} is not a salt content unit; use g/kg or %")
    return ec_unit, salt_unit


def _as_pairs(ec: Any, salt: Any) -> tuple[pd.Series, pd.Series]:
    """EC and salt cells as two Series on the EC index (a Series keeps its row labels)."""
    ec_s = ec if isinstance(ec, pd.Series) else pd.Series(list(ec), dtype=object)
    salt_s = salt if isinstance(salt, pd.Series) else pd.Series(list(salt), dtype=object)
    if len(ec_s) != len(salt_s):
        raise SampleDataError(
            f"EC has {len(ec_s)} values but salt content {len(salt_s)}; give them in pairs"
        )
    return ec_s, salt_s.set_axis(ec_s.index)


def _pair_reasons(e: pd.DataFrame, s: pd.DataFrame) -> list[str | None]:
    """Why each parsed EC/salt pair cannot be fitted, or None when it can."""
    reasons = []
    for er, sr, ev, sv in zip(e.reason, s.reason, e.value, s.value, strict=True):
        parts = [f"EC {er}"] if er else []
        parts += [f"salt content {sr}"] if sr else []
        if not er and ev < 0:
            parts.append(f"EC is negative ({ev:g})")
        if not sr and sv < 0:
            parts.append(f"salt content is negative ({sv:g})")
        reasons.append("; ".join(parts) or None)
    return reasons


def _rejected_pairs(
    ec: pd.Series, salt: pd.Series, reasons: list[str | None]
) -> tuple[np.ndarray, pd.DataFrame]:
    """Which pairs are unusable, and their table: row, ec and salt (raw cells as text), reason."""
    bad = np.array([r is not None for r in reasons])
    rejected = pd.DataFrame(
        {
            "row": np.asarray(ec.index[bad]),
            "ec": [None if _is_blank(c) else str(c) for c in ec[bad]],
            "salt": [None if _is_blank(c) else str(c) for c in salt[bad]],
            "reason": [r for r in reasons if r is not None],
        },
        columns=["row", "ec", "salt", "reason"],
    )
    return bad, rejected


def _check_fittable(x: np.ndarray, rejected: pd.DataFrame, source: str) -> None:
    """Refuse a fit on fewer than 3 pairs or on one EC value (no slope)."""
    if len(x) < 3:
        raise SampleDataError(
            f"only {len(x)} usable EC/salt pairs in {source or 'the data'} (need at least 3); "
            f"{len(rejected)} rows were unusable, e.g. {rejected.reason.head(3).tolist()}"
        )
    if np.ptp(x) == 0:
        raise SampleDataError(
            f"all {len(x)} EC values are {x[0]:g}: a slope cannot be fitted; check the EC column"
        )


def _is_blank(cell: Any) -> bool:
    return cell is None or cell is pd.NA or (isinstance(cell, float) and math.isnan(cell))


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

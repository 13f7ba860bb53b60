"""Tables as text: one formatter for the CLI, the run folder and the report.

Results are plain DataFrames of numbers (``R2_mean``, ``R2_sd``, ``R2_ci_low``,
...). This module turns them into the text people read, in one way everywhere:

* cells: :func:`format_value` (a report cell, significant digits),
  :func:`fixed` (a fixed number of decimals) and :func:`compact` (three
  significant digits); :func:`fixed_to` and :func:`significant_to` make
  formatters of such cells; a missing value is always an en dash;
* composite cells: :func:`estimate` (``mean ± sd [low, high]``, parts left out
  when missing), :func:`interval` (``value [low, high]``), :func:`pair`
  (``a / b``), and :func:`metric_cell`, which reads ``<metric>_mean``,
  ``_sd``, ``_ci_low`` and ``_ci_high`` from a result row;
* extreme values: a float of magnitude :data:`EXTREME` or more (a score from a model
  that extrapolated wildly, an R² of −6.5 × 10²⁰) is written in scientific notation
  with the flag ``!`` (``-6.5e+20!``) by every cell formatter, never as 22 digits;
* whole tables: the evaluation's Table 4, honest and baseline tables
  (:func:`format_table4`, :func:`format_honest`, :func:`format_baseline`), and
  :func:`markdown_table` for any table.

The CLI draws the formatted frames with its own table widget; the report puts
them in HTML; the run folder gets them as Markdown. Nothing here computes science.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

MISSING = "–"
#: Magnitude from which a float cell is written in scientific notation and flagged.
EXTREME = 1e6
FLAG = "!"
Formatter = Callable[[Any], str]


@dataclass
class Table:
    """A titled table (of the report, or of the run folder as Markdown).

    Attributes
    ----------
    title : str
        Heading, such as ``"Table 4. Model accuracy"``.
    frame : DataFrame
        The values; its index is dropped unless named.
    caption : str
        What the table shows and how to read it.
    digits : int
        Significant digits of floats.
    formats : mapping
        Column → format spec (``".2g"``) overriding ``digits``.
    """

    title: str
    frame: pd.DataFrame
    caption: str = ""
    digits: int = 4
    formats: Mapping[str, str] = field(default_factory=dict)


# -- cells --------------------------------------------------------------------------------------


def _missing(value: Any) -> bool:
    """None, NaN or ±inf: a value a table shows as an en dash."""
    if value is None:
        return True
    try:
        return not np.isfinite(value)
    except TypeError:
        return False


def extreme(value: Any) -> str | None:
    """``value`` in scientific notation with :data:`FLAG` when it is a float of magnitude
    :data:`EXTREME` or more (or infinite); None otherwise."""
    if not isinstance(value, float | np.floating) or math.isnan(value):
        return None
    if math.isinf(value):
        return f"{'-' if value < 0 else ''}inf{FLAG}"
    return f"{value:.2g}{FLAG}" if abs(value) >= EXTREME else None


def format_value(value: Any, digits: int = 4, spec: str | None = None) -> str:
    """A cell as text: floats to ``digits`` significant digits, NaN as an en dash,
    extreme floats (:func:`extreme`) in scientific notation with a flag."""
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if (flagged := extreme(value)) is not None:
        return flagged
    if isinstance(value, float | np.floating):
        if spec:
            return format(float(value), spec)
        if abs(value) >= 10 ** (digits - 1):
            return f"{value:.0f}"
        if value != 0 and abs(value) < 10 ** -(digits - 1):
            return f"{value:.{digits - 2}e}"
        return f"{value:.{digits}g}" if abs(value) >= 1 else f"{value:.{digits - 1}f}"
    if spec and isinstance(value, int | np.integer):
        return format(int(value), spec)
    return str(value)


def fixed(value: Any, digits: int) -> str:
    """``value`` with ``digits`` decimals; an en dash when missing or infinite, and
    :func:`extreme` values flagged."""
    if _missing(value):
        return MISSING
    return extreme(float(value)) or f"{value:.{digits}f}"


def compact(value: Any) -> str:
    """A number for a compact table: 3 significant digits, no exponent up to 10⁶."""
    if _missing(value):
        return MISSING
    if (flagged := extreme(float(value))) is not None:
        return flagged
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def decimals_for(values: Any) -> int:
    """Decimals for values in the target's unit: none for hundreds, more for small units."""
    typical = float(np.nanmedian(np.abs(np.asarray(values, dtype=float))))
    if not np.isfinite(typical) or typical >= 100:
        return 0
    return 1 if typical >= 10 else 2 if typical >= 1 else 3


def fixed_to(digits: int) -> Formatter:
    """A formatter of ``digits`` decimals, for the composite cells."""
    return lambda value: fixed(value, digits)


def significant_to(digits: int, *, signed: bool = False) -> Formatter:
    """A formatter of ``digits`` significant digits (``signed``: ``+`` before positive
    values, as differences are shown); an en dash when missing or infinite."""
    spec = f"{'+' if signed else ''}.{digits}g"
    return lambda value: (
        MISSING if _missing(value) else extreme(float(value)) or format(value, spec)
    )


def interval(value: Any, low: Any, high: Any, fmt: Formatter = compact) -> str:
    """``value [low, high]``, every part through ``fmt``."""
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def pair(first: Any, second: Any, fmt: Formatter = compact) -> str:
    """``first / second``, as in "model / baseline"."""
    return f"{fmt(first)} / {fmt(second)}"


def estimate(
    value: Any, sd: Any = None, low: Any = None, high: Any = None, fmt: Formatter = compact
) -> str:
    """``value ± sd [low, high]``; the spread and the interval are left out when missing."""
    text = fmt(value)
    if not _missing(sd):
        text += f" ± {fmt(sd)}"
    if not _missing(low):
        text += f" [{fmt(low)}, {fmt(high)}]"
    return text


def metric_cell(
    row: Mapping[str, Any], metric: str, fmt: Formatter = compact, *, ci: bool = True
) -> str:
    """:func:`estimate` of ``metric`` from a result row's ``<metric>_mean``, ``_sd``,
    ``_ci_low`` and ``_ci_high`` (any of the last three may be absent)."""
    return estimate(
        row.get(f"{metric}_mean"),
        row.get(f"{metric}_sd"),
        row.get(f"{metric}_ci_low") if ci else None,
        row.get(f"{metric}_ci_high") if ci else None,
        fmt,
    )


# -- the evaluation's tables --------------------------------------------------------------------


def _unit(unit: str | None) -> str:
    return f" ({unit})" if unit else ""


def format_table4(table4: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """Table 4 as the study prints it: R², RMSE, MAE for calibration (c) and validation (v)."""
    u = _unit(unit)
    digits = decimals_for(table4["RMSE_v"])
    out = table4[["feature_set", "model"]].rename(columns={"feature_set": "features"})
    labels = {"R2_c": "R²c", "RMSE_c": f"RMSEc{u}", "MAE_c": f"MAEc{u}",
              "R2_v": "R²v", "RMSE_v": f"RMSEv{u}", "MAE_v": f"MAEv{u}"}  # fmt: skip
    for col, label in labels.items():
        out[label] = [fixed(v, 2 if col.startswith("R2") else digits) for v in table4[col]]
    return out


def format_honest(honest: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """The honest table: per protocol, R² (fold mean ± sd; pooled with its 95 % CI), and
    RMSE and MAE (fold mean ± sd [95 % CI])."""
    u = _unit(unit)
    in_unit, r2 = fixed_to(decimals_for(honest["RMSE_mean"])), fixed_to(2)
    rows = [r for _, r in honest.iterrows()]
    out = honest[["protocol", "feature_set", "model", "n_folds"]].rename(
        columns={"feature_set": "features", "n_folds": "folds"}
    )
    out["R² folds mean ± sd"] = [metric_cell(r, "R2", r2, ci=False) for r in rows]
    out["R² pooled [95 % CI]"] = [
        interval(r["R2_pooled"], r["R2_pooled_ci_low"], r["R2_pooled_ci_high"], r2) for r in rows
    ]
    for metric in ("RMSE", "MAE"):
        out[f"{metric}{u} mean ± sd [95 % CI]"] = [metric_cell(r, metric, in_unit) for r in rows]
    return out


def format_baseline(comparison: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """Each model against the plain random forest: differences with paired 95 % CIs."""
    u = _unit(unit)
    in_unit, r2 = fixed_to(decimals_for(comparison["RMSE_baseline"])), fixed_to(2)
    rows = [r for _, r in comparison.iterrows()]
    out = comparison[["feature_set", "model"]].rename(columns={"feature_set": "features"})
    out["pooled R² (model / plain RF)"] = [
        pair(r["R2_pooled"], r["R2_pooled_baseline"], r2) for r in rows
    ]
    out[f"RMSE{u} (model / plain RF)"] = [
        pair(r["RMSE_mean"], r["RMSE_baseline"], in_unit) for r in rows
    ]
    for key, label, fmt in (("R2_pooled", "Δ pooled R²", r2), ("RMSE", f"ΔRMSE{u}", in_unit),
                            ("MAE", f"ΔMAE{u}", in_unit)):  # fmt: skip
        out[f"{label} [95 % CI]"] = [
            interval(r[f"d{key}"], r[f"d{key}_ci_low"], r[f"d{key}_ci_high"], fmt) for r in rows
        ]
    out["verdict (RMSE)"] = comparison["verdict"]
    return out


def format_candidates(candidates: pd.DataFrame, unit: str | None = None) -> pd.DataFrame:
    """The final model's candidates: pooled R² [95 % CI], pooled RMSE ± its standard error,
    rank, within one SE of the best, the one chosen, and what each costs to map."""
    u = _unit(unit)
    in_unit, r2 = fixed_to(decimals_for(candidates["RMSE_pooled"])), fixed_to(2)
    rows = [r for _, r in candidates.iterrows()]
    out = candidates[["rank", "feature_set", "model"]].rename(columns={"feature_set": "features"})
    out["pooled R² [95 % CI]"] = [
        interval(r["R2_pooled"], r["R2_pooled_ci_low"], r["R2_pooled_ci_high"], r2) for r in rows
    ]
    out[f"pooled RMSE{u} ± SE"] = [
        estimate(r["RMSE_pooled"], r["RMSE_se"], fmt=in_unit) for r in rows
    ]
    out["within 1 SE"] = ["yes" if r["within_1se"] else "" for r in rows]
    out["chosen"] = ["◀" if r["chosen"] else "" for r in rows]
    out["kpx / CPU-s"] = [compact(r.get("kpx_per_cpu_s")) for r in rows]
    out["S2 tile (CPU min)"] = [compact(r.get("s2_tile_cpu_min")) for r in rows]
    out["clipped"] = [str(int(r.get("n_clipped", 0))) for r in rows]
    return out


# -- whole tables -------------------------------------------------------------------------------


def table_cells(table: Table) -> tuple[list[str], list[list[str]]]:
    """Column names and every row's cells as text (:func:`format_value`)."""
    frame = table.frame
    if frame.index.name is not None or isinstance(frame.index, pd.MultiIndex):
        frame = frame.reset_index()
    columns = [str(c) for c in frame.columns]
    rows = [
        [
            format_value(v, table.digits, table.formats.get(c))
            for c, v in zip(columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False, name=None)
    ]
    return columns, rows


def numeric_columns(table: Table, columns: list[str]) -> list[bool]:
    """Whether each column holds numbers (drawn right-aligned)."""
    frame = table.frame.reset_index() if table.frame.index.name else table.frame
    return [c in frame and pd.api.types.is_numeric_dtype(frame[c]) for c in columns]


def markdown_table(table: Table | pd.DataFrame, digits: int = 4) -> str:
    """The table as GitHub-flavoured Markdown (pipes in cells escaped, numbers right-aligned)."""
    if isinstance(table, pd.DataFrame):
        table = Table("", table, digits=digits)
    columns, rows = table_cells(table)

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    numeric = numeric_columns(table, columns)
    lines = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---:" if n else ":---" for n in numeric) + "|")
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    if table.title:
        text = f"**{table.title}**\n\n{text}"
    if table.caption:
        text += f"\n{table.caption}\n"
    return text

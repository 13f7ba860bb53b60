"""The study's tables and sentences as the report shows them: compact cells, short numbers.

The run folder's CSV files keep every column; these formatters make the report's
and the Markdown files' versions (``mean ± sd [low, high]`` cells, three
significant digits) and the summary's sentences. Every cell is made with the
primitives of :mod:`saltmap.tables`, the one table formatter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from saltmap.study.sections import MODEL_NAMES
from saltmap.tables import (
    MISSING,
    compact,
    estimate,
    fixed,
    fixed_to,
    interval,
    metric_cell,
    pair,
    significant_to,
)

if TYPE_CHECKING:
    from saltmap.validation import EvaluationResult


def evaluation_highlights(result: EvaluationResult, unit: str = "") -> list[str]:
    """Sentences with the evaluation's headline numbers, for the report's summary."""
    lines = []
    t4 = result.table4
    if len(t4):
        best = t4.loc[t4["R2_v"].idxmax()]
        lines.append(
            f"On the study's single 70/30 split the best validation R² is {best['R2_v']:.2f} "
            f"({best['model']}, {best['feature_set']}; RMSE {best['RMSE_v']:.4g} {unit}; "
            "Table 4)."
        )
    honest = result.honest
    for protocol, words in (("repeated", "repeated k-fold"), ("spatial", "spatial block")):
        part = honest[honest["protocol"] == protocol] if len(honest) else honest
        if len(part):  # the plain-forest reference is compared below, not ranked here
            part = part[part["model"].isin(MODEL_NAMES)]
        if len(part):
            best = part.loc[part["R2_pooled"].idxmax()]
            lines.append(
                f"Under {words} CV the best pooled R² is {best['R2_pooled']:.2f} "
                f"({best['model']}, {best['feature_set']}; fold mean {best['R2_mean']:.2f} "
                f"± {best['R2_sd']:.2f}; Honest validation)."
            )
    comparison = result.baseline
    if comparison is not None and len(comparison) and "verdict" in comparison:
        counts = comparison["verdict"].value_counts()
        lines.append(
            f"Against a plain random forest on the same folds: {counts.get('better', 0)} of "
            f"{len(comparison)} models have a clearly lower RMSE, {counts.get('worse', 0)} a "
            "clearly higher one (paired bootstrap 95 % CI; Honest validation)."
        )
    return lines


def trust_shown(trust: pd.DataFrame) -> pd.DataFrame:
    """The trust summary as the report shows it: the AOA share in percent."""
    shown = trust.copy()
    if "share_inside_aoa" in shown:
        shown.insert(
            shown.columns.get_loc("share_inside_aoa"),
            "inside AOA (%)",
            [fixed(100 * v, 2) for v in shown.pop("share_inside_aoa")],
        )
    return shown


def param_text(value: Any) -> str:
    """A hyperparameter's value: floats to 4 significant digits."""
    return significant_to(4)(value) if isinstance(value, float) else str(value)


# Differences and intervals of the covariate gain: 3 significant digits, signed.
_signed = significant_to(3, signed=True)


def compact_cv_table(honest: pd.DataFrame) -> pd.DataFrame:
    """The cross-validation table as the report shows it: ``mean ± sd [low, high]`` cells."""
    rows = []
    for _, r in honest.iterrows():
        row = {"protocol": r["protocol"], "feature set": r["feature_set"], "model": r["model"],
               "folds": int(r["n_folds"])}  # fmt: skip
        for metric, label in (("R2", "R²"), ("RMSE", "RMSE"), ("MAE", "MAE")):
            row[label] = metric_cell(r, metric)
        if "R2_pooled" in r:
            row["R² pooled"] = compact(r["R2_pooled"])
        rows.append(row)
    return pd.DataFrame(rows)


def compact_baseline_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The plain-forest comparison as the report shows it."""
    rows = []
    for _, r in comparison.iterrows():
        row = {"feature set": r["feature_set"], "model": r["model"]}
        row["R² pooled (model / plain RF)"] = pair(r["R2_pooled"], r["R2_pooled_baseline"])
        for metric, label in (("R2_pooled", "Δ R² pooled"), ("RMSE", "Δ RMSE"), ("MAE", "Δ MAE")):
            if f"d{metric}" in r:
                row[label] = interval(
                    r[f"d{metric}"], r[f"d{metric}_ci_low"], r[f"d{metric}_ci_high"]
                )
        if "verdict" in r:
            row["verdict"] = r["verdict"]
        rows.append(row)
    return pd.DataFrame(rows)


def compact_gain_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The with/without-covariates table as the report shows it (the CSV keeps every column)."""
    rows = []
    for _, r in summary.iterrows():
        row = {
            "protocol": r["protocol"],
            "model": r["model"],
            "predictors": r["predictors"],
            "folds": int(r["n_folds"]),
            "R² pooled": interval(
                r["R2_pooled"], r["R2_pooled_ci_low"], r["R2_pooled_ci_high"], significant_to(3)
            ),
            "RMSE": estimate(r["RMSE_mean"], r["RMSE_sd"]),
        }
        with_covariates = np.isfinite(r.get("dR2_pooled", np.nan))
        row["Δ R² pooled"] = (
            interval(r["dR2_pooled"], r["dR2_pooled_ci_low"], r["dR2_pooled_ci_high"], _signed)
            if with_covariates
            else MISSING
        )
        row["Δ RMSE"] = (
            interval(r["dRMSE"], r["dRMSE_ci_low"], r["dRMSE_ci_high"], _signed)
            if with_covariates
            else MISSING
        )
        rows.append(row)
    return pd.DataFrame(rows)


def compact_importance_table(importance: pd.DataFrame) -> pd.DataFrame:
    """Permutation importance as the report shows it: most important first per model."""
    ordered = importance.sort_values(
        ["protocol", "model", "mean"], ascending=[True, True, False], kind="stable"
    )
    return pd.DataFrame(
        {
            "protocol": ordered["protocol"],
            "model": ordered["model"],
            "predictor": ordered["predictor"],
            "decrease of R² when shuffled": [
                estimate(m, sd, fmt=fixed_to(3))
                for m, sd in zip(ordered["mean"], ordered["sd"], strict=True)
            ],
        }
    )


def flagged_text(flagged: dict[str, int]) -> str:
    """A caption's note on test rows left out for a categorical level their fold lacked."""
    counts = {p: n for p, n in flagged.items() if n}
    if not counts:
        return ""
    return (
        " Test samples whose categorical level was absent from their training fold cannot be "
        "predicted with the covariates; they are left out of both scores ("
        + ", ".join(f"{n} predictions under {p} CV" for p, n in counts.items())
        + ")."
    )

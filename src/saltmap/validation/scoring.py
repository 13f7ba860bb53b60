"""Scores of the evaluation: the study split's Table 4, and each model against a plain forest.

:func:`study_split_scores` turns the fits on the study's calibration/validation
split into Table 4 rows, figure 5 predictions and the honest table's ``study``
row. :func:`baseline_comparison` sets each model against :func:`plain_forest`
(300 trees, scikit-learn defaults, all 21 study indices) on the same
repeated-CV folds, with a paired bootstrap interval of the difference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from saltmap.models.building import make_model
from saltmap.validation.metrics import (
    CI_METRICS,
    CVResult,
    bootstrap_draws,
    bootstrap_fold_means,
    paired_difference,
    percentile_ci,
    regression_metrics,
)

BASELINE = "plain RF"


#: The plain forest's parameters: scikit-learn's defaults with 300 trees.
PLAIN_FOREST = {"n_estimators": 300, "max_features": 1.0, "min_samples_leaf": 1, "max_depth": None}


def plain_forest(random_state: int = 0) -> Pipeline:
    """The reference model: a random forest of 300 trees with scikit-learn's defaults
    on all 21 study indices (17 classic + 4 novel), untuned; a saltmap model like the
    others (:func:`~saltmap.models.building.make_model`), so its predictions stay physical."""
    return make_model("RF", indices="study", params=PLAIN_FOREST, random_state=random_state)


def _scored_rows(result: CVResult) -> np.ndarray:
    """Rows that ``result`` predicted out of fold, as a boolean mask."""
    rows = np.zeros(len(result.y), dtype=bool)
    rows[np.concatenate([idx for idx, _ in result.predictions])] = True
    return rows


def study_split_scores(
    fs: str,
    out: dict[str, dict[str, Any]],
    ids: pd.Index,
    y: np.ndarray,
    split: tuple[np.ndarray, np.ndarray],
    n_boot: int,
    random_state: int,
) -> tuple[list[dict], list[dict], list[dict]]:
    """Table 4 rows, figure 5 predictions and the validation row of the honest table.

    ``out`` is :func:`~saltmap.validation.protocols.fit_predict_fold`'s output on the
    study's calibration/validation ``split`` (with training predictions) for the feature
    set ``fs``; ``ids`` labels the rows of ``y``.
    """
    cal, val = split
    draws = bootstrap_draws(len(val), n_boot, random_state)
    table4, preds, honest = [], [], []
    for model, fitted in out.items():
        c = regression_metrics(y[cal], fitted["train"])
        v = regression_metrics(y[val], fitted["test"])
        table4.append(
            {"feature_set": fs, "model": model}
            | {f"{m}_c": c[m] for m in ("R2", "RMSE", "MAE")}
            | {f"{m}_v": v[m] for m in ("R2", "RMSE", "MAE", "bias", "RPIQ")}
            | {"n_c": len(cal), "n_v": len(val)}
        )
        for part, rows, p in (
            ("calibration", cal, fitted["train"]),
            ("validation", val, fitted["test"]),
        ):
            preds += [
                {"feature_set": fs, "model": model, "sample": ids[r], "set": part,
                 "measured": y[r], "predicted": float(q)}
                for r, q in zip(rows, p, strict=True)
            ]  # fmt: skip
        boot = bootstrap_fold_means(y[val], [(np.arange(len(val)), fitted["test"])], draws)
        row = {"protocol": "study", "feature_set": fs, "model": model, "n_folds": 1}
        for m in ("R2", "RMSE", "MAE", "bias", "RPIQ"):
            row[f"{m}_mean"], row[f"{m}_sd"] = v[m], np.nan
        row["R2_pooled"] = v["R2"]
        boot["R2_pooled"] = boot["R2"]
        for m in (*CI_METRICS, "R2_pooled"):
            row[f"{m}_ci_low"], row[f"{m}_ci_high"] = percentile_ci(boot[m])
        honest.append(row)
    return table4, preds, honest


def baseline_comparison(
    results: Mapping[tuple[str, str], CVResult], baseline: CVResult, draws: np.ndarray
) -> pd.DataFrame:
    """Each model against the plain random forest on the same folds.

    Parameters
    ----------
    results : mapping (feature_set, model) -> CVResult
        Repeated-CV results, on the same splits as ``baseline``.
    baseline : CVResult
        :func:`plain_forest` on those splits.
    draws : ndarray
        Bootstrap draws (:func:`~saltmap.validation.protocols.bootstrap_draws`); the
        same draws re-weight both models, so the intervals are paired.

    Returns
    -------
    DataFrame
        Per feature set and model: its and the baseline's pooled R² and mean
        RMSE, the differences ``dR2_pooled``, ``dR2`` (fold mean), ``dRMSE``,
        ``dMAE`` (model − baseline) with paired 95 % intervals, and ``verdict``:
        ``better`` when the whole RMSE interval is below 0, ``worse`` when
        above, else ``no clear difference``.
    """
    rows = []
    for (fs, model), res in results.items():
        ref = baseline
        common = _scored_rows(res) & _scored_rows(baseline)
        if not (common == _scored_rows(res)).all() or not (common == _scored_rows(ref)).all():
            # A set that set rows aside is compared with the forest on the rows both scored.
            res, ref = res.restricted(common), baseline.restricted(common)
        diff = paired_difference(res, ref, draws)
        lo, hi = diff["dRMSE_ci_low"], diff["dRMSE_ci_high"]
        verdict = "better" if hi < 0 else "worse" if lo > 0 else "no clear difference"
        rows.append(
            {"feature_set": fs, "model": model,
             "R2_pooled": res.pooled_r2(), "R2_pooled_baseline": ref.pooled_r2(),
             "RMSE_mean": res.folds["RMSE"].mean(), "RMSE_baseline": ref.folds["RMSE"].mean()}
            | {k: v for k, v in diff.items() if not k.startswith("dbias")}
            | {"verdict": verdict}
        )  # fmt: skip
    return pd.DataFrame(rows)

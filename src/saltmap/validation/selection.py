"""Choosing the final model by the evidence, and saying how sure that choice is.

The candidates are every evaluated model on every feature set (by default also the
six bands alone and all 21 indices together, see
:data:`~saltmap.validation.settings.CANDIDATE_SETS`) and the plain random forest,
scored on the same folds of the study's main honest protocol (spatial block CV where
the samples have coordinates, repeated k-fold otherwise) and on the same rows (a row
a feature set cannot use is left out of every candidate's score).

:func:`choose` takes the candidate of lowest pooled RMSE, then applies the
one-standard-error rule [1]_: among the candidates whose pooled RMSE exceeds the best's
by no more than one standard error of their difference (the sd over folds of the paired
fold-RMSE differences to the best, over √k with k folds per repeat: the folds of a
repeated CV overlap, so this is the cautious count), it takes the simplest, in the
order of :data:`MODEL_ORDER` (which is also the order of their inference cost,
measured beside the scores), then the fewest features. Choosing the best of many
candidates on the same folds is itself optimistic; :mod:`saltmap.validation.nested`
measures the whole "choose, then fit".

:func:`skill_verdict` sets the chosen model against the null model (the training
mean): without a pooled R² interval above 0, an RMSE interval clearly below the
null's, and a positive nested score, the report says "no evidence of skill".

References
----------
.. [1] Hastie, T., Tibshirani, R., Friedman, J. (2009). The Elements of Statistical
   Learning, 2nd ed., section 7.10 (the one-standard-error rule).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from saltmap.validation.cost import tile_minutes
from saltmap.validation.metrics import CVResult, paired_difference

Key = tuple[str, str]  # (feature set, model)

#: Label of the null model: the mean of the training rows, whatever the input.
NULL = "null (mean)"
#: Models from simpler and cheaper to map to more complex and costlier (the plain
#: random forest ranks as RF); the one-standard-error rule prefers the first.
MODEL_ORDER: tuple[str, ...] = ("PLSR", "MLP", "XGBoost", "RF", "plain RF", "Stacking")
#: The words the summary, the map's metadata and its figure use when no model beats the null.
NO_SKILL = "no evidence of skill"


def simplicity(key: Key, n_features: int) -> tuple[int, int, str]:
    """Sort key of a candidate: model order, then number of features, then the set's name."""
    fs, model = key
    order = MODEL_ORDER.index(model) if model in MODEL_ORDER else len(MODEL_ORDER)
    return order, n_features, fs


def fold_rmse(result: CVResult) -> np.ndarray:
    """RMSE of each fold of ``result``."""
    return result.folds["RMSE"].to_numpy(dtype=float)


def choose(
    results: Mapping[Key, CVResult], n_features: Mapping[Key, int], folds_per_repeat: int
) -> tuple[Key, pd.DataFrame]:
    """The candidate the evidence chooses, and every candidate's scores.

    Parameters
    ----------
    results : mapping (feature set, model) -> CVResult
        Out-of-fold results on the same folds and rows.
    n_features : mapping (feature set, model) -> int
    folds_per_repeat : int
        k of the k-fold: the standard error is the sd of the fold RMSEs over √k.

    Returns
    -------
    winner : (feature set, model)
    table : DataFrame
        Per candidate: ``RMSE_pooled``, ``RMSE_se`` (standard error of its difference to
        the best), ``R2_pooled``, ``rank`` (by pooled RMSE), ``within_1se`` and
        ``chosen``; sorted by rank.
    """
    pooled = {key: res.pooled_rmse() for key, res in results.items()}
    best = min(pooled, key=lambda k: (pooled[k], simplicity(k, n_features[k])))
    rows = []
    for key, res in results.items():
        # The noise of a difference is that of the paired fold differences to the best.
        diff = fold_rmse(res) - fold_rmse(results[best])
        se = float(np.std(diff, ddof=1) / np.sqrt(folds_per_repeat)) if len(diff) > 1 else 0.0
        rows.append({"feature_set": key[0], "model": key[1], "n_features": n_features[key],
                     "RMSE_pooled": pooled[key], "RMSE_se": se,
                     "R2_pooled": res.pooled_r2(),
                     "within_1se": pooled[key] - pooled[best] <= se})  # fmt: skip
    table = pd.DataFrame(rows).sort_values("RMSE_pooled", kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    near = table[table["within_1se"]]
    keys = [(r.feature_set, r.model) for r in near.itertuples()]
    winner = min(keys, key=lambda k: simplicity(k, n_features[k]))
    table["chosen"] = [(r.feature_set, r.model) == winner for r in table.itertuples()]
    return winner, table


@dataclass
class Selection:
    """The final model's choice: what was chosen, how it ranked, and how sure it is.

    Attributes
    ----------
    protocol : str
        The protocol the choice was made under (spatial or repeated).
    candidates : DataFrame
        Per candidate (feature set, model): pooled RMSE and its standard error, pooled
        R² with a bootstrap 95 % CI, rank, ``within_1se``, ``chosen``, rows scored,
        predictions held at a physical bound, inference speed (``kpx_per_cpu_s``)
        and the CPU minutes of a full Sentinel-2 tile (``s2_tile_cpu_min``).
    winner, runner_up : (feature set, model)
    gap : dict
        Runner-up − winner: ``dRMSE`` and ``dR2_pooled`` with paired bootstrap 95 % CIs.
    null : dict
        The null model's pooled R² and RMSE, and the winner − null differences with CIs.
    nested : DataFrame
        Per outer fold of the nested cross-validation: the candidate chosen on its
        training rows only (empty when not run).
    nested_score : dict
        The outer score of "choose, then fit": pooled R² (with CI), RMSE, rows.
    skill : dict
        ``evidence`` (bool) and ``reasons`` (the tests that failed), see :func:`skill_verdict`.
    indices : dict
        Feature set -> its index items (the final fit uses the winner's).
    covariates : dict
        Feature set -> whether its candidates use the covariates.
    """

    protocol: str
    candidates: pd.DataFrame
    winner: Key
    runner_up: Key | None
    gap: dict[str, float]
    null: dict[str, float]
    nested: pd.DataFrame
    nested_score: dict[str, float]
    skill: dict[str, Any]
    indices: dict[str, list[Any]] = field(default_factory=dict)
    covariates: dict[str, bool] = field(default_factory=dict)

    @property
    def stability(self) -> float:
        """Share of outer folds that chose the same candidate as the choice on all rows."""
        if self.nested.empty:
            return float("nan")
        return float(np.mean(self.nested["same_as_all_rows"]))

    def row(self, key: Key) -> pd.Series | None:
        """The candidates table's row of ``key`` (None when it is not a candidate)."""
        hit = self.candidates[
            (self.candidates["feature_set"] == key[0]) & (self.candidates["model"] == key[1])
        ]
        return None if hit.empty else hit.iloc[0]

    def rank_of(self, key: Key) -> str:
        """How a (forced) final model ranked among the candidates, in words."""
        row = self.row(key)
        if row is None:
            return f"{key[1]} on {key[0]} was not among the candidates"
        w = self.row(self.winner)
        return (
            f"{key[1]} on {key[0]} ranked {int(row['rank'])} of {len(self.candidates)} "
            f"(pooled RMSE {row['RMSE_pooled']:.4g} against {w['RMSE_pooled']:.4g} for the "
            f"evidence's choice, {self.winner[1]} on {self.winner[0]})"
        )

    def words(self, unit: str = "") -> str:
        """The choice in sentences, for the summary and the CLI."""
        w = self.row(self.winner)
        text = (
            f"The evidence chooses {self.winner[1]} on {self.winner[0]} ({self.protocol} CV: "
            f"pooled R² {w['R2_pooled']:.2f} [{w['R2_pooled_ci_low']:.2f}, "
            f"{w['R2_pooled_ci_high']:.2f}], pooled RMSE {w['RMSE_pooled']:.4g} {unit})."
        )
        if self.runner_up is not None:
            g = self.gap
            text += (
                f" Runner-up: {self.runner_up[1]} on {self.runner_up[0]}; RMSE difference "
                f"(runner-up − chosen) {g['dRMSE']:+.3g} [{g['dRMSE_ci_low']:+.3g}, "
                f"{g['dRMSE_ci_high']:+.3g}], pooled R² difference {g['dR2_pooled']:+.2f} "
                f"[{g['dR2_pooled_ci_low']:+.2f}, {g['dR2_pooled_ci_high']:+.2f}]."
            )
        if self.nested_score:
            n = self.nested_score
            text += (
                f" Choosing, then fitting, scored by nested CV (the number to quote): pooled "
                f"R² {n['R2_pooled']:.2f} [{n['R2_pooled_ci_low']:.2f}, "
                f"{n['R2_pooled_ci_high']:.2f}], RMSE {n['RMSE']:.4g} {unit}; the same "
                f"candidate won in {self.stability:.0%} of the outer folds."
            )
        if not self.skill["evidence"]:
            text += f" {no_skill_sentence(self.skill)}"
        return text.replace(" )", ")")


def no_skill_sentence(skill: Mapping[str, Any]) -> str:
    """What "no evidence of skill" means, for a soil scientist."""
    return (
        f"Warning: {NO_SKILL}. No model predicts salinity from these samples clearly better "
        "than their plain average (" + "; ".join(skill["reasons"]) + "). A map made with it "
        "shows the pattern of the spectral indices, not a measured salinity pattern."
    )


def skill_verdict(
    winner: Mapping[str, float], versus_null: Mapping[str, float], nested: Mapping[str, float]
) -> dict[str, Any]:
    """Whether the chosen model is clearly better than the null model.

    Evidence of skill needs all of: the pooled R² interval above 0, the paired RMSE
    difference to the null wholly below 0, and (when measured) a positive nested
    pooled R². Returns ``{"evidence": bool, "reasons": [failed tests, in words]}``.
    """
    reasons = []
    if not winner["R2_pooled_ci_low"] > 0:
        reasons.append(f"the pooled R² interval reaches {winner['R2_pooled_ci_low']:.2f}")
    if not versus_null["dRMSE_ci_high"] < 0:
        reasons.append(
            "the RMSE is not clearly below the null model's (difference "
            f"{versus_null['dRMSE']:.3g}, 95 % CI up to {versus_null['dRMSE_ci_high']:.3g})"
        )
    if nested and not nested.get("R2_pooled", np.inf) > 0:
        reasons.append(f"the nested score is R² {nested['R2_pooled']:.2f}")
    return {"evidence": not reasons, "reasons": reasons}


def candidate_table(
    table: pd.DataFrame,
    results: Mapping[Key, CVResult],
    draws: np.ndarray,
    costs: Mapping[Key, float],
    n_rows: Mapping[Key, int],
) -> pd.DataFrame:
    """:func:`choose`'s table with each candidate's R² interval, rows, clipped
    predictions and inference cost."""
    out = table.copy()
    lows, highs = [], []
    for r in out.itertuples():
        s = results[(r.feature_set, r.model)].summary(draws)
        lows.append(s["R2_pooled_ci_low"])
        highs.append(s["R2_pooled_ci_high"])
    keys = list(zip(out["feature_set"], out["model"], strict=True))
    out["R2_pooled_ci_low"], out["R2_pooled_ci_high"] = lows, highs
    out["n_rows"] = [n_rows.get(k, np.nan) for k in keys]
    folds = {k: results[k].folds for k in keys}
    out["n_clipped"] = [
        int(folds[k].get("n_floor", pd.Series(dtype=float)).sum()
            + folds[k].get("n_ceiling", pd.Series(dtype=float)).sum())
        for k in keys
    ]  # fmt: skip
    out["kpx_per_cpu_s"] = [costs.get(k, np.nan) for k in keys]
    out["s2_tile_cpu_min"] = [tile_minutes(costs.get(k, np.nan)) for k in keys]
    return out


def select(
    results: Mapping[Key, CVResult],
    null: CVResult,
    *,
    n_features: Mapping[Key, int],
    folds_per_repeat: int,
    draws: np.ndarray,
    costs: Mapping[Key, float] | None = None,
    n_rows: Mapping[Key, int] | None = None,
) -> tuple[Key, Key | None, pd.DataFrame, dict[str, float], dict[str, float]]:
    """:func:`choose` on all rows, with the candidates' table, the gap to the runner-up and
    the winner against the null model (all on the same, already restricted, rows).

    Returns
    -------
    winner, runner_up, candidates, gap, null
    """
    winner, table = choose(results, n_features, folds_per_repeat)
    table = candidate_table(table, results, draws, costs or {}, n_rows or {})
    others = table[~table["chosen"]]
    runner_up = None if others.empty else (others.iloc[0]["feature_set"], others.iloc[0]["model"])
    gap: dict[str, float] = {}
    if runner_up is not None:
        gap = paired_difference(results[runner_up], results[winner], draws)
    versus = paired_difference(results[winner], null, draws)
    null_row = {"R2_pooled": null.pooled_r2(), "RMSE_pooled": null.pooled_rmse()} | versus
    return winner, runner_up, table, gap, null_row


def key_labels(keys: Sequence[Key]) -> list[str]:
    """``"model on set"`` for each key."""
    return [f"{m} on {fs}" for fs, m in keys]

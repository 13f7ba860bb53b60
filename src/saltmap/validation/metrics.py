"""Scores of predictions against measurements, and their bootstrap intervals.

Both honest protocols (:mod:`saltmap.validation.protocols`) report each metric
as the mean ± sd of its fold scores and a bootstrap 95 % confidence interval.
The interval comes from a bootstrap of the *out-of-fold residuals*: each draw
resamples the samples with replacement, re-scores every fold on the resampled
copies of its held-out rows and averages over folds. It measures how much the
estimate depends on which soil samples happened to be collected; resampling
the fold scores instead would treat the 25 overlapping folds of a repeated CV
as independent and give an interval that is too narrow.

R² is reported twice. Its fold mean is biased low with folds of ~20 rows (a
fold that happens to hold little spread in salinity has a small SST), so the
table also gives the *pooled* R² — of all out-of-fold predictions of a
repeat together, averaged over repeats — and its interval from the same
draws; that is the usual cross-validated R².

References
----------
.. [2] Bellon-Maurel, V., Fernandez-Ahumada, E., Palagos, B., Roger, J.-M.,
   McBratney, A. (2010). Critical review of chemometric indicators commonly used
   for assessing the quality of the prediction of soil attributes by NIR
   spectroscopy. TrAC 29, 1073–1081 (RPIQ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from saltmap.errors import SampleDataError

METRICS: tuple[str, ...] = ("R2", "RMSE", "MAE", "bias", "RPIQ")
# Metrics the bootstrap gives an interval for (RPIQ's IQR does not re-weight simply).
CI_METRICS: tuple[str, ...] = ("R2", "RMSE", "MAE", "bias")


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Goodness of fit of predictions against measurements.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,)
        Measured and predicted values, in the same unit.

    Returns
    -------
    dict
        ``R2`` = 1 − SSE/SST on these rows (negative when the predictions are
        worse than the rows' own mean), ``RMSE``, ``MAE``, ``bias`` (mean of
        predicted − measured) and ``RPIQ`` (interquartile range of the
        measurements / RMSE, [2]_), plus ``n``.
    """
    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{y_true.size} measurements but {y_pred.size} predictions")
    if y_true.size < 2:
        raise SampleDataError(f"metrics need at least 2 rows, got {y_true.size}")
    resid = y_pred - y_true
    sse = float(np.sum(resid**2))
    sst = float(np.sum((y_true - y_true.mean()) ** 2))
    rmse = float(np.sqrt(sse / y_true.size))
    q75, q25 = np.percentile(y_true, [75, 25])
    return {
        "R2": 1.0 - sse / sst if sst > 0 else float("nan"),
        "RMSE": rmse,
        "MAE": float(np.mean(np.abs(resid))),
        "bias": float(np.mean(resid)),
        "RPIQ": float((q75 - q25) / rmse) if rmse > 0 else float("inf"),
        "n": int(y_true.size),
    }


def _weighted_fold_metrics(
    y: np.ndarray, pred: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Metrics of one fold for many bootstrap draws at once.

    ``weights`` (draws × rows) counts how often each held-out row was drawn.
    """
    resid = pred - y
    n = weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_y = weights @ y / n
        sst = np.sum(weights * (y[None, :] - mean_y[:, None]) ** 2, axis=1)
        sse = weights @ resid**2
        r2 = np.where(sst > 0, 1.0 - sse / sst, np.nan)
        return {
            "R2": r2,
            "RMSE": np.sqrt(sse / n),
            "MAE": weights @ np.abs(resid) / n,
            "bias": weights @ resid / n,
        }


def bootstrap_draws(n_rows: int, n_boot: int, random_state: int | None) -> np.ndarray:
    """Counts (``n_boot`` × ``n_rows``) of each row in ``n_boot`` resamples with replacement."""
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n_rows, np.full(n_rows, 1.0 / n_rows), size=n_boot).astype(float)


def bootstrap_fold_means(
    y: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    draws: np.ndarray,
) -> dict[str, np.ndarray]:
    """Fold-mean of each metric in every bootstrap draw of the out-of-fold residuals.

    Parameters
    ----------
    y : ndarray of shape (n,)
        Measurements of all rows.
    folds : sequence of (test_idx, pred)
        Held-out rows of each fold and their predictions.
    draws : ndarray of shape (n_boot, n)
        Row counts from :func:`bootstrap_draws`; the same draws for two models
        give paired differences.

    Returns
    -------
    dict of metric -> ndarray of shape (n_boot,)
    """
    per_fold = [_weighted_fold_metrics(y[idx], p, draws[:, idx]) for idx, p in folds]
    with np.errstate(invalid="ignore"):
        return {m: np.nanmean(np.stack([f[m] for f in per_fold]), axis=0) for m in CI_METRICS}


def percentile_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap ``values`` (NaN draws ignored)."""
    alpha = (1.0 - level) / 2
    lo, hi = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- out-of-fold results


@dataclass
class CVResult:
    """Out-of-fold results of one model under one protocol.

    Attributes
    ----------
    folds : DataFrame
        One row per fold: ``repeat``, ``fold``, ``n``, then each metric.
    predictions : list of (test_idx, pred)
        Held-out rows of each fold (positions) and their predictions.
    y : ndarray
        Measurements of all rows.
    """

    folds: pd.DataFrame
    predictions: list[tuple[np.ndarray, np.ndarray]]
    y: np.ndarray

    def by_repeat(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each repeat's held-out rows and predictions, pooled over its folds."""
        return self._by_repeat()

    def pooled_rmse(self) -> float:
        """RMSE of each repeat's pooled out-of-fold predictions, averaged over repeats."""
        return float(
            np.mean([np.sqrt(np.mean((p - self.y[i]) ** 2)) for i, p in self._by_repeat()])
        )

    def restricted(self, rows: np.ndarray) -> CVResult:
        """The same result scored only on the rows where the boolean ``rows`` is True
        (so that models whose feature sets set aside different rows compare on the same
        ones); every fold's metrics are recomputed on what is left of it."""
        folds, preds = [], []
        for (_, fold), (idx, pred) in zip(self.folds.iterrows(), self.predictions, strict=True):
            keep = rows[idx]
            scores = regression_metrics(self.y[idx[keep]], pred[keep])
            folds.append({**fold.to_dict(), "n": int(keep.sum())} | {m: scores[m] for m in METRICS})
            preds.append((idx[keep], pred[keep]))
        return CVResult(folds=pd.DataFrame(folds), predictions=preds, y=self.y)

    def _by_repeat(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each repeat's held-out rows and predictions, pooled over its folds."""
        pooled = []
        for _, group in self.folds.groupby("repeat"):
            idx = np.concatenate([self.predictions[i][0] for i in group.index])
            pred = np.concatenate([self.predictions[i][1] for i in group.index])
            pooled.append((idx, pred))
        return pooled

    def pooled_r2(self) -> float:
        """R² of each repeat's pooled out-of-fold predictions, averaged over repeats.

        Unlike the fold mean it is not dragged down by folds whose few rows
        happen to vary little (a small SST); it is the usual cross-validated R².
        """
        return float(
            np.mean([regression_metrics(self.y[i], p)["R2"] for i, p in self._by_repeat()])
        )

    def bootstrap(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        """Fold means of :data:`CI_METRICS` and the pooled R² in each bootstrap draw."""
        boot = bootstrap_fold_means(self.y, self.predictions, draws)
        boot["R2_pooled"] = bootstrap_fold_means(self.y, self._by_repeat(), draws)["R2"]
        return boot

    def summary(self, draws: np.ndarray | None = None, level: float = 0.95) -> dict[str, float]:
        """Mean and sd over folds of each metric, the pooled R² and, given ``draws``,
        bootstrap intervals (``<metric>_ci_low``, ``<metric>_ci_high``)."""
        out: dict[str, float] = {"n_folds": len(self.folds)}
        for m in METRICS:
            out[f"{m}_mean"] = float(self.folds[m].mean())
            out[f"{m}_sd"] = float(self.folds[m].std(ddof=1)) if len(self.folds) > 1 else np.nan
        out["R2_pooled"] = self.pooled_r2()
        if draws is not None:
            for m, values in self.bootstrap(draws).items():
                out[f"{m}_ci_low"], out[f"{m}_ci_high"] = percentile_ci(values, level)
        return out


def paired_difference(
    result: CVResult, baseline: CVResult, draws: np.ndarray, level: float = 0.95
) -> dict[str, float]:
    """Mean fold difference (model − baseline) of each metric, with a paired bootstrap CI.

    Both results must come from the same splits; the same bootstrap draws
    re-weight both models' residuals, so the interval is of the difference.
    """
    if len(result.folds) != len(baseline.folds) or any(
        not np.array_equal(a[0], b[0])
        for a, b in zip(result.predictions, baseline.predictions, strict=True)
    ):
        raise ValueError("model and baseline were not evaluated on the same folds")
    a, b = result.bootstrap(draws), baseline.bootstrap(draws)
    out: dict[str, float] = {"dR2_pooled": result.pooled_r2() - baseline.pooled_r2()}
    out["dR2_pooled_ci_low"], out["dR2_pooled_ci_high"] = percentile_ci(
        a["R2_pooled"] - b["R2_pooled"], level
    )
    for m in CI_METRICS:
        out[f"d{m}"] = float((result.folds[m] - baseline.folds[m]).mean())
        out[f"d{m}_ci_low"], out[f"d{m}_ci_high"] = percentile_ci(a[m] - b[m], level)
    return out

"""Are the intervals calibrated where it matters: coverage on held-out samples, by stratum.

:func:`evaluate_coverage` fits a :class:`~saltmap.trust.intervals.ConformalIntervals`
on the training rows of each outer split and scores its intervals on the held-out rows
(:func:`coverage_summary` pools them): the study's coverage table.

:func:`held_out_intervals` fits the trust model of the map (:func:`saltmap.trust.maps.fit_trust`:
intervals and AOA) on the training rows of each outer split and records, for every
held-out row, its prediction, DI and the bounds of both the normalized
(locally adaptive) and the constant-width interval at a range of nominal levels, all
from the same out-of-fold residuals. :func:`calibration_summary` then gives, per
method, the marginal coverage, the coverage in each tercile of the predicted value
and of the DI (where a constant width fails most: it is too wide where the error is
small and too narrow where it is large), and the widths; :func:`calibration_curve`
gives the empirical coverage at each nominal level, drawn by
:func:`saltmap.plots.calibration_figure`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import pandas as pd

from saltmap.models.inspect import seen_rows, take_rows
from saltmap.trust.conformal import as_1d
from saltmap.trust.intervals import ConformalIntervals
from saltmap.trust.maps import fit_trust
from saltmap.trust.settings import IntervalSettings, TrustSettings

#: Nominal levels of the calibration curve.
LEVELS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
#: The interval methods compared on the same residuals: the adaptive one and the constant width.
COMPARED: tuple[str, ...] = ("normalized", "base")


def held_out_intervals(
    estimator: Any,
    X: Any,
    y: Any,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: TrustSettings | None = None,
    *,
    levels: Sequence[float] = LEVELS,
    n_splits_per_repeat: int | None = None,
) -> pd.DataFrame:
    """One row per held-out prediction of every outer split, with both methods' bounds.

    Parameters
    ----------
    estimator : estimator
        A saltmap model (cloned for every split).
    X, y
        What the model reads and the target.
    splits : sequence of (train_idx, test_idx)
        Outer splits (repeated random k-fold, spatial block k-fold…).
    settings : TrustSettings, optional
        How the trust model is fitted in each split; its ``method`` is replaced by
        ``"normalized"``, which keeps the constant-width quantiles too.
    levels : sequence of float
        Nominal levels of the ``covered@LEVEL`` columns; the settings' confidence is added.
    n_splits_per_repeat : int, optional
        Folds per repeat, to label repeats (default: all splits one repeat).

    Returns
    -------
    DataFrame
        ``repeat``, ``split``, ``row``, ``y``, ``pred``, ``di``, then for each method
        of :data:`COMPARED`: ``{m}_lower``, ``{m}_upper``, ``{m}_width`` at the
        nominal level and ``{m}_covered@{level}`` (bool) at each level. Rows whose
        categorical level the split's training rows lack are left out.
    """
    s = replace(settings or TrustSettings(), method="normalized")
    levels = sorted({*map(float, levels), float(s.confidence)})
    y = np.asarray(y, dtype=float).ravel()
    per_repeat = n_splits_per_repeat or len(splits)
    parts = []
    for i, (train, test) in enumerate(splits):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trust = fit_trust(estimator, take_rows(X, train), y[train], s)
        part = _split_rows(trust, X, y, np.asarray(test), levels)
        part.insert(0, "split", i)
        part.insert(0, "repeat", i // per_repeat)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _split_rows(trust: Any, X: Any, y: np.ndarray, test: np.ndarray, levels: list[float]):
    """The held-out rows of one split: prediction, DI and each method's bounds."""
    intervals = trust.intervals
    kept = test[seen_rows(intervals.estimator_, take_rows(X, test))]
    rows = take_rows(X, kept)
    features = trust.features(rows)
    pred = intervals.predict(rows)
    out = {"row": kept, "y": y[kept], "pred": pred, "di": trust.aoa.dissimilarity(features)}
    for method in COMPARED:
        for level in levels:
            lower, upper = intervals.bounds_from_prediction(
                pred, features, confidence=level, method=method
            )
            if level == intervals.confidence:
                out[f"{method}_lower"], out[f"{method}_upper"] = lower, upper
                out[f"{method}_width"] = upper - lower
            out[f"{method}_covered@{level:g}"] = (y[kept] >= lower) & (y[kept] <= upper)
    return pd.DataFrame(out)


def _terciles(values: pd.Series) -> pd.Series:
    """Tercile (1 low, 2, 3 high) of each value among all of them."""
    return pd.Series(pd.qcut(values.rank(method="first"), 3, labels=False) + 1, index=values.index)


def calibration_summary(table: pd.DataFrame, confidence: float = 0.9) -> pd.DataFrame:
    """Per method: marginal and conditional coverage at ``confidence``, and widths.

    Returns
    -------
    DataFrame
        One row per method of :data:`COMPARED`: ``coverage`` (pooled over all
        held-out predictions), ``coverage_min_repeat``/``coverage_max_repeat``,
        ``coverage_pred_t1..t3`` and ``coverage_di_t1..t3`` (by tercile of the
        predicted value and of the DI, 1 = lowest), ``worst_gap`` (largest distance of
        a tercile's coverage from nominal, in points), ``mean_width``,
        ``median_width``, ``width_iqr_share`` (interquartile range of the width over
        its median), ``n_predictions``.
    """
    pred_t, di_t = _terciles(table["pred"]), _terciles(table["di"])
    rows = []
    for method in COMPARED:
        covered = table[f"{method}_covered@{confidence:g}"].astype(float)
        width = table[f"{method}_width"]
        per_repeat = covered.groupby(table["repeat"]).mean()
        row = {"method": method, "nominal": confidence, "coverage": covered.mean(),
               "coverage_min_repeat": per_repeat.min(),
               "coverage_max_repeat": per_repeat.max()}  # fmt: skip
        for name, terc in (("pred", pred_t), ("di", di_t)):
            for t, value in covered.groupby(terc).mean().items():
                row[f"coverage_{name}_t{t}"] = value
        gaps = [abs(v - confidence) for k, v in row.items() if "_t" in k]
        q1, q2, q3 = np.nanpercentile(width, [25, 50, 75])
        row.update({"worst_gap": 100 * max(gaps), "mean_width": float(np.nanmean(width)),
                    "median_width": q2, "width_iqr_share": (q3 - q1) / q2 if q2 else np.nan,
                    "n_predictions": len(table)})  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def calibration_curve(table: pd.DataFrame) -> pd.DataFrame:
    """Empirical coverage at every nominal level of the table, per method (long format:
    ``method``, ``nominal``, ``coverage``)."""
    rows = []
    for column in table.columns:
        if "_covered@" in column:
            method, level = column.split("_covered@")
            rows.append({"method": method, "nominal": float(level),
                         "coverage": float(table[column].mean())})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["method", "nominal"], ignore_index=True)


def random_cv_calibration(
    estimator: Any,
    X: Any,
    y: Any,
    settings: TrustSettings | None = None,
    *,
    n_splits: int = 5,
    n_repeats: int = 2,
    random_state: int | None = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`calibration_summary` and :func:`calibration_curve` under repeated random k-fold.

    What ``saltmap train --calibration`` draws: the trust model of ``estimator`` (its
    parameters as they are) fitted ``n_splits × n_repeats`` times on training folds.
    """
    from sklearn.model_selection import RepeatedKFold

    cv = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
    splits = [(np.asarray(a), np.asarray(b)) for a, b in cv.split(X)]
    table = held_out_intervals(estimator, X, y, splits, settings, n_splits_per_repeat=n_splits)
    level = (settings or TrustSettings()).confidence
    return calibration_summary(table, level), calibration_curve(table)


def interval_coverage(y: Any, lower: Any, upper: Any) -> float:
    """Share of measurements inside their interval (bounds included)."""
    y, lower, upper = as_1d(y), as_1d(lower), as_1d(upper)
    return float(np.mean((y >= lower) & (y <= upper)))


def evaluate_coverage(
    estimator: Any,
    X: Any,
    y: Any,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    settings: IntervalSettings | None = None,
    *,
    n_splits_per_repeat: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Empirical coverage and width of the intervals on held-out samples.

    For every outer ``(train, test)`` split a :class:`ConformalIntervals` is fitted
    on the training rows only (with its own inner ``cv``) and its intervals are
    scored on the test rows, which it never saw.

    Parameters
    ----------
    estimator : estimator
        A saltmap model (cloned).
    X, y
        What the model reads (reflectance by band role, plus its covariate
        columns) and the target.
    splits : sequence of (train_idx, test_idx)
        Outer splits, e.g. from :func:`saltmap.validation.protocols.materialise_splits` with
        ``RepeatedKFold`` or ``SpatialBlockKFold``.
    settings : IntervalSettings, optional
        How the intervals are fitted; keywords given beside it win over its fields.
    n_splits_per_repeat : int, optional
        Folds per repeat, to label repeats.
    **options
        ``confidence``, ``cv``, ``method``, ``conformity_score``, ``random_state``:
        the fields of :class:`IntervalSettings`, as in :class:`ConformalIntervals`.
        An unknown keyword is a TypeError naming it.

    Returns
    -------
    DataFrame
        One row per outer fold: ``repeat``, ``fold``, ``n``, ``n_flagged`` (test
        rows left out because their categorical level is missing from the fold's
        training rows), ``covered`` (count), ``coverage``, ``mean_width``,
        ``median_width``. Pooled figures: :func:`coverage_summary`.
    """
    settings = replace(settings or IntervalSettings(), **options)
    y = as_1d(y)
    per_repeat = n_splits_per_repeat or len(splits)
    rows = []
    for i, (train, test) in enumerate(splits):
        model = ConformalIntervals(estimator, **asdict(settings))
        model.fit(take_rows(X, np.asarray(train)), y[train])
        fold = {"repeat": i // per_repeat, "fold": i % per_repeat}
        rows.append({**fold, **_fold_coverage(model, X, y, np.asarray(test))})
    return pd.DataFrame(rows)


def _fold_coverage(
    model: ConformalIntervals, X: Any, y: np.ndarray, test: np.ndarray
) -> dict[str, Any]:
    """Coverage and width of fitted intervals on the held-out rows ``test``."""
    # A test row of a categorical level absent from its training rows cannot be
    # predicted; it is left out and counted (as covariate_gain does).
    seen = seen_rows(model.estimator_, take_rows(X, test))
    kept = test[seen]
    _, lower, upper = model.predict_interval(take_rows(X, kept))
    inside = (y[kept] >= lower) & (y[kept] <= upper)
    width = upper - lower
    return {
        "n": len(kept),
        "n_flagged": int(len(test) - len(kept)),
        "covered": int(inside.sum()),
        "coverage": float(inside.mean()),
        "mean_width": float(np.nanmean(width)),
        "median_width": float(np.nanmedian(width)),
    }


def coverage_summary(folds: pd.DataFrame) -> dict[str, float]:
    """Pooled coverage (all held-out predictions), its spread over repeats, and widths."""
    per_repeat = folds.groupby("repeat").apply(
        lambda f: f["covered"].sum() / f["n"].sum(), include_groups=False
    )
    return {
        "coverage": float(folds["covered"].sum() / folds["n"].sum()),
        "coverage_min_repeat": float(per_repeat.min()),
        "coverage_max_repeat": float(per_repeat.max()),
        "mean_width": float(np.average(folds["mean_width"], weights=folds["n"])),
        "median_width": float(folds["median_width"].median()),
        "n_predictions": int(folds["n"].sum()),
        "n_flagged": int(folds["n_flagged"].sum()) if "n_flagged" in folds else 0,
        "n_folds": len(folds),
    }

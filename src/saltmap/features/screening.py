"""Correlation screening: which indices follow measured salinity.

The study screens its indices by the Pearson correlation of each index with the
measured salt content and keeps the strongest. :func:`screen` does this for any
set of indices, with the two-sided p-value, a 95 % confidence interval from
Fisher's z transform, the number of samples used and the number of samples at
which the index was undefined (NaN, see :mod:`saltmap.features.indices`).

References
----------
.. [1] Fisher, R. A. (1921). On the "probable error" of a coefficient of
   correlation deduced from a small sample. Metron 1, 3–32.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from saltmap.errors import SampleDataError
from saltmap.features.indices import (
    IndexItem,
    SpectralIndex,
    compute_indices,
    get_index,
    index_of,
    resolve_items,
)
from saltmap.io.samples import Samples

SCREEN_COLUMNS = [
    "index",
    "group",
    "formula",
    "r",
    "abs_r",
    "p_value",
    "q_value",
    "ci_low",
    "ci_high",
    "n",
    "n_undefined",
    "rank",
]


def correlation(values: np.ndarray, target: np.ndarray, *, confidence: float = 0.95) -> dict:
    """Pearson r of ``values`` with ``target`` over rows where both are defined.

    Returns ``r``, ``p_value`` (two-sided), ``ci_low``/``ci_high`` (Fisher z),
    ``n`` used and ``n_undefined`` (rows where ``values`` is NaN but the target is not).
    """
    values = np.asarray(values, dtype=float)
    target = np.asarray(target, dtype=float)
    both = np.isfinite(values) & np.isfinite(target)
    n = int(both.sum())
    out = {"n": n, "n_undefined": int((~np.isfinite(values) & np.isfinite(target)).sum())}
    if n < 4 or np.ptp(values[both]) == 0:
        return {**out, "r": np.nan, "p_value": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    result = stats.pearsonr(values[both], target[both])
    ci = result.confidence_interval(confidence_level=confidence)
    return {
        **out,
        "r": float(result.statistic),
        "p_value": float(result.pvalue),
        "ci_low": float(ci.low),
        "ci_high": float(ci.high),
    }


def q_values(p_values: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values of ``p_values`` (NaN stays NaN, and is not counted).

    Screening tests every index at once; with 21 indices and no signal, about one
    would pass p < 0.05 by chance. The q-value controls the false discovery rate
    over the indices screened together ([5]_; :func:`scipy.stats.false_discovery_control`).

    References
    ----------
    .. [5] Benjamini, Y., Hochberg, Y. (1995). Controlling the false discovery rate: a
       practical and powerful approach to multiple testing. JRSS B 57, 289–300.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


def screen_table(
    features: pd.DataFrame,
    target: pd.Series | np.ndarray,
    described: Mapping[str, SpectralIndex] | None = None,
) -> pd.DataFrame:
    """Screen every column of ``features`` against ``target``; rank by |r| (1 = strongest).

    A column's group and formula come from ``described`` (name → index), else from
    the catalogue and this session's registered indices, else ``other`` and none.
    """
    described = described or {}
    target = np.asarray(target, dtype=float)
    if np.nanstd(target) == 0:
        raise SampleDataError("the target is constant, so no correlation can be computed")
    rows = []
    for name in features.columns:
        stats_ = correlation(features[name].to_numpy(), target)
        try:
            index = described.get(name) or get_index(name)
            group, formula = index.group, index.formula
        except KeyError:
            group, formula = "other", ""
        rows.append({"index": name, "group": group, "formula": formula, **stats_})
    table = pd.DataFrame(rows)
    table["abs_r"] = table["r"].abs()
    table["q_value"] = q_values(table["p_value"].to_numpy(dtype=float))
    table = table.sort_values("abs_r", ascending=False, na_position="last", kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    return table[SCREEN_COLUMNS].reset_index(drop=True)


def screen(samples: Samples, indices: str | Iterable[IndexItem] = "study") -> pd.DataFrame:
    """Compute the indices for ``samples`` and screen them against the target.

    Parameters
    ----------
    samples : Samples
        Field samples with reflectance and a target.
    indices : str or iterable of index items
        Index names or sets (``"study"`` = the 17 classic and 4 novel indices), or
        indices and definitions of discovered ones (see
        :func:`~saltmap.features.indices.resolve_items`).

    Returns
    -------
    DataFrame
        One row per index: ``index``, ``group``, ``formula``, ``r``, ``abs_r``,
        ``p_value``, ``q_value`` (Benjamini–Hochberg, :func:`q_values`), ``ci_low``,
        ``ci_high``, ``n``, ``n_undefined``, ``rank``,
        sorted by |r|.
    """
    if len(samples) < 4:
        raise SampleDataError(
            f"{samples.source.name}: only {len(samples)} usable samples; "
            "screening needs at least 4 "
            "(see the rejected-row report for the rows set aside)"
        )
    chosen = [index_of(item) for item in resolve_items(indices)]
    features = compute_indices(samples.reflectance, chosen)
    return screen_table(features, samples.target, {ix.name: ix for ix in chosen})

"""Index discovery: a vectorised, cross-validated search for band formulas.

The study built its novel indices "by addition, subtraction, multiplication,
division and power operations" on the bands [1]_ but gives no method. Here that
construction is a reproducible search: every ordered pair and triple of distinct
band roles is put into a set of templates (the study's forms and the classic
ones), optionally after transforming the bands (reciprocal, square, square root,
natural log), and every candidate is ranked by its correlation with the target.

All candidates of one template and transform are computed at once as columns of
an ``(n_samples, n_candidates)`` matrix and correlated with the target in one
vectorised pass; rows where a candidate is undefined (NaN, never ±inf, by the
domain rule of :mod:`saltmap.features.indices`) are left out of that candidate's
correlation only.

A search that picks the best of thousands of formulas on ~100 samples is
optimistic: its best in-sample ``|r|`` is partly chance. :func:`discover_cv`
makes the optimism a number: it runs the whole search inside each outer
cross-validation fold on the training rows only and measures the fold winner's
correlation on the fold's test rows [2]_.

A candidate is data (template, bands, transform, weight). It becomes a
:class:`~saltmap.features.indices.SpectralIndex` whose computation is a closure over the
template function — no formula string is ever evaluated — and is saved to, and
reloaded from, a small TOML file.

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025.
.. [2] Varma, S., Simon, R. (2006). Bias in error estimation when using
   cross-validation for model selection. BMC Bioinformatics 7, 91.
.. [3] Fisher, R. A. (1921). On the "probable error" of a coefficient of
   correlation deduced from a small sample. Metron 1, 3–32.
.. [4] Bonett, D. G., Wright, T. A. (2000). Sample size requirements for
   estimating Pearson, Kendall and Spearman correlations. Psychometrika 65, 23–28.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import RepeatedKFold

from saltmap.atomic import atomic_write_text
from saltmap.bands import ROLES, check_roles
from saltmap.errors import SampleDataError
from saltmap.features.formulas import (
    TEMPLATES,
    TRANSFORMS,
    Candidate,
)
from saltmap.progress import Progress, task

METHODS = ("pearson", "spearman")
WEIGHTS: tuple[float, ...] = tuple(round(w / 10, 1) for w in range(1, 10))


def enumerate_candidates(
    roles: Sequence[str] = ROLES,
    *,
    templates: Iterable[str] | None = None,
    transforms: Iterable[str] | None = None,
    weights: Sequence[float] = WEIGHTS,
) -> list[Candidate]:
    """All candidates over ``roles``: every ordered tuple of distinct roles per template.

    Orders that give the same ``|index|`` (see :class:`Template`) are searched
    once. Candidates come transform by transform (identity first), simple
    templates first, so that among equal correlations the simplest form wins.
    """
    return list(
        _enumerate(
            tuple(roles),
            tuple(templates or TEMPLATES),
            tuple(transforms or TRANSFORMS),
            tuple(weights),
        )
    )


@cache
def _enumerate(
    roles: tuple[str, ...],
    templates: tuple[str, ...],
    transforms: tuple[str, ...],
    weights: tuple[float, ...],
) -> tuple[Candidate, ...]:
    order = {r: i for i, r in enumerate(roles)}
    out: list[Candidate] = []
    for tf in transforms:
        for name in templates:
            tmpl = TEMPLATES[name]
            for combo in itertools.permutations(roles, tmpl.arity):
                if tmpl.swap and order[combo[tmpl.swap[0]]] > order[combo[tmpl.swap[1]]]:
                    continue
                for w in weights if tmpl.weighted else (None,):
                    out.append(Candidate(name, combo, tf, w))
    return tuple(out)


def evaluate_candidates(
    reflectance: pd.DataFrame | np.ndarray,
    candidates: Sequence[Candidate],
    roles: Sequence[str] = ROLES,
) -> np.ndarray:
    """Compute all candidates at once: an ``(n_samples, n_candidates)`` float matrix.

    Parameters
    ----------
    reflectance : DataFrame or ndarray
        Reflectance with one column per band role (``roles`` gives the column
        order of an array).
    candidates : sequence of Candidate
    roles : sequence of str
        Column order of an array input.
    """
    if isinstance(reflectance, pd.DataFrame):
        roles = [r for r in ROLES if r in reflectance.columns]
        values = reflectance[roles].to_numpy(dtype=float)
    else:
        values = np.asarray(reflectance, dtype=float)
    pos = {r: i for i, r in enumerate(roles)}
    check_roles(sorted({b for c in candidates for b in c.bands}), pos, "the reflectance given")
    groups: dict[tuple[str, str], list[int]] = {}
    for j, cand in enumerate(candidates):
        groups.setdefault((cand.template, cand.transform), []).append(j)
    transformed = {t: TRANSFORMS[t].func(values) for t in {k[1] for k in groups}}
    out = np.empty((values.shape[0], len(candidates)))
    for (tname, tf), cols in groups.items():
        tmpl = TEMPLATES[tname]
        slots = np.array([[pos[b] for b in candidates[j].bands] for j in cols])
        terms = [transformed[tf][:, slots[:, i]] for i in range(tmpl.arity)]
        w = np.array([candidates[j].weight for j in cols]) if tmpl.weighted else None
        out[:, cols] = tmpl.func(*terms, w=w)
    return out


# --- vectorised correlation --------------------------------------------------------------------


def _masked_pearson(x: np.ndarray, y: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, ...]:
    """Pearson r of each column of ``x`` with ``y`` (a vector or matrix) over ``valid`` rows."""
    y = np.broadcast_to(y[:, None], x.shape) if y.ndim == 1 else y
    n = valid.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Centre first (two passes): sums of squares of raw reflectance lose digits.
        mx = np.where(valid, x, 0.0).sum(axis=0) / n
        my = np.where(valid, y, 0.0).sum(axis=0) / n
        xc = np.where(valid, x - mx, 0.0)
        yc = np.where(valid, y - my, 0.0)
        r = (xc * yc).sum(axis=0) / np.sqrt((xc * xc).sum(axis=0) * (yc * yc).sum(axis=0))
    r = np.where(np.isfinite(r) & (n > 2), np.clip(r, -1.0, 1.0), np.nan)
    return r, n


def _rank_target_by_pattern(y: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Ranks of ``y`` among each column's valid rows; columns sharing a pattern share work."""
    patterns, inverse = np.unique(valid.T, axis=0, return_inverse=True)
    ranks = np.full(valid.shape, np.nan)
    for k, pattern in enumerate(patterns):
        cols = np.flatnonzero(inverse.ravel() == k)
        ranked = np.full(y.shape, np.nan)
        ranked[pattern] = stats.rankdata(y[pattern])
        ranks[:, cols] = ranked[:, None]
    return ranks


def correlate_columns(x: np.ndarray, y: np.ndarray, *, method: str = "pearson") -> pd.DataFrame:
    """Correlation of every column of ``x`` with ``y``, with p-value and 95 % CI.

    Each column uses its own rows where both it and ``y`` are finite.

    Parameters
    ----------
    x : ndarray, shape (n_samples, n_columns)
    y : ndarray, shape (n_samples,)
    method : {"pearson", "spearman"}
        Spearman's rho is Pearson's r of ranks (average ranks for ties),
        ranked among each column's valid rows.

    Returns
    -------
    DataFrame
        Columns ``r``, ``p`` (two-sided, t distribution with n−2 degrees of
        freedom), ``ci_low``, ``ci_high`` (Fisher z [3]_; for Spearman with the
        Bonett–Wright variance [4]_) and ``n`` (rows used).
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {', '.join(METHODS)}")
    x = np.atleast_2d(np.asarray(x, dtype=float).T).T
    y = np.asarray(y, dtype=float)
    valid = np.isfinite(x) & np.isfinite(y)[:, None]
    if method == "spearman":
        x = stats.rankdata(np.where(valid, x, np.nan), axis=0, nan_policy="omit")
        y = _rank_target_by_pattern(y, valid)
    r, n = _masked_pearson(x, y, valid)
    return pd.DataFrame({"r": r, **_significance(r, n, method), "n": n.astype(int)})


def _significance(r: np.ndarray, n: np.ndarray, method: str) -> dict[str, np.ndarray]:
    df = (n - 2).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
        p = np.where(np.abs(r) == 1.0, 0.0, 2.0 * stats.t.sf(np.abs(t), df))
        z = np.arctanh(np.clip(r, -1 + 1e-15, 1 - 1e-15))
        scale = np.sqrt(1 + r**2 / 2) if method == "spearman" else 1.0
        se = scale / np.sqrt(n - 3.0)
        half = stats.norm.ppf(0.975) * se
        low, high = np.tanh(z - half), np.tanh(z + half)
    ok = n > 3
    return {
        "p": np.where(n > 2, p, np.nan),
        "ci_low": np.where(ok, low, np.nan),
        "ci_high": np.where(ok, high, np.nan),
    }


# --- the search --------------------------------------------------------------------------------


RANKED_COLUMNS = ("rank", "formula", "bands", "template", "transform", "weight", "r", "p",
                  "ci_low", "ci_high", "n")  # fmt: skip


@dataclass
class SearchResult:
    """The ranked candidates of one search.

    Attributes
    ----------
    table : DataFrame
        One row per distinct candidate, best ``|r|`` first; columns
        :data:`RANKED_COLUMNS` (``bands`` in slot order, space-separated).
    n_candidates : int
        Candidates evaluated (before removing duplicates and poorly covered ones).
    n_rows : int
        Samples searched.
    method : str
    rows : Index
        Labels of the samples the search saw.
    """

    table: pd.DataFrame
    n_candidates: int
    n_rows: int
    method: str
    rows: pd.Index

    def candidates(self, k: int | None = None) -> list[Candidate]:
        """The best ``k`` candidates (all when ``k`` is None)."""
        rows = self.table if k is None else self.table.head(k)
        return [Candidate.from_dict(row) for row in rows.to_dict("records")]

    @property
    def best(self) -> Candidate:
        if self.table.empty:
            raise SampleDataError("the search found no candidate defined on enough samples")
        return self.candidates(1)[0]


def _as_inputs(reflectance: Any, target: Any) -> tuple[pd.DataFrame, np.ndarray]:
    if not isinstance(reflectance, pd.DataFrame):
        arr = np.asarray(reflectance, dtype=float)
        reflectance = pd.DataFrame(arr, columns=list(ROLES[: arr.shape[1]]))
    y = np.asarray(target, dtype=float).ravel()
    if len(y) != len(reflectance):
        raise SampleDataError(
            f"the target has {len(y)} values but the reflectance has {len(reflectance)} rows"
        )
    keep = np.isfinite(y)
    if keep.sum() < 5 or np.nanstd(y) == 0:
        raise SampleDataError(
            f"index discovery needs at least 5 samples with a varying target; got {keep.sum()} "
            "finite target values" + (" all equal" if keep.any() and np.nanstd(y) == 0 else "")
        )
    return reflectance.loc[keep], y[keep]


def search_indices(
    reflectance: pd.DataFrame | np.ndarray,
    target: Any,
    *,
    method: str = "pearson",
    candidates: Sequence[Candidate] | None = None,
    min_coverage: float = 0.9,
    chunk_size: int | None = None,
    deduplicate: bool = True,
) -> SearchResult:
    """Rank candidate indices by ``|r|`` with the target, all candidates at once.

    Parameters
    ----------
    reflectance : DataFrame or ndarray
        Reflectance by band role (columns ``B``, ``G``, ...); an array's
        columns follow :data:`~saltmap.bands.ROLES`.
    target : array-like
        The soil property, one value per row (NaN rows are left out).
    method : {"pearson", "spearman"}
    candidates : sequence of Candidate, optional
        Default: :func:`enumerate_candidates` over the roles present.
    min_coverage : float, default=0.9
        Candidates defined (not NaN) on fewer than this share of the rows are
        dropped: a formula valid only on a subset would be ranked on that subset.
    chunk_size : int, optional
        Candidates per evaluated block; default keeps each block near 160 MB.
    deduplicate : bool, default=True
        Keep one of candidates with the same band set and the same ``|r|``
        (to 10 decimals): algebraically equal forms such as ``(a−b)/(a+b)`` of
        reciprocals and ``(b−a)/(b+a)``.

    Returns
    -------
    SearchResult
    """
    refl, y = _as_inputs(reflectance, target)
    roles = [r for r in ROLES if r in refl.columns]
    if candidates is None:
        candidates = enumerate_candidates(roles)
    values = refl[roles].to_numpy(dtype=float)
    chunk = chunk_size or max(1, int(2e7 // max(len(y), 1)))
    parts = []
    for start in range(0, len(candidates), chunk):
        block = candidates[start : start + chunk]
        stats_ = correlate_columns(evaluate_candidates(values, block, roles), y, method=method)
        stats_.index = pd.RangeIndex(start, start + len(block))
        parts.append(stats_)
    scores = pd.concat(parts) if parts else correlate_columns(np.empty((len(y), 0)), y)
    table = _ranked_table(candidates, scores, len(y), min_coverage, deduplicate)
    return SearchResult(table, len(candidates), len(y), method, refl.index)


def _ranked_table(
    candidates: Sequence[Candidate],
    scores: pd.DataFrame,
    n_rows: int,
    min_coverage: float,
    deduplicate: bool,
) -> pd.DataFrame:
    keep = scores["r"].notna() & (scores["n"] >= min_coverage * n_rows)
    scores = scores[keep].copy()
    chosen = [candidates[i] for i in scores.index]
    scores["order"] = scores.index
    scores["key_r"] = scores["r"].abs().round(10)
    scores["band_set"] = [" ".join(sorted(c.bands)) for c in chosen]
    scores["formula"] = [c.formula for c in chosen]
    scores["bands"] = [" ".join(c.bands) for c in chosen]
    scores["template"] = [c.template for c in chosen]
    scores["transform"] = [c.transform for c in chosen]
    scores["weight"] = [np.nan if c.weight is None else c.weight for c in chosen]
    # Equal |r| sorts by enumeration order, so the simplest form of a duplicate is kept.
    scores = scores.sort_values(["key_r", "order"], ascending=[False, True], kind="stable")
    if deduplicate:
        scores = scores.drop_duplicates(["band_set", "key_r"], keep="first")
    scores["rank"] = np.arange(1, len(scores) + 1)
    return scores.loc[:, list(RANKED_COLUMNS)].reset_index(drop=True)


# --- honest by construction: the search inside cross-validation ----------------------------------


@dataclass
class CVDiscovery:
    """The in-sample search beside the same search run inside each outer fold.

    Attributes
    ----------
    in_sample : SearchResult
        The search on all rows.
    folds : DataFrame
        One row per fold: ``repeat``, ``fold``, ``n_train``, ``n_test``, the fold winner's
        ``formula``/``bands``/``template``/``transform``/``weight``,
        ``r_train`` (its r on the training rows, where it won), ``r_test``
        (its r on the fold's test rows), ``r_test_aligned`` (``r_test`` with the
        sign of ``r_train``, so a sign flip counts against it) and ``p_test``.
    splits : list of (Index, Index)
        The training and test row labels of each fold.
    """

    in_sample: SearchResult
    folds: pd.DataFrame
    splits: list[tuple[pd.Index, pd.Index]]

    @property
    def best_abs_r(self) -> float:
        """The in-sample winner's ``|r|``: what a search without validation reports."""
        return float(abs(self.in_sample.table["r"].iloc[0]))

    @property
    def out_of_fold_r(self) -> float:
        """Mean sign-aligned r of the fold winners on their test rows."""
        return float(self.folds["r_test_aligned"].mean())

    @property
    def optimism(self) -> float:
        """In-sample best ``|r|`` minus the mean out-of-fold r of the fold winners."""
        return self.best_abs_r - self.out_of_fold_r

    def summary(self) -> pd.DataFrame:
        """The optimism as a one-row table."""
        best = self.in_sample.table.iloc[0]
        return pd.DataFrame(
            {
                "in_sample_best": [best["formula"]],
                "in_sample_abs_r": [self.best_abs_r],
                "fold_winner_mean_abs_r_train": [float(self.folds["r_train"].abs().mean())],
                "out_of_fold_mean_r": [self.out_of_fold_r],
                "out_of_fold_sd_r": [float(self.folds["r_test_aligned"].std(ddof=1))],
                "optimism": [self.optimism],
                "folds_agreeing_with_in_sample": [
                    int((self.folds["formula"] == best["formula"]).sum())
                ],
                "n_folds": [len(self.folds)],
                "n_repeats": [int(self.folds["repeat"].max())],
                "n_candidates": [self.in_sample.n_candidates],
                "method": [self.in_sample.method],
            }
        )


SearchFunction = Callable[[pd.DataFrame, np.ndarray], SearchResult]


def discover_cv(
    reflectance: pd.DataFrame | np.ndarray,
    target: Any,
    *,
    n_splits: int = 5,
    n_repeats: int = 1,
    random_state: int | None = 0,
    method: str = "pearson",
    search: SearchFunction | None = None,
    progress: Progress | None = None,
    **search_options: Any,
) -> CVDiscovery:
    """Search on all rows, and again inside each outer fold to measure its optimism.

    In fold ``k`` the search sees the training rows only; the winner it picks is
    then computed on the fold's test rows and correlated with their target. The
    out-of-fold r of the fold winners, against the in-sample best ``|r|``, says
    how much of a discovered index's correlation is selection luck [2]_.

    Parameters
    ----------
    reflectance : DataFrame or ndarray
        Reflectance by band role.
    target : array-like
    n_splits : int, default=5
        Outer folds.
    n_repeats : int, default=1
        Repetitions of the outer split with new shuffles
        (:class:`~sklearn.model_selection.RepeatedKFold`); more repeats steady
        the optimism estimate, which varies a lot between folds of ~20 samples.
    random_state : int or None, default=0
    method : {"pearson", "spearman"}
    search : callable, optional
        ``search(reflectance_rows, target_rows) -> SearchResult``; default
        :func:`search_indices` with ``method`` and ``search_options``.
    progress : Progress, optional
        Reports task ``"index discovery"``: one step per search (all rows, then each fold).
    **search_options
        Passed to :func:`search_indices`.
    """
    refl, y = _as_inputs(reflectance, target)
    if search is None:

        def search(r: pd.DataFrame, t: np.ndarray) -> SearchResult:
            return search_indices(r, t, method=method, **search_options)

    if len(y) < 2 * n_splits:
        raise SampleDataError(
            f"{len(y)} samples are too few for {n_splits} folds; use fewer folds (--folds)"
        )
    folds = RepeatedKFold(n_splits=n_splits, n_repeats=n_repeats, random_state=random_state)
    total = 1 + n_splits * n_repeats  # one search on all rows, then one per fold
    with task(progress, "index discovery", total) as tick:
        tick(0, total)
        in_sample = search(refl, y)
        tick(1, total)
        rows, splits = [], []
        for i, (train, test) in enumerate(folds.split(refl)):
            found = search(refl.iloc[train], y[train])
            where = {"repeat": i // n_splits + 1, "fold": i % n_splits + 1,
                     "n_train": len(train), "n_test": len(test)}  # fmt: skip
            rows.append(where | _fold_winner(found, refl.iloc[test], y[test], method))
            splits.append((refl.index[train], refl.index[test]))
            tick(i + 2, total)
    return CVDiscovery(in_sample, pd.DataFrame(rows), splits)


def _fold_winner(
    found: SearchResult, test_refl: pd.DataFrame, test_y: np.ndarray, method: str
) -> dict[str, Any]:
    """A fold's winner (found on its training rows) and its correlation on the test rows."""
    value = np.asarray(found.best.compute(test_refl.to_dict("series")), dtype=float)
    scored = correlate_columns(value[:, None], test_y, method=method).iloc[0]
    r_train = float(found.table["r"].iloc[0])
    return {
        **found.table.iloc[0][["formula", "bands", "template", "transform", "weight"]],
        "r_train": r_train,
        "r_test": scored["r"],
        "r_test_aligned": scored["r"] * np.sign(r_train),
        "p_test": scored["p"],
        "n_test_used": int(scored["n"]),
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # TOML basic strings share JSON escapes


def save_discovered(
    result: SearchResult,
    path: str | Path,
    *,
    k: int = 5,
    prefix: str = "D",
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write the best ``k`` candidates as catalogue entries to a TOML file.

    Each entry stores the template, bands, transform and weight (what the
    index is) and the formula and scores (for people). :func:`load_discovered`
    reads it back without evaluating any string.
    """
    path = Path(path)
    head = {"method": result.method, "n_samples": result.n_rows,
            "n_candidates": result.n_candidates, **(meta or {})}  # fmt: skip
    lines = [
        "# Indices found by `saltmap discover`. An index is its template, bands, transform and",
        "# weight; the formula is for people and is checked against them on loading.",
        "",
        "[meta]",
        *(f"{key} = {_toml_value(value)}" for key, value in head.items()),
    ]
    for i, row in enumerate(result.table.head(k).to_dict("records"), start=1):
        cand = Candidate.from_dict(row)
        entry = {"name": f"{prefix}{i}", **cand.to_dict(), "formula": cand.formula}
        entry |= {key: row[key] for key in ("r", "p", "ci_low", "ci_high", "n")}
        lines += ["", "[[index]]", *(f"{key} = {_toml_value(v)}" for key, v in entry.items())]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path

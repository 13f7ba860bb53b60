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
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.model_selection import RepeatedKFold

from saltmap.atomic import atomic_write_text
from saltmap.bands import ROLES, check_roles
from saltmap.errors import ConfigError, InputFileError, SampleDataError
from saltmap.features import indices
from saltmap.features.indices import SpectralIndex, safe_divide, safe_sqrt, undefined_to_nan
from saltmap.progress import Progress, task

METHODS = ("pearson", "spearman")
WEIGHTS: tuple[float, ...] = tuple(round(w / 10, 1) for w in range(1, 10))


# --- band transforms ---------------------------------------------------------------------------


def safe_log(values: Any) -> Any:
    """Natural log with NaN, not -inf or a warning, where the value is not positive."""
    return np.log(undefined_to_nan(values, values > 0))


@dataclass(frozen=True)
class Transform:
    """A transform applied to every band of a candidate before the template."""

    name: str
    term: str  # how a transformed band reads in a formula; {x} is the band role
    func: Callable[[Any], Any] = field(repr=False, compare=False)


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("identity", "{x}", lambda x: x),
        Transform("reciprocal", "(1/{x})", lambda x: safe_divide(1.0, x)),
        Transform("square", "({x}²)", lambda x: x**2),
        Transform("sqrt", "(√{x})", safe_sqrt),
        Transform("log", "(ln {x})", safe_log),
    )
}


# --- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A formula shape with band slots ``a``, ``b`` (and ``c``).

    ``swap`` names two slots whose exchange leaves ``|index|`` unchanged (the
    index is the same, or its negative), so only one order is searched.
    ``weighted`` templates also take a weight ``w`` in (0, 1).
    """

    name: str
    pattern: str
    arity: int
    func: Callable[..., Any] = field(repr=False, compare=False)
    swap: tuple[int, int] | None = None
    weighted: bool = False
    like: str = ""  # the catalogue index of this shape, for people


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("band", "{a}", 1, lambda a, w=None: a),
        Template("normalised_difference", "({a}−{b})/({a}+{b})", 2,
                 lambda a, b, w=None: safe_divide(a - b, a + b), swap=(0, 1), like="NDSI"),
        Template("ratio", "{a}/{b}", 2, lambda a, b, w=None: safe_divide(a, b), like="SI4"),
        Template("difference", "{a}−{b}", 2, lambda a, b, w=None: a - b, swap=(0, 1),
                 like="SSSI-1"),
        Template("product", "{a}·{b}", 2, lambda a, b, w=None: a * b, swap=(0, 1), like="SI"),
        Template("product_ratio", "{a}·{b}/{c}", 3,
                 lambda a, b, c, w=None: safe_divide(a * b, c), swap=(0, 1), like="S3"),
        Template("three_band_ratio", "({a}−{b}+{c})/({a}+{b}−{c})", 3,
                 lambda a, b, c, w=None: safe_divide(a - b + c, a + b - c), like="TRSI"),
        Template("salinity_adjusted", "({a}²−{b}²+{c}²)/({a}·{b}·{c})", 3,
                 lambda a, b, c, w=None: safe_divide(a**2 - b**2 + c**2, a * b * c),
                 swap=(0, 2), like="SAI"),
        Template("brightness_contrast", "{a}/√({b}²+{c}²)", 3,
                 lambda a, b, c, w=None: safe_divide(a, safe_sqrt(b**2 + c**2)), swap=(1, 2),
                 like="SBCI"),
        # w and 1-w are both on the grid, so swapping b and c adds nothing.
        Template("weighted_offset", "{a} − {w}·{b} − {v}·{c}", 3,
                 lambda a, b, c, w: a - w * b - (1 - w) * c, swap=(1, 2), weighted=True,
                 like="GOSI"),
    )
}  # fmt: skip


# --- candidates --------------------------------------------------------------------------------


def _fmt_weight(w: float) -> str:
    return f"{round(w, 6):g}"


@dataclass(frozen=True)
class Candidate:
    """One candidate index: a template filled with band roles, a transform and a weight.

    Parameters
    ----------
    template : str
        A key of :data:`TEMPLATES`.
    bands : tuple of str
        Band roles in slot order (``a``, ``b``, ``c``).
    transform : str, default="identity"
        A key of :data:`TRANSFORMS`, applied to every band.
    weight : float or None
        The weight ``w`` of weighted templates, else None.
    """

    template: str
    bands: tuple[str, ...]
    transform: str = "identity"
    weight: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(self.bands))
        tmpl = TEMPLATES.get(self.template)
        if tmpl is None:
            raise ConfigError(
                f"unknown discovery template {self.template!r}; use one of {', '.join(TEMPLATES)}"
            )
        if self.transform not in TRANSFORMS:
            raise ConfigError(
                f"unknown band transform {self.transform!r}; use one of {', '.join(TRANSFORMS)}"
            )
        if len(self.bands) != tmpl.arity or len(set(self.bands)) != len(self.bands):
            raise ConfigError(
                f"template {self.template!r} needs {tmpl.arity} distinct band roles, "
                f"got {list(self.bands)}"
            )
        bad = [b for b in self.bands if b not in ROLES]
        if bad:
            raise ConfigError(f"unknown band role(s) {bad}; band roles are {', '.join(ROLES)}")
        if tmpl.weighted != (self.weight is not None):
            need = "needs a weight in (0, 1)" if tmpl.weighted else "takes no weight"
            raise ConfigError(f"template {self.template!r} {need}; got weight={self.weight!r}")
        if self.weight is not None:
            object.__setattr__(self, "weight", float(self.weight))

    @cached_property  # searches reuse candidates; text is built once per candidate
    def formula(self) -> str:
        """The formula in band roles, as the catalogue writes formulas."""
        term = TRANSFORMS[self.transform].term
        slots = {k: term.format(x=b) for k, b in zip("abc", self.bands, strict=False)}
        if self.weight is not None:
            slots |= {"w": _fmt_weight(self.weight), "v": _fmt_weight(1 - self.weight)}
        return TEMPLATES[self.template].pattern.format(**slots)

    def compute(self, bands: Mapping[str, Any]) -> Any:
        """The index from reflectance by role (numpy, pandas, xarray or dask arrays)."""
        tf = TRANSFORMS[self.transform].func
        return TEMPLATES[self.template].func(*(tf(bands[r]) for r in self.bands), w=self.weight)

    def to_dict(self) -> dict[str, Any]:
        """The candidate as plain data (for files and model metadata)."""
        out: dict[str, Any] = {
            "template": self.template,
            "bands": list(self.bands),
            "transform": self.transform,
        }
        if self.weight is not None:
            out["weight"] = self.weight
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Rebuild a candidate from :meth:`to_dict` output (or a ranked-table row)."""
        bands = data["bands"]
        if isinstance(bands, str):
            bands = bands.split()
        weight = data.get("weight")
        if weight is not None and not (isinstance(weight, float) and np.isnan(weight)):
            weight = float(weight)
        else:
            weight = None
        return cls(str(data["template"]), tuple(bands), str(data.get("transform", "identity")),
                   weight)  # fmt: skip

    def to_index(self, name: str, *, reference: str = "saltmap index discovery") -> SpectralIndex:
        """A :class:`~saltmap.features.indices.SpectralIndex` (group ``"discovered"``)."""
        tmpl = TEMPLATES[self.template]
        return SpectralIndex(
            name=name,
            long_name=f"discovered {tmpl.name.replace('_', ' ')} index ({self.transform} bands)",
            formula=self.formula,
            bands=tuple(r for r in ROLES if r in self.bands),
            reference=reference,
            group="discovered",
            undefined="where a denominator is 0, a radicand < 0 or a log argument ≤ 0",
            compute=self.compute,
            definition={"name": name, **self.to_dict()},
        )


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


# --- discovered indices as explicit values ------------------------------------------------------
#
# A discovered index is carried by its definition, plain data: ``{"name": "D1",
# "template": ..., "bands": [...], "transform": ..., "weight": ...}``. Selections resolve
# to definitions (:func:`resolve_selection`), models carry them (IndexFeatures), so worker
# processes and new sessions compute the indices without any registry.
#
# The session registry below remains for one release, so that names of discovered indices
# keep resolving by name in the session that loaded or found them (``"discovered:3"``
# after :func:`register_discovered`; a model file's metadata on loading).

# Registered discovered indices, best first (the order "discovered:K" takes).
_DISCOVERED: dict[str, Candidate] = {}


def definition(name: str, candidate: Candidate) -> dict[str, Any]:
    """The plain-data definition of the discovered index ``name``."""
    return {"name": name, **candidate.to_dict()}


def index_from_definition(data: Mapping[str, Any]) -> SpectralIndex:
    """The index a definition describes (no registry involved)."""
    try:
        name = str(data["name"])
        cand = Candidate.from_dict(data)
    except KeyError as err:
        raise ConfigError(f"the index definition {dict(data)!r} lacks the key {err}") from err
    return cand.to_index(name, reference="saltmap discovery (from its definition)")


def definitions_of(candidates: Sequence[Candidate], *, prefix: str = "D") -> list[dict[str, Any]]:
    """Definitions of candidates as indices ``D1``, ``D2``, ... (best first); nothing registered."""
    return [definition(f"{prefix}{i}", c) for i, c in enumerate(candidates, start=1)]


def read_definitions(path: str | Path) -> list[dict[str, Any]]:
    """The definitions in a file written by :func:`save_discovered`, best first."""
    return [definition(name, cand) for name, cand in read_discovered(path)]


def _remember(pairs: Sequence[tuple[str, Candidate]], reference: str) -> list[str]:
    for name, cand in pairs:
        indices.register(cand.to_index(name, reference=reference))
    fresh = dict(pairs)
    old = {n: c for n, c in _DISCOVERED.items() if n not in fresh}
    _DISCOVERED.clear()
    _DISCOVERED.update(fresh | old)
    return list(fresh)


def register_discovered(
    candidates: Sequence[Candidate], *, prefix: str = "D", reference: str = "saltmap discovery"
) -> list[str]:
    """Register candidates as indices ``D1``, ``D2``, ... (best first) and return the names.

    A later call replaces earlier discovered indices of the same names. To pass them
    where they are needed instead, use :func:`definitions_of`.
    """
    pairs = [(f"{prefix}{i}", cand) for i, cand in enumerate(candidates, start=1)]
    return _remember(pairs, reference)


def definitions(names: Iterable[str]) -> list[dict[str, Any]]:
    """Plain-data definitions of the registered discovered indices among ``names``
    (others are skipped).

    A saved model that uses discovered indices stores these beside its index names
    and calls :func:`register_definitions` on loading, since an index's computation is
    code and does not travel with a name.
    """
    return [definition(n, _DISCOVERED[n]) for n in names if n in _DISCOVERED]


def register_definitions(defs: Iterable[Mapping[str, Any]], *, reference: str = "") -> list[str]:
    """Register indices from :func:`definitions` output; return their names."""
    pairs = [(str(d["name"]), Candidate.from_dict(d)) for d in defs]
    return _remember(pairs, reference or "saltmap discovery (from saved definitions)")


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


def read_discovered(path: str | Path) -> list[tuple[str, Candidate]]:
    """Read ``(name, candidate)`` pairs from a file written by :func:`save_discovered`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputFileError(f"discovered-index file {path} does not exist") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    entries = data.get("index", [])
    if not entries:
        raise ConfigError(f"{path} holds no [[index]] entries; write it with `saltmap discover`")
    out = []
    for i, entry in enumerate(entries, start=1):
        try:
            cand = Candidate.from_dict(entry)
            name = str(entry["name"])
        except KeyError as err:
            raise ConfigError(f"{path}: index entry {i} lacks the key {err}") from err
        except ConfigError as err:
            raise ConfigError(f"{path}: index entry {i}: {err}") from err
        if "formula" in entry and entry["formula"] != cand.formula:
            raise ConfigError(
                f"{path}: index {name!r} says formula {entry['formula']!r} but its template, "
                f"bands, transform and weight give {cand.formula!r}; fix one to match the other"
            )
        out.append((name, cand))
    return out


def load_discovered(path: str | Path) -> list[str]:
    """Register the indices of a discovered-index file; return their names, best first."""
    return _remember(read_discovered(path), f"saltmap discovery, {Path(path).name}")


def select_discovered(
    spec: str, discovered: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Definitions of the indices of a ``discovered`` selection, best first.

    ``discovered`` gives every index of ``discovered`` (the explicit definitions,
    e.g. from :func:`definitions_of`; ``None``: those registered in this session),
    ``discovered:K`` the best ``K``; ``discovered:PATH`` and ``discovered:PATH:K``
    read the file ``PATH`` (and, for one release, register its indices by name).
    """
    head, _, rest = spec.strip().partition(":")
    if head.lower() != "discovered":
        raise ConfigError(f"{spec!r} is not a 'discovered' selection such as 'discovered:5'")
    k: int | None = None
    if discovered is None:
        discovered = [definition(n, c) for n, c in _DISCOVERED.items()]
    found = [dict(d) for d in discovered]
    if rest:
        path, _, count = rest.rpartition(":") if not rest.isdigit() else ("", "", rest)
        if count.isdigit():
            k = int(count)
        else:
            path = rest
        if path:
            found = read_definitions(path)
            _remember([(d["name"], Candidate.from_dict(d)) for d in found],
                      f"saltmap discovery, {Path(path).name}")  # fmt: skip
    if not found:
        raise ConfigError(
            f"no discovered indices are loaded for {spec!r}; run `saltmap discover` and select "
            "them with 'discovered:PATH/discovered.toml:K'"
        )
    return found if k is None else found[:k]


def resolve_discovered(spec: str) -> list[str]:
    """Index names for a ``discovered`` selection (see :func:`select_discovered`).

    Examples
    --------
    >>> resolve_discovered("discovered:results/discovered.toml:5")  # doctest: +SKIP
    ['D1', 'D2', 'D3', 'D4', 'D5']
    """
    return [d["name"] for d in select_discovered(spec)]


def resolve_selection(
    names: str | Iterable[Any], discovered: Sequence[Mapping[str, Any]] | None = None
) -> list[indices.IndexItem]:
    """A selection as index items: catalogue names, and definitions of discovered indices.

    Like :func:`saltmap.features.indices.resolve_items`, with ``discovered`` the
    explicit definitions that ``discovered`` and ``discovered:K`` select from
    (``None``: those registered in this session). The items compute in any process.

    Examples
    --------
    >>> found = [{"name": "D1", "template": "ratio", "bands": ["G", "N"]}]
    >>> resolve_selection("SAI,discovered:1", found)
    ['SAI', {'name': 'D1', 'template': 'ratio', 'bands': ['G', 'N']}]
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[indices.IndexItem] = []
    for item in items:
        is_text = isinstance(item, str)
        if is_text and item.strip().partition(":")[0].lower() == "discovered":
            expanded: list[Any] = select_discovered(item, discovered)
        else:
            expanded = indices.resolve_items([item] if not is_text else item)
        out.extend(e for e in expanded if indices.item_name(e) not in map(indices.item_name, out))
    return out


def resolve_with_discovered(names: str | Iterable[str]) -> list[str]:
    """:func:`saltmap.features.indices.resolve` that also expands ``discovered`` selections.

    Examples
    --------
    >>> resolve_with_discovered("novel,discovered:out/discovered.toml:2")  # doctest: +SKIP
    ['SAI', 'TRSI', 'SBCI', 'GOSI', 'D1', 'D2']
    """
    return [indices.item_name(item) for item in resolve_selection(names)]


# `indices` expands "discovered:..." and rebuilds definitions through these, without
# importing this module.
indices.SET_RESOLVERS.setdefault("discovered", select_discovered)
indices.DEFINITION_READERS.setdefault("discovered", index_from_definition)

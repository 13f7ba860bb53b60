"""Validation: metrics, the study's split, spatial blocks, cross-validation and bootstrap.

The study validates on one stratified calibration/validation split (70/30).
With about a hundred samples one split is a noisy estimate, so saltmap puts
two honest protocols beside it: repeated k-fold (default 5×5) and spatial
block k-fold, where whole blocks of nearby samples are held out together so
that spatially autocorrelated neighbours cannot leak from training to test.

Both report each metric as the mean ± sd of its fold scores and a bootstrap
95 % confidence interval. The interval comes from a bootstrap of the
*out-of-fold residuals*: each draw resamples the samples with replacement,
re-scores every fold on the resampled copies of its held-out rows and
averages over folds. It measures how much the estimate depends on which
soil samples happened to be collected; resampling the fold scores instead
would treat the 25 overlapping folds of a repeated CV as independent and give
an interval that is too narrow.

R² is reported twice. Its fold mean is biased low with folds of ~20 rows (a
fold that happens to hold little spread in salinity has a small SST), so the
table also gives the *pooled* R² — of all out-of-fold predictions of a
repeat together, averaged over repeats — and its interval from the same
draws; that is the usual cross-validated R².

Index selection by correlation with the target can be done inside each
training fold (:class:`SelectIndices`) so that its optimism is not hidden.

References
----------
.. [1] Roberts, D. R. et al. (2017). Cross-validation strategies for data with
   temporal, spatial, hierarchical, or phylogenetic structure. Ecography 40, 913–929.
.. [2] Bellon-Maurel, V., Fernandez-Ahumada, E., Palagos, B., Roger, J.-M.,
   McBratney, A. (2010). Critical review of chemometric indicators commonly used
   for assessing the quality of the prediction of soil attributes by NIR
   spectroscopy. TrAC 29, 1073–1081 (RPIQ).
.. [3] Uieda, L. (2018). Verde: Processing and gridding spatial data using
   Green's functions. JOSS 3(29), 957 (``BlockKFold``, the model for
   :class:`SpatialBlockKFold`).
.. [4] Ambroise, C., McLachlan, G. J. (2002). Selection bias in gene extraction on
   the basis of microarray gene-expression data. PNAS 99, 6562–6566.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, MetaEstimatorMixin, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import BaseCrossValidator, cross_validate, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from saltmap.errors import SampleDataError
from saltmap.features.indices import IndexFeatures, compute_indices, resolve

METRICS: tuple[str, ...] = ("R2", "RMSE", "MAE", "bias", "RPIQ")
# Metrics the bootstrap gives an interval for (RPIQ's IQR does not re-weight simply).
CI_METRICS: tuple[str, ...] = ("R2", "RMSE", "MAE", "bias")


# --------------------------------------------------------------------------- metrics


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


# --------------------------------------------------------------------------- splits


def target_strata(y: Any, n_strata: int) -> np.ndarray:
    """Stratum (0 … n_strata−1) of each value: equal-count bins of the target's rank."""
    ranks = pd.Series(np.asarray(y, dtype=float)).rank(method="first")
    return pd.qcut(ranks, n_strata, labels=False).to_numpy()


def study_split(
    y: Any,
    *,
    validation_fraction: float = 0.3,
    n_strata: int | None = None,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The study's calibration/validation split, stratified on target quantiles.

    The target is cut into ``n_strata`` equal-count bins and each bin gives
    the same fraction of its samples to validation, so both sets span the
    whole salinity range, as the study's 70/30 split does.

    Parameters
    ----------
    y : array-like of shape (n,)
        The target (e.g. EC).
    validation_fraction : float, default=0.3
        Share of the samples held out for validation.
    n_strata : int or None, default=None
        Number of quantile bins. ``None``: 5 (quintiles), fewer when the
        validation set would get fewer than 2 samples per bin.
    random_state : int or None, default=0
        Seed; the same seed gives the same split.

    Returns
    -------
    cal_idx, val_idx : ndarray of int
        Positions of the calibration and validation rows, sorted.
    """
    y = np.asarray(y, dtype=float)
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    n_val = int(np.ceil(validation_fraction * y.size))
    if n_strata is None:
        n_strata = max(1, min(5, n_val // 2, (y.size - n_val) // 2))
    if y.size < 4 or n_val < n_strata or y.size - n_val < n_strata:
        raise SampleDataError(
            f"{y.size} samples are too few for a {validation_fraction:.0%} validation split in "
            f"{n_strata} strata; collect more samples or lower n_strata"
        )
    strata = target_strata(y, n_strata) if n_strata > 1 else None
    cal, val = train_test_split(
        np.arange(y.size), test_size=n_val, stratify=strata, random_state=random_state
    )
    return np.sort(cal), np.sort(val)


def to_metric_coords(coords: Any, crs: Any = None) -> tuple[np.ndarray, str | None]:
    """Project coordinates to metres.

    Geographic coordinates (lon/lat, e.g. ``"EPSG:4326"``) go to the UTM zone
    of their centroid; projected ones are returned as they are.
    ``crs=None`` means the coordinates are already in metres.

    Returns
    -------
    xy : ndarray of shape (n, 2)
    crs : str or None
        The metric CRS used.
    """
    xy = np.asarray(coords, dtype=float)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f"coordinates must have shape (n, 2), got {xy.shape}")
    if not np.isfinite(xy).all():
        raise SampleDataError(
            f"{int((~np.isfinite(xy)).any(axis=1).sum())} samples lack coordinates; "
            "spatial blocks need x and y for every sample"
        )
    if crs is None:
        return xy, None
    from pyproj import CRS, Transformer
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    src = CRS.from_user_input(crs)
    if not src.is_geographic:
        return xy, src.to_string()
    lonlat = Transformer.from_crs(src, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
    lon, lat = float(np.mean(lonlat[0])), float(np.mean(lonlat[1]))
    utm = query_utm_crs_info(
        datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat)
    )[0]
    dst = CRS.from_authority(utm.auth_name, utm.code)
    x, y = Transformer.from_crs(src, dst, always_xy=True).transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y]), dst.to_string()


BLOCK_SPACING_FACTOR = 4.0


def default_block_size(xy: np.ndarray, factor: float = BLOCK_SPACING_FACTOR) -> float:
    """Default block side in metres: ``factor`` × the median nearest-neighbour distance.

    Four sample spacings put a typical sample's few nearest neighbours in its
    own block, so they are held out with it; on the Odisha samples (median
    spacing ≈ 780 m) this gives ≈ 3.1 km blocks, 24 occupied blocks for 106 samples.
    """
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(xy).query(xy, k=2)
    spacing = float(np.median(dist[:, 1]))
    if spacing <= 0:
        # More than half the samples share a location: fall back to the extent.
        spacing = float(np.max(np.ptp(xy, axis=0))) / np.sqrt(len(xy))
    return factor * spacing


def spatial_blocks(xy: np.ndarray, block_size: float) -> np.ndarray:
    """Block id of each sample on a square grid of side ``block_size`` (metres)."""
    cells = np.floor((xy - xy.min(axis=0)) / block_size).astype(np.int64)
    _, block = np.unique(cells, axis=0, return_inverse=True)
    return block.ravel()


class SpatialBlockKFold(BaseCrossValidator):
    """K-fold over spatial blocks: every block is held out whole, in one fold.

    The samples are binned into square blocks, the blocks are shuffled
    (seeded) and cut into ``n_splits`` folds of nearly equal sample counts,
    as verde's ``BlockKFold(balance=True)`` does [3]_. Coordinates are taken,
    in this order, from ``coords`` given at construction (aligned with the rows
    of ``X`` when ``split`` is called), from columns ``x`` and ``y`` of a
    DataFrame ``X``, or from ``X`` itself when it has two columns (verde style).

    Parameters
    ----------
    n_splits : int, default=5
    coords : array-like of shape (n, 2) or None, default=None
        Sample coordinates in ``crs``.
    crs : str or None, default=None
        CRS of the coordinates; geographic ones are projected to UTM (see
        :func:`to_metric_coords`). ``None``: already in metres.
    block_size : float or None, default=None
        Block side in metres. ``None``: :func:`default_block_size`.
    shuffle : bool, default=True
        Shuffle the blocks before cutting them into folds.
    random_state : int or None, default=None
        Seed of the shuffle.

    Attributes
    ----------
    block_size_, crs_, blocks_ : set by :meth:`split` (the last call).
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        coords: Any = None,
        crs: Any = None,
        block_size: float | None = None,
        shuffle: bool = True,
        random_state: int | None = None,
    ):
        self.n_splits = n_splits
        self.coords = coords
        self.crs = crs
        self.block_size = block_size
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def _coordinates(self, X: Any) -> np.ndarray:
        if self.coords is not None:
            xy = np.asarray(self.coords, dtype=float)
        elif isinstance(X, pd.DataFrame) and {"x", "y"} <= set(X.columns):
            xy = X[["x", "y"]].to_numpy(dtype=float)
        elif X is not None and np.ndim(X) == 2 and np.shape(X)[1] == 2:
            xy = np.asarray(X, dtype=float)
        else:
            raise ValueError(
                "SpatialBlockKFold needs coordinates: pass coords=(n, 2) at construction, "
                "or X with columns 'x' and 'y', or X of shape (n, 2)"
            )
        if X is not None and len(xy) != len(X):
            raise ValueError(f"coords has {len(xy)} rows but X has {len(X)}")
        return xy

    def assign_folds(self, X: Any = None) -> np.ndarray:
        """Fold number (0 … n_splits−1) of each sample."""
        xy, self.crs_ = to_metric_coords(self._coordinates(X), self.crs)
        size = self.block_size if self.block_size is not None else default_block_size(xy)
        self.block_size_ = float(size)
        self.blocks_ = spatial_blocks(xy, size)
        counts = np.bincount(self.blocks_)
        if len(counts) < self.n_splits:
            raise SampleDataError(
                f"only {len(counts)} spatial blocks of {size:.0f} m for {self.n_splits} folds; "
                "choose a smaller block_size or fewer folds"
            )
        order = (
            np.random.default_rng(self.random_state).permutation(len(counts))
            if self.shuffle
            else np.arange(len(counts))
        )
        # Each block goes to the fold where the middle of its samples falls in the
        # running count, so folds hold contiguous runs of blocks of ~n/k samples.
        cum = np.cumsum(counts[order])
        middle = (cum - counts[order] / 2) / cum[-1]
        fold_of_block = np.empty(len(counts), dtype=int)
        fold_of_block[order] = np.minimum((middle * self.n_splits).astype(int), self.n_splits - 1)
        fold = fold_of_block[self.blocks_]
        if len(np.unique(fold)) < self.n_splits:
            raise SampleDataError(
                f"spatial blocks of {size:.0f} m are too large to fill {self.n_splits} folds "
                f"(the largest holds {counts.max()} of {cum[-1]} samples); "
                "choose a smaller block_size"
            )
        return fold

    def _iter_test_masks(self, X: Any = None, y: Any = None, groups: Any = None):
        fold = self.assign_folds(X)
        for k in range(self.n_splits):
            yield fold == k


# --------------------------------------------------------------------------- selection


def _abs_pearson(features: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|Pearson r| of each column with ``y``, on the rows where the column is defined."""
    out = np.zeros(features.shape[1])
    for j in range(features.shape[1]):
        ok = np.isfinite(features[:, j]) & np.isfinite(y)
        if ok.sum() > 2 and np.std(features[ok, j]) > 0:
            out[j] = abs(np.corrcoef(features[ok, j], y[ok])[0, 1])
    return out


class CorrelationSelector(SelectorMixin, BaseEstimator):
    """Keep the ``k`` features with the largest |Pearson r| with the target.

    This is the study's screening of indices by correlation, as a transformer,
    so that inside a pipeline it is refitted on each training fold.

    Parameters
    ----------
    k : int, default=4
        Number of features kept (all when there are fewer).

    Attributes
    ----------
    scores_ : ndarray
        |r| of each input feature with the target on the training rows.
    """

    def __init__(self, k: int = 4):
        self.k = k

    def fit(self, X: Any, y: Any) -> CorrelationSelector:
        features = np.asarray(X, dtype=float)
        self.n_features_in_ = features.shape[1]
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.scores_ = _abs_pearson(features, np.asarray(y, dtype=float))
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "scores_")
        keep = np.argsort(-self.scores_, kind="stable")[: self.k]
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[keep] = True
        return mask


def _index_param(estimator: Any) -> str:
    """Name of the parameter that sets the indices a model computes."""
    if "indices" in estimator.get_params(deep=False):
        return "indices"
    if isinstance(estimator, Pipeline):
        for name, step in estimator.steps:
            if isinstance(step, IndexFeatures):
                return f"{name}__indices"
    raise ValueError(
        f"{type(estimator).__name__} has no 'indices' parameter and no IndexFeatures step"
    )


class SelectIndices(MetaEstimatorMixin, RegressorMixin, BaseEstimator):
    """Choose the ``k`` indices best correlated with the target, then fit a model on them.

    The choice is made on the rows given to :meth:`fit` only, so inside a
    cross-validation it is redone in every training fold and its optimism shows
    ([4]_). The model takes reflectance by band role, like every saltmap model.

    Parameters
    ----------
    estimator : estimator
        A model with an ``indices`` parameter (e.g. ``TunedModel``) or a
        Pipeline with an :class:`~saltmap.features.indices.IndexFeatures` step.
    k : int, default=4
    candidates : str or list of str or None, default=None
        Indices to choose from; ``None``: those the estimator is set to.

    Attributes
    ----------
    selected_ : list of str
    scores_ : pandas.Series
        |r| of every candidate on the training rows.
    estimator_ : fitted estimator
    """

    def __init__(self, estimator: Any, k: int = 4, candidates: Any = None):
        self.estimator = estimator
        self.k = k
        self.candidates = candidates

    def fit(self, X: pd.DataFrame, y: Any) -> SelectIndices:
        param = _index_param(self.estimator)
        pool = self.candidates or self.estimator.get_params()[param]
        names = resolve(pool)
        features = compute_indices(X, names)
        selector = CorrelationSelector(self.k).fit(features, y)
        self.scores_ = pd.Series(selector.scores_, index=names)
        self.selected_ = [n for n, keep in zip(names, selector.get_support(), strict=True) if keep]
        self.estimator_ = clone(self.estimator).set_params(**{param: self.selected_})
        self.estimator_.fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)


# --------------------------------------------------------------------------- protocols


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


def materialise_splits(
    cv: Any, X: Any, y: Any, groups: Any = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of ``cv``, fixed once so several models share them."""
    return [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]


def _score_all(estimator: Any, X: Any, y: Any) -> dict[str, float]:
    """Scorer for :func:`~sklearn.model_selection.cross_validate` giving every metric."""
    scores = regression_metrics(y, estimator.predict(X))
    return {m: scores[m] for m in METRICS}


def cross_validate_model(
    model: Any,
    X: pd.DataFrame,
    y: Any,
    splits: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    n_splits_per_repeat: int | None = None,
    n_jobs: int | None = None,
) -> CVResult:
    """Fit ``model`` on each training fold and score it on the held-out fold.

    Uses :func:`sklearn.model_selection.cross_validate`; everything the model
    does in ``fit`` — index selection, tuning with its inner CV — sees only
    the training rows of the fold.

    Parameters
    ----------
    model : estimator
        Takes reflectance by band role.
    X : DataFrame
        Reflectance by band role, one row per sample.
    y : array-like
        Target in its original unit.
    splits : iterable of (train_idx, test_idx)
        From :func:`materialise_splits`, so other models can reuse them.
    n_splits_per_repeat : int or None
        Folds per repeat, to label repeats (``None``: one repeat).
    n_jobs : int or None
        Folds fitted in parallel.
    """
    splits = list(splits)
    y = np.asarray(y, dtype=float)
    res = cross_validate(
        model,
        X,
        y,
        cv=splits,
        scoring=_score_all,
        return_estimator=True,
        return_indices=True,
        n_jobs=n_jobs,
        error_score="raise",
    )
    per_repeat = n_splits_per_repeat or len(splits)
    predictions, rows = [], []
    for i, (est, test) in enumerate(zip(res["estimator"], res["indices"]["test"], strict=True)):
        pred = np.asarray(est.predict(X.iloc[test]), dtype=float)
        predictions.append((np.asarray(test), pred))
        rows.append({"repeat": i // per_repeat, "fold": i % per_repeat, "n": len(test)})
        rows[-1].update({m: float(res[f"test_{m}"][i]) for m in METRICS})
    return CVResult(folds=pd.DataFrame(rows), predictions=predictions, y=y)


def fit_predict_fold(
    models: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    *,
    predict_train: bool = False,
) -> dict[str, dict[str, Any]]:
    """Fit each model on the ``train`` rows and predict the ``test`` rows.

    The models are fitted one after another in this process, so what one
    model's tuning remembers (Stacking tunes its bases exactly as the single
    models are tuned) is reused by the next on the same rows.

    Returns
    -------
    dict
        Per model: ``test`` predictions, ``train`` predictions (or None),
        ``seconds`` of fit and predict, and ``selected`` indices when the model
        chose them (:class:`SelectIndices`).
    """
    out: dict[str, dict[str, Any]] = {}
    X_train, y_train, X_test = X.iloc[train], y[train], X.iloc[test]
    for key, model in models.items():
        start = time.perf_counter()
        with warnings.catch_warnings():
            # MLP convergence notes would flood the output from every trial.
            warnings.simplefilter("ignore", ConvergenceWarning)
            est = clone(model).fit(X_train, y_train)
            pred = np.asarray(est.predict(X_test), dtype=float).ravel()
            fitted = (
                np.asarray(est.predict(X_train), dtype=float).ravel() if predict_train else None
            )
        out[key] = {
            "test": pred,
            "train": fitted,
            "seconds": time.perf_counter() - start,
            "selected": ",".join(getattr(est, "selected_", [])),
        }
    return out


def cross_validate_models(
    models: dict[str, Any],
    X: pd.DataFrame,
    y: Any,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    n_splits_per_repeat: int | None = None,
    n_jobs: int | None = None,
) -> dict[str, CVResult]:
    """Cross-validate several models on the same splits, folds in parallel.

    Like :func:`cross_validate_model` for each model, but every fold fits all
    the models in one worker (see :func:`fit_predict_fold`), which lets
    tuning results be shared between them.
    """
    from joblib import Parallel, delayed

    y = np.asarray(y, dtype=float)
    jobs = Parallel(n_jobs=n_jobs)(
        delayed(fit_predict_fold)(models, X, y, train, test) for train, test in splits
    )
    return collect_folds(jobs, splits, y, n_splits_per_repeat)


def collect_folds(
    jobs: Sequence[dict[str, dict[str, Any]]],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    y: np.ndarray,
    n_splits_per_repeat: int | None = None,
) -> dict[str, CVResult]:
    """Turn the outputs of :func:`fit_predict_fold`, one per split, into a CVResult per model."""
    per_repeat = n_splits_per_repeat or len(splits)
    results: dict[str, CVResult] = {}
    for key in jobs[0]:
        rows, preds = [], []
        for i, ((_, test), job) in enumerate(zip(splits, jobs, strict=True)):
            scores = regression_metrics(y[test], job[key]["test"])
            rows.append(
                {"repeat": i // per_repeat, "fold": i % per_repeat, "n": len(test)}
                | {m: scores[m] for m in METRICS}
                | {"seconds": job[key]["seconds"], "selected": job[key]["selected"]}
            )
            preds.append((np.asarray(test), job[key]["test"]))
        results[key] = CVResult(folds=pd.DataFrame(rows), predictions=preds, y=y)
    return results


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

"""Splits of the samples: the study's stratified split and spatial block k-fold.

The study validates on one stratified calibration/validation split (70/30).
Spatial block k-fold holds out whole blocks of nearby samples together, so that
spatially autocorrelated neighbours cannot leak from training to test ([1]_).

References
----------
.. [1] Roberts, D. R. et al. (2017). Cross-validation strategies for data with
   temporal, spatial, hierarchical, or phylogenetic structure. Ecography 40, 913–929.
.. [3] Uieda, L. (2018). Verde: Processing and gridding spatial data using
   Green's functions. JOSS 3(29), 957 (``BlockKFold``, the model for
   :class:`SpatialBlockKFold`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, train_test_split

from saltmap.errors import SampleDataError


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


def materialise_splits(
    cv: Any, X: Any, y: Any, groups: Any = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of ``cv``, fixed once so several models share them."""
    return [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(X, y, groups)]

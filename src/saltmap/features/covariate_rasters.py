"""Covariate rasters read window by window on a scene's grid.

:class:`CovariateRasters` reads covariate rasters in any CRS and resolution onto
the scene's grid window by window through a :class:`rasterio.vrt.WarpedVRT`
(bilinear for numeric, nearest for categorical covariates), as
:mod:`saltmap.io.scene` does for 20 m bands. :meth:`CovariateRasters.check` fails
before any output when a covariate the model needs has no raster or a raster does
not cover the scene; :func:`covariates_at_points` reads the same values at sample
pixels. What a block's rasters become as model input is :func:`assemble_predictors`,
a pure function (the mapping hook), which lives here beside the reader of the
blocks it takes; :func:`levels_of_codes` turns raster codes into level text for both.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saltmap.bands import check_roles
from saltmap.errors import ConfigError, InputFileError, SceneError
from saltmap.features.covariates import (
    CATEGORICAL,
    NUMERIC,
    level_text,
    model_columns,
    model_covariates,
)
from saltmap.io.rasters import ThreadLocalDatasets


def open_raster(path: str | Path, name: str) -> Any:
    """Open the raster of covariate ``name``; an error names the file and what GDAL said."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise InputFileError(
            f"covariate {name!r}: cannot open raster {path} ({err}); give a GeoTIFF or another "
            "file GDAL reads"
        ) from err


def check_covers(src: Any, grid: Any, what: str) -> None:
    """Refuse a raster that does not cover the whole grid (in the raster's own CRS)."""
    from rasterio.warp import transform_bounds

    if src.crs is None:
        raise SceneError(f"{what} {src.name} has no CRS; assign one (gdal_edit.py -a_srs) first")
    west, south, east, north = transform_bounds(grid.crs, src.crs, *grid.bounds, densify_pts=21)
    r = src.bounds
    # Half a raster pixel of slack: edges that meet within rounding still cover.
    tol_x, tol_y = abs(src.transform.a) / 2, abs(src.transform.e) / 2
    if (
        west < r.left - tol_x
        or east > r.right + tol_x
        or south < r.bottom - tol_y
        or north > r.top + tol_y
    ):
        raise SceneError(
            f"{what} {src.name} does not cover the scene: the scene spans "
            f"({west:.6g}, {south:.6g}, {east:.6g}, {north:.6g}) in the raster's CRS {src.crs}, "
            f"the raster ({r.left:.6g}, {r.bottom:.6g}, {r.right:.6g}, {r.top:.6g}); give a "
            "raster that covers the whole scene (a mosaic or a larger extent)"
        )


def warped(src: Any, grid: Any, categorical: bool) -> Any:
    """``src`` warped onto ``grid`` (nearest for categorical, bilinear otherwise), NaN nodata."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    return WarpedVRT(
        src,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=Resampling.nearest if categorical else Resampling.bilinear,
        src_nodata=src.nodata,
        nodata=np.nan,
        dtype="float32",
    )


class CovariateRasters(ThreadLocalDatasets):
    """Covariate rasters, read window by window on a scene's grid.

    Each raster may have any CRS and resolution; it is warped onto the scene grid
    by a :class:`rasterio.vrt.WarpedVRT`, bilinear for numeric and nearest for
    categorical covariates, and only the window asked for is read. The raster's
    nodata becomes NaN (numeric) or a missing level (categorical).

    Parameters
    ----------
    paths : mapping
        ``{covariate name: raster path}``; names match the model's training columns.
    kinds : mapping, optional
        ``{name: "numeric" | "categorical"}``; taken from the model by
        :meth:`for_model`, numeric when not given.
    labels : mapping, optional
        ``{name: {raster value: training level}}`` for a categorical raster whose
        codes differ from the levels in the samples (``{1: "Rice field"}``).
        Unlisted values keep their own text (``3.0`` -> ``"3"``).
    """

    def __init__(
        self,
        paths: Mapping[str, str | Path],
        kinds: Mapping[str, str] | None = None,
        labels: Mapping[str, Mapping[Any, str]] | None = None,
    ) -> None:
        self.paths = {str(k): str(v) for k, v in paths.items()}
        self.kinds = {n: (kinds or {}).get(n, NUMERIC) for n in self.paths}
        bad = {n: k for n, k in self.kinds.items() if k not in (NUMERIC, CATEGORICAL)}
        if bad:
            raise ConfigError(f"covariate kind(s) {bad} must be 'numeric' or 'categorical'")
        self.labels = {
            n: {level_text([k])[0]: str(v) for k, v in m.items()} for n, m in (labels or {}).items()
        }
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"CovariateRasters({self.paths}, kinds={self.kinds})"

    @classmethod
    def for_model(
        cls,
        model: Any,
        paths: Mapping[str, str | Path],
        labels: Mapping[str, Mapping[Any, str]] | None = None,
    ) -> CovariateRasters:
        """The rasters of the covariates ``model`` reads, with their kinds taken from it.

        Raises
        ------
        ConfigError
            If the model reads a covariate that has no raster in ``paths``.
        """
        needed = model_covariates(model)
        missing = [n for n in needed if n not in paths]
        if missing:
            raise ConfigError(
                f"the model reads covariate(s) {', '.join(map(repr, missing))} but no raster was "
                f"given for {'it' if len(missing) == 1 else 'them'}; pass --covariate NAME=PATH "
                f"for each of {', '.join(needed)} (given: {', '.join(paths) or 'none'})"
            )
        return cls({n: paths[n] for n in needed}, {n: v["kind"] for n, v in needed.items()}, labels)

    def check(self, scene: Any) -> None:
        """Fail before any output if a raster cannot be read or does not cover the scene."""
        for name, path in self.paths.items():
            with open_raster(path, name) as src:
                check_covers(src, scene, f"covariate raster {name!r}")

    def unseen_levels(
        self, scene: Any, model: Any, block_size: int = 1024
    ) -> dict[str, dict[str, int]]:
        """Pixels per categorical level of the rasters that ``model`` was not trained with.

        Read block by block on the scene grid (nearest), before mapping, so that a
        code/label mismatch is caught before any output. Levels pooled as rare
        (``min_count``) are not unseen.

        Returns
        -------
        dict
            ``{name: {level: pixel count}}`` for covariates with unseen levels, plus
            the count of pixels with a known level under ``"__known__"``.
        """
        from collections import Counter

        info = model_covariates(model)
        out: dict[str, dict[str, int]] = {}
        for name, meta in info.items():
            if meta["kind"] != CATEGORICAL or meta.get("pooled") or name not in self.paths:
                continue
            known = set(meta["categories"])
            counts: Counter[str] = Counter()
            for window in scene.block_windows(block_size):
                values = self._reader(name, scene).read(1, window=window, out_dtype="float32")
                codes, n = np.unique(values[np.isfinite(values)], return_counts=True)
                for level, k in zip(
                    levels_of_codes(codes, self.labels.get(name, {})), n, strict=True
                ):
                    counts[level] += int(k)
            unseen = {lv: k for lv, k in counts.items() if lv is not None and lv not in known}
            if unseen:
                out[name] = dict(sorted(unseen.items(), key=lambda kv: -kv[1]))
                out[name]["__known__"] = sum(
                    k for lv, k in counts.items() if lv is not None and lv in known
                )
        return out

    def check_levels(self, scene: Any, model: Any) -> dict[str, dict[str, int]]:
        """Refuse rasters whose levels the model knows none of; return the unseen counts.

        A categorical raster none of whose pixels has a training level is almost
        surely coded differently from the samples (numbers for names): an error that
        asks for ``labels``. Otherwise the unseen pixels are returned, to be flagged.
        """
        unseen = self.unseen_levels(scene, model)
        for name, counts in unseen.items():
            known = counts.pop("__known__")
            if known == 0:
                levels = model_covariates(model)[name]["categories"]
                raise ConfigError(
                    f"covariate raster {name!r} ({self.paths[name]}) has no pixel with a level "
                    f"the model was trained with: its values are "
                    f"{', '.join(map(repr, list(counts)[:8]))}, the training levels "
                    f"{', '.join(map(repr, levels[:8]))}. Give the raster's legend as labels "
                    f"(saltmap map --labels {name}=legend.csv with columns value,level; "
                    "CovariateRasters(..., labels={name: {code: level}}) in Python)"
                )
        return unseen

    def _reader(self, name: str, scene: Any) -> Any:
        # One open dataset and warped VRT per thread and scene grid: GDAL handles
        # must not be shared between threads.
        handles = self._handles()
        key = (name, str(scene.crs), tuple(scene.transform), scene.width, scene.height)
        if key not in handles:
            src = open_raster(self.paths[name], name)
            handles[key] = (src, warped(src, scene, self.kinds[name] == CATEGORICAL))
        return handles[key][1]

    def read(self, scene: Any, window: Any = None) -> dict[str, np.ndarray]:
        """Each covariate on ``window`` of the scene grid.

        Returns
        -------
        dict
            ``{name: array (rows, cols)}``: float32 for numeric covariates (NaN =
            no data), object arrays of level text for categorical ones (None = no
            data), with ``labels`` applied.
        """
        from rasterio.windows import Window

        if window is None:
            window = Window(0, 0, scene.width, scene.height)
        out = {}
        for name in self.paths:
            values = self._reader(name, scene).read(1, window=window, out_dtype="float32")
            if self.kinds[name] == CATEGORICAL:
                values = levels_of_codes(values, self.labels.get(name, {}))
            out[name] = values
        return out


def covariates_at_points(
    rasters: CovariateRasters, scene: Any, rows: np.ndarray, cols: np.ndarray
) -> pd.DataFrame:
    """Covariate values at scene pixels, exactly as mapping reads them.

    Each point takes the value of the covariate warped onto the scene grid at its
    pixel (bilinear or nearest, see :class:`CovariateRasters`), so a sample's
    covariate is the value a map pixel at the same place would get.

    Returns
    -------
    DataFrame
        One column per covariate, one row per pixel given (NaN / None where the
        raster has no data).
    """
    from rasterio.windows import Window

    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    out: dict[str, list[Any]] = {name: [] for name in rasters.paths}
    for r, c in zip(rows, cols, strict=True):
        values = rasters.read(scene, Window(int(c), int(r), 1, 1))
        for name, block in values.items():
            out[name].append(block[0, 0])
    return pd.DataFrame(
        {n: pd.Series(v, dtype=float if rasters.kinds[n] == NUMERIC else object)
         for n, v in out.items()}
    )  # fmt: skip


def levels_of_codes(values: np.ndarray, labels: Mapping[str, str]) -> np.ndarray:
    """Raster codes as level text, converting each distinct code once."""
    codes, inverse = np.unique(values, return_inverse=True)
    text = level_text(codes)
    text = np.array([labels.get(t, t) if t is not None else None for t in text], dtype=object)
    return text[inverse.reshape(values.shape)]


# --------------------------------------------------------------------------- mapping hook


@dataclass
class Predictors:
    """The predictors of one block of pixels, in the model's input columns.

    Attributes
    ----------
    table : DataFrame
        One row per pixel (row-major), columns :func:`model_columns` of the model.
    valid : ndarray of bool
        True where every band and covariate is defined and every categorical level
        is one the model was trained with: the rows to predict.
    unseen : ndarray of bool
        True where a pixel is otherwise valid but has a categorical level the model
        never saw: flagged, left out of the prediction, and counted.
    """

    table: pd.DataFrame
    valid: np.ndarray
    unseen: np.ndarray


def assemble_predictors(
    model: Any,
    reflectance: np.ndarray,
    roles: Sequence[str],
    covariate_blocks: Mapping[str, np.ndarray],
) -> Predictors:
    """The model's input table for a block of reflectance and covariate rasters.

    A pure function (no I/O): the mapping hook. ``covariate_blocks`` is what
    :meth:`CovariateRasters.read` returns for the same window.

    Parameters
    ----------
    model : fitted saltmap model
        With or without covariates.
    reflectance : ndarray of shape (n_roles, rows, cols)
        Surface reflectance, NaN where masked.
    roles : sequence of str
        Band role of each plane of ``reflectance``.
    covariate_blocks : mapping
        ``{name: (rows, cols) array}`` for every covariate the model reads.

    Returns
    -------
    Predictors
    """
    columns = model_columns(model)
    info = model_covariates(model)
    bands = [c for c in columns if c not in info]
    _check_block(reflectance, roles, bands, [n for n in info if n not in covariate_blocks])
    shape = reflectance.shape[1:]
    data: dict[str, Any] = {}
    valid = np.ones(int(np.prod(shape)), dtype=bool)
    for band in bands:
        data[band] = reflectance[list(roles).index(band)].reshape(-1)
        valid &= np.isfinite(data[band])
    unseen = np.zeros_like(valid)
    for name, meta in info.items():
        block = np.asarray(covariate_blocks[name])
        if block.shape != shape:
            raise ValueError(f"covariate block {name!r} is {block.shape}, the block is {shape}")
        data[name], present, new = _covariate_column(block, meta)
        valid &= present
        unseen |= new
    unseen &= valid
    valid &= ~unseen
    return Predictors(pd.DataFrame(data, columns=columns), valid, unseen)


def _check_block(
    reflectance: np.ndarray, roles: Sequence[str], bands: list[str], missing: list[str]
) -> None:
    """Refuse a block without the model's bands, of the wrong shape, or lacking covariates."""
    check_roles(bands, roles, "the reflectance block")
    if reflectance.ndim != 3 or reflectance.shape[0] != len(roles):
        raise ValueError(
            f"reflectance must be shaped (n_roles={len(roles)}, rows, cols), got "
            f"{reflectance.shape}"
        )
    if missing:
        raise ConfigError(
            f"no raster block for covariate(s) {', '.join(missing)} that the model reads; "
            "read them with CovariateRasters.for_model(model, paths).read(scene, window)"
        )


def _covariate_column(
    block: np.ndarray, meta: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A covariate block as one value per pixel, where it is present, and where its
    level is one the model never saw (never for numeric or pooled covariates)."""
    if meta["kind"] == NUMERIC:
        values = block.reshape(-1).astype(np.float64)
        present = np.isfinite(values)
        return values, present, np.zeros_like(present)
    values = block.reshape(-1)
    if values.dtype != object:
        values = levels_of_codes(values, {})
    levels = pd.Series(values)
    present = levels.notna().to_numpy()
    if meta.get("pooled"):
        return values, present, np.zeros_like(present)
    return values, present, present & ~levels.isin(meta["categories"]).to_numpy()

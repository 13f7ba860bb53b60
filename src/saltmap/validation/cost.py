"""What a model costs to map: predictions per CPU-second on scene-like input.

A candidate of the final model's choice that is as accurate as another but ten times
slower makes every map ten times longer. :func:`scene_like_rows` draws a few hundred
thousand rows of reflectance uniformly within the range of the training samples (and
covariate values among the training rows' own), and :func:`inference_speed` times
one prediction of them in CPU time of this process (the models predict on one thread,
see :class:`~saltmap.models.building.SerialMLPRegressor`). :func:`tile_minutes` turns
that speed into the time one core needs for a full Sentinel-2 tile.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from saltmap.bands import ROLES
from saltmap.models.inspect import predictor_step
from saltmap.rowwise import finite_rows

#: Pixels of a full Sentinel-2 tile at 10 m (10 980 × 10 980).
S2_TILE_PIXELS = 10_980 * 10_980
#: Rows predicted to measure a model's inference cost (quick settings use fewer).
COST_ROWS = 200_000


def scene_like_rows(X: pd.DataFrame, n: int = COST_ROWS, random_state: int = 0) -> pd.DataFrame:
    """``n`` rows shaped like ``X``: each band role uniform between its training minimum and
    maximum, every other column (covariates) drawn from the training rows' values."""
    rng = np.random.default_rng(random_state)
    out = {}
    for col in X.columns:
        values = X[col]
        if col in ROLES:
            low, high = float(values.min()), float(values.max())
            out[col] = rng.uniform(low, high, n)
        else:
            out[col] = values.to_numpy()[rng.integers(0, len(values), n)]
    return pd.DataFrame(out, columns=X.columns)


def inference_speed(model: Any, rows: pd.DataFrame) -> float:
    """Thousands of rows a fitted ``model`` predicts per CPU-second, timed once on ``rows``.

    As a map does, only the rows where every feature is defined are predicted (a random
    reflectance can make an index divide by zero); they are what is counted.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        step = predictor_step(model)
        if step is not None:
            features = np.asarray(step.transform(rows), dtype=float)
            rows = rows[finite_rows(features)]
        start = time.process_time()
        model.predict(rows)
        cpu = max(time.process_time() - start, 1e-6)
    return len(rows) / 1000.0 / cpu


def tile_minutes(kpx_per_cpu_s: float, pixels: int = S2_TILE_PIXELS) -> float:
    """CPU minutes to predict ``pixels`` (default a full Sentinel-2 tile, 120.6 Mpx) at
    ``kpx_per_cpu_s``; a mapping job spreads them over its processes."""
    if not np.isfinite(kpx_per_cpu_s) or kpx_per_cpu_s <= 0:
        return float("nan")
    return pixels / (kpx_per_cpu_s * 1000.0) / 60.0

"""Targets that stay physical: no negative salinity, no log-space prediction far beyond the data.

Every saltmap model (:func:`saltmap.models.building.make_model`) wraps its regressor in a
:class:`~sklearn.compose.TransformedTargetRegressor` whose transformer is a
:class:`PhysicalTarget`:

* without a log target, the transform is the identity and the back-transform sets a
  prediction below zero to zero (salinity is never negative; PLSR on the Odisha
  samples predicted −2000 µS/cm before). A data set whose own target goes below
  zero keeps that minimum as the floor, so nothing measured is ever clipped;
* with a log target, the model learns log10 of the target and its predictions are
  clipped in log space to the training range widened by :data:`LOG_MARGIN` decades
  on each side before they are raised to the power of ten. An MLP extrapolating on
  an unusual pixel returned 10^20 µS/cm before; now it returns at most
  10^0.5 ≈ 3.2 times the largest measured value.

:func:`target_bounds` and :func:`count_clipped` tell how many predictions met a bound,
so that the evaluation and the maps can report them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from saltmap.errors import SampleDataError

#: Decades by which the log-space clip widens the training range on each side: a
#: log-target prediction lies within [min / 10^0.5, max × 10^0.5] of the measured target.
LOG_MARGIN = 0.5


class PhysicalTarget(TransformerMixin, BaseEstimator):
    """Target transform that keeps back-transformed predictions physical.

    Parameters
    ----------
    log : bool, default=False
        Model log10 of the target (it must then be positive).
    margin : float, default=LOG_MARGIN
        With ``log``: decades added below the smallest and above the largest
        training value; predictions in log space are clipped to that range.

    Attributes
    ----------
    low_, high_ : float
        Bounds of back-transformed predictions, in the target's unit
        (``high_`` is inf without ``log``).
    """

    def __init__(self, log: bool = False, margin: float = LOG_MARGIN):
        self.log = log
        self.margin = margin

    def fit(self, X: Any, y: Any = None) -> PhysicalTarget:
        values = validate_data(self, X, dtype=float)
        if self.log:
            if np.any(values <= 0):
                raise SampleDataError(
                    "log10 of the target needs positive values, but its minimum is "
                    f"{np.min(values):g}; drop --log-target (log_target = false) or remove "
                    "the rows with zero or negative salinity"
                )
            logs = np.log10(values)
            self.log_bounds_ = (
                float(logs.min() - self.margin),
                float(logs.max() + self.margin),
            )
            self.low_, self.high_ = (10.0**b for b in self.log_bounds_)
        else:
            # Never clip what was measured: a target that goes below zero keeps its floor.
            self.low_, self.high_ = min(0.0, float(values.min())), float("inf")
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "low_")
        values = validate_data(self, X, dtype=float, reset=False)
        if not self.log:
            return values.copy()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(values)

    def inverse_transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "low_")
        values = check_array(X, dtype=float, ensure_all_finite=False)
        if not self.log:
            return np.maximum(values, self.low_)
        return np.power(10.0, np.clip(values, *self.log_bounds_))


def _physical_step(model: Any) -> PhysicalTarget | None:
    """The fitted :class:`PhysicalTarget` of a saltmap model, TunedModel or bare regressor."""
    model = getattr(model, "model_", model)
    steps = getattr(model, "steps", None)
    last = steps[-1][1] if steps else model
    transformer = getattr(last, "transformer_", None)
    return transformer if isinstance(transformer, PhysicalTarget) else None


def target_bounds(model: Any) -> tuple[float, float] | None:
    """``(low, high)`` that a fitted model's predictions are held within; None for a model
    without a :class:`PhysicalTarget` (model files of older saltmap versions)."""
    step = _physical_step(model)
    return None if step is None else (step.low_, step.high_)


def count_clipped(model: Any, predictions: Any) -> dict[str, int]:
    """How many ``predictions`` of ``model`` were set to a bound.

    Returns
    -------
    dict
        ``{"n_floor": …, "n_ceiling": …}``: predictions at the lower bound (zero, or
        the log-space floor) and at the upper bound (log target only).
    """
    return count_at_bounds(predictions, target_bounds(model))


def count_at_bounds(
    values: Any, bounds: tuple[float, float] | None, rtol: float = 1e-9
) -> dict[str, int]:
    """How many ``values`` sit at the physical ``bounds`` of :func:`target_bounds`.

    A clipped value equals its bound exactly; ``rtol`` covers the rounding of ``10**x``
    (and of float32, with ``rtol=1e-6``, for a map's values). NaN counts at neither.
    """
    if bounds is None:
        return {"n_floor": 0, "n_ceiling": 0}
    low, high = bounds
    pred = np.asarray(values)
    floor = np.isclose(pred, low, rtol=rtol, atol=0.0) if low != 0 else pred == 0
    # Without a log target the upper bound is infinite: nothing to compare (every map block).
    n_ceiling = int(np.isclose(pred, high, rtol=rtol, atol=0.0).sum()) if np.isfinite(high) else 0
    return {"n_floor": int(floor.sum()), "n_ceiling": n_ceiling}

"""Training a model on field samples: tune, fit, and say what was done.

:func:`train_model` is what ``saltmap train`` and the study's final model call:
it tunes and fits one of the study's models on every usable sample and returns
the metadata a model file keeps (:mod:`saltmap.models.persistence`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from saltmap.errors import SampleDataError
from saltmap.features.covariates import Covariates, check_covariates_defined, predictor_table
from saltmap.models.budgets import get_budget
from saltmap.models.building import undefined_rows
from saltmap.models.tuning import TunedModel


def train_model(
    samples: Any,
    *,
    model: str = "Stacking",
    indices: str | list[str] = "novel",
    log_target: bool = False,
    budget: str = "default",
    n_trials: int | None = None,
    random_state: int = 0,
    covariates: Covariates | None = None,
    fixed: dict[str, Any] | None = None,
) -> tuple[Pipeline, dict[str, Any]]:
    """Tune and fit a model on all usable rows of field samples.

    Parameters
    ----------
    samples : Samples
        From :func:`saltmap.io.samples.read_samples`.
    model : str
        One of :data:`~saltmap.models.building.MODEL_NAMES`.
    indices, log_target, random_state
        As in :func:`~saltmap.models.building.make_model`.
    budget, n_trials
        Tuning effort, see :class:`~saltmap.models.tuning.TunedModel`; ``n_trials=0``
        fits the defaults.
    covariates : saltmap.features.covariates.Covariates, optional
        Sample columns used as predictors beside the indices; the fitted model
        then reads band roles plus these columns (see :mod:`saltmap.features.covariates`).
    fixed : dict, optional
        Parameters held at a value instead of tuned (with ``n_trials=0``, the whole
        model: the plain random forest is ``model="RF"``, ``indices="study"``,
        ``fixed=PLAIN_FOREST``, ``n_trials=0``).

    A sample where one of the ``indices`` is undefined (a division by zero, the root of
    a negative number) is set aside, not refused: the model is trained on the others,
    and ``metadata["training"]["set_aside"]`` lists each such sample with its undefined
    indices.

    Returns
    -------
    model : Pipeline
        The fitted model; its input is reflectance by band role.
    metadata : dict
        What :func:`saltmap.models.persistence.save_model` needs: target, unit, scaling,
        the parameters, and a training summary. ``training.inner_cv_rmse`` is the
        best tuning score, optimistic because it was selected; honest accuracy
        comes from ``saltmap evaluate``.
    """
    y = samples.target.to_numpy(dtype=float)
    X = samples.reflectance
    if covariates:
        X = predictor_table(samples, covariates)
        check_covariates_defined(X, covariates, samples.source)
    aside = undefined_rows(samples.reflectance, indices)
    keep = ~samples.reflectance.index.isin(aside.index)
    X, y = X[keep], y[keep]
    if len(y) < 10:
        raise SampleDataError(
            f"{samples.source}: {len(y)} usable samples are too few to train a model; "
            "at least 10 are needed (see the rejected-row report for rows set aside"
            + (f", and the {len(aside)} where an index is undefined" if len(aside) else "")
            + ")"
        )
    tuned = TunedModel(
        model, indices=indices, budget=budget, n_trials=n_trials, log_target=log_target,
        random_state=random_state, covariates=covariates or None, fixed=fixed,
    ).fit(X, y)  # fmt: skip
    metadata = _training_metadata(samples, tuned, X, y, covariates)
    metadata["training"]["set_aside"] = {str(k): v for k, v in aside.items()}
    return tuned.model_, metadata


def _training_metadata(
    samples: Any, tuned: TunedModel, X: Any, y: np.ndarray, covariates: Covariates | None
) -> dict[str, Any]:
    """What a model file keeps of how the model was trained (see :func:`train_model`)."""
    scaling = samples.scaling
    metadata = {
        "model": tuned.name,
        "params": tuned.best_params_,
        "log_target": tuned.log_target,
        "random_state": tuned.random_state,
        "target": samples.target_name,
        "target_unit": samples.target_unit,
        "scaling": scaling.name,
        "scaling_scale": scaling.scale,
        "scaling_offset": scaling.offset,
        "training": {
            "source": str(samples.source),
            "n": len(y),
            "n_rejected": len(samples.rejected),
            "target_min": float(np.min(y)),
            "target_median": float(np.median(y)),
            "target_max": float(np.max(y)),
            "budget": tuned.budget,
            "n_trials": get_budget(tuned.budget).n_trials
            if tuned.n_trials is None
            else tuned.n_trials,
            "inner_cv_rmse": tuned.inner_cv_rmse_,
            "tuning_seconds": round(tuned.tuning_seconds_, 2),
        },
    }
    if covariates:
        metadata["training"]["covariate_ranges"] = {
            name: [float(X[name].min()), float(X[name].max())] for name in covariates.numeric
        }
    return metadata

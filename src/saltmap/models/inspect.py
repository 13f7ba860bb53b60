"""What a fitted saltmap model reads and predicts from: the one place that looks inside it.

A saltmap model (:func:`saltmap.models.building.make_model`) is a
:class:`~sklearn.pipeline.Pipeline` whose first step, named ``"indices"``, turns its
input into predictors (an :class:`~saltmap.features.indices.IndexFeatures`, or a
:class:`~saltmap.features.covariates.PredictorFeatures` for a model with
covariates), followed by the regressor; a
:class:`~saltmap.models.tuning.TunedModel` holds such a pipeline in ``model_``.
Tuning, trust, persistence and the covariate gain ask this module about a model
instead of reaching into its steps, so a change of that anatomy is made here.

:func:`model_covariates` and :func:`model_columns` are defined beside
``PredictorFeatures`` in :mod:`saltmap.features.covariates` (the feature stage's
mapping hook needs them and may not import this stage) and re-exported here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.pipeline import Pipeline

from saltmap.errors import ModelFileError
from saltmap.features.covariates import (
    CATEGORICAL,
    NUMERIC,
    Covariates,
    PredictorFeatures,
    model_columns,
    model_covariates,
    predictor_table,
)
from saltmap.features.indices import IndexFeatures

if TYPE_CHECKING:
    from saltmap.io.samples import Samples

__all__ = [
    "OnPredictors",
    "categorical_of",
    "model_columns",
    "model_covariates",
    "model_features",
    "model_input",
    "model_parts",
    "predictor_of_column",
    "predictor_step",
    "predictors_of",
    "seen_rows",
    "take_rows",
]


def take_rows(X: Any, rows: np.ndarray) -> Any:
    """Rows of a model input by position: a table stays a table, anything else an array."""
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]


def predictor_step(model: BaseEstimator) -> BaseEstimator | None:
    """The first step (``"indices"``) of a saltmap model or TunedModel; None if it has none."""
    inner = getattr(model, "model_", model)
    steps = getattr(inner, "named_steps", None) or {}
    return steps.get("indices")


def model_parts(model: BaseEstimator) -> tuple[BaseEstimator, BaseEstimator]:
    """``(predictor step, regressor-on-predictors)`` of a fitted saltmap model.

    Accepts a fitted ``Pipeline([("indices", IndexFeatures), ...])``, the same with
    a :class:`~saltmap.features.covariates.PredictorFeatures` first step (a model
    trained with covariates), and objects that hold either in ``model_``
    (:class:`~saltmap.models.tuning.TunedModel`).

    Raises
    ------
    ModelFileError
        If ``model`` is not such a fitted model.
    """
    inner = getattr(model, "model_", model)
    if isinstance(inner, Pipeline) and isinstance(
        inner.steps[0][1], IndexFeatures | PredictorFeatures
    ):
        first = inner.steps[0][1]
        if hasattr(first, "bands_"):
            return first, inner[1:]
    raise ModelFileError(
        f"{type(model).__name__} is not a fitted saltmap model (a Pipeline starting with a "
        "fitted IndexFeatures or PredictorFeatures step); train it with "
        "saltmap.models.building.make_model or `saltmap train`"
    )


def model_features(model: Pipeline) -> dict[str, Any]:
    """Index names and band roles a fitted saltmap pipeline reads, and its covariates.

    ``covariates`` (only for a model with covariates) maps each covariate name to
    its kind (``numeric`` or ``categorical``) and, for a categorical one, the
    levels it was trained with (``categories``) and those pooled as rare.

    Raises
    ------
    ModelFileError
        If ``model`` is not a fitted saltmap pipeline (a TunedModel is refused: give
        its ``model_``).
    """
    step = model.named_steps.get("indices") if isinstance(model, Pipeline) else None
    if step is None or not hasattr(step, "index_names_"):
        raise ModelFileError(
            "only a fitted saltmap model (Pipeline with an 'indices' IndexFeatures step, "
            "from saltmap.models.building.make_model) can be saved"
        )
    features = {"indices": list(step.index_names_), "bands": list(step.bands_)}
    if getattr(step, "covariates_", None):
        features["covariates"] = step.covariates_
    return features


def categorical_of(estimator: BaseEstimator) -> tuple[str, ...]:
    """Categorical covariates of a (fitted or unfitted) saltmap model."""
    names = getattr(predictor_step(estimator), "categorical", None)
    if names is None:  # an unfitted TunedModel holds its Covariates spec
        names = getattr(getattr(estimator, "covariates", None), "categorical", ())
    return tuple(names or ())


def seen_rows(model: BaseEstimator, X: Any) -> np.ndarray:
    """Rows a fitted model can predict: with categorical covariates, those whose levels
    its training rows had; all rows otherwise."""
    step = predictor_step(model)
    if getattr(step, "categorical", None):
        return step.seen_rows(X)
    return np.ones(len(X), dtype=bool)


def predictor_of_column(step: BaseEstimator) -> list[str]:
    """The predictor (index or covariate) behind each column the regressor reads.

    A categorical covariate is one column per level kept in training (plus one for
    pooled rare levels), as :class:`~saltmap.features.covariates.PredictorFeatures`
    encodes it.
    """
    names = list(step.index_names_)
    info = getattr(step, "covariates_", None) or {}
    names += [n for n in getattr(step, "numeric", ()) or ()]
    for name in getattr(step, "categorical", ()) or ():
        levels = info[name]
        names += [name] * (len(levels["categories"]) + (1 if levels.get("pooled") else 0))
    n_out = len(getattr(step, "feature_names_out_", step.index_names_))
    if len(names) != n_out:  # pragma: no cover - guards against a change of the encoder
        raise ModelFileError(
            f"the model's predictor step makes {n_out} columns but saltmap expected "
            f"{len(names)}; retrain the model with this saltmap"
        )
    return names


def model_input(model: BaseEstimator, samples: Samples) -> pd.DataFrame:
    """The table a fitted model predicts samples from: reflectance, plus its covariates.

    For a model without covariates this is ``samples.reflectance``; otherwise the
    covariate columns of the samples are added (an error names a missing one).
    """
    info = model_covariates(model)
    if not info:
        return samples.reflectance
    kinds = {n: v["kind"] for n, v in info.items()}
    spec = Covariates(
        [n for n, k in kinds.items() if k == NUMERIC],
        [n for n, k in kinds.items() if k == CATEGORICAL],
    )
    return predictor_table(samples, spec)


def predictors_of(model: BaseEstimator, X: pd.DataFrame) -> pd.DataFrame:
    """The predictor table of a fitted covariate model: index values and raw covariates."""
    step = model.named_steps["indices"]
    indices = step.transformer_.named_transformers_["indices"]
    out = pd.DataFrame(
        indices.transform(X[list(step.bands_)]), index=X.index, columns=list(step.index_names_)
    )
    prepared = step.prepare(X, "the table")
    for name in step.spec.names:
        out[name] = prepared[name].to_numpy()
    return out


class OnPredictors(RegressorMixin, BaseEstimator):
    """A fitted covariate model seen from its predictors (indices and raw covariates).

    Permutation importance shuffles one column at a time; shuffling a band would
    change several indices at once, and shuffling a one-hot column alone would
    make rows of no level. Here each index and each covariate (all its one-hot
    columns together) is one column: the table :func:`predictors_of` makes.

    Parameters
    ----------
    model : Pipeline
        A fitted saltmap model with covariates.
    """

    def __init__(self, model: Any = None):
        self.model = model

    def fit(self, X: Any, y: Any = None) -> OnPredictors:
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        step = self.model.named_steps["indices"]
        parts = [X[list(step.index_names_)].to_numpy(dtype=float)]
        if step.numeric:
            parts.append(X[list(step.numeric)].to_numpy(dtype=float))
        if step.categorical:
            encoder = step.transformer_.named_transformers_[CATEGORICAL]
            parts.append(encoder.transform(X[list(step.categorical)]))
        return np.asarray(self.model[1:].predict(np.hstack(parts)), dtype=float).ravel()

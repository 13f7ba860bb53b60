"""The study's stacking regressor and its single models.

Every model is a scikit-learn :class:`~sklearn.pipeline.Pipeline`
``IndexFeatures -> regressor``: its input is surface reflectance by band role
(``B``, ``G``, ``R``, ``N``, ``S1``, ``S2``) and it computes the salinity
indices itself, so one fitted model serves field samples and scene pixels.

The five models carry the study's names [1]_:

``"Stacking"``
    Base learners MLP, random forest and XGBoost; the meta-learner is a PLS
    regression fitted on the bases' 5-fold out-of-fold predictions, and the
    bases are refitted on all training rows. This is exactly what
    :class:`sklearn.ensemble.StackingRegressor` does with ``cv=KFold(5)`` [2]_.
``"XGBoost"``, ``"RF"``, ``"MLP"``, ``"PLSR"``
    The single models.

Their hyperparameters are tuned in :mod:`saltmap.models.tuning`; a model is
trained on field samples by :func:`saltmap.models.training.train_model`.

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025.
.. [2] Wolpert, D. H. (1992). Stacked generalization. Neural Networks 5, 241–259.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor, StackingRegressor
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController
from xgboost import XGBRegressor

from saltmap.errors import ConfigError, SampleDataError
from saltmap.features.covariates import Covariates, PredictorFeatures
from saltmap.features.indices import IndexFeatures
from saltmap.io.samples import Samples, missing_by_sample
from saltmap.models.physical import PhysicalTarget

MODEL_NAMES: tuple[str, ...] = ("Stacking", "XGBoost", "RF", "MLP", "PLSR")
BASE_LEARNERS: tuple[str, ...] = ("MLP", "RF", "XGBoost")
STACK_FOLDS = 5

# -- target transform --------------------------------------------------------------------------


def log10_target(y: np.ndarray) -> np.ndarray:
    """log10 of a salinity target; salinity must be positive to be logged."""
    y = np.asarray(y, dtype=float)
    if np.any(y <= 0):
        raise SampleDataError(
            f"log10 of the target needs positive values, but its minimum is {np.min(y):g}; "
            "drop --log-target or remove the rows with zero or negative salinity"
        )
    return np.log10(y)


def pow10_target(y: np.ndarray) -> np.ndarray:
    """Inverse of :func:`log10_target`: predictions back in the target's unit."""
    return np.power(10.0, np.asarray(y, dtype=float))


# -- the regressors ----------------------------------------------------------------------------

# Starting values when a model is not tuned. Chosen for ~100 samples and a few
# to a few tens of index features; the tuned values replace them.
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "MLP": {"n_units": 16, "n_layers": 1, "alpha": 1e-2, "activation": "relu", "max_iter": 300},
    "RF": {"n_estimators": 200, "max_features": 1.0, "min_samples_leaf": 1, "max_depth": None},
    "XGBoost": {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "max_depth": 3,
        "min_child_weight": 1.0,
        "subsample": 0.8,
        "colsample_bytree": 1.0,
        "reg_lambda": 1.0,
    },
    "PLSR": {"n_components": 2},
    "Stacking": {"meta_n_components": 2},
}


class SerialMLPRegressor(MLPRegressor):
    """:class:`~sklearn.neural_network.MLPRegressor` that fits and predicts on one BLAS thread.

    With ~100 samples the network's matrices are tiny, and BLAS threads only
    wait for each other and for the other work on the machine: one fit of the
    default MLP on the Odisha samples took 13.8 s with OpenBLAS threads on a
    loaded 2-core machine and 0.37 s on one thread. Parallelism belongs to the
    outer loops (folds, models). Parameters are those of ``MLPRegressor``.
    """

    def fit(self, X: Any, y: Any) -> SerialMLPRegressor:
        with _one_blas_thread():
            return super().fit(X, y)

    def predict(self, X: Any) -> np.ndarray:
        with _one_blas_thread():
            return super().predict(X)


_THREADPOOLS: list[ThreadpoolController] = []


def _one_blas_thread() -> Any:
    # Building a controller scans the loaded libraries; do it once.
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


def _mlp(p: Mapping[str, Any], random_state: int) -> TransformedTargetRegressor:
    # lbfgs suits small samples better than adam (scikit-learn user guide, 1.17);
    # the target is standardised too, or EC in thousands of µS/cm stalls the fit.
    mlp = SerialMLPRegressor(
        hidden_layer_sizes=(int(p["n_units"]),) * int(p["n_layers"]),
        alpha=float(p["alpha"]),
        activation=p["activation"],
        solver="lbfgs",
        max_iter=int(p["max_iter"]),
        random_state=random_state,
    )
    return TransformedTargetRegressor(
        regressor=Pipeline([("scale", StandardScaler()), ("mlp", mlp)]),
        transformer=StandardScaler(),
    )


def _rf(p: Mapping[str, Any], random_state: int) -> RandomForestRegressor:
    # n_jobs=1: parallelism belongs to the outer loops (folds, models), not to one forest.
    return RandomForestRegressor(
        n_estimators=int(p["n_estimators"]),
        max_features=p["max_features"],
        min_samples_leaf=int(p["min_samples_leaf"]),
        max_depth=None if p["max_depth"] is None else int(p["max_depth"]),
        random_state=random_state,
        n_jobs=1,
    )


def _xgb(p: Mapping[str, Any], random_state: int) -> XGBRegressor:
    return XGBRegressor(
        n_estimators=int(p["n_estimators"]),
        learning_rate=float(p["learning_rate"]),
        max_depth=int(p["max_depth"]),
        min_child_weight=float(p["min_child_weight"]),
        subsample=float(p["subsample"]),
        colsample_bytree=float(p["colsample_bytree"]),
        reg_lambda=float(p["reg_lambda"]),
        # Exact greedy splits: on ~100 rows histogram binning saves nothing and
        # building its quantile matrix cost ~0.1 s per fit (10x the exact fit).
        tree_method="exact",
        random_state=random_state,
        n_jobs=1,
    )


def _plsr(p: Mapping[str, Any], random_state: int) -> PLSRegression:
    # PLSRegression standardises its inputs itself (scale=True) and, fitted on a
    # 1-D target, predicts 1-D.
    return PLSRegression(n_components=int(p["n_components"]))


_BUILDERS: dict[str, Callable[[Mapping[str, Any], int], Any]] = {
    "MLP": _mlp,
    "RF": _rf,
    "XGBoost": _xgb,
    "PLSR": _plsr,
}


def split_stacking_params(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Stacking parameters per learner: ``{"RF__max_depth": 4, "meta_n_components": 1}``
    -> ``{"RF": {"max_depth": 4}, "meta": {"n_components": 1}, ...}``."""
    out: dict[str, dict[str, Any]] = {b: {} for b in (*BASE_LEARNERS, "meta")}
    for key, value in params.items():
        if key == "meta_n_components":
            out["meta"]["n_components"] = value
            continue
        base, sep, name = key.partition("__")
        if not sep or base not in BASE_LEARNERS:
            raise ConfigError(
                f"Stacking parameter {key!r} is not '<base>__<name>' with base one of "
                f"{', '.join(BASE_LEARNERS)}, nor 'meta_n_components'"
            )
        out[base][name] = value
    return out


def stacking_regressor(
    params: Mapping[str, Any] | None = None, random_state: int = 0
) -> StackingRegressor:
    """The study's stacking regressor: MLP, RF and XGBoost under a PLS meta-learner.

    scikit-learn's :class:`~sklearn.ensemble.StackingRegressor` fits the
    meta-learner on ``cross_val_predict`` output of the bases (5 shuffled,
    seeded folds), so no base prediction it learns from comes from a base that
    saw that row; it then refits each base on all training rows for prediction.

    Parameters
    ----------
    params : mapping, optional
        ``"<base>__<name>"`` for a base learner's parameter (base ``MLP``, ``RF``
        or ``XGBoost``; names as in :data:`DEFAULT_PARAMS`) and
        ``"meta_n_components"`` for the PLS meta-learner (default 2).
    random_state : int
        Seed of the folds and of every base learner.
    """
    split = split_stacking_params(params or {})
    meta = {**DEFAULT_PARAMS["Stacking"], **{f"meta_{k}": v for k, v in split["meta"].items()}}
    bases = [
        (base.lower(), _BUILDERS[base]({**DEFAULT_PARAMS[base], **split[base]}, random_state))
        for base in BASE_LEARNERS
    ]
    return StackingRegressor(
        estimators=bases,
        final_estimator=PLSRegression(n_components=int(meta["meta_n_components"])),
        cv=KFold(STACK_FOLDS, shuffle=True, random_state=random_state),
        passthrough=False,
    )


def check_model_name(name: str) -> str:
    """``name`` if it is one of :data:`MODEL_NAMES`, else a ConfigError listing them."""
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return name


def make_regressor(
    name: str, *, params: Mapping[str, Any] | None = None, random_state: int = 0
) -> BaseEstimator:
    """The bare regressor called ``name`` (no index step, no target transform)."""
    check_model_name(name)
    params = dict(params or {})
    if name == "Stacking":
        return stacking_regressor(params, random_state)
    unknown = set(params) - set(DEFAULT_PARAMS[name])
    if unknown:
        raise ConfigError(
            f"{name} has no parameter(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(DEFAULT_PARAMS[name])}"
        )
    return _BUILDERS[name]({**DEFAULT_PARAMS[name], **params}, random_state)


def make_model(
    name: str,
    *,
    indices: str | list[str] | None = "novel",
    log_target: bool = False,
    random_state: int = 0,
    params: Mapping[str, Any] | None = None,
    covariates: Covariates | None = None,
) -> Pipeline:
    """A model from reflectance by band role to salinity.

    Parameters
    ----------
    name : {"Stacking", "XGBoost", "RF", "MLP", "PLSR"}
        The study's model names.
    indices : str, list of str or None, default="novel"
        The index features (``"novel"`` = the study's N-SI set of 4,
        ``"classic"`` = its SI set of 17; see :func:`saltmap.features.indices.resolve`).
        ``None`` makes a model whose input columns are the features themselves
        (an index table computed elsewhere, or any other covariates).
    log_target : bool, default=False
        Model log10 of the target (salinity is right-skewed); predictions are
        returned in the target's own unit, clipped in log space to the training
        range widened by :data:`~saltmap.models.physical.LOG_MARGIN` decades.
        Without it, predictions below zero are set to zero.
    random_state : int, default=0
        Seed of every random part; the same seed gives the same predictions.
    params : mapping, optional
        Hyperparameters by the names of :data:`DEFAULT_PARAMS` (for
        ``"Stacking"``: ``"<base>__<name>"`` and ``"meta_n_components"``),
        such as the output of :func:`saltmap.models.tuning.tune_model`.
    covariates : saltmap.features.covariates.Covariates, optional
        Sample columns (or, for mapping, rasters) used as predictors beside the
        indices. The first step is then a
        :class:`~saltmap.features.covariates.PredictorFeatures` (still named ``"indices"``)
        and the model's input is a table of band roles plus those columns.

    Returns
    -------
    Pipeline
        ``[("indices", IndexFeatures), ("model", regressor)]``, the regressor inside a
        :class:`~sklearn.compose.TransformedTargetRegressor` with a
        :class:`~saltmap.models.physical.PhysicalTarget`; the first step
        is ``"passthrough"`` when ``indices`` is None.
    """
    # Predictions stay physical: never below zero, and with a log target never beyond the
    # training range widened by LOG_MARGIN decades (saltmap.models.physical).
    regressor = TransformedTargetRegressor(
        regressor=make_regressor(name, params=params, random_state=random_state),
        transformer=PhysicalTarget(log=log_target),
    )
    if covariates:
        if indices is None:
            raise ConfigError("a model with covariates needs index features (indices=None given)")
        features = PredictorFeatures(
            indices, covariates.numeric, covariates.categorical, covariates.min_count
        )
    else:
        features = "passthrough" if indices is None else IndexFeatures(indices)
    return Pipeline([("indices", features), ("model", regressor)])


def undefined_rows(reflectance: pd.DataFrame, indices: Any) -> pd.Series:
    """Per row (by the table's index), the names of the ``indices`` undefined there
    (division by zero, root of a negative), joined by commas; rows where every index is
    defined are left out. A model on those indices cannot use these rows; filling them
    in would invent data, so they are set aside for that model only."""
    if indices is None:
        return pd.Series(dtype=object)
    step = IndexFeatures(indices).fit(reflectance)
    features = pd.DataFrame(
        step.transform(reflectance), index=reflectance.index, columns=step.index_names_
    )
    bad = features.isna()
    names = bad.apply(lambda row: ",".join(row.index[row]), axis=1)
    return names[bad.any(axis=1)]


def check_indices_defined(samples: Samples, indices: str | list[str]) -> None:
    """Refuse samples where an index is undefined (NaN): the models cannot use them,
    and filling them in would invent data. (The evaluation and training set such rows
    aside instead, see :func:`undefined_rows`.)"""
    step = IndexFeatures(indices).fit(samples.reflectance)
    features = pd.DataFrame(
        step.transform(samples.reflectance), index=samples.reflectance.index,
        columns=step.index_names_,
    )  # fmt: skip
    bad = features.isna()
    if bad.any(axis=None):
        n, where = missing_by_sample(bad)
        raise SampleDataError(
            f"{samples.source}: {n} sample(s) have undefined index values "
            f"({where}); an index is undefined where its "
            "formula divides by zero or takes the root of a negative number. Remove those "
            "samples or choose indices defined for them (`saltmap indices` lists where each "
            "is undefined)"
        )


def predict_salinity(model: Pipeline, reflectance: pd.DataFrame, *, name: str) -> pd.Series:
    """Predict salinity for rows of reflectance by band role, keeping their index."""
    values = np.asarray(model.predict(reflectance), dtype=float).ravel()
    return pd.Series(values, index=reflectance.index, name=name)

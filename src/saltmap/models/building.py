"""The study's stacking regressor, its single models, and their tuning.

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

Hyperparameters are tuned with Optuna's TPE sampler [3]_ on the training rows
only, scored by inner k-fold cross-validation; :class:`TunedModel` wraps tuning
and fitting in one estimator so that cross-validation tunes inside each fold.

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025.
.. [2] Wolpert, D. H. (1992). Stacked generalization. Neural Networks 5, 241–259.
.. [3] Akiba, T., Sano, S., Yanase, T., Ohta, T., Koyama, M. (2019). Optuna: a
   next-generation hyperparameter optimization framework. KDD '19, 2623–2631.
.. [4] Probst, P., Boulesteix, A.-L. (2018). To tune or not to tune the number
   of trees in random forest. JMLR 18(181), 1–18.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor, StackingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.neural_network import MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, validate_data
from threadpoolctl import ThreadpoolController
from xgboost import XGBRegressor

from saltmap.errors import ConfigError, SampleDataError
from saltmap.features.indices import IndexFeatures, resolve

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


def _split_stacking_params(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"RF__max_depth": 4, "meta_n_components": 1}`` -> per-learner dicts."""
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
    split = _split_stacking_params(params or {})
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


def _check_name(name: str) -> str:
    if name not in MODEL_NAMES:
        raise ConfigError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return name


def make_regressor(
    name: str, *, params: Mapping[str, Any] | None = None, random_state: int = 0
) -> Any:
    """The bare regressor called ``name`` (no index step, no target transform)."""
    _check_name(name)
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
    covariates: Any = None,
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
        returned in the target's own unit.
    random_state : int, default=0
        Seed of every random part; the same seed gives the same predictions.
    params : mapping, optional
        Hyperparameters by the names of :data:`DEFAULT_PARAMS` (for
        ``"Stacking"``: ``"<base>__<name>"`` and ``"meta_n_components"``),
        such as the output of :func:`tune_model`.
    covariates : saltmap.features.covariates.Covariates, optional
        Sample columns (or, for mapping, rasters) used as predictors beside the
        indices. The first step is then a
        :class:`~saltmap.features.covariates.PredictorFeatures` (still named ``"indices"``)
        and the model's input is a table of band roles plus those columns.

    Returns
    -------
    Pipeline
        ``[("indices", IndexFeatures), ("model", regressor)]``; the first step
        is ``"passthrough"`` when ``indices`` is None.
    """
    regressor = make_regressor(name, params=params, random_state=random_state)
    if log_target:
        regressor = TransformedTargetRegressor(
            regressor=regressor, func=log10_target, inverse_func=pow10_target
        )
    if covariates:
        # Imported here: saltmap.features.covariates builds models itself (covariate_gain).
        from saltmap.features.covariates import PredictorFeatures

        if indices is None:
            raise ConfigError("a model with covariates needs index features (indices=None given)")
        features = PredictorFeatures(
            indices, covariates.numeric, covariates.categorical, covariates.min_count
        )
    else:
        features = "passthrough" if indices is None else IndexFeatures(indices)
    return Pipeline([("indices", features), ("model", regressor)])


def _n_features(indices: str | list[str] | None, X: Any, covariates: Any = None) -> int:
    if indices is None:
        return np.shape(X)[1]
    return len(resolve(indices)) + (len(covariates.names) if covariates else 0)


def _scored_rows(model: Pipeline, X: Any) -> np.ndarray:
    """Rows a fitted model can score: with categorical covariates, those whose levels
    its training rows had (see saltmap.features.covariates); all rows otherwise."""
    step = model.named_steps["indices"]
    if hasattr(step, "seen_rows"):
        return step.seen_rows(X)
    return np.ones(len(X), dtype=bool)


# -- tuning ------------------------------------------------------------------------------------

# Search spaces: hyperparameter -> Optuna distribution, per single model. The
# Stacking model is tuned base by base, each base in its own space below with the
# same inner folds (the bases are tuned for their own accuracy, as in the study);
# its PLS meta-learner keeps ``meta_n_components`` = 2 because scoring each value
# would cost a full stack per trial.
#
# RF does not tune n_estimators: more trees only lower variance [4]_, so it is
# fixed by the budget. PLSR's upper bound is cut to the number of features.
SEARCH_SPACES: dict[str, dict[str, optuna.distributions.BaseDistribution]] = {
    "XGBoost": {
        "n_estimators": optuna.distributions.IntDistribution(50, 300, step=25),
        "learning_rate": optuna.distributions.FloatDistribution(0.01, 0.3, log=True),
        "max_depth": optuna.distributions.IntDistribution(2, 6),
        "min_child_weight": optuna.distributions.FloatDistribution(1.0, 10.0, log=True),
        "subsample": optuna.distributions.FloatDistribution(0.5, 1.0),
        "colsample_bytree": optuna.distributions.FloatDistribution(0.5, 1.0),
        "reg_lambda": optuna.distributions.FloatDistribution(1e-3, 10.0, log=True),
    },
    "RF": {
        "max_features": optuna.distributions.CategoricalDistribution([1.0, 0.6, 0.33]),
        "min_samples_leaf": optuna.distributions.IntDistribution(1, 10),
        "max_depth": optuna.distributions.IntDistribution(2, 16, log=True),
    },
    "MLP": {
        "n_units": optuna.distributions.IntDistribution(4, 64, log=True),
        "n_layers": optuna.distributions.IntDistribution(1, 2),
        "alpha": optuna.distributions.FloatDistribution(1e-4, 10.0, log=True),
        "activation": optuna.distributions.CategoricalDistribution(["relu", "tanh"]),
    },
    "PLSR": {
        "n_components": optuna.distributions.IntDistribution(1, 8),
    },
}


@dataclass(frozen=True)
class Budget:
    """How much effort tuning spends, and parameters it holds fixed.

    Attributes
    ----------
    n_trials : int
        Optuna trials per single model (per base learner for Stacking).
    cv : int
        Inner cross-validation folds that score each trial.
    fixed : dict
        Per model, parameters set to a value and left out of the search.
    """

    n_trials: int
    cv: int
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)


# "default" keeps the issue's full evaluation (5 models x 2 feature sets, study
# split + 5x5 repeated CV + spatial CV, ~106 samples) well within 15 minutes on 2
# cores: all five tuned fits on one 74-row training set took 8.3 s of CPU, so the
# 62 training sets take ~510 s on one core, ~260 s on two
# (benchmarks/models_timing.py). "quick" is a faithful miniature for tests and
# the demo (0.8 s of CPU per training set).
BUDGETS: dict[str, Budget] = {
    "default": Budget(n_trials=20, cv=3, fixed={"RF": {"n_estimators": 100}}),
    "quick": Budget(
        n_trials=3,
        cv=2,
        fixed={
            "RF": {"n_estimators": 30},
            "XGBoost": {"n_estimators": 50},
            "MLP": {"max_iter": 200},
        },
    ),
}


def get_budget(budget: str | Budget) -> Budget:
    """Look up a tuning budget by name (``"default"`` or ``"quick"``)."""
    if isinstance(budget, Budget):
        return budget
    if budget not in BUDGETS:
        raise ConfigError(f"unknown tuning budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    return BUDGETS[budget]


def _row_labels(X: Any) -> np.ndarray:
    """Labels by which a tuning observer can recognise rows: the DataFrame index
    (sample ids) when there is one, positions otherwise."""
    return X.index.to_numpy() if isinstance(X, pd.DataFrame) else np.arange(len(X))


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]


def _space(name: str, n_features: int, fixed: Mapping[str, Any]) -> dict[str, Any]:
    space = {k: v for k, v in SEARCH_SPACES[name].items() if k not in fixed}
    if name == "PLSR" and "n_components" in space:
        space["n_components"] = optuna.distributions.IntDistribution(1, min(8, n_features))
    return space


def _suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    """Ask ``trial`` for a value of ``name`` from a distribution of :data:`SEARCH_SPACES`."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)


FoldObserver = Callable[[int, np.ndarray, np.ndarray], None]


def _tune_single(
    name: str,
    X: Any,
    y: np.ndarray,
    *,
    indices: str | list[str] | None,
    n_trials: int,
    cv: int,
    random_state: int,
    log_target: bool,
    timeout: float | None,
    fixed: Mapping[str, Any],
    on_fold: FoldObserver | None,
    covariates: Any = None,
) -> tuple[dict[str, Any], float]:
    space = _space(name, _n_features(indices, X, covariates), fixed)
    if not space or n_trials <= 0:
        return dict(fixed), float("nan")
    folds = list(KFold(cv, shuffle=True, random_state=random_state).split(X))
    labels = _row_labels(X)
    seen: dict[tuple, float] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {k: _suggest(trial, k, dist) for k, dist in space.items()}
        key = tuple(sorted(params.items(), key=lambda kv: kv[0]))
        if key in seen:  # TPE may repeat a point of a small discrete space
            return seen[key]
        errors = []
        for fit_rows, score_rows in folds:
            if on_fold is not None:
                on_fold(trial.number, labels[fit_rows], labels[score_rows])
            model = make_model(
                name,
                indices=indices,
                log_target=log_target,
                random_state=random_state,
                params={**params, **fixed},
                covariates=covariates,
            )
            model.fit(_take(X, fit_rows), y[fit_rows])
            scored = _take(X, score_rows)
            ok = _scored_rows(model, scored)
            pred = np.asarray(model.predict(_take(scored, np.flatnonzero(ok))), float).ravel()
            rmse = float(np.sqrt(np.mean((pred - y[score_rows][ok]) ** 2)))
            errors.append(rmse if np.isfinite(rmse) else np.inf)
        seen[key] = float(np.mean(errors))
        return seen[key]

    sampler = optuna.samplers.TPESampler(
        seed=random_state, n_startup_trials=max(2, min(10, n_trials // 2))
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        study.optimize(objective, n_trials=n_trials, timeout=timeout)
    return {**study.best_params, **fixed}, float(study.best_value)


def tune_model(
    name: str,
    X: Any,
    y: Any,
    *,
    indices: str | list[str] | None = "novel",
    n_trials: int | None = None,
    cv: int | None = None,
    random_state: int = 0,
    log_target: bool = False,
    timeout: float | None = None,
    budget: str | Budget = "default",
    fixed: Mapping[str, Any] | None = None,
    on_fold: FoldObserver | None = None,
    covariates: Any = None,
) -> dict[str, Any]:
    """Tune a model's hyperparameters on the given (training) rows only.

    Optuna's TPE sampler, seeded, proposes parameters from
    :data:`SEARCH_SPACES`; each proposal is scored by the mean RMSE (in the
    target's unit, also with ``log_target``) of a shuffled, seeded inner
    k-fold cross-validation on ``X``, ``y``. No other rows are ever used, so
    tuning inside an outer training fold never sees that fold's test rows.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`. ``"Stacking"`` tunes each base learner in
        its own space on the same inner folds (``n_trials`` each).
    X : DataFrame or array
        Reflectance by band role of the training rows.
    y : array-like
        Target of the training rows.
    indices, log_target, random_state
        As in :func:`make_model`.
    n_trials, cv : int, optional
        Trials and inner folds; taken from ``budget`` when not given.
    timeout : float, optional
        Seconds after which a search stops (per learner); makes results depend
        on machine speed, so reproducible runs leave it None.
    budget : {"default", "quick"} or Budget
        Trial count, inner folds and parameters held fixed, see :data:`BUDGETS`.
    fixed : mapping, optional
        Parameters to hold at a value (names as ``make_model``'s ``params``,
        ``"<base>__<name>"`` for Stacking); they win over the budget's.
    on_fold : callable, optional
        ``on_fold(trial_number, fit_rows, scored_rows)`` is called before every
        inner fit with the row labels (DataFrame index, else positions) that the
        fit uses and that its score uses: an observer for tests and audits.
        Pass a plain function (not a bound method) so that cloning keeps it.
    covariates : Covariates, optional
        As in :func:`make_model`; inner folds score only rows whose categorical
        levels their fit rows had.

    Returns
    -------
    dict
        Parameters for ``make_model(name, params=...)``, including the fixed
        ones. (:class:`TunedModel` also keeps the best inner-CV RMSE.)
    """
    params, _ = _tune(
        name, X, y, indices=indices, n_trials=n_trials, cv=cv, random_state=random_state,
        log_target=log_target, timeout=timeout, budget=budget, fixed=fixed, on_fold=on_fold,
        covariates=covariates,
    )  # fmt: skip
    return params


def _tune(
    name: str,
    X: Any,
    y: Any,
    *,
    indices: str | list[str] | None,
    n_trials: int | None,
    cv: int | None,
    random_state: int,
    log_target: bool,
    timeout: float | None,
    budget: str | Budget,
    fixed: Mapping[str, Any] | None,
    on_fold: FoldObserver | None,
    covariates: Any = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    _check_name(name)
    plan = get_budget(budget)
    n_trials = plan.n_trials if n_trials is None else int(n_trials)
    cv = plan.cv if cv is None else int(cv)
    y = np.asarray(y, dtype=float).ravel()
    if n_trials > 0 and len(y) < 2 * cv:
        raise SampleDataError(
            f"tuning with {cv} inner folds needs at least {2 * cv} training rows, "
            f"got n_samples={len(y)}; "
            "use fewer folds, more samples, or --trials 0 for untuned defaults"
        )
    common = dict(
        X=X, y=y, indices=indices, n_trials=n_trials, cv=cv, random_state=random_state,
        log_target=log_target, timeout=timeout, on_fold=on_fold, covariates=covariates,
    )  # fmt: skip
    if name != "Stacking":
        held = {**plan.fixed.get(name, {}), **(fixed or {})}
        params, rmse = _tune_cached(name, fixed=held, **common)
        return params, {name: rmse}
    split = _split_stacking_params(fixed or {})
    params = {f"meta_{k}": v for k, v in split["meta"].items()}
    scores = {}
    for base in BASE_LEARNERS:
        held = {**plan.fixed.get(base, {}), **split[base]}
        best, scores[base] = _tune_cached(base, fixed=held, **common)
        params.update({f"{base}__{k}": v for k, v in best.items()})
    return params, scores


# Tuning results by everything that decides them. The Stacking model tunes its
# bases exactly as the single models MLP, RF and XGBoost are tuned, so when both
# are evaluated on the same training rows (the same fold of a cross-validation)
# the second search is looked up instead of rerun: the same numbers, about half
# the time. Only deterministic searches are kept (no timeout, no observer).
_TUNING_CACHE: dict[tuple, tuple[dict[str, Any], float]] = {}
_TUNING_CACHE_SIZE = 4096


def clear_tuning_cache() -> None:
    """Forget remembered tuning results (they are only ever reused for identical input)."""
    _TUNING_CACHE.clear()


def _fingerprint(X: Any, y: np.ndarray) -> str:
    digest = hashlib.sha256()
    if isinstance(X, pd.DataFrame):
        digest.update(repr(list(X.columns)).encode())
    if isinstance(X, pd.DataFrame) and any(X[c].dtype == object for c in X.columns):
        # Categorical covariates are text: hash the table's values instead.
        digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    else:
        digest.update(np.ascontiguousarray(np.asarray(X, dtype=float)).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=float).tobytes())
    return digest.hexdigest()


def _tune_cached(name: str, **kw: Any) -> tuple[dict[str, Any], float]:
    if kw["on_fold"] is not None or kw["timeout"] is not None:
        return _tune_single(name, **kw)
    indices = kw["indices"]
    key = (
        name,
        _fingerprint(kw["X"], kw["y"]),
        None if indices is None else tuple(resolve(indices)),
        kw["n_trials"],
        kw["cv"],
        kw["random_state"],
        kw["log_target"],
        repr(sorted(kw["fixed"].items())),
        repr(kw.get("covariates")),
    )
    if key not in _TUNING_CACHE:
        if len(_TUNING_CACHE) >= _TUNING_CACHE_SIZE:
            _TUNING_CACHE.pop(next(iter(_TUNING_CACHE)))
        _TUNING_CACHE[key] = _tune_single(name, **kw)
    params, rmse = _TUNING_CACHE[key]
    return dict(params), rmse


class TunedModel(RegressorMixin, BaseEstimator):
    """A model that tunes its hyperparameters on its training rows, then fits.

    Cloning it into every fold of a cross-validation puts the tuning inside the
    fold: the rows a fold is scored on never inform its hyperparameters.
    Searches are remembered by their exact input (rows, seed, budget), so that
    Stacking and the single models MLP, RF and XGBoost fitted on the same rows
    share one search per learner; the results are the same as without.

    Parameters
    ----------
    name : str, default="Stacking"
        One of :data:`MODEL_NAMES`.
    indices : str or list of str, default="novel"
        Index features, as in :func:`make_model`.
    budget : {"default", "quick"}, default="default"
        See :data:`BUDGETS`.
    n_trials, cv : int, optional
        Override the budget's trials and inner folds; ``n_trials=0`` fits the
        untuned defaults (plus the budget's fixed parameters).
    log_target : bool, default=False
        Model log10 of the target.
    random_state : int, default=0
        Seed of tuning and of the model.
    timeout : float, optional
        Per-learner time limit of the search (makes results machine-dependent).
    fixed : dict, optional
        Parameters held at a value instead of tuned, see :func:`tune_model`.
    on_fold : callable, optional
        Observer of tuning's inner folds, see :func:`tune_model`.
    covariates : Covariates, optional
        Covariate columns used as predictors, see :func:`make_model`.

    Attributes
    ----------
    best_params_ : dict
        The parameters the final model was fitted with.
    inner_cv_rmse_ : dict
        Best inner-CV RMSE per tuned learner (optimistic: the best of the trials).
    model_ : Pipeline
        The fitted ``make_model(name, params=best_params_)``.
    tuning_seconds_ : float
        Wall time of the search.
    """

    def __init__(
        self,
        name: str = "Stacking",
        indices: str | list[str] | None = "novel",
        budget: str = "default",
        n_trials: int | None = None,
        cv: int | None = None,
        log_target: bool = False,
        random_state: int = 0,
        timeout: float | None = None,
        fixed: dict[str, Any] | None = None,
        on_fold: FoldObserver | None = None,
        covariates: Any = None,
    ):
        self.name = name
        self.indices = indices
        self.budget = budget
        self.n_trials = n_trials
        self.cv = cv
        self.log_target = log_target
        self.random_state = random_state
        self.timeout = timeout
        self.fixed = fixed
        self.on_fold = on_fold
        self.covariates = covariates

    def fit(self, X: Any, y: Any) -> TunedModel:
        X, y = self._check_input(X, y)
        start = time.perf_counter()
        self.best_params_, self.inner_cv_rmse_ = _tune(
            self.name, X, y, indices=self.indices, n_trials=self.n_trials, cv=self.cv,
            random_state=self.random_state, log_target=self.log_target, timeout=self.timeout,
            budget=self.budget, fixed=self.fixed, on_fold=self.on_fold,
            covariates=self.covariates,
        )  # fmt: skip
        self.tuning_seconds_ = time.perf_counter() - start
        self.model_ = make_model(
            self.name,
            indices=self.indices,
            log_target=self.log_target,
            random_state=self.random_state,
            params=self.best_params_,
            covariates=self.covariates,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(X, np.asarray(y, dtype=float).ravel())
        return self

    def _check_input(self, X: Any, y: Any) -> tuple[Any, np.ndarray]:
        # Validate as scikit-learn does, but hand the model the original table:
        # its band-role columns are what IndexFeatures reads.
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        checked, y = check_X_y(X, y, y_numeric=True, ensure_all_finite=False, dtype=None)
        validate_data(self, X, skip_check_array=True, reset=True)
        return (X if isinstance(X, pd.DataFrame) else checked), np.asarray(y, dtype=float)

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        if not isinstance(X, pd.DataFrame):
            X = check_array(X, ensure_all_finite=False)
        validate_data(self, X, skip_check_array=True, reset=False)
        return np.asarray(self.model_.predict(X), dtype=float).ravel()


# -- training and prediction on field samples ---------------------------------------------------


def train_model(
    samples: Any,
    *,
    model: str = "Stacking",
    indices: str | list[str] = "novel",
    log_target: bool = False,
    budget: str = "default",
    n_trials: int | None = None,
    random_state: int = 0,
    covariates: Any = None,
) -> tuple[Pipeline, dict[str, Any]]:
    """Tune and fit a model on all usable rows of field samples.

    Parameters
    ----------
    samples : Samples
        From :func:`saltmap.io.samples.read_samples`.
    model : str
        One of :data:`MODEL_NAMES`.
    indices, log_target, random_state
        As in :func:`make_model`.
    budget, n_trials
        Tuning effort, see :class:`TunedModel`; ``n_trials=0`` fits the defaults.
    covariates : saltmap.features.covariates.Covariates, optional
        Sample columns used as predictors beside the indices; the fitted model
        then reads band roles plus these columns (see :mod:`saltmap.features.covariates`).

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
    if len(y) < 10:
        raise SampleDataError(
            f"{samples.source}: {len(y)} usable samples are too few to train a model; "
            "at least 10 are needed (see the rejected-row report for rows set aside)"
        )
    check_indices_defined(samples, indices)
    X = samples.reflectance
    if covariates:
        from saltmap.features.covariates import check_covariates_defined, predictor_table

        X = predictor_table(samples, covariates)
        check_covariates_defined(X, covariates, samples.source)
    tuned = TunedModel(
        model, indices=indices, budget=budget, n_trials=n_trials, log_target=log_target,
        random_state=random_state, covariates=covariates or None,
    ).fit(X, y)  # fmt: skip
    fitted = tuned.model_
    scaling = samples.scaling
    metadata = {
        "model": model,
        "params": tuned.best_params_,
        "log_target": log_target,
        "random_state": random_state,
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
            "budget": budget,
            "n_trials": get_budget(budget).n_trials if n_trials is None else n_trials,
            "inner_cv_rmse": tuned.inner_cv_rmse_,
            "tuning_seconds": round(tuned.tuning_seconds_, 2),
        },
    }
    if covariates:
        metadata["training"]["covariate_ranges"] = {
            name: [float(X[name].min()), float(X[name].max())] for name in covariates.numeric
        }
    return fitted, metadata


def check_indices_defined(samples: Any, indices: str | list[str]) -> None:
    """Refuse samples where an index is undefined (NaN): the models cannot use them,
    and filling them in would invent data."""
    step = IndexFeatures(indices).fit(samples.reflectance)
    features = pd.DataFrame(
        step.transform(samples.reflectance), index=samples.reflectance.index,
        columns=step.index_names_,
    )  # fmt: skip
    bad = features.isna()
    if bad.any(axis=None):
        from saltmap.io.samples import missing_by_sample

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

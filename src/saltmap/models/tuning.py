"""Tuning the study's models: Optuna searches on the training rows only.

Hyperparameters are tuned with Optuna's TPE sampler [3]_ on the training rows
only, scored by inner k-fold cross-validation (the random forest by its
out-of-bag error [5]_), in the spaces and with the budgets of
:mod:`saltmap.models.budgets`; :class:`TunedModel` wraps tuning and fitting in
one estimator so that cross-validation tunes inside each fold.
A :class:`TuningCache` shared by several TunedModels lets the Stacking model and
the single models it is built of share their searches on the same rows.

References
----------
.. [3] Akiba, T., Sano, S., Yanase, T., Ohta, T., Koyama, M. (2019). Optuna: a
   next-generation hyperparameter optimization framework. KDD '19, 2623–2631.
.. [5] Probst, P., Wright, M. N., Boulesteix, A.-L. (2019). Hyperparameters and
   tuning strategies for random forest. WIREs Data Mining and Knowledge
   Discovery 9(3), e1301.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, validate_data

from saltmap.errors import SampleDataError
from saltmap.features.indices import resolve
from saltmap.models.budgets import Budget, get_budget, search_space, suggest
from saltmap.models.building import (
    BASE_LEARNERS,
    check_model_name,
    make_model,
    split_stacking_params,
)
from saltmap.models.inspect import seen_rows, take_rows
from saltmap.models.tuning_cache import TuningCache, fingerprint


def _n_features(indices: str | list[str] | None, X: Any, covariates: Any = None) -> int:
    if indices is None:
        return np.shape(X)[1]
    return len(resolve(indices)) + (len(covariates.names) if covariates else 0)


def _row_labels(X: Any) -> np.ndarray:
    """Labels by which a tuning observer can recognise rows: the DataFrame index
    (sample ids) when there is one, positions otherwise."""
    return X.index.to_numpy() if isinstance(X, pd.DataFrame) else np.arange(len(X))


FoldObserver = Callable[[int, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class TuneSettings:
    """How :func:`tune_model` searches, as one object built once and shared.

    Each field means what :func:`tune_model`'s keyword of the same name means,
    and has the same default.
    """

    indices: str | list[str] | None = "novel"
    n_trials: int | None = None
    cv: int | None = None
    random_state: int = 0
    log_target: bool = False
    timeout: float | None = None
    budget: str | Budget = "default"
    fixed: Mapping[str, Any] | None = None
    on_fold: FoldObserver | None = None
    covariates: Any = None
    cache: TuningCache | None = None


def _tune_single(name: str, X: Any, y: np.ndarray, s: TuneSettings) -> tuple[dict[str, Any], float]:
    """One learner's search; ``s`` holds the trials, folds and fixed parameters resolved."""
    fixed = dict(s.fixed or {})
    space = search_space(name, _n_features(s.indices, X, s.covariates), fixed)
    if not space or s.n_trials <= 0:
        return fixed, float("nan")
    out_of_bag = name == "RF" and get_budget(s.budget).rf_out_of_bag
    everything = np.arange(len(y))
    folds = (
        [(everything, everything)]
        if out_of_bag
        else list(KFold(s.cv, shuffle=True, random_state=s.random_state).split(X))
    )
    labels = _row_labels(X)
    seen: dict[tuple, float] = {}

    def objective(trial: optuna.Trial) -> float:
        params = {k: suggest(trial, k, dist) for k, dist in space.items()}
        key = tuple(sorted(params.items(), key=lambda kv: kv[0]))
        if key in seen:  # TPE may repeat a point of a small discrete space
            return seen[key]
        errors = []
        for step, (fit_rows, score_rows) in enumerate(folds):
            if s.on_fold is not None:
                s.on_fold(trial.number, labels[fit_rows], labels[score_rows])
            if out_of_bag:
                errors.append(_out_of_bag_rmse(X, y, {**params, **fixed}, s))
                continue
            fold = (fit_rows, score_rows)
            errors.append(_fold_rmse(name, X, y, fold, {**params, **fixed}, s))
            trial.report(float(np.mean(errors)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        seen[key] = float(np.mean(errors))
        return seen[key]

    best, score = _optimize(objective, s)
    return {**best, **fixed}, score


def _fold_rmse(
    name: str,
    X: Any,
    y: np.ndarray,
    fold: tuple[np.ndarray, np.ndarray],
    params: dict[str, Any],
    s: TuneSettings,
) -> float:
    """RMSE of one inner fold's fit on the rows whose categorical levels it saw (inf if none)."""
    fit_rows, score_rows = fold
    model = make_model(
        name,
        indices=s.indices,
        log_target=s.log_target,
        random_state=s.random_state,
        params=params,
        covariates=s.covariates,
    )
    model.fit(take_rows(X, fit_rows), y[fit_rows])
    scored = take_rows(X, score_rows)
    ok = seen_rows(model, scored)
    pred = np.asarray(model.predict(take_rows(scored, np.flatnonzero(ok))), float).ravel()
    rmse = float(np.sqrt(np.mean((pred - y[score_rows][ok]) ** 2)))
    return rmse if np.isfinite(rmse) else np.inf


def _out_of_bag_rmse(X: Any, y: np.ndarray, params: dict[str, Any], s: TuneSettings) -> float:
    """RMSE of a random forest's out-of-bag predictions of its own training rows.

    Each row is predicted by the trees whose bootstrap sample left it out, about a
    third of them, and back-transformed and held physical as the model's own
    predictions are. Every row is scored, so no categorical level goes unseen.
    """
    model = make_model(
        "RF",
        indices=s.indices,
        log_target=s.log_target,
        random_state=s.random_state,
        params=params,
        covariates=s.covariates,
    )
    model.set_params(model__regressor__oob_score=True)
    with warnings.catch_warnings():
        # A row in every bootstrap sample has no out-of-bag prediction: only with
        # tiny forests (the quick budget's 30 trees: one row in a million).
        warnings.simplefilter("ignore", UserWarning)
        model.fit(X, y)
    target = model.named_steps["model"]
    oob = np.asarray(target.regressor_.oob_prediction_, float).reshape(-1, 1)
    pred = target.transformer_.inverse_transform(oob).ravel()
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    return rmse if np.isfinite(rmse) else np.inf


def _optimize(objective: Callable[[optuna.Trial], float], s: TuneSettings) -> tuple[Any, float]:
    """Run the seeded TPE search; the best parameters found and their score."""
    sampler = optuna.samplers.TPESampler(
        seed=s.random_state, n_startup_trials=max(2, min(10, s.n_trials // 2))
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = get_budget(s.budget)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=budget.prune_after)
        if budget.prune_after is not None
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        study.optimize(objective, n_trials=s.n_trials, timeout=s.timeout)
    return study.best_params, float(study.best_value)


def tune_model(
    name: str, X: Any, y: Any, settings: TuneSettings | None = None, **options: Any
) -> dict[str, Any]:
    """Tune a model's hyperparameters on the given (training) rows only.

    Optuna's TPE sampler, seeded, proposes parameters from
    :data:`SEARCH_SPACES`; each proposal is scored by the mean RMSE (in the
    target's unit, also with ``log_target``) of a shuffled, seeded inner
    k-fold cross-validation on ``X``, ``y``; the random forest's proposals by
    its out-of-bag RMSE on ``X``, ``y`` (see :class:`Budget`). No other rows are
    ever used, so tuning inside an outer training fold never sees that fold's
    test rows.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`. ``"Stacking"`` tunes each base learner in
        its own space on the same inner folds (``n_trials`` each).
    X : DataFrame or array
        Reflectance by band role of the training rows.
    y : array-like
        Target of the training rows.
    settings : TuneSettings, optional
        The keywords below as one object; keywords given beside it win over its
        fields. An unknown keyword is a TypeError naming it.
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
    cache : TuningCache, optional
        Where searches are looked up and remembered (see :class:`TuningCache`);
        None searches every time.

    Returns
    -------
    dict
        Parameters for ``make_model(name, params=...)``, including the fixed
        ones. (:class:`TunedModel` also keeps the best inner-CV RMSE.)
    """
    params, _ = _tune(name, X, y, replace(settings or TuneSettings(), **options))
    return params


def _tune(name: str, X: Any, y: Any, s: TuneSettings) -> tuple[dict[str, Any], dict[str, float]]:
    """Best parameters of ``name`` and the best inner-CV RMSE of each learner searched."""
    check_model_name(name)
    plan = get_budget(s.budget)
    n_trials = plan.n_trials if s.n_trials is None else int(s.n_trials)
    cv = plan.cv if s.cv is None else int(s.cv)
    y = np.asarray(y, dtype=float).ravel()
    if n_trials > 0 and len(y) < 2 * cv:
        raise SampleDataError(
            f"tuning with {cv} inner folds needs at least {2 * cv} training rows, "
            f"got n_samples={len(y)}; "
            "use fewer folds, more samples, or --trials 0 for untuned defaults"
        )
    resolved = replace(s, n_trials=n_trials, cv=cv)
    if name != "Stacking":
        held = {**plan.fixed.get(name, {}), **(s.fixed or {})}
        params, rmse = _search(name, X, y, replace(resolved, fixed=held))
        return params, {name: rmse}
    split = split_stacking_params(s.fixed or {})
    params = {f"meta_{k}": v for k, v in split["meta"].items()}
    scores = {}
    for base in BASE_LEARNERS:
        held = {**plan.fixed.get(base, {}), **split[base]}
        best, scores[base] = _search(base, X, y, replace(resolved, fixed=held))
        params.update({f"{base}__{k}": v for k, v in best.items()})
    return params, scores


def _search(name: str, X: Any, y: np.ndarray, s: TuneSettings) -> tuple[dict[str, Any], float]:
    """One learner's search, looked up in ``s.cache`` when it is deterministic."""
    if s.cache is None or s.on_fold is not None or s.timeout is not None:
        return _tune_single(name, X, y, s)
    key = (
        name,
        fingerprint(X, y),
        None if s.indices is None else tuple(resolve(s.indices)),
        s.n_trials,
        s.cv,
        s.random_state,
        s.log_target,
        repr(sorted(s.fixed.items())),
        repr(s.covariates),
        get_budget(s.budget).rf_out_of_bag,
    )
    return s.cache.lookup(key, lambda: _tune_single(name, X, y, s))


class TunedModel(RegressorMixin, BaseEstimator):
    """A model that tunes its hyperparameters on its training rows, then fits.

    Cloning it into every fold of a cross-validation puts the tuning inside the
    fold: the rows a fold is scored on never inform its hyperparameters.
    TunedModels given the same ``cache`` remember searches by their exact input
    (rows, seed, budget), so that Stacking and the single models MLP, RF and
    XGBoost fitted on the same rows share one search per learner; the results are
    the same as without.

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
    cache : TuningCache, optional
        Searches shared with the other models given the same cache; None (the
        default) shares nothing.

    Attributes
    ----------
    best_params_ : dict
        The parameters the final model was fitted with.
    inner_cv_rmse_ : dict
        Best inner-CV RMSE per tuned learner (optimistic: the best of the trials;
        the random forest's is out-of-bag, see :class:`Budget`).
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
        cache: TuningCache | None = None,
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
        self.cache = cache

    def fit(self, X: Any, y: Any) -> TunedModel:
        X, y = self._check_input(X, y)
        start = time.perf_counter()
        settings = TuneSettings(**{f.name: getattr(self, f.name) for f in fields(TuneSettings)})
        self.best_params_, self.inner_cv_rmse_ = _tune(self.name, X, y, settings)
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

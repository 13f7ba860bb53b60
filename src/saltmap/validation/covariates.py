"""What covariates add: the same models with and without them on the same folds.

:func:`covariate_gain` scores the same models with and without covariates on the
same repeated k-fold splits, with the paired difference and its CI, and the
permutation importance [4]_ of every predictor on each test fold. Test rows whose
categorical level is missing from their training fold are left out of the
scores of *every* model compared, and counted (see
:mod:`saltmap.features.covariates` for the level rules).

References
----------
.. [4] Breiman, L. (2001). Random forests. Machine Learning 45, 5–32.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.model_selection import RepeatedKFold

from saltmap.errors import ConfigError
from saltmap.features.covariates import Covariates, check_covariates_defined, predictor_table
from saltmap.features.indices import resolve
from saltmap.models.building import make_model, undefined_rows
from saltmap.models.inspect import OnPredictors, predictors_of, seen_rows
from saltmap.validation.metrics import bootstrap_draws, paired_difference
from saltmap.validation.protocols import collect_folds
from saltmap.validation.splits import materialise_splits


@dataclass
class CovariateGain:
    """What covariates add: the same models with and without them on the same folds.

    Attributes
    ----------
    summary : DataFrame
        One row per model and predictor set (``indices`` or ``indices+covariates``):
        mean ± sd over folds of R², RMSE, MAE, the pooled out-of-fold R², and for
        the covariate rows the paired difference to the same model without them
        (``dR2``, ``dRMSE``, ``dR2_pooled``) with a paired bootstrap 95 % CI.
    folds : DataFrame
        Every fold's metrics.
    importance : DataFrame
        Permutation importance (mean decrease of R² on the test fold, shuffled
        ``n_repeats`` times) of each predictor of each covariate model:
        mean and sd over folds.
    n_flagged : int
        Test rows left out of every score because their categorical level was not
        in their training fold (summed over folds).
    settings : dict
    """

    summary: pd.DataFrame
    folds: pd.DataFrame
    importance: pd.DataFrame
    n_flagged: int
    settings: dict[str, Any]


@dataclass(frozen=True)
class GainSettings:
    """How :func:`covariate_gain` compares, as one object built once and shared.

    Each field means what :func:`covariate_gain`'s keyword of the same name means,
    and has the same default.
    """

    models: Sequence[str] = ("RF",)
    indices: str | list[str] = "novel"
    cv: Any = None
    params: Mapping[str, Mapping[str, Any]] | None = None
    random_state: int = 0
    n_repeats: int = 10
    n_boot: int = 2000
    log_target: bool = False

    def splitter(self) -> Any:
        """The outer splitter: ``cv``, else ``RepeatedKFold(5, 5, random_state)``."""
        if self.cv is not None:
            return self.cv
        return RepeatedKFold(n_splits=5, n_repeats=5, random_state=self.random_state)


@dataclass(frozen=True)
class _Setup:
    """What every fold shares: both inputs, the target, the covariates and the settings."""

    X0: pd.DataFrame  # band roles only
    X1: pd.DataFrame  # band roles and covariates
    y: np.ndarray
    covariates: Covariates
    settings: GainSettings

    @property
    def names(self) -> list[str]:
        return list(self.settings.models)

    @property
    def random_state(self) -> int:
        return self.settings.random_state

    def model(self, name: str, covariates: Covariates | None) -> Any:
        s = self.settings
        return make_model(
            name, indices=s.indices, covariates=covariates, params=dict(s.params or {}).get(name),
            random_state=s.random_state, log_target=s.log_target,
        )  # fmt: skip


def _fit_with_covariates(
    setup: _Setup, train: np.ndarray, test: np.ndarray
) -> tuple[dict[str, tuple[Any, float]], np.ndarray]:
    """Each covariate model fitted on ``train`` (with its seconds), and the test rows
    whose every level every one of them knows."""
    fitted, kept = {}, test
    for name in setup.names:
        start = time.perf_counter()
        model = setup.model(name, setup.covariates).fit(setup.X1.iloc[train], setup.y[train])
        fitted[name] = (model, time.perf_counter() - start)
        seen = seen_rows(model, setup.X1.iloc[test])
        kept = kept[np.isin(kept, test[seen])]
    return fitted, kept


def _importance(setup: _Setup, name: str, model: Any, kept: np.ndarray) -> pd.DataFrame:
    """Permutation importance of each index and covariate of ``model`` on the test rows."""
    table = predictors_of(model, setup.X1.iloc[kept])
    result = permutation_importance(
        OnPredictors(model), table, setup.y[kept], scoring="r2",
        n_repeats=setup.settings.n_repeats, random_state=setup.random_state,
    )  # fmt: skip
    return pd.DataFrame(
        {"model": name, "predictor": table.columns, "importance": result.importances_mean}
    )


def _gain_fold(setup: _Setup, train: np.ndarray, test: np.ndarray) -> dict[str, Any]:
    """One fold: every model with and without covariates, scored on the same rows."""
    jobs: dict[str, dict[str, Any]] = {}
    importance = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted, kept = _fit_with_covariates(setup, train, test)
        for name in setup.names:
            start = time.perf_counter()
            without = setup.model(name, None).fit(setup.X0.iloc[train], setup.y[train])
            pred0 = np.asarray(without.predict(setup.X0.iloc[kept]), dtype=float).ravel()
            seconds0 = time.perf_counter() - start
            with_cov, seconds1 = fitted[name]
            pred1 = np.asarray(with_cov.predict(setup.X1.iloc[kept]), dtype=float).ravel()
            jobs[name] = {"test": pred0, "train": None, "seconds": seconds0, "selected": ""}
            jobs[f"{name}+covariates"] = {
                "test": pred1, "train": None, "seconds": seconds1, "selected": "",
            }  # fmt: skip
            importance.append(_importance(setup, name, with_cov, kept))
    return {"kept": kept, "n_flagged": len(test) - len(kept), "jobs": jobs,
            "importance": pd.concat(importance)}  # fmt: skip


def covariate_gain(
    samples: Any,
    covariates: Covariates,
    settings: GainSettings | None = None,
    *,
    n_jobs: int | None = None,
    **options: Any,
) -> CovariateGain:
    """Score the same models with and without covariates on the same folds.

    Each fold fits every model twice, on the indices alone and on the indices
    plus the covariates, with the same hyperparameters and seed, and scores
    both on the same held-out rows. Test rows whose categorical level is not in
    their training fold cannot be predicted by the covariate model; they are
    left out of *both* scores (and counted), so the comparison stays paired.
    The difference's 95 % CI is the paired bootstrap of
    :func:`saltmap.validation.protocols.paired_difference` (the same resampled rows for
    both). The permutation importance [4]_ of each predictor is computed on each
    test fold (:func:`sklearn.inspection.permutation_importance`, R²), each
    categorical covariate shuffled as one column.

    Parameters
    ----------
    samples : Samples
        Field samples with the covariate columns.
    covariates : Covariates
    settings : GainSettings, optional
        The keywords below but ``n_jobs``, as one object; keywords given beside it
        win over its fields. An unknown keyword is a TypeError naming it.
    n_jobs : int, optional
        Folds in parallel (joblib).
    models : sequence of str, default=("RF",)
        Names of :data:`saltmap.models.building.MODEL_NAMES`, fitted with their default
        (untuned) parameters unless ``params`` gives others.
    indices : str or list of str, default="novel"
    cv : splitter, optional
        Default ``RepeatedKFold(5, 5, random_state)``.
    params : mapping, optional
        ``{model name: parameters}`` as :func:`saltmap.models.building.make_model` takes.
    random_state : int
        Seed of the folds, the models, the shuffles and the bootstrap.
    n_repeats : int
        Shuffles per predictor and fold.
    n_boot : int
        Bootstrap draws of the CIs.
    log_target : bool, default=False
        Model log10 of the target (both variants); scores stay in the target's unit.

    Returns
    -------
    CovariateGain
    """
    settings = replace(settings or GainSettings(), **options)
    if not covariates:
        raise ConfigError("give at least one covariate to measure what it adds")
    y = samples.target.to_numpy(dtype=float)
    X1 = predictor_table(samples, covariates)
    check_covariates_defined(X1, covariates, samples.source)
    setup = _Setup(samples.reflectance, X1, y, covariates, settings)
    cv = settings.splitter()
    # A sample where an index is undefined is left out of every fold (as the evaluation
    # sets it aside for the feature sets needing that index); the folds stay the same.
    aside = undefined_rows(samples.reflectance, settings.indices)
    ok = ~samples.reflectance.index.isin(aside.index)
    splits = [(tr[ok[tr]], te[ok[te]]) for tr, te in materialise_splits(cv, setup.X0, y)]
    out = Parallel(n_jobs=n_jobs)(delayed(_gain_fold)(setup, train, test) for train, test in splits)
    return _summarise(setup, cv, splits, out)


def _summarise(
    setup: _Setup, cv: Any, splits: list[Any], out: list[dict[str, Any]]
) -> CovariateGain:
    """Pool the folds: per-model summaries, paired differences, importance, settings."""
    per_repeat = getattr(cv, "cvargs", {}).get("n_splits") or getattr(cv, "n_splits", None)
    kept_splits = [(train, job["kept"]) for (train, _), job in zip(splits, out, strict=True)]
    results = collect_folds([job["jobs"] for job in out], kept_splits, setup.y, per_repeat)
    folds = pd.concat(
        [r.folds.assign(model=k.split("+")[0], predictors="indices+covariates" if "+" in k
                        else "indices") for k, r in results.items()]
    )  # fmt: skip
    return CovariateGain(
        summary=_summary_rows(setup, results),
        folds=folds.reset_index(drop=True),
        importance=_pooled_importance(out),
        n_flagged=int(sum(job["n_flagged"] for job in out)),
        settings=_settings_record(setup, cv, len(splits)),
    )


def _summary_rows(setup: _Setup, results: dict[str, Any]) -> pd.DataFrame:
    """One row per model and predictor set; the covariate rows with their paired difference."""
    draws = bootstrap_draws(len(setup.y), setup.settings.n_boot, setup.random_state)
    rows = []
    for name in setup.names:
        for key, label in ((name, "indices"), (f"{name}+covariates", "indices+covariates")):
            row = {"model": name, "predictors": label, **results[key].summary(draws)}
            if key != name:
                row.update(paired_difference(results[key], results[name], draws))
            rows.append(row)
    return pd.DataFrame(rows)


def _pooled_importance(out: list[dict[str, Any]]) -> pd.DataFrame:
    """Mean and sd over folds of each predictor's permutation importance."""
    return (
        pd.concat([job["importance"] for job in out])
        .groupby(["model", "predictor"], sort=False)["importance"]
        .agg(["mean", "std"])
        .rename(columns={"std": "sd"})
        .reset_index()
    )


def _settings_record(setup: _Setup, cv: Any, n_folds: int) -> dict[str, Any]:
    """What the comparison was run with, as :attr:`CovariateGain.settings` records it."""
    s = setup.settings
    return {
        "covariates": setup.covariates.kinds,
        "min_count": setup.covariates.min_count,
        "indices": resolve(s.indices),
        "cv": repr(cv),
        "n_folds": n_folds,
        "random_state": s.random_state,
        "n_repeats": s.n_repeats,
        "n_boot": s.n_boot,
        "n_samples": len(setup.y),
        "log_target": s.log_target,
    }

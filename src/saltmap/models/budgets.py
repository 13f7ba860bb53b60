"""What tuning searches and how hard: the search spaces and the tuning budgets.

:data:`SEARCH_SPACES` gives each model's hyperparameters and the Optuna
distributions they are drawn from; :data:`BUDGETS` the trials, inner folds and
fixed parameters of the study's tuning (``"default"``) and of its miniature
(``"quick"``). :mod:`saltmap.models.tuning` runs the searches.

References
----------
.. [4] Probst, P., Boulesteix, A.-L. (2018). To tune or not to tune the number
   of trees in random forest. JMLR 18(181), 1–18.
.. [5] Probst, P., Wright, M. N., Boulesteix, A.-L. (2019). Hyperparameters and
   tuning strategies for random forest. WIREs Data Mining and Knowledge
   Discovery 9(3), e1301.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna

from saltmap.errors import ConfigError

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
    rf_out_of_bag : bool
        Score the random forest's trials by its out-of-bag error on all the
        training rows (one fit per trial) instead of the ``cv`` inner folds
        (``cv`` fits per trial). Out-of-bag error estimates a forest's
        generalisation error without holding rows out [5]_.
    prune_after : int or None
        Stop a trial after an inner fold when its mean RMSE so far is worse than
        the median of the earlier trials' at the same fold (Optuna's
        ``MedianPruner``), once this many trials have completed; None: every
        trial runs all ``cv`` folds. Only trials scored by inner folds are pruned.
    """

    n_trials: int
    cv: int
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    rf_out_of_bag: bool = True
    prune_after: int | None = None


# "default" is the study's tuning. Measured on 2026-12-02 on 2 cores: the full
# evaluation of benchmarks/evaluation_timing.py (132 training sets, 72 of them tuning
# all five models) took 653 s of wall and 1,260 s of CPU, over the 5 minutes of
# issue 16. Scoring the forest's trials out of bag cut its tuned fits from 238 to 95 s
# summed over the 25 repeated-CV folds on N-SI (benchmarks/rf_search.py), with pooled R²
# within noise under repeated CV and higher under spatial CV. Pruning the trials scored
# by inner folds (prune_after) then cut the whole from 525 to 436 and 445 s of CPU (runs
# within 15 minutes of each other; the machine's speed drifts by up to 15 % over hours)
# and its wall time from 273 to 227 and 234 s, with R² within noise of before (mean
# change -0.002, sd 0.016, over the 34 cross-validated model-set pairs; the same final
# model).
# On 2026-12-03, on a fresh machine of the same kind, the same benchmark took 499 s
# (960 CPU-s) at db3dcb2, the revision of the 227/234 s above, and 365 s (702 CPU-s) at
# 8dc27a4 (single runs, 8 minutes apart): the machine's speed moved, not the code's cost.
# On 2026-12-04, benchmarks/tuning_trials.py ran that evaluation with 20 and with 10
# trials, each with the tuning seeded 0 and 1 (splits fixed), twice (the first time by
# the script it was made from, with the same settings): 10 trials took
# 0.73x and 0.75x the wall time in one run (247 vs 340 s, 262 vs 349 s), 0.61x and
# 0.71x in the other (251 vs 409 s, 268 vs 377 s), and changed pooled R² over the 30
# cross-validated cells by a mean of +0.005 and -0.013 (mean |change| 0.028 and 0.026),
# no more than reseeding the same 20-trial search did (+0.016, mean |change| 0.031).
# The nested score of the chosen model moved as much with the seed (0.346 vs 0.257 at
# 20 trials) as with the trial count (0.346 vs 0.316 at seed 0), so the extra ten trials
# buy nothing measurable on ~100 samples.
# "quick" is a faithful miniature for tests and the demo.
BUDGETS: dict[str, Budget] = {
    "default": Budget(n_trials=10, cv=3, fixed={"RF": {"n_estimators": 100}}, prune_after=5),
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


def search_space(name: str, n_features: int, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """The distributions searched for ``name``: its space less the ``fixed`` parameters."""
    space = {k: v for k, v in SEARCH_SPACES[name].items() if k not in fixed}
    if name == "PLSR" and "n_components" in space:
        space["n_components"] = optuna.distributions.IntDistribution(1, min(8, n_features))
    return space


def suggest(trial: optuna.Trial, name: str, dist: Any) -> Any:
    """Ask ``trial`` for a value of ``name`` from a distribution of :data:`SEARCH_SPACES`."""
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, optuna.distributions.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)

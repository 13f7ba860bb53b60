"""What decides an evaluation's numbers: its plan, its settings and the study's models.

:class:`EvaluationSettings` is built once — by the CLI, the study or a library
user — and handed to :func:`saltmap.validation.evaluation.evaluate_study`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from saltmap.bands import ROLES
from saltmap.models.building import MODEL_NAMES
from saltmap.models.tuning import TunedModel
from saltmap.models.tuning_cache import TuningCache

PROTOCOLS: tuple[str, ...] = ("study", "repeated", "spatial")
FEATURE_SETS: dict[str, str] = {"N-SI": "novel", "SI": "classic"}
#: The six bands as features (reflectance by role, no index): definitions of one-band
#: "indices", so that they travel to worker processes and into model files like any index.
BAND_FEATURES: list[dict[str, Any]] = [
    {"name": f"band_{role}", "template": "band", "bands": [role], "transform": "identity"}
    for role in ROLES
]
#: Feature sets that are candidates of the final model's choice beside the evaluated
#: ones: the six bands alone, and all 21 study indices together.
CANDIDATE_SETS: dict[str, Any] = {"bands": BAND_FEATURES, "SI+N-SI": "study"}
#: Scene-like rows predicted once per candidate to measure its inference cost.
COST_ROWS = {"default": 200_000, "quick": 50_000}


@dataclass(frozen=True)
class Plan:
    """How much work an evaluation does (full or quick)."""

    n_splits: int
    n_repeats: int
    n_boot: int
    budget: str


FULL = Plan(n_splits=5, n_repeats=5, n_boot=2000, budget="default")
# Faithful in kind (every protocol, model and feature set, tuning in every fold),
# small in size: one repeat, a few trials, small forests.
QUICK = Plan(n_splits=5, n_repeats=1, n_boot=300, budget="quick")


def study_estimator(
    name: str,
    indices: str | list[str],
    *,
    quick: bool = False,
    n_trials: int | None = None,
    log_target: bool = False,
    random_state: int = 0,
    cache: TuningCache | None = None,
    covariates: Any = None,
) -> TunedModel:
    """One of the study's models, tuned on whatever rows it is fitted on.

    Models given the same ``cache`` share their tuning searches (see
    :class:`~saltmap.models.tuning_cache.TuningCache`); None shares nothing.
    """
    return TunedModel(
        name,
        indices=indices,
        budget=QUICK.budget if quick else FULL.budget,
        n_trials=n_trials,
        log_target=log_target,
        random_state=random_state,
        cache=cache,
        covariates=covariates or None,
    )


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything that decides an evaluation's numbers, built once (CLI, study, library).

    ``n_repeats`` and ``n_boot`` left None take the plan's (:data:`FULL` or :data:`QUICK`).

    Attributes
    ----------
    feature_sets : mapping, default={"N-SI": "novel", "SI": "classic"}
        Label -> index selection (see :func:`saltmap.features.indices.resolve`).
    models : sequence of str, default=MODEL_NAMES
    protocols : sequence of {"study", "repeated", "spatial"}
        ``study``: one stratified calibration/validation split (Table 4,
        figure 5); ``repeated``: repeated k-fold; ``spatial``: spatial block
        k-fold (blocks as in :class:`~saltmap.validation.splits.SpatialBlockKFold`).
    quick : bool, default=False
        A faithful miniature: one repeat, the ``quick`` tuning budget (few
        trials, small forests), fewer bootstrap draws.
    n_trials : int or None
        Optuna trials per model (per base learner for Stacking); ``None``:
        the budget's. 0 fits untuned defaults.
    n_repeats : int or None
        Repeats of the k-fold (5 folds); ``None``: 5, or 1 when ``quick``.
    validation_fraction : float, default=0.3
        The study's validation share.
    block_size : float or None
        Side of the spatial blocks in metres; ``None``: 4 × the median
        nearest-neighbour distance.
    nested_selection : bool, default=False
        Also evaluate, for feature sets of more than ``selection_k`` indices,
        the top ``selection_k`` by |Pearson r| chosen on all rows (as the study
        screens) and chosen inside each training fold.
    baseline : bool, default=True
        Compare with :func:`plain_forest` on the repeated folds.
    n_boot : int or None
        Bootstrap draws for the intervals; ``None``: 2000 (300 when quick).
    random_state : int, default=0
        Seed of the splits, the tuning, the models and the bootstrap.
    log_target : bool, default=False
        Model log10 of the target; metrics stay in the target's unit.
    n_jobs : int or None, default=2
        Training sets fitted in parallel.
    select : bool, default=True
        Choose the final model by the evidence (:mod:`saltmap.validation.selection`):
        every model on every feature set, on ``candidate_sets`` too, and the plain
        random forest, under the main protocol (spatial where the samples have
        coordinates, else repeated), with the one-standard-error rule and a nested
        cross-validation of the choice. Needs the repeated or spatial protocol.
    candidate_sets : mapping or None
        Extra feature sets of the choice, scored under the main protocol only;
        None: :data:`CANDIDATE_SETS` (the six bands alone, all 21 indices), or none
        with ``quick``.
    covariates : Covariates or None
        Sample columns used as predictors by the candidates of the choice: each
        candidate feature set is then scored with them too (label ``<set>+cov``).
    nested : bool, default=True
        Measure "choose, then fit" by nested cross-validation (see
        :func:`saltmap.validation.nested.nested_choice`).
    """

    feature_sets: Mapping[str, Any] = field(default_factory=lambda: dict(FEATURE_SETS))
    models: Sequence[str] = MODEL_NAMES
    protocols: Sequence[str] = PROTOCOLS
    quick: bool = False
    n_trials: int | None = None
    n_repeats: int | None = None
    validation_fraction: float = 0.3
    block_size: float | None = None
    nested_selection: bool = False
    selection_k: int = 4
    baseline: bool = True
    n_boot: int | None = None
    random_state: int = 0
    log_target: bool = False
    n_jobs: int | None = 2
    select: bool = True
    candidate_sets: Mapping[str, Any] | None = None
    covariates: Any = None
    nested: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.protocols) - set(PROTOCOLS)
        if unknown:
            raise ValueError(f"unknown protocol(s) {sorted(unknown)}; choose from {PROTOCOLS}")
        if self.n_repeats is None:
            object.__setattr__(self, "n_repeats", self.plan.n_repeats)
        if self.n_boot is None:
            object.__setattr__(self, "n_boot", self.plan.n_boot)

    @property
    def plan(self) -> Plan:
        return QUICK if self.quick else FULL

    def model(
        self,
        name: str,
        indices: Any,
        *,
        cache: TuningCache | None = None,
        covariates: Any = None,
    ) -> TunedModel:
        """One of the study's models on ``indices`` (and ``covariates``), tuned as these
        settings say (sharing its searches through ``cache`` when one is given)."""
        return study_estimator(
            name, indices, quick=self.quick, n_trials=self.n_trials, log_target=self.log_target,
            random_state=self.random_state, cache=cache, covariates=covariates,
        )  # fmt: skip

    def main_protocol(self, has_coords: bool) -> str | None:
        """The protocol the final model is chosen under: spatial where the samples have
        coordinates and it runs, else repeated; None when neither runs."""
        if has_coords and "spatial" in self.protocols:
            return "spatial"
        return "repeated" if "repeated" in self.protocols else None

    @property
    def extra_sets(self) -> Mapping[str, Any]:
        """The candidate feature sets beside the evaluated ones: :data:`CANDIDATE_SETS`
        unless given; none with the quick plan (its miniature of the choice weighs the
        evaluated sets and the plain random forest, so that the demo stays within its
        minute)."""
        if self.candidate_sets is not None:
            return self.candidate_sets
        return {} if self.quick else CANDIDATE_SETS

    @property
    def cost_rows(self) -> int:
        """Scene-like rows predicted once per candidate to time it."""
        return COST_ROWS[self.plan.budget]

    def record(self, samples: Any, spatial_info: Mapping[str, Any]) -> dict[str, Any]:
        """The settings as the result keeps them (``settings.json``)."""
        return {
            "n_samples": len(samples.target),
            "target": getattr(samples, "target_name", "target"),
            "target_unit": getattr(samples, "target_unit", None),
            "feature_sets": dict(self.feature_sets),
            "models": list(self.models),
            "protocols": list(self.protocols),
            "quick": self.quick,
            "budget": self.plan.budget,
            "n_trials": self.n_trials,
            "n_splits": self.plan.n_splits,
            "n_repeats": self.n_repeats,
            "validation_fraction": self.validation_fraction,
            "block_size": self.block_size,
            **spatial_info,
            "nested_selection": self.nested_selection,
            "selection_k": self.selection_k,
            "n_boot": self.n_boot,
            "random_state": self.random_state,
            "log_target": self.log_target,
            "select": self.select,
            "covariates": list(self.covariates.names) if self.covariates else [],
        }

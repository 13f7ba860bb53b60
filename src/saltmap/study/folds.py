"""The outer folds of the study's protocols, as the evaluation makes them.

The covariate gain and the intervals' coverage are measured on the same folds as
:func:`saltmap.validation.evaluation.evaluate_study` scores the models: the same
fold makers with the same arguments (number of folds of the evaluation's plan,
repeats, block size, seed), so that the numbers of the report's sections compare.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.model_selection import BaseCrossValidator, RepeatedKFold

from saltmap.study.context import log
from saltmap.validation import FULL, QUICK, SpatialBlockKFold, materialise_splits

if TYPE_CHECKING:
    from saltmap.io import Samples
    from saltmap.study.config import StudyConfig

Splits = list[tuple[np.ndarray, np.ndarray]]


def outer_splitter(
    cfg: StudyConfig, samples: Samples, protocol: str
) -> RepeatedKFold | BaseCrossValidator | None:
    """The outer folds of ``protocol`` (``repeated`` or ``spatial``), seeded as the
    evaluation's; None for the spatial protocol when the samples have no coordinates."""
    seed, v = cfg.seed, cfg.validation
    n_splits = (QUICK if cfg.tuning.budget == "quick" else FULL).n_splits
    if protocol == "repeated":
        return RepeatedKFold(n_splits=n_splits, n_repeats=v.repeats, random_state=seed)
    if samples.coords is None:
        log.warning("spatial %s left out: the samples have no coordinates", protocol)
        return None
    return SpatialBlockKFold(n_splits, coords=samples.coords, crs=samples.crs,
                             block_size=v.block_size, random_state=seed)  # fmt: skip


def outer_splits(cfg: StudyConfig, samples: Samples, protocol: str) -> Splits | None:
    """The folds of :func:`outer_splitter`, materialised as (train, test) index pairs."""
    splitter = outer_splitter(cfg, samples, protocol)
    if splitter is None:
        return None
    y = samples.target.to_numpy(dtype=float)
    return materialise_splits(splitter, samples.reflectance, y)

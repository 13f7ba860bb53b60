"""How the trust stage fits: the settings objects of intervals and of trust for mapping.

Built once (by the CLI or the study) and passed to
:func:`~saltmap.trust.calibration.evaluate_coverage` and
:func:`~saltmap.trust.maps.fit_trust`, whose keywords of the same names they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class IntervalSettings:
    """How intervals are fitted, as one object built once and shared.

    Each field means what the parameter of the same name of
    :class:`~saltmap.trust.intervals.ConformalIntervals` means, and has the same default.
    """

    confidence: float = 0.9
    cv: Any = 5
    method: str = "normalized"
    conformity_score: str = "absolute"
    random_state: int | None = 0
    lower_limit: float | None = 0.0


@dataclass(frozen=True)
class TrustSettings(IntervalSettings):
    """How :func:`~saltmap.trust.maps.fit_trust` fits intervals and the AOA, built once.

    The interval fields of :class:`IntervalSettings`, then
    ``weights`` and ``keep_fold_models`` as :func:`~saltmap.trust.maps.fit_trust` takes them.
    """

    weights: Any = "permutation"
    keep_fold_models: bool = False

    def interval_settings(self) -> IntervalSettings:
        """The interval part of these settings."""
        return IntervalSettings(**{f.name: getattr(self, f.name) for f in fields(IntervalSettings)})

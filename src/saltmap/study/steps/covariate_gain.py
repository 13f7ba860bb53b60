"""Part of step 4, covariate gain: the final model with and without the covariates on the
evaluation's own folds, and each predictor's permutation importance."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from saltmap.features import resolve_selection
from saltmap.study.folds import outer_splitter
from saltmap.study.tables import compact_gain_table, compact_importance_table, flagged_text
from saltmap.validation import GainSettings, covariate_gain

if TYPE_CHECKING:
    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData


@dataclass
class Gain:
    """The comparison over the protocols measured.

    Attributes
    ----------
    summary : DataFrame
        Per protocol and model: scores without and with the covariates, and Δ.
    importance : DataFrame
        Per protocol, model and predictor: permutation importance.
    flagged : dict
        Protocol → test predictions left out (a categorical level their fold lacked).
    """

    summary: pd.DataFrame
    importance: pd.DataFrame
    flagged: dict[str, int] = field(default_factory=dict)


def _first_protocol(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["protocol", *[c for c in frame if c != "protocol"]]]


def measure_gain(
    ctx: RunContext, data: SampleData, discovered: Sequence[Mapping[str, Any]] = ()
) -> Gain | None:
    """:func:`saltmap.features.covariates.covariate_gain` on each cross-validation protocol
    (repeated if only the study split runs); None when no protocol can run.

    ``discovered``: the definitions of the discovered indices (the discovery step's); the
    final indices are resolved with them, so the workers compute them as values.
    """
    cfg = ctx.cfg
    cov, v = cfg.covariates, cfg.validation
    protocols = [p for p in v.protocols if p != "study"] or ["repeated"]
    n_boot = v.bootstrap or (300 if cfg.tuning.budget == "quick" else 2000)
    summaries, importance, flagged = [], [], {}
    indices = resolve_selection(cfg.models.final_indices, discovered=discovered)
    final = cfg.models.final
    if ctx.final is not None:  # the evaluation's choice (issue 14)
        indices, final = ctx.final.indices, ctx.final.name
    settings = GainSettings(
        models=list(cov.models or [final]), indices=indices, random_state=cfg.seed,
        log_target=cfg.models.log_target,
    )  # fmt: skip
    for protocol in protocols:
        splitter = outer_splitter(cfg, data.samples, protocol)
        if splitter is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLP convergence notes
            gain = covariate_gain(
                data.samples, ctx.covariates, settings, cv=splitter, n_boot=n_boot, n_jobs=2
            )
        summaries.append(gain.summary.assign(protocol=protocol))
        importance.append(gain.importance.assign(protocol=protocol))
        flagged[protocol] = gain.n_flagged
    if not summaries:
        return None
    return Gain(
        _first_protocol(pd.concat(summaries, ignore_index=True)),
        _first_protocol(pd.concat(importance, ignore_index=True)),
        flagged,
    )


def write_gain_section(ctx: RunContext, data: SampleData, gain: Gain) -> None:
    """The with/without table, the importance table and one summary sentence per model."""
    sec, covariates = ctx.section("covariates"), ctx.covariates
    kinds = ", ".join(f"{n} ({k})" for n, k in covariates.kinds.items())
    unit = data.samples.target_unit or ""
    sec.add(
        ctx.save_table(
            "covariate_gain",
            gain.summary,
            f"With and without the covariates {kinds}",
            "Each fold fits every model twice, on the indices alone and with the covariates, "
            "and scores both on the same held-out samples; Δ = with − without, with a paired "
            f"bootstrap 95 % CI (an interval spanning 0: no demonstrated gain). RMSE in {unit}."
            + flagged_text(gain.flagged),
            shown=compact_gain_table(gain.summary),
        )
    )
    sec.add(
        ctx.save_table(
            "covariate_importance",
            gain.importance,
            "Permutation importance of each predictor",
            "Mean decrease of R² on each test fold when the predictor is shuffled (10 "
            "shuffles per fold), mean ± sd over folds; a categorical covariate is shuffled "
            "as one column. Near 0 or negative: the model does not need it.",
            shown=compact_importance_table(gain.importance),
        )
    )
    for protocol, part in gain.summary.groupby("protocol", sort=False):
        for row in part[part["predictors"] != "indices"].itertuples():
            ctx.highlights.append(
                f"Adding the covariates ({', '.join(covariates.names)}) to {row.model} "
                f"changes the pooled R² by {row.dR2_pooled:+.3f} "
                f"[{row.dR2_pooled_ci_low:+.3f}, {row.dR2_pooled_ci_high:+.3f}] under "
                f"{protocol} CV (Covariates)."
            )


def run_covariate_gain(
    ctx: RunContext, data: SampleData, discovered: Sequence[Mapping[str, Any]] = ()
) -> None:
    """What the covariates add, measured then written (when the study has covariates and
    ``covariates.evaluate``)."""
    if not (ctx.covariates and ctx.cfg.covariates.evaluate):
        return
    gain = measure_gain(ctx, data, discovered)
    if gain is not None:
        write_gain_section(ctx, data, gain)

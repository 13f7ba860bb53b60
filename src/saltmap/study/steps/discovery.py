"""Step 3, discovery: the cross-validated index search and its optimism; the winners become
the definitions of D1..Dk, passed to the later steps, and are saved to ``discovered.toml``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from saltmap.features import definitions_of, discover_cv, save_discovered, search_indices
from saltmap.plots import discovery_figure
from saltmap.progress import task
from saltmap.report import Note
from saltmap.study.context import Skip
from saltmap.study.sections import discovered_k

if TYPE_CHECKING:
    from saltmap.features import CVDiscovery, SearchResult
    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData


def search(ctx: RunContext, data: SampleData) -> CVDiscovery:
    """One search on all samples, then one per outer fold: each a tick of the progress."""
    d, samples = ctx.cfg.discovery, data.samples
    total, done = 1 + d.folds * d.repeats, 0
    with task(ctx.progress, "index discovery", total) as tick:

        def one_search(reflectance: pd.DataFrame, target: np.ndarray) -> SearchResult:
            nonlocal done
            found = search_indices(reflectance, target, method=d.method,
                                   min_coverage=d.min_coverage)  # fmt: skip
            done += 1
            tick(done, total)
            return found

        tick(0, total)
        return discover_cv(
            samples.reflectance,
            samples.target,
            n_splits=d.folds,
            n_repeats=d.repeats,
            random_state=ctx.cfg.seed,
            method=d.method,
            search=one_search,
        )


def write_discovery_section(ctx: RunContext, data: SampleData, found: CVDiscovery) -> None:
    """The ranked formulas, the optimism table and figure, and the summary's sentence."""
    d, sec = ctx.cfg.discovery, ctx.section("discovery")
    ranked = found.in_sample.table
    sec.add(
        ctx.save_table(
            "discovery_ranked",
            ranked.head(d.top),
            f"Best {min(d.top, len(ranked))} of {found.in_sample.n_candidates} candidate "
            "indices (in-sample)",
            formats={"p": ".2g"},
        )
    )
    summary = found.summary()
    shown = summary.T.reset_index()
    shown.columns = ["measure", "value"]
    sec.add(
        ctx.save_table(
            "discovery_optimism",
            summary,
            "Discovery optimism",
            "in_sample_abs_r: the best |r| of a search on all samples, as a study without "
            "validation reports it; out_of_fold_mean_r: the fold winners' r on their fold's "
            "unseen samples; optimism: the difference.",
            shown=shown,
        )
    )
    ctx.save_table("discovery_folds", found.folds, markdown=False)
    fig = discovery_figure(ranked, found.folds, top=d.top, in_sample_abs_r=found.best_abs_r,
                           target_label=data.label, method=d.method)  # fmt: skip
    sec.add(
        ctx.save_figure(
            "discovery",
            fig,
            "Discovered indices and the search's optimism",
            "Left: the best formulas with their 95 % CI. Right: each outer fold's winner on "
            "its training rows and on the fold's test rows.",
        )
    )
    sec.add(
        Note(
            f"In-sample best |r| = {found.best_abs_r:.3f}; on unseen samples the fold winners "
            f"reach r = {found.out_of_fold_r:.3f}: optimism {found.optimism:+.3f}.",
            kind="warning" if found.optimism > 0.1 else "text",
        )
    )
    ctx.highlights.append(
        f"Index discovery ({found.in_sample.n_candidates} formulas): the best in-sample "
        f"|r| = {found.best_abs_r:.3f} falls to r = {found.out_of_fold_r:.3f} on unseen "
        f"samples (optimism {found.optimism:+.3f}; Index discovery)."
    )


def keep_discovered(ctx: RunContext, found: CVDiscovery) -> list[dict[str, Any]]:
    """The best formulas as D1..Dk (k: the most any selection or the figure uses), saved to
    ``discovered.toml``; their definitions, which the later steps resolve selections with
    (nothing is registered in this session, so any step may use worker processes)."""
    cfg = ctx.cfg
    selections = [*cfg.indices.sets.values(), cfg.models.final_indices]
    k = max([discovered_k(s) for s in selections] + [cfg.discovery.top])
    defs = definitions_of(found.in_sample.candidates(k))
    save_discovered(found.in_sample, ctx.folder / "discovered.toml", k=k,
                    meta={"seed": cfg.seed, "optimism": found.optimism})  # fmt: skip
    return defs


def run_discovery(ctx: RunContext, data: SampleData) -> list[dict[str, Any]] | Skip:
    """Step 3: search, write the section, keep the winners; their definitions (D1..Dk)."""
    if not ctx.cfg.discovery.enabled:
        ctx.section("discovery").add(Note("Index discovery was not enabled in this study."))
        return Skip("discovery.enabled = false")
    found = search(ctx, data)
    write_discovery_section(ctx, data, found)
    return keep_discovered(ctx, found)

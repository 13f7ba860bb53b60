"""Step 7, report: the run's provenance section, the summary, the facts, ``report.html``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from saltmap.report import Note, write_report
from saltmap.study.context import target_label

if TYPE_CHECKING:
    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData

# The package folder: a path inside it is shown as saltmap/...
_PACKAGE = Path(__file__).resolve().parents[2]


def shown_path(path: Path) -> str:
    """A path as a reader of the report knows it: inside saltmap, or from the working folder."""
    path = Path(path).resolve()
    for base, prefix in ((_PACKAGE, "saltmap/"), (Path.cwd(), "")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return str(path)


def facts(ctx: RunContext, data: SampleData | None) -> dict[str, Any]:
    """The short label → value pairs at the top of the report."""
    cfg = ctx.cfg
    out: dict[str, Any] = {"study": cfg.name}
    if ctx.study.path:
        out["study file"] = shown_path(ctx.study.path)
    if data is not None:
        out["samples"] = f"{len(data.samples)} usable, {len(data.samples.rejected)} set aside"
        out["target"] = target_label(data.samples)
    if cfg.scenes:
        out["scenes"] = ", ".join(s.label for s in cfg.scenes)
    out["models"] = ", ".join(cfg.models.names)
    out["final model"] = f"{cfg.models.final} on {cfg.models.final_indices}"
    if ctx.covariates:
        out["covariates"] = ", ".join(f"{n} ({k})" for n, k in ctx.covariates.kinds.items())
    out["tuning"] = cfg.tuning.budget
    out["seed"] = cfg.seed
    out["saltmap"] = ctx.versions.get("saltmap", "?")
    return out


def write_run_section(ctx: RunContext) -> None:
    """The steps of the run, the software, the seed and what was left out."""
    sec = ctx.section("run")
    steps = pd.DataFrame([asdict(s) for s in ctx.steps])
    sec.add(ctx.save_table("run_steps", steps, "Steps of this run", formats={"seconds": ".1f"}))
    sec.add(
        Note(
            "Software: "
            + ", ".join(f"{k} {v}" for k, v in ctx.versions.items())
            + " (also in versions.json)."
        )
    )
    sec.add(
        Note(
            f"Seed {ctx.cfg.seed}. The study file is copied to study.toml; rerunning it with "
            "the same seed gives the same tables. Tables are in tables/ (CSV and Markdown), "
            "figures in figures/ (PNG and SVG), maps in maps/, the log in run.log."
        )
    )
    left_out = [s for s in ctx.steps if s.status == "skipped"]
    if left_out:
        sec.add(
            Note(
                "Left out of this run: " + "; ".join(f"{s.name} ({s.note})" for s in left_out),
                kind="warning",
            )
        )


def run_report(ctx: RunContext, data: SampleData | None) -> Path:
    """Step 7: complete the report and write ``report.html``; its path."""
    write_run_section(ctx)
    for line in ctx.highlights:
        ctx.section("summary").add(Note(line, kind="item"))
    report = ctx.report
    report.facts = facts(ctx, data)
    report.sections = [s for s in report.sections if s.items]
    path = ctx.folder / "report.html"
    write_report(report, path)
    return path

"""Running a study: one call that runs its steps in order into a new run folder.

:func:`run_study` runs the steps — samples → screening → discovery → evaluation
→ final fit → maps → report — into ``<out>/<study>-<timestamp>/``. Each step is a
module of :mod:`saltmap.study.steps` that computes first and writes its tables,
figures and report section second, through the run's
:class:`~saltmap.study.context.RunContext`; this module only orders them. A step
the study turns off (or that has nothing to do) is left out of the run, with a
line in the log saying so.

Examples
--------
>>> import saltmap
>>> study = saltmap.load_study("study.toml")  # doctest: +SKIP
>>> result = saltmap.run_study(study, out="runs")  # doctest: +SKIP
>>> result.report  # doctest: +SKIP
PosixPath('runs/odisha-20261124-140301/report.html')
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from saltmap.errors import OutputExistsError
from saltmap.progress import Progress
from saltmap.study.config import (
    Study,
    load_study,
)
from saltmap.study.context import (
    STEPS,
    RunContext,
    RunResult,
    log,
    new_run_folder,
    run_log,
)
from saltmap.study.steps.covariate_gain import run_covariate_gain
from saltmap.study.steps.discovery import run_discovery
from saltmap.study.steps.evaluation import run_evaluation
from saltmap.study.steps.final_fit import run_final_fit
from saltmap.study.steps.maps import run_maps
from saltmap.study.steps.report import run_report
from saltmap.study.steps.samples import SampleData, run_samples
from saltmap.study.steps.screening import run_screening


def run_study(
    study: Study | str | Path,
    out: str | Path = "runs",
    *,
    folder: str | Path | None = None,
    progress: Progress | None = None,
    log_level: int | str = logging.INFO,
) -> RunResult:
    """Run a study end to end into a new run folder.

    Steps, in order: samples → screening (Table 2, figure 3, Table 3, figure 4)
    → discovery → evaluation (Table 4, figure 5, repeated and spatial CV) →
    final fit (and the model file) → maps (COGs, Table 5, figure 6, intervals
    and AOA) → report (``report.html``). A step the study turns off is left out
    with a line in the log.

    Parameters
    ----------
    study : Study or path
        A study from :func:`load_study`, or the path of a study file.
    out : path, default="runs"
        Parent of the run folder ``<study>-<YYYYmmdd-HHMMSS>``.
    folder : path, optional
        Exact run folder instead (must not exist yet).
    progress : Progress, optional
        Where the long steps report (:mod:`saltmap.progress`); nothing is drawn
        without one (``saltmap run`` passes terminal bars).
    log_level : int or str, default=INFO
        Level of the run's ``run.log`` (the ``saltmap`` logger).

    Returns
    -------
    RunResult

    Raises
    ------
    OutputExistsError
        If ``folder`` exists.
    SaltmapError
        From any stage; the run folder keeps what was written and ``run.json``
        says which step failed.
    """
    if not isinstance(study, Study):
        study = load_study(study)
    if folder is not None:
        folder = Path(folder)
        if folder.exists():
            raise OutputExistsError(f"run folder {folder} exists; choose another or remove it")
    else:
        folder = new_run_folder(Path(out), study.name)
    ctx = RunContext(study, folder, progress)
    with run_log(folder / "run.log", log_level):
        return _run(ctx)


def _banner(name: str) -> str:
    return f"[{STEPS.index(name) + 1}/{len(STEPS)}] {name}"


def _evaluation(ctx: RunContext, data: SampleData, discovered: list[dict[str, Any]]) -> None:
    """Step 4: the models' evaluation, then what the covariates add on the same folds."""
    run_evaluation(ctx, data, discovered)
    run_covariate_gain(ctx, data, discovered)


def _run(ctx: RunContext) -> RunResult:
    """The steps in order, each recorded in ``run.json`` as it ends."""
    start = time.perf_counter()
    ctx.folder.mkdir(parents=True, exist_ok=True)
    ctx.write_provenance()
    log.info("study %s → %s", ctx.cfg.name, ctx.folder)

    def step(name: str, call: Callable[[], Any]) -> Any:
        return ctx.run_step(_banner(name), name, call)

    data = step("samples", lambda: run_samples(ctx))
    step("screening", lambda: run_screening(ctx, data))
    discovered = step("discovery", lambda: run_discovery(ctx, data)) or []
    # The discovered indices are passed on as their definitions, not registered by name.
    step("evaluation", lambda: _evaluation(ctx, data, discovered))
    fit = step("final fit", lambda: run_final_fit(ctx, data, discovered))
    step("maps", lambda: run_maps(ctx, data, fit))
    ctx.write_run_json(time.perf_counter() - start, "report")
    report = None
    if ctx.cfg.outputs.report:
        report = step("report", lambda: run_report(ctx, data))
    else:
        ctx.skip("report", "outputs.report = false")
    seconds = time.perf_counter() - start
    ctx.write_run_json(seconds, None)
    log.info("run finished in %.1f s: %s", seconds, ctx.folder)
    return ctx.result(report, seconds)

"""The run context: one run folder, what the run has written, its report, its record and log.

Every step of :func:`saltmap.study.runner.run_study` gets the :class:`RunContext`.
It writes tables and figures through it (:meth:`RunContext.save_table`,
:meth:`RunContext.save_figure`), adds its report items to a named section
(:meth:`RunContext.section`) and its summary sentences to
:attr:`RunContext.highlights`. The context keeps the provenance files
(``study.toml``, ``study_resolved.json``, ``versions.json``), ``run.json`` after
each step and the run's ``run.log``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import rasterio

from saltmap.atomic import atomic_to_csv, atomic_write_text
from saltmap.plots import save_figure
from saltmap.report import Figure, Report, Section, Table, markdown_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure as MplFigure

    from saltmap.features import Covariates
    from saltmap.io import Samples
    from saltmap.progress import Progress
    from saltmap.study.config import Study, StudyConfig

STEPS: tuple[str, ...] = (
    "samples",
    "screening",
    "discovery",
    "evaluation",
    "final fit",
    "maps",
    "report",
)

#: Packages whose versions are recorded in every run folder.
RECORDED_PACKAGES: tuple[str, ...] = (
    "saltmap",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "xgboost",
    "xgboost-cpu",
    "optuna",
    "mapie",
    "rasterio",
    "geopandas",
    "pyogrio",
    "shapely",
    "pyproj",
    "matplotlib",
    "typer",
    "rich",
    "openpyxl",
    "skops",
    "dask",
    "distributed",
    "pystac",
    "xarray",
    "pydantic",
    "joblib",
    "threadpoolctl",
)

# One logger for the whole run, so that run.log names it as it always has.
log = logging.getLogger("saltmap.study.runner")

# The report's sections in page order: key → (title, introduction). Empty ones are dropped.
SECTIONS: dict[str, tuple[str, str]] = {
    "summary": ("Summary", "The numbers to quote, each from the section named beside it."),
    "samples": ("Samples", ""),
    "indices": ("Indices and spectral response (Table 2, Figure 3)", ""),
    "screening": ("Screening (Table 3, Figure 4)", ""),
    "evaluation": (
        "Model accuracy as the study measured it (Table 4, Figure 5)",
        "One calibration/validation split, as in the study. A single split of about 100 "
        "samples gives numbers that move a lot with the split: read them with the "
        "cross-validated table below.",
    ),
    "honest": (
        "Honest validation: repeated and spatial cross-validation",
        "The same models scored over many splits: repeated k-fold (random folds) and "
        "spatial block k-fold (whole areas held out), as mean ± sd over folds with a "
        "bootstrap 95 % interval. Tuning runs inside each training fold.",
    ),
    "covariates": (
        "Covariates beyond the spectrum",
        "The same models with and without the covariates, on the same folds as the "
        "cross-validation above (untuned defaults, the final model's indices), and what "
        "each predictor adds: the drop of R² on the test fold when it is shuffled.",
    ),
    "choice": (
        "Choosing the final model",
        "Every model on every feature set (also the six bands alone and all 21 indices), and "
        "the plain random forest, on the same folds of the main honest protocol. The lowest "
        "pooled RMSE wins, unless a simpler, cheaper model is within one standard error of it "
        "(the difference is then within noise). Choosing the best of many is itself "
        "optimistic, so a nested cross-validation repeats the whole choice inside each outer "
        "fold, on its training rows only: its outer score is the number to quote.",
    ),
    "discovery": (
        "Index discovery and its optimism",
        "Every two- and three-band formula of the study's forms, ranked by correlation; "
        "the same search inside each outer fold shows how much of the best in-sample "
        "correlation survives on unseen samples.",
    ),
    "final": ("Final model", ""),
    "maps": ("Maps (Table 5, Figure 6) and how far to trust them", ""),
    "run": ("Run provenance", ""),
}

T = TypeVar("T")


@dataclass
class StepRecord:
    """How one step of a run went: ``status`` is ``done``, ``skipped`` or ``failed``."""

    name: str
    status: str
    seconds: float = 0.0
    note: str = ""


@dataclass(frozen=True)
class Skip:
    """What a step returns when it has been left out of the run, with the reason."""

    reason: str


@dataclass
class RunResult:
    """What :func:`run_study` wrote.

    Attributes
    ----------
    folder : Path
        The run folder ``<out>/<study>-<timestamp>``.
    steps : list of StepRecord
        Each step's status and wall time, in order.
    tables : dict
        Table name → CSV file (a Markdown twin sits beside it).
    figures : dict
        Figure name → PNG file (SVG beside it where drawn).
    maps : dict
        Scene name → folder of its COGs, class areas and figure.
    model_file : Path or None
        The saved final model.
    report : Path or None
        ``report.html``.
    seconds : float
        Wall time of the whole run.
    """

    folder: Path
    steps: list[StepRecord]
    tables: dict[str, Path]
    figures: dict[str, Path]
    maps: dict[str, Path]
    model_file: Path | None
    report: Path | None
    seconds: float

    def table(self, name: str) -> pd.DataFrame:
        """Read one of the run's tables back."""
        if name not in self.tables:
            raise KeyError(f"no table {name!r} in this run; tables: {', '.join(self.tables)}")
        return pd.read_csv(self.tables[name])

    def step(self, name: str) -> StepRecord:
        """The record of one step."""
        return next(s for s in self.steps if s.name == name)


def package_versions(names: Sequence[str] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent ones are left out), Python and GDAL."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    out["GDAL"] = rasterio.__gdal_version__
    return out


def new_run_folder(out: Path, name: str) -> Path:
    """``<out>/<name>-<YYYYmmdd-HHMMSS>``, with ``-2``, ``-3``... if that exists."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = out / f"{name}-{stamp}"
    n = 2
    while folder.exists():
        folder = out / f"{name}-{stamp}-{n}"
        n += 1
    return folder


@contextlib.contextmanager
def run_log(path: Path, level: int | str) -> Iterator[None]:
    """Copy the ``saltmap`` logger's records at ``level`` and above to ``path`` meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(level)
    logger = logging.getLogger("saltmap")
    old_level = logger.level
    logger.addHandler(handler)
    level_no = logging.getLevelName(level) if isinstance(level, str) else level
    logger.setLevel(min(old_level or logging.WARNING, level_no))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


def target_label(samples: Samples) -> str:
    """The target as axes and tables name it: ``EC (uS/cm)``."""
    unit = f" ({samples.target_unit})" if samples.target_unit else ""
    return f"{samples.target_name}{unit}"


@dataclass(frozen=True)
class FinalChoice:
    """The final model to fit on all samples: chosen by the evaluation, or forced.

    Attributes
    ----------
    model : str
        Its name as the report shows it (``"plain RF"`` for the untuned forest).
    name : str
        The model :func:`saltmap.models.building.make_model` builds (``"RF"`` then).
    indices : list
        Its index features as items (discovered ones as definitions).
    covariates : Covariates or None
        The covariates it reads (None: the indices alone).
    fixed : dict or None
        Parameters held instead of tuned; with ``untuned`` nothing is tuned.
    untuned : bool
        Fit the fixed parameters as they are (the plain random forest).
    how : str
        ``"auto"`` (the evidence chose it) or ``"forced"`` (the study named it).
    feature_set : str or None
        The candidate feature set it was chosen on.
    warning : str or None
        "no evidence of skill" and why, carried to the maps.
    """

    model: str
    name: str
    indices: list[Any]
    covariates: Covariates | None = None
    fixed: dict[str, Any] | None = None
    untuned: bool = False
    how: str = "forced"
    feature_set: str | None = None
    warning: str | None = None


@dataclass
class RunContext:
    """One run: the study, its folder, what has been written so far, and the report.

    Attributes
    ----------
    study : Study
        The study being run.
    folder : Path
        The run folder.
    progress : Progress or None
        Where long steps report (None: silently).
    steps : list of StepRecord
        The steps run so far.
    tables, figures, maps : dict
        Name → file written so far (as in :class:`RunResult`).
    model_file : Path or None
        The final model's file, once saved.
    versions : dict
        Package versions (:func:`package_versions`), once recorded.
    highlights : list of str
        Sentences of the report's summary, in order.
    final : FinalChoice or None
        The final model, once the evaluation has chosen it (or the study forced it).
    report : Report
        The report being built.
    sections : dict
        Key of :data:`SECTIONS` → the report's section, made in page order.
    """

    study: Study
    folder: Path
    progress: Progress | None = None
    steps: list[StepRecord] = field(default_factory=list)
    tables: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, Path] = field(default_factory=dict)
    maps: dict[str, Path] = field(default_factory=dict)
    model_file: Path | None = None
    versions: dict[str, str] = field(default_factory=dict)
    highlights: list[str] = field(default_factory=list)
    final: FinalChoice | None = None
    report: Report = field(init=False)
    sections: dict[str, Section] = field(init=False)

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.report = Report(
            title=cfg.title or f"saltmap study: {cfg.name}", subtitle=cfg.description
        )
        self.sections = {key: self.report.section(*text) for key, text in SECTIONS.items()}

    @property
    def cfg(self) -> StudyConfig:
        """The study's configuration."""
        return self.study.config

    @property
    def covariates(self) -> Covariates | None:
        """The study's :class:`~saltmap.features.covariates.Covariates`, or None without any."""
        spec = self.cfg.covariates.spec
        return spec if spec else None

    def section(self, key: str) -> Section:
        """The report section ``key`` of :data:`SECTIONS`."""
        return self.sections[key]

    # -- outputs ----------------------------------------------------------------------------

    def save_table(
        self,
        name: str,
        frame: pd.DataFrame,
        title: str = "",
        caption: str = "",
        *,
        shown: pd.DataFrame | None = None,
        markdown: bool = True,
        **kw: Any,
    ) -> Table:
        """Write ``tables/<name>.csv`` (and ``.md``); return a report Table.

        ``shown`` is a compact version for the report and the Markdown file (the CSV
        keeps every column); ``markdown=False`` for data tables only read by programs.
        """
        tables = self.folder / "tables"
        tables.mkdir(exist_ok=True)
        csv = tables / f"{name}.csv"
        atomic_to_csv(frame, csv, index=frame.index.name is not None)
        table = Table(title or name, frame if shown is None else shown, caption, **kw)
        if markdown:
            atomic_write_text(tables / f"{name}.md", markdown_table(table))
        self.tables[name] = csv
        return table

    def save_figure(self, name: str, fig: MplFigure, title: str, caption: str = "") -> Figure:
        """Write ``figures/<name>.<fmt>`` for each configured format; return a report Figure."""
        figures = self.folder / "figures"
        figures.mkdir(exist_ok=True)
        formats = tuple(dict.fromkeys(["png", *self.cfg.outputs.figure_formats]))
        written = save_figure(fig, figures / name, formats=formats)
        png = next(p for p in written if p.suffix == ".png")
        self.figures[name] = png
        return Figure(title, png, caption)

    # -- steps ------------------------------------------------------------------------------

    def run_step(self, banner: str, name: str, step: Callable[[], T | Skip]) -> T | None:
        """Run one step, time it and record how it went; its result, or None if left out.

        A failure is recorded in ``run.json`` (``incomplete_at``) and raised again.
        """
        log.info("%s …", banner)
        t0 = time.perf_counter()
        try:
            result = step()
        except Exception as err:
            seconds = time.perf_counter() - t0
            self.steps.append(StepRecord(name, "failed", seconds, f"{type(err).__name__}: {err}"))
            # The command line prints the error itself: keep this line for run.log only.
            log.error("%s failed after %.1f s: %s", name, seconds, err, extra={"console": False})
            self.write_run_json(float("nan"), name)
            raise
        seconds = time.perf_counter() - t0
        if isinstance(result, Skip):
            self.skip(name, result.reason, seconds)
            return None
        self.steps.append(StepRecord(name, "done", seconds))
        log.info("%s done in %.1f s", name, seconds)
        return result

    def skip(self, name: str, why: str, seconds: float = 0.0) -> None:
        """Record a step left out of the run, and say so in the log."""
        self.steps.append(StepRecord(name, "skipped", seconds, why))
        log.warning("%s left out of this run: %s", name, why)

    # -- provenance -------------------------------------------------------------------------

    def write_provenance(self) -> None:
        """The study file as given, as resolved (every default and path), and the versions."""
        atomic_write_text(self.folder / "study.toml", self.study.text)
        atomic_write_text(
            self.folder / "study_resolved.json", self.cfg.model_dump_json(indent=2) + "\n"
        )
        self.versions = package_versions()
        atomic_write_text(self.folder / "versions.json", json.dumps(self.versions, indent=2) + "\n")

    def write_run_json(self, seconds: float, failed_or_pending: str | None) -> None:
        """``run.json``: seeds, steps, files written; ``incomplete_at`` while not finished."""
        relative = {
            kind: {k: str(v.relative_to(self.folder)) for k, v in files.items()}
            for kind, files in (("tables", self.tables), ("figures", self.figures),
                                ("maps", self.maps))
        }  # fmt: skip
        seed = self.cfg.seed
        record = {
            "study": self.cfg.name,
            "study_file": str(self.study.path) if self.study.path else None,
            "folder": str(self.folder),
            "seed": seed,
            "seeds": {
                "splits, tuning, models, bootstrap": seed,
                "discovery outer folds": seed,
                "intervals and AOA folds": seed,
            },
            "saltmap": self.versions.get("saltmap"),
            "steps": [asdict(s) for s in self.steps],
            "seconds": None if math.isnan(seconds) else round(seconds, 2),
            **relative,
            "model_file": str(self.model_file.relative_to(self.folder))
            if self.model_file
            else None,
        }
        if failed_or_pending:
            record["incomplete_at"] = failed_or_pending
        atomic_write_text(self.folder / "run.json", json.dumps(record, indent=2) + "\n")

    def result(self, report: Path | None, seconds: float) -> RunResult:
        """What the run wrote, for the caller."""
        return RunResult(self.folder, self.steps, self.tables, self.figures, self.maps,
                         self.model_file, report, seconds)  # fmt: skip

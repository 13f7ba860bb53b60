"""An evaluation's results, and the files they are written to.

:class:`EvaluationResult` is what :func:`saltmap.validation.evaluation.evaluate_study`
returns; :func:`write_evaluation` writes its tables (CSV, and Markdown through
:mod:`saltmap.tables`), fold scores, predictions, settings and figure 5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from saltmap.atomic import atomic_to_csv, atomic_write_text
from saltmap.tables import (
    format_baseline,
    format_candidates,
    format_honest,
    format_table4,
    markdown_table,
)
from saltmap.validation.selection import Selection


@dataclass
class EvaluationResult:
    """What :func:`evaluate_study` measured.

    Attributes
    ----------
    table4 : DataFrame
        The study's Table 4: per feature set and model, R², RMSE, MAE on
        calibration (``R2_c`` …) and validation (``R2_v`` …), plus validation
        bias and RPIQ.
    honest : DataFrame
        Per protocol, feature set and model: ``<metric>_mean``, ``_sd``,
        ``_ci_low``, ``_ci_high`` (and ``R2_pooled``). Protocol ``study``
        holds the validation set with a bootstrap interval over its rows.
    baseline : DataFrame or None
        :func:`baseline_comparison` on the repeated folds.
    predictions : DataFrame
        Study split: ``feature_set``, ``model``, ``sample``, ``set``
        (calibration / validation), ``measured``, ``predicted`` (figure 5).
    folds : DataFrame
        Every fold's scores, per protocol, feature set and model.
    settings : dict
        Everything that decides the numbers.
    seconds : float
        Wall time.
    selection : Selection or None
        The final model's choice (:mod:`saltmap.validation.selection`), when made.
    set_aside : DataFrame
        Per feature set, the samples set aside because an index it needs is undefined
        there (``feature_set``, ``sample``, ``undefined``).
    """

    table4: pd.DataFrame
    honest: pd.DataFrame
    baseline: pd.DataFrame | None
    predictions: pd.DataFrame
    folds: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = float("nan")
    selection: Selection | None = None
    set_aside: pd.DataFrame = field(default_factory=pd.DataFrame)


def table4_markdown(table4: pd.DataFrame, unit: str | None = None) -> str:
    """:func:`format_table4` as Markdown."""
    return markdown_table(format_table4(table4, unit))


def honest_markdown(honest: pd.DataFrame, unit: str | None = None) -> str:
    """:func:`format_honest` as Markdown."""
    return markdown_table(format_honest(honest, unit))


def baseline_markdown(comparison: pd.DataFrame, unit: str | None = None) -> str:
    """:func:`format_baseline` as Markdown."""
    return markdown_table(format_baseline(comparison, unit))


# --------------------------------------------------------------------------- files


def evaluation_files(out: str | Path) -> dict[str, Path]:
    """The files :func:`write_evaluation` writes into the folder ``out``."""
    out = Path(out)
    names = {
        "table4": "table4.csv", "table4_md": "table4.md", "honest": "honest.csv",
        "honest_md": "honest.md", "baseline": "baseline.csv", "baseline_md": "baseline.md",
        "folds": "folds.csv", "predictions": "predictions.csv", "settings": "settings.json",
        "figure5": "figure5.png", "figure5_svg": "figure5.svg",
        "candidates": "candidates.csv", "candidates_md": "candidates.md",
        "nested": "nested_choice.csv", "set_aside": "set_aside.csv",
    }  # fmt: skip
    return {key: out / name for key, name in names.items()}


def selection_record(selection: Selection) -> dict[str, Any]:
    """The choice as ``settings.json`` keeps it."""
    return {
        "protocol": selection.protocol,
        "winner": list(selection.winner),
        "runner_up": list(selection.runner_up) if selection.runner_up else None,
        "gap": selection.gap,
        "null": selection.null,
        "nested_score": selection.nested_score,
        "stability": selection.stability,
        "skill": selection.skill,
    }


def _write_selection(result: EvaluationResult, files: dict[str, Path], unit: str | None) -> list:
    written = []
    if not result.set_aside.empty:
        atomic_to_csv(result.set_aside, files["set_aside"], index=False)
        written.append(files["set_aside"])
    sel = result.selection
    if sel is None:
        return written
    atomic_to_csv(sel.candidates, files["candidates"], index=False)
    md = markdown_table(format_candidates(sel.candidates, unit)) + "\n" + sel.words(unit or "")
    atomic_write_text(files["candidates_md"], md + "\n")
    written += [files["candidates"], files["candidates_md"]]
    if not sel.nested.empty:
        atomic_to_csv(sel.nested, files["nested"], index=False)
        written.append(files["nested"])
    return written


def write_evaluation(result: EvaluationResult, out: str | Path) -> list[Path]:
    """Write the tables (CSV and Markdown), fold scores, predictions, settings and
    figure 5 of an evaluation into the folder ``out``; return the files written."""
    # plots imports matplotlib; only writing an evaluation needs it.
    from saltmap.plots import prediction_figure, save_figure

    files = evaluation_files(out)
    Path(out).mkdir(parents=True, exist_ok=True)
    unit = result.settings.get("target_unit")
    target = result.settings.get("target", "target")
    written = []
    for key, frame, to_md in (
        ("table4", result.table4, table4_markdown),
        ("honest", result.honest, honest_markdown),
        ("baseline", result.baseline, baseline_markdown),
    ):
        if frame is None or frame.empty:
            continue
        atomic_to_csv(frame, files[key], index=False)
        atomic_write_text(files[f"{key}_md"], to_md(frame, unit))
        written += [files[key], files[f"{key}_md"]]
    for key, frame in (("folds", result.folds), ("predictions", result.predictions)):
        if not frame.empty:
            atomic_to_csv(frame, files[key], index=False)
            written.append(files[key])
    written += _write_selection(result, files, unit)
    settings = {**result.settings, "seconds": round(result.seconds, 1)}
    if result.selection is not None:
        settings["selection"] = selection_record(result.selection)
    atomic_write_text(files["settings"], json.dumps(settings, indent=2, default=str))
    written.append(files["settings"])
    if not result.predictions.empty:
        fig = prediction_figure(result.predictions, result.table4, target_label=target, unit=unit)
        written += save_figure(fig, files["figure5"], formats=("png", "svg"))
    return written

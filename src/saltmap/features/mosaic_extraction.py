"""Reflectance at sample points from several scenes: tiles and dates of one mosaic.

A point on a tile edge, or under a cloud on one date, is read from another scene.
:func:`extract_from_mosaic` extracts the points from each scene of a
:class:`~saltmap.io.mosaic.Mosaic` on its own grid (no resampling: the pixel values the
product holds) with :func:`~saltmap.features.extraction.extract_at_points`, then keeps,
per point, what the mosaic's composite rule keeps on the map: the first scene (in
the mosaic's order) where the point is valid, or the per-band median of the scenes
where it is. The report says which scene gave each point, and for a point no scene
gave, why in each scene.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saltmap.features.extraction import extract_at_points
from saltmap.io.mosaic import Mosaic
from saltmap.io.samples import Samples


def extract_from_mosaic(
    samples_or_points: Samples | pd.DataFrame,
    mosaic: Mosaic,
    **options: Any,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reflectance at sample points from the scenes of a mosaic.

    Parameters
    ----------
    samples_or_points : Samples or DataFrame or GeoDataFrame
        As :func:`~saltmap.features.extraction.extract_at_points` takes them.
    mosaic : Mosaic
        The scenes, their order and composite rule (:func:`saltmap.io.mosaic.open_mosaic`).
    **options
        ``window``, ``crs``, ``block_size``, ``covariates`` of
        :func:`~saltmap.features.extraction.extract_at_points`, used for every scene.

    Returns
    -------
    table, report : DataFrame
        As :func:`~saltmap.features.extraction.extract_at_points` returns them; the
        report has a ``scene`` column (the number of the scene that gave the point, as
        in ``scenes.csv`` of the map, or ``median of 1, 3``), and ``reason`` gives each
        scene's reason for a point none of them gave.
    """
    runs = [extract_at_points(samples_or_points, s, **options) for s in mosaic.scenes]
    tables = [table for table, _ in runs]
    reports = [report for _, report in runs]
    ok = np.stack([r["status"].to_numpy() == "ok" for r in reports])  # (scenes, points)
    given = ok.any(axis=0)
    chosen = np.where(given, np.argmax(ok, axis=0), -1)  # the first scene where valid
    # Row of point p in scene s's table: the tables hold the valid points in order.
    rank = np.cumsum(ok, axis=1) - 1
    pieces = [tables[s].iloc[[rank[s, p]]] for p, s in enumerate(chosen) if s >= 0]
    table = pd.concat(pieces) if pieces else tables[0].iloc[:0]
    scene = [str(s + 1) if s >= 0 else "" for s in chosen]
    if mosaic.composite == "median":
        scene = _median_into(table, tables, ok, list(mosaic.roles))
    table.attrs.update(tables[0].attrs, scene=mosaic.source)
    names = [Path(s.source).name for s in mosaic.scenes]
    return table, _report(reports, ok, chosen, scene, names)


def _median_into(
    table: pd.DataFrame, tables: list[pd.DataFrame], ok: np.ndarray, roles: list[str]
) -> list[str]:
    """Put the per-band median of the scenes where each point is valid into ``table``."""
    cube = np.full((*ok.shape, len(roles)), np.nan)  # (scenes, points, bands)
    for s, t in enumerate(tables):
        cube[s, ok[s]] = t[roles].to_numpy(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # points no scene gave
        median = np.nanmedian(cube, axis=0)
    given = ok.any(axis=0)
    table[roles] = median[given]
    return [
        "median of " + ", ".join(str(s + 1) for s in np.flatnonzero(ok[:, p])) if given[p] else ""
        for p in range(ok.shape[1])
    ]


def _report(
    reports: list[pd.DataFrame],
    ok: np.ndarray,
    chosen: np.ndarray,
    scene: list[str],
    names: list[str],
) -> pd.DataFrame:
    """Each point's row of the report of the scene that gave it (else of the first), with
    the status over all scenes, each scene's reason where none gave it, and the scene."""
    points = np.arange(ok.shape[1])
    pick = np.maximum(chosen, 0)
    report = reports[0].copy()
    for column in ("row", "col", "n_pixels"):
        stacked = np.stack([r[column].to_numpy() for r in reports])
        report[column] = stacked[pick, points]
    statuses = np.stack([r["status"].to_numpy() for r in reports])
    outside = (statuses == "outside").all(axis=0)
    report["status"] = np.where(chosen >= 0, "ok", np.where(outside, "outside", "masked"))
    report["reason"] = [
        ""
        if chosen[p] >= 0
        else "; ".join(
            f"scene {s + 1} ({names[s]}): {r['reason'].iloc[p]}" for s, r in enumerate(reports)
        )
        for p in points
    ]
    report["scene"] = scene
    return report

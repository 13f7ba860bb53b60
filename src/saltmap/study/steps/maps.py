"""Step 6, maps: each scene mapped with the final model (COGs, class areas as Table 5,
figure 6), and how far to trust each map (DI, AOA and interval-width figure and summary)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import rasterio

from saltmap.features import CovariateRasters, distance_to_features, write_covariate
from saltmap.io import open_scene
from saltmap.io.mosaic import open_mosaic
from saltmap.map_figures import trust_map_figure
from saltmap.mapping import (
    MapSettings,
    class_map_of,
    map_scene,
    plan_classes,
    read_classes_overview,
)
from saltmap.mapping.figure import boundary_frame
from saltmap.report import Note
from saltmap.study.context import Skip, log
from saltmap.study.paths import slug
from saltmap.study.tables import trust_shown
from saltmap.validation import NO_SKILL

if TYPE_CHECKING:
    from collections.abc import Sequence

    from saltmap.io import Scene
    from saltmap.io.grid import GriddedScene
    from saltmap.mapping import MapResult
    from saltmap.study.context import RunContext
    from saltmap.study.scene_sections import SceneConfig
    from saltmap.study.steps.final_fit import FinalFit
    from saltmap.study.steps.samples import SampleData


def scene_covariates(ctx: RunContext, sc: SceneConfig, scene: Scene) -> CovariateRasters | None:
    """The covariate rasters of one scene (None without covariates): the scene's own,
    else the study's, and distances computed on the scene's grid into the run folder."""
    if not ctx.covariates:
        return None
    cov = ctx.cfg.covariates
    paths = {**cov.rasters, **sc.covariates}
    folder = ctx.folder / "covariates" / sc.label
    for name, vector in cov.distance.items():
        if name in sc.covariates:
            continue
        log.info("covariate %s: distance to %s on the grid of %s", name, vector, sc.label)
        distance = distance_to_features(vector, scene)
        folder.mkdir(parents=True, exist_ok=True)
        paths[name] = write_covariate(
            folder / f"{slug(name)}.tif",
            distance,
            scene,
            description=f"distance to the features of {Path(vector).name}",
            unit="m",
        )
    return CovariateRasters(paths, ctx.covariates.kinds, labels=cov.labels or None)


def final_label(ctx: RunContext) -> str:
    """The final model's name for the maps' tags and figures; with the evaluation's warning
    "no evidence of skill" beside it when no model beat the null model (issue 14)."""
    final = ctx.final
    name = final.model if final is not None else ctx.cfg.models.final
    if final is not None and final.warning:
        name += f" ({NO_SKILL})"
    return name


def _clipped_note(label: str, result: MapResult) -> Note:
    """Pixels without a value, and predictions held at a physical bound."""
    return Note(
        f"{label}: {result.n_pixels - result.n_valid} of {result.n_pixels} pixels are left "
        "without a value (no data, outside the boundary, or an index undefined there); "
        f"{result.n_clipped} predictions were held at a physical bound (below zero set to "
        "zero, or a log-target prediction clipped to the widened training range)."
    )


def map_settings(ctx: RunContext, data: SampleData, fit: FinalFit) -> MapSettings:
    """The maps' settings, built once from the study's config for every scene.

    Any number of jobs works: the final model carries its discovered indices as
    definitions, which the mapping workers compute as they are.
    """
    cfg = ctx.cfg
    return MapSettings(
        scheme=cfg.classes.build(),
        conversion=data.class_conversion,
        target_name=data.samples.target_name,
        target_unit=data.samples.target_unit,
        model_name=final_label(ctx),
        block_size=cfg.outputs.block_size,
        jobs=cfg.outputs.jobs,
        exclude_outside_aoa=fit.trust is not None and cfg.aoa.exclude_from_areas,
    )


def map_groups(scenes: Sequence[SceneConfig]) -> dict[str, list[SceneConfig]]:
    """The scenes of each map: a scene alone, or the scenes of one mosaic, in file order."""
    groups: dict[str, list[SceneConfig]] = {}
    for sc in scenes:
        groups.setdefault(sc.map_label, []).append(sc)
    return groups


def open_group(ctx: RunContext, group: Sequence[SceneConfig]) -> GriddedScene:
    """The scene of a map: the one scene, or the mosaic of the group's scenes."""
    scenes = [
        open_scene(
            sc.path,
            bands=sc.bands,
            scaling=sc.scaling,
            baseline=sc.baseline,
            mask_water=sc.mask_water,
            date=sc.date,
        )
        for sc in group
    ]
    if not group[0].mosaic:
        return scenes[0]
    m = ctx.cfg.mosaic
    return open_mosaic(
        scenes, crs=m.crs, resolution=m.resolution, boundary=group[0].boundary or ctx.cfg.boundary,
        composite=m.composite, date=m.date, mixed_sensors=m.mixed_sensors,
    )  # fmt: skip


def map_one(
    ctx: RunContext, fit: FinalFit, group: Sequence[SceneConfig], settings: MapSettings
) -> MapResult:
    """Map one scene, or one mosaic of scenes, into ``maps/<label>/``."""
    sc, label = group[0], group[0].map_label
    scene = open_group(ctx, group)
    log.info("mapping %s (%d × %d pixels)", label, scene.width, scene.height)
    return map_scene(
        fit.model,
        scene,
        ctx.folder / "maps" / label,
        settings,
        boundary=sc.boundary or ctx.cfg.boundary,
        covariates=scene_covariates(ctx, sc, scene),
        trust=fit.trust,
        progress=ctx.progress,
    )


def raster_percentiles(path: Path) -> tuple[float, ...] | None:
    """5, 25, 50, 75, 95th percentiles, min and max of a map, read from its overview."""
    try:
        with rasterio.open(path) as src:
            factor = max(1, max(src.width, src.height) // 2000)
            values = src.read(1, out_shape=(src.height // factor, src.width // factor))
    except rasterio.errors.RasterioError:
        return None
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return (*map(float, q), float(values.min()), float(values.max()))


def _spread_note(data: SampleData, label: str, result: MapResult) -> Note | None:
    """The map's predicted distribution beside the training samples' range."""
    spread = raster_percentiles(result.outputs.salinity)
    if spread is None:
        return None
    samples, y = data.samples, data.samples.target
    unit = samples.target_unit or ""
    return Note(
        f"Predicted {samples.target_name} over {label}: median {spread[2]:.4g} "
        f"{unit}, 5th–95th percentile {spread[0]:.4g}–{spread[4]:.4g} (range "
        f"{spread[5]:.4g}–{spread[6]:.4g}); the training samples span "
        f"{y.min():.4g}–{y.max():.4g} {unit} (median {y.median():.4g})."
    )


def write_map_section(ctx: RunContext, data: SampleData, label: str, result: MapResult,
                      boundary: Path | None = None) -> None:  # fmt: skip
    """Table 5 and figure 6 of one scene (framing ``boundary`` if given, else the valid
    pixels), and the spread of its predictions."""
    cfg, sec, areas = ctx.cfg, ctx.section("maps"), result.areas
    sec.add(
        ctx.save_table(
            f"table5_class_areas_{label}",
            areas,
            f"Table 5. Salinity class areas, {label}",
            f"Classes: {result.scheme}. Area of the valid mapped pixels.",
            digits=4,
        )
    )
    # Redrawn from the class COG so that figure 6 comes in every figure format.
    plan = plan_classes(cfg.classes.build(), data.samples.target_name,
                        data.samples.target_unit, data.class_conversion)  # fmt: skip
    scheme = plan.scheme
    # Greyed where the model extrapolates, as saltmap map draws it.
    aoa_path = result.outputs.trust.get("aoa")
    fig = class_map_of(
        result.outputs.classes,
        plan,
        title=f"Salinity classes ({scheme.name}: {scheme.quantity} in {scheme.unit}) "
        f"from {final_label(ctx)}, {label}",
        percent=list(areas["percent"]),
        aoa_path=aoa_path,
        boundary=boundary,
    )
    sec.add(
        ctx.save_figure(
            f"figure6_{label}",
            fig,
            f"Figure 6. Salinity classes, {label}",
            f"{result.n_valid} valid pixels of {result.n_pixels}; mapped in "
            f"{result.seconds:.1f} s. The COGs are in maps/{label}/ (the class map "
            "carries its colour table, with a QGIS style beside it)."
            + (" Hatched grey: outside the area of applicability." if aoa_path else ""),
        )
    )
    note = _spread_note(data, label, result)
    if note is not None:
        sec.add(note)


def write_trust_figure(ctx: RunContext, data: SampleData, fit: FinalFit, label: str,
                       result: MapResult, boundary: Path | None = None) -> None:  # fmt: skip
    """The trust figure of a map, drawn from its DI, AOA and width COGs (read decimated),
    framing ``boundary`` if given, else the valid pixels."""
    layers = {}
    for name in ("di", "aoa", "width", "class_confidence"):
        layers[name], (extent, _) = read_classes_overview(result.outputs.trust[name], 1000)
    unit = data.samples.target_unit or ""
    fig = trust_map_figure(
        layers["di"],
        layers["aoa"],
        layers["width"],
        extent,
        threshold=float(fit.trust.aoa.threshold_),
        width_label=f"{ctx.cfg.intervals.level:.0%} interval width ({unit})",
        title=f"How far to trust the map of {label}",
        frame=boundary_frame(boundary, result.outputs.trust["aoa"]) if boundary else None,
        class_confidence=layers["class_confidence"],
    )
    ctx.section("maps").add(
        ctx.save_figure(
            f"trust_{label}",
            fig,
            f"Area of applicability and interval width, {label}",
            "Left: dissimilarity index (DI) of each pixel's predictors to the training "
            "samples, with the AOA threshold; middle: inside (green) or outside the area of "
            "applicability; third: width of the prediction interval, hatched outside the "
            "AOA; right: class confidence, how many salinity classes the interval spans "
            f"(1: the whole interval lies in the predicted class). The rasters are in "
            f"maps/{label}/, each with its QGIS style.",
        )
    )
    write_width_by_di(ctx, data, label, result)


def write_width_by_di(ctx: RunContext, data: SampleData, label: str, result: MapResult) -> None:
    """How a map's interval width follows the DI: pixels and width percentiles per DI bin."""
    table = result.trust.width_by_di()
    if len(table):
        unit = data.samples.target_unit or ""
        ctx.section("maps").add(
            ctx.save_table(
                f"width_by_di_{label}",
                table,
                f"Interval width by dissimilarity index, {label}",
                f"5th, 50th and 95th percentile of the interval width ({unit}) of the pixels "
                "in each DI bin (from the map's own per-pixel tally).",
                digits=4,
            )
        )


def trust_row(ctx: RunContext, data: SampleData, fit: FinalFit, label: str,
              result: MapResult) -> dict[str, Any]:  # fmt: skip
    """A map's row of the trust summary (from the map's own per-pixel summary), with its
    summary sentence and a warning when most of the scene is outside the AOA."""
    row = {"scene": label, **result.trust.as_dict(),
           "aoa_threshold": float(fit.trust.aoa.threshold_)}  # fmt: skip
    share = row["share_inside_aoa"]
    if share == share:
        ctx.highlights.append(
            f"{share:.1%} of the valid pixels of {label} lie inside the model's area of "
            f"applicability; median interval width {row['median_interval_width']:.4g} "
            f"{data.samples.target_unit or ''} (Maps)."
        )
        ctx.section("maps").add(aoa_note(label, share))
    return row


def aoa_note(label: str, share: float) -> Note:
    """What the area of applicability shows over a scene, in words (a warning below half)."""
    if share >= 0.9:
        words = "Nearly all of the scene resembles the training samples: its map interpolates."
    elif share >= 0.5:
        words = (
            "Most of the scene resembles the training samples; read the map outside the AOA "
            "(hatched) as an extrapolation."
        )
    elif share >= 0.02:
        words = (
            "The model was trained on samples unlike most of this scene: its map extrapolates "
            "outside the AOA (hatched), so trust it only in the patches inside."
        )
    else:
        words = (
            "Almost nothing in this scene resembles the training samples: the map is an "
            "extrapolation nearly everywhere and says little about salinity there."
        )
    start = "Only " if share < 0.5 else ""
    return Note(
        f"{start}{share:.1%} of the valid pixels of {label} lie inside the area of "
        f"applicability. {words}",
        kind="warning" if share < 0.5 else "text",
    )


def mosaic_note(label: str, result: MapResult) -> Note:
    """Which scenes the map of a mosaic is made of, and how many pixels each gave."""
    scenes = "; ".join(
        f"{row.scene}: {Path(row.source).name} ({row.date}, {row.pixels_mapped:,} pixels)"
        for row in result.scenes.itertuples()
    )
    return Note(
        f"The map of {label} is a mosaic of {len(result.scenes)} scenes, numbered as in "
        f"maps/{label}/source_scene.tif and scenes.csv: {scenes}. observations.tif counts "
        "the valid observations of each pixel."
    )


def write_trust_summary(ctx: RunContext, fit: FinalFit, rows: list[dict[str, Any]]) -> None:
    """The trust summary of every map, or a warning that trust is not part of the run."""
    iv, sec = ctx.cfg.intervals, ctx.section("maps")
    if rows:
        sec.add(
            ctx.save_table(
                "trust_summary",
                pd.DataFrame(rows),
                f"Prediction intervals ({iv.level:.0%}) and area of applicability",
                "Inside the AOA: valid pixels whose predictors are as close to the training "
                "samples as cross-validation met (Meyer & Pebesma 2021); outside it the map "
                "extrapolates and its intervals do not hold. Intervals: method "
                f"{iv.method!r}, {iv.score} conformity score.",
                shown=trust_shown(pd.DataFrame(rows)),
            )
        )
    elif fit.trust is None:
        sec.add(
            Note(
                "Intervals and the area of applicability are not part of this run.",
                kind="warning",
            )
        )


def run_maps(ctx: RunContext, data: SampleData, fit: FinalFit | None) -> Skip | None:
    """Step 6: map each scene, then write its table, figures and trust."""
    cfg = ctx.cfg
    if not cfg.outputs.maps:
        return Skip("outputs.maps = false")
    if not cfg.scenes:
        ctx.section("maps").add(Note("The study names no scene to map."))
        return Skip("the study names no scene")
    if fit is None:
        return Skip("no final model")
    rows: list[dict[str, Any]] = []
    settings = map_settings(ctx, data, fit)
    for label, group in map_groups(cfg.scenes).items():
        result = map_one(ctx, fit, group, settings)
        ctx.maps[label] = ctx.folder / "maps" / label
        boundary = group[0].boundary or cfg.boundary
        write_map_section(ctx, data, label, result, boundary)
        ctx.section("maps").add(_clipped_note(label, result))
        if result.scenes is not None:
            ctx.section("maps").add(mosaic_note(label, result))
        if result.trust is not None:
            write_trust_figure(ctx, data, fit, label, result, boundary)
            rows.append(trust_row(ctx, data, fit, label, result))
    write_trust_summary(ctx, fit, rows)
    return None

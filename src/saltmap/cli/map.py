"""``saltmap map``: a salinity map of a scene from a saved model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from saltmap.cli import _options as opt
from saltmap.cli._options import parse_named_paths, read_labels
from saltmap.cli._print import say, warn
from saltmap.cli._progress import RichProgress
from saltmap.cli._scene_options import (
    Composite,
    MixedSensors,
    MosaicCrs,
    MosaicOptions,
    PreferDate,
    Resolution,
    SceneBandFiles,
    SceneSources,
    open_scene_from_options,
)
from saltmap.errors import ConfigError, ModelFileError
from saltmap.features.covariate_rasters import CovariateRasters
from saltmap.mapping import MapSettings, map_scene
from saltmap.models.persistence import load_model, load_trust
from saltmap.salinity.conversion import load_conversion

if TYPE_CHECKING:
    from saltmap.mapping import MapResult


def model_target(metadata: Any) -> tuple[str | None, str | None, str | None]:
    """``(target name, target unit, model name)`` from a saved model's metadata."""

    def get(*keys: str) -> str | None:
        for key in keys:
            value = (
                metadata.get(key) if isinstance(metadata, dict) else getattr(metadata, key, None)
            )
            if value:
                return str(value)
        return None

    return (
        get("target_name", "target"),
        get("target_unit", "unit"),
        get("model_name", "model", "name"),
    )


# The options of the command, declared here so its signature reads as a list.
Boundary = Annotated[
    Path | None,
    typer.Option("--boundary", help="Polygon file (any CRS) to clip the map to."),
]
Scheme = Annotated[
    str,
    typer.Option(
        "--scheme",
        help="Classes: study (salt content g/kg, needs --conversion for an EC model), "
        "fao-ec (EC dS/m), fao2006-ec, or thresholds in the model's unit, e.g. 2,4,8,16.",
    ),
]
Conversion = Annotated[
    Path | None,
    typer.Option("--conversion", help="EC -> salt content conversion (.toml or .json)."),
]
BlockSize = Annotated[
    int, typer.Option("--block-size", help="Block side in pixels; memory grows with it.")
]
Workers = Annotated[
    str,
    typer.Option(
        "--workers",
        help="With --jobs above 1: threads (the default, measured the faster on two cores) "
        "or processes (for many cores, where Python work in each block limits threads).",
    ),
]
Scheduler = Annotated[
    str | None,
    typer.Option("--scheduler", help="Dask distributed scheduler, e.g. tcp://host:8786."),
]
Covariate = Annotated[
    list[str] | None,
    typer.Option(
        "--covariate",
        help="NAME=RASTER for each covariate the model was trained with (any CRS and "
        "resolution; kinds come from the model); repeatable.",
    ),
]
Labels = Annotated[
    list[str] | None,
    typer.Option(
        "--labels",
        help="NAME=LEGEND.csv (columns value,level): the training level of each code of a "
        "categorical covariate raster; repeatable.",
    ),
]
ExcludeOutsideAoa = Annotated[
    bool,
    typer.Option(
        "--exclude-outside-aoa",
        help="Leave pixels outside the area of applicability out of the classes and "
        "class areas (their salinity is still written).",
    ),
]


def map_command(
    model_file: Annotated[Path, typer.Argument(metavar="MODEL", help="Model saved by train.")],
    scene_sources: SceneSources,
    out: opt.OutFolder,
    boundary: Boundary = None,
    scheme: Scheme = "study",
    conversion: Conversion = None,
    block_size: BlockSize = 512,
    jobs: opt.Jobs = 1,
    workers: Workers = "threads",
    scheduler: Scheduler = None,
    scaling: opt.SceneScaling = None,
    baseline: opt.Baseline = None,
    bands: opt.BandOrder = None,
    band_files: SceneBandFiles = None,
    mask_water: opt.MaskWater = False,
    covariate: Covariate = None,
    labels: Labels = None,
    no_trust: opt.NoTrust = False,
    exclude_outside_aoa: ExcludeOutsideAoa = False,
    composite: Composite = "first",
    date: PreferDate = None,
    crs: MosaicCrs = None,
    resolution: Resolution = None,
    mixed_sensors: MixedSensors = False,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Map salinity over SCENE (or the mosaic of several) with MODEL, block by block.

    Writes in OUT: salinity.tif (COG, the model's target and unit) with salinity.qml (its
    QGIS style, stretched over the map's 2-98 %), salinity_classes.tif (COG with colour
    table), salinity_classes.qml (QGIS style), class_areas.csv
    (km² and % per class) and salinity_map.png. When the model file holds prediction
    intervals and the area of applicability (`saltmap train` saves them), also
    salinity_lower.tif, salinity_upper.tif, salinity_width.tif, dissimilarity.tif and
    aoa.tif (1 inside, 0 outside, 255 no data). With several scenes (tiles, dates) the
    map is of their mosaic on one grid, with observations.tif (valid observations per
    pixel), source_scene.tif (the scene that gave each pixel) and scenes.csv (its legend).

    Finished blocks are kept in a hidden work folder in OUT until the map is done: a run
    that was killed continues from them when started again with the same arguments.
    """
    model, metadata = load_model(model_file)
    target_name, target_unit, model_name = model_target(metadata)
    model_name = _with_skill_warning(model_name or model_file.stem, metadata)
    trust = _load_trust(model_file, no_trust, exclude_outside_aoa)
    mosaic = MosaicOptions(composite, date, crs, resolution, mixed_sensors, boundary)
    scene = open_scene_from_options(
        scene_sources, scaling, baseline, bands, mask_water, band_files, mosaic
    )
    settings = MapSettings(
        scheme=scheme,
        conversion=load_conversion(conversion) if conversion else None,
        target_name=target_name,
        target_unit=target_unit,
        model_name=model_name,
        block_size=block_size,
        jobs=jobs,
        workers=workers,
        scheduler=scheduler,
        exclude_outside_aoa=exclude_outside_aoa,
        overwrite=overwrite,
    )
    result = map_scene(
        model,
        scene,
        out,
        settings,
        boundary=boundary,
        covariates=CovariateRasters(
            parse_named_paths(covariate, "--covariate"), labels=read_labels(labels)
        ),
        trust=trust,
        progress=RichProgress(transient=False),
    )
    print_map_result(result, trust)


def _with_skill_warning(model_name: str, metadata: Any) -> str:
    """The model's name, with "no evidence of skill" beside it (and said on screen) when
    the evaluation that chose it (``saltmap train --model auto``) found none; the map's
    tags and figures then carry the warning, as a study's do."""
    skill = metadata.get("skill") if isinstance(metadata, dict) else None
    if not skill or skill.get("evidence", True):
        return model_name
    from saltmap.validation.selection import NO_SKILL, no_skill_sentence

    warn(no_skill_sentence(skill))
    return f"{model_name} ({NO_SKILL})"


def print_map_result(result: MapResult, trust: Any) -> None:
    """What was mapped: blocks resumed, pixels, class areas, the trust summary, files written."""
    if result.n_resumed:
        say(
            f"resumed {result.n_resumed} of {result.n_blocks} blocks from an interrupted run "
            f"with the same inputs; computed {result.n_computed}"
        )
    say(
        f"{result.n_valid:,} of {result.n_pixels:,} pixels mapped in {result.seconds:.1f} s "
        f"({result.pixels_per_second / 1000:.0f} kpx/s); classes: {result.scheme}"
    )
    if result.n_clipped:
        say(
            f"{result.n_clipped:,} predictions held at a physical bound (below zero set to "
            "zero, or a log target's prediction kept within its widened training range)"
        )
    areas = result.areas
    for label, km2, pct in zip(areas["class"], areas["area_km2"], areas["percent"], strict=True):
        say(f"  {label:<22} {km2:12.3f} km²  {pct:6.2f} %")
    if result.trust is not None:
        say(_trust_line(result, trust))
        _say_width_by_di(result)
    if result.scenes is not None:
        for row in result.scenes.itertuples():
            say(f"  scene {row.scene}: {row.pixels_mapped:,} pixels mapped from {row.source}")
    for path in result.outputs.all():
        if path.exists():
            say(f"wrote {path}")


def _load_trust(model_file: Path, no_trust: bool, exclude_outside_aoa: bool) -> Any:
    """The model file's intervals and AOA, None when left out or absent (said on screen)."""
    if no_trust:
        if exclude_outside_aoa:
            raise ConfigError(
                "--exclude-outside-aoa needs the model's area of applicability, which "
                "--no-trust leaves out; give only one of them"
            )
        return None
    trust = load_trust(model_file)
    if trust is None:
        if exclude_outside_aoa:
            raise ModelFileError(
                f"{model_file} holds no area of applicability, so --exclude-outside-aoa cannot "
                "be applied; retrain with `saltmap train` (without --no-trust), which saves "
                "it, or leave out --exclude-outside-aoa"
            )
        warn(
            f"{model_file} holds no prediction intervals or area of applicability, so the map "
            "has none; retrain with `saltmap train` (without --no-trust) to get them"
        )
    return trust


def _say_width_by_di(result: MapResult) -> None:
    """How the interval width follows the dissimilarity index (DI) over the map."""
    from saltmap.tables import markdown_table

    table = result.trust.width_by_di()
    if table.empty:
        return
    say(f"interval width ({result.target_unit or 'target unit'}) by dissimilarity index:")
    say(markdown_table(table, digits=4))


def _trust_line(result: MapResult, trust: Any) -> str:
    summary = result.trust
    unit = result.target_unit or ""
    level = trust.info.get("confidence")
    interval = f"{level:.0%} prediction interval" if level else "prediction interval"
    line = (
        f"area of applicability: {summary.share_inside_aoa:.1%} of {summary.n_valid:,} valid "
        f"pixels inside; {interval} width {summary.width_quantile(0.05):.4g} / "
        f"{summary.median_width:.4g} / {summary.width_quantile(0.95):.4g} {unit} "
        "(5th / 50th / 95th percentile)"
    ).rstrip()
    if result.excluded_outside_aoa:
        outside = summary.n_valid - summary.n_inside
        line += f"; {outside:,} pixels outside it left out of the classes and areas"
    return line


def register(app: typer.Typer) -> None:
    app.command("map")(map_command)

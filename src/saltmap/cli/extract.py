"""``saltmap extract``: reflectance of a scene at field sample points."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say
from saltmap.cli._scene_options import (
    Composite,
    MixedSensors,
    MosaicOptions,
    PreferDate,
    SceneBandFiles,
    SceneSources,
    open_scene_from_options,
)
from saltmap.features.extraction import extract_at_points, summary, write_extracted
from saltmap.features.mosaic_extraction import extract_from_mosaic
from saltmap.io.mosaic import Mosaic


@opt.with_sample_options(bands=False)
def extract_command(
    samples_file: Annotated[
        Path, typer.Argument(help="Field samples with coordinates: CSV, XLSX, GPKG, ...")
    ],
    scene_sources: SceneSources,
    out: Annotated[Path, opt.out_option("Output samples table: .csv, .gpkg or .geojson.")],
    window: Annotated[
        int, typer.Option("--window", help="Average an n x n window (odd) of unmasked pixels.")
    ] = 1,
    scaling: opt.SceneScaling = None,
    baseline: opt.Baseline = None,
    bands: opt.BandOrder = None,
    band_files: SceneBandFiles = None,
    mask_water: opt.MaskWater = False,
    covariate: Annotated[
        list[str] | None,
        typer.Option(
            "--covariate",
            help="NAME=RASTER: a numeric covariate raster (any CRS) sampled at the points "
            "as mapping reads it (bilinear on the scene grid); repeatable.",
        ),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option(
            "--categorical",
            help="NAME=RASTER: a categorical covariate raster (nearest); repeatable.",
        ),
    ] = None,
    composite: Composite = "first",
    date: PreferDate = None,
    mixed_sensors: MixedSensors = False,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Extract scene reflectance at each sample point into a samples table.

    With several scenes (tiles, dates), each point is read from the first scene where it
    is valid (by --date, or in the order given), or as the median of them
    (--composite median); the report's scene column says which.

    Writes OUT (band roles as reflectance, the target, id and coordinates: read it
    with any verb that reads samples) and OUT_report.csv (status and reason for
    every point: ok, outside or masked).
    """
    report_path = out.with_name(f"{out.stem}_report.csv")
    opt.check_writable([out, report_path], overwrite)
    mosaic = MosaicOptions(composite, date, mixed_sensors=mixed_sensors)
    scene = open_scene_from_options(
        scene_sources, scaling, baseline, bands, mask_water, band_files, mosaic
    )
    samples = sample_options.read(samples_file)
    rasters = opt.covariate_rasters(covariate, categorical)
    extract = extract_from_mosaic if isinstance(scene, Mosaic) else extract_at_points
    table, report = extract(samples, scene, window=window, covariates=rasters)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_extracted(table, out, overwrite=overwrite)
    atomic_to_csv(report, report_path, index=False)
    counts = summary(report)
    say(
        f"{counts['ok']} point(s) extracted, {counts['outside']} outside the scene, "
        f"{counts['masked']} masked ({window}x{window} window)"
    )
    if "scene" in report:
        given = report.loc[report["status"] == "ok", "scene"].value_counts()
        say("points by scene: " + ", ".join(f"{s}: {n}" for s, n in given.items()))
    for row in report[report["status"] != "ok"].head(10).itertuples():
        say(f"  {row.id}: {row.reason}")
    say(f"wrote {out} and {report_path}")


def register(app: typer.Typer) -> None:
    app.command("extract")(extract_command)

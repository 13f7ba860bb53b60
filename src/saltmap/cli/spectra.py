"""``saltmap spectra``: spectral response by salinity class (the study's figure 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say
from saltmap.features.spectra import SENSOR_NAMES, salinity_classes, sensor_of, spectral_response
from saltmap.plots import save_figure, spectral_response_figure


@opt.with_sample_options
def spectra_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples: CSV, XLSX, GPKG, ...")],
    out: opt.OutFolder = Path("spectra"),
    classes: Annotated[
        str,
        typer.Option(
            "--classes",
            help="'quantile' (equal-count classes of the target) or a class scheme: "
            "study, fao-ec, fao2006-ec.",
        ),
    ] = "quantile",
    n_classes: Annotated[int, typer.Option("--n-classes", help="Quantile classes.")] = 4,
    sensor: Annotated[
        str | None,
        typer.Option(
            "--sensor", help="Wavelengths of landsat or sentinel2 (default: from --scaling)."
        ),
    ] = None,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Mean reflectance by salinity class at the band wavelengths, raw and transformed.

    Four panels (reflectance, reciprocal, square, square root), classes least
    saline first. Writes spectral_response.csv and figure3_spectral_response.png/.svg.
    """
    outputs = [out / "spectral_response.csv", out / "figure3_spectral_response.png",
               out / "figure3_spectral_response.svg"]  # fmt: skip
    opt.check_writable(outputs, overwrite)
    samples = sample_options.read(samples_file)
    grouping = salinity_classes(
        samples.target, unit=samples.target_unit, scheme=classes, n_classes=n_classes
    )
    used = sensor or sensor_of(samples.scaling)
    table = spectral_response(samples.reflectance, grouping.labels, sensor=used)
    out.mkdir(parents=True, exist_ok=True)
    atomic_to_csv(table, outputs[0], index=False)
    fig = spectral_response_figure(
        table,
        colours=grouping.colours,
        class_description=grouping.description,
        title=f"Spectral response by salinity class ({SENSOR_NAMES[used]} band centres, "
        f"{samples.source.name})",
    )
    save_figure(fig, outputs[1], formats=("png", "svg"))
    counts = grouping.labels.value_counts(sort=False)
    say(grouping.description)
    for label, n in counts.items():
        say(f"  {label}: {n} samples")
    say(f"wrote {', '.join(str(p) for p in outputs)}")


def register(app: typer.Typer) -> None:
    app.command("spectra")(spectra_command)

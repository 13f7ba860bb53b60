"""``saltmap predict``: salinity from a saved model for samples' reflectance (and covariates)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say
from saltmap.errors import MissingColumnError
from saltmap.models.building import predict_salinity
from saltmap.models.inspect import model_covariates, model_input
from saltmap.models.persistence import load_model


def _scaling_of(metadata: dict) -> str:
    name = metadata.get("scaling", "reflectance")
    if name == "custom":
        return f"{metadata['scaling_scale']},{metadata['scaling_offset']}"
    return name


def _model_input(model: Any, samples: Any) -> pd.DataFrame:
    """What the model reads from the samples: reflectance, plus the covariates it was
    trained with (an error names a covariate column the samples lack)."""
    info = model_covariates(model)
    missing = [name for name in info if name not in samples.table.columns]
    if missing:
        raise MissingColumnError(
            f"{samples.source}: the model was trained with covariate(s) "
            f"{', '.join(info)} and reads them from the samples, but column(s) "
            f"{', '.join(map(repr, missing))} are missing (columns: "
            f"{', '.join(map(str, samples.table.columns))}); add them with the same meaning "
            "and unit as in training, or use a model trained without them"
        )
    return model_input(model, samples)


def predict_command(
    model_file: Annotated[Path, typer.Argument(metavar="MODEL", help="Model from saltmap train.")],
    samples_file: Annotated[
        Path, typer.Argument(metavar="SAMPLES", help="Samples with band columns: CSV, XLSX, ...")
    ],
    out: Annotated[Path, opt.out_option("Predictions CSV to write.")],
    target: Annotated[
        str | None,
        typer.Option("--target", help="Column of measured salinity; default: the model's."),
    ] = None,
    target_unit: Annotated[
        str | None,
        typer.Option(
            "--target-unit", help="Unit of that column, converted to the model's; default: same."
        ),
    ] = None,
    id_column: opt.IdColumn = None,
    scaling: Annotated[
        str | None,
        typer.Option(
            "--scaling",
            help="Band values to reflectance (see saltmap train); default: the model's.",
        ),
    ] = None,
    baseline: opt.Baseline = None,
    band: opt.BandMap = None,
    columns: opt.ColumnsFile = None,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Predict salinity for every usable sample with a saved model.

    Writes id, the prediction (in the model's target unit) and, beside it, the
    measured value of the samples file. A model trained with covariates reads
    them from the samples' columns of the same names.
    """
    opt.check_writable([out], overwrite)
    model, metadata = load_model(model_file)
    # Left out, the target, its unit and the scaling are the model's.
    options = opt.SampleOptions(
        target=target or metadata["target"],
        target_unit=target_unit or metadata.get("target_unit"),
        id_column=id_column, scaling=scaling or _scaling_of(metadata), baseline=baseline,
        band=band, columns=columns,
    )  # fmt: skip
    samples = options.read(samples_file, to_unit=metadata.get("target_unit"))
    unit = metadata.get("target_unit") or ""
    name = f"predicted_{metadata['target']}"
    table = predict_salinity(model, _model_input(model, samples), name=name).to_frame()
    table[f"measured_{samples.target_name}"] = samples.target
    atomic_to_csv(table, out, overwrite=overwrite)
    say(
        f"{metadata.get('model', 'model')} predicted {metadata['target']} [{unit}] for "
        f"{len(table)} samples; wrote {out}"
    )


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)

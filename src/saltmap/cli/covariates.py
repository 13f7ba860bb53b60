"""``saltmap covariates`` (distance, terrain) and ``saltmap evaluate-covariates``."""

# No ``from __future__ import annotations``: the shared sample options wrap a command
# here, and typer must see its annotations evaluated where their names live.

from pathlib import Path
from typing import Annotated

import typer

from saltmap.cli import _options as opt
from saltmap.errors import ConfigError
from saltmap.features.covariates import CATEGORICAL, NUMERIC, CovariateRasters, Covariates

covariates_app = typer.Typer(
    help="Covariates saltmap derives on a scene's grid: distance to water, elevation, slope.",
    no_args_is_help=True,
)


def parse_named_paths(items: list[str] | None, option: str) -> dict[str, str]:
    """``["Dist=dist.tif"]`` -> ``{"Dist": "dist.tif"}``; an error names the bad item."""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not (sep and name.strip() and path.strip()):
            raise ConfigError(
                f"{option} {item!r} is not NAME=PATH, for example {option} Dist=d.tif"
            )
        if name.strip() in out:
            raise ConfigError(f"{option}: covariate {name.strip()!r} is given twice")
        out[name.strip()] = path.strip()
    return out


def read_labels(items: list[str] | None) -> dict[str, dict[str, str]]:
    """``--labels NAME=legend.csv`` -> ``{NAME: {code: level}}``; the CSV has columns
    ``value`` and ``level`` (a categorical raster's legend)."""
    import pandas as pd

    from saltmap.errors import InputFileError

    out = {}
    for name, path in parse_named_paths(items, "--labels").items():
        try:
            legend = pd.read_csv(path, dtype=str)
        except OSError as err:
            raise InputFileError(f"--labels {name}: cannot read {path}: {err}") from err
        if not {"value", "level"} <= set(legend.columns):
            raise ConfigError(
                f"--labels {name}: {path} needs columns 'value' and 'level' (raster code and the "
                f"level it stands for in the samples), it has {', '.join(legend.columns)}"
            )
        out[name] = dict(zip(legend["value"], legend["level"], strict=True))
    return out


def covariate_rasters(
    numeric: list[str] | None, categorical: list[str] | None
) -> CovariateRasters | None:
    """Rasters from ``--covariate NAME=PATH`` and ``--categorical NAME=PATH`` (None if neither)."""
    num = parse_named_paths(numeric, "--covariate")
    cat = parse_named_paths(categorical, "--categorical")
    both = set(num) & set(cat)
    if both:
        raise ConfigError(f"{', '.join(sorted(both))} given as both numeric and categorical")
    if not num and not cat:
        return None
    kinds = {**dict.fromkeys(num, NUMERIC), **dict.fromkeys(cat, CATEGORICAL)}
    return CovariateRasters({**num, **cat}, kinds)


def _scene(source: str, scaling: str | None):
    from saltmap.io.scene import open_scene

    return open_scene(source, scaling=scaling)


SceneScaling = Annotated[
    str | None,
    typer.Option(
        "--scaling",
        help="Scene DN to reflectance, as for `saltmap map` (only the grid is used, but the "
        "scene is opened and checked as mapping opens it).",
    ),
]
SceneArg = Annotated[
    str,
    typer.Argument(
        metavar="SCENE", help="The scene whose grid the covariate is computed on (any source)."
    ),
]


@covariates_app.command("distance")
def distance_command(
    vector: Annotated[
        Path, typer.Argument(help="Lines or polygons (coast, rivers, sea), any CRS.")
    ],
    scene_source: SceneArg,
    out: Annotated[Path, typer.Option("--out", help="GeoTIFF to write (metres).")],
    margin: Annotated[
        float,
        typer.Option("--margin", help="Metres the grid is padded by for the distance transform."),
    ] = 5000.0,
    scaling: SceneScaling = None,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Distance in metres from each scene pixel to the nearest line or polygon."""
    from saltmap.cli import console
    from saltmap.features.covariates import distance_to_features, write_covariate

    opt.check_writable([out], overwrite)
    scene = _scene(scene_source, scaling)
    distance = distance_to_features(vector, scene, margin=margin)
    write_covariate(
        out, distance, scene, description=f"distance to {Path(vector).name}", unit="m",
        overwrite=overwrite,
    )  # fmt: skip
    console.print(
        f"distance to {vector}: {float(distance.min()):.0f}-{float(distance.max()):.0f} m on "
        f"{scene.width}x{scene.height} px; wrote {out}",
        highlight=False,
    )


@covariates_app.command("terrain")
def terrain_command(
    dem: Annotated[Path, typer.Argument(help="Digital elevation model (metres), any CRS.")],
    scene_source: SceneArg,
    out_dir: Annotated[
        Path, typer.Option("--out-dir", help="Folder for elevation.tif and slope.tif.")
    ],
    scaling: SceneScaling = None,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Elevation (m) and slope (degrees) from a DEM on the scene's grid."""
    from saltmap.cli import console
    from saltmap.features.covariates import terrain, write_covariate

    paths = [out_dir / "elevation.tif", out_dir / "slope.tif"]
    opt.check_writable(paths, overwrite)
    scene = _scene(scene_source, scaling)
    elevation, slope = terrain(dem, scene)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_covariate(paths[0], elevation, scene, description="elevation", unit="m",
                    overwrite=overwrite)  # fmt: skip
    write_covariate(paths[1], slope, scene, description="slope", unit="degree",
                    overwrite=overwrite)  # fmt: skip
    console.print(f"wrote {paths[0]} and {paths[1]}")


@opt.with_sample_options
def evaluate_covariates_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples with covariate columns.")],
    covariate: Annotated[
        list[str] | None,
        typer.Option("--covariate", help="Numeric sample column used as a predictor (repeatable)."),
    ] = None,
    categorical: Annotated[
        list[str] | None,
        typer.Option("--categorical", help="Categorical sample column (repeatable)."),
    ] = None,
    min_count: Annotated[
        int | None,
        typer.Option("--min-count", help="Pool categorical levels seen fewer times."),
    ] = None,
    models: Annotated[
        str, typer.Option("--models", help="Comma-separated model names (untuned defaults).")
    ] = "RF",
    indices: Annotated[str, typer.Option("--indices", help="Index features.")] = "novel",
    log_target: Annotated[
        bool, typer.Option("--log-target", help="Model log10 of the target (skewed salinity).")
    ] = False,
    splits: Annotated[int, typer.Option("--splits", help="Folds per repeat.")] = 5,
    repeats: Annotated[int, typer.Option("--repeats", help="Repeats of the k-fold.")] = 5,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Write summary, folds and importance CSVs.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Folds in parallel.")] = 1,
    seed: int = opt.SEED,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """What covariates add: the same models with and without them on the same folds.

    Prints R² (fold mean ± sd and pooled) with and without the covariates, the
    paired difference with its 95 % bootstrap CI, and the permutation importance
    of every predictor on the test folds.
    """
    from sklearn.model_selection import RepeatedKFold

    from saltmap.cli import console
    from saltmap.features.covariates import covariate_gain

    names = ("summary", "folds", "importance")
    paths = [out_dir / f"covariate_gain_{n}.csv" for n in names] if out_dir else []
    opt.check_writable(paths, overwrite)
    spec = Covariates(covariate or (), categorical or (), min_count)
    samples = sample_options.read(samples_file)
    cv = RepeatedKFold(n_splits=splits, n_repeats=repeats, random_state=seed)
    gain = covariate_gain(
        samples, spec, models=[m.strip() for m in models.split(",")], indices=indices, cv=cv,
        random_state=seed, n_jobs=jobs, log_target=log_target,
    )  # fmt: skip
    for row in gain.summary.itertuples():
        line = (
            f"{row.model:8s} {row.predictors:20s} R² {row.R2_mean:.3f} ± {row.R2_sd:.3f} "
            f"(pooled {row.R2_pooled:.3f})  RMSE {row.RMSE_mean:.1f}"
        )
        if row.predictors != "indices":
            line += (
                f"   ΔR² pooled {row.dR2_pooled:+.3f} [{row.dR2_pooled_ci_low:+.3f}, "
                f"{row.dR2_pooled_ci_high:+.3f}], ΔR² fold mean {row.dR2:+.3f} "
                f"[{row.dR2_ci_low:+.3f}, {row.dR2_ci_high:+.3f}]"
            )
        console.print(line, highlight=False)
    console.print("permutation importance (mean decrease of test-fold R²):", highlight=False)
    for row in gain.importance.itertuples():
        console.print(f"  {row.model:8s} {row.predictor:20s} {row.mean:.3f} ± {row.sd:.3f}",
                      highlight=False)  # fmt: skip
    if gain.n_flagged:
        console.print(
            f"{gain.n_flagged} test row(s) over all folds had a level missing from their "
            "training fold and were left out of every score",
            highlight=False,
        )
    if out_dir:
        from saltmap.atomic import atomic_to_csv

        out_dir.mkdir(parents=True, exist_ok=True)
        for table, path in zip((gain.summary, gain.folds, gain.importance), paths, strict=True):
            atomic_to_csv(table, path, index=False)
        console.print(f"wrote {', '.join(map(str, paths))}")


def register(app: typer.Typer) -> None:
    app.add_typer(covariates_app, name="covariates")
    app.command("evaluate-covariates")(evaluate_covariates_command)

"""``saltmap covariates`` (distance, terrain) and ``saltmap evaluate-covariates``."""

# No ``from __future__ import annotations``: the shared sample options wrap a command
# here, and typer must see its annotations evaluated where their names live.

from pathlib import Path
from typing import Annotated

import typer
from sklearn.model_selection import RepeatedKFold

from saltmap.atomic import atomic_to_csv
from saltmap.cli import _options as opt
from saltmap.cli._print import say, warn
from saltmap.features.covariate_layers import distance_to_features, terrain, write_covariate
from saltmap.features.covariates import Covariates
from saltmap.io.scene import Scene, open_scene
from saltmap.validation.covariates import CovariateGain, GainSettings, covariate_gain

covariates_app = typer.Typer(
    help="Covariates saltmap derives on a scene's grid: distance to water, elevation, slope.",
    no_args_is_help=True,
)


def _scene(source: str, scaling: str | None) -> Scene:
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
    out: Annotated[Path, opt.out_option("GeoTIFF to write (metres).")],
    margin: Annotated[
        float,
        typer.Option("--margin", help="Metres the grid is padded by for the distance transform."),
    ] = 5000.0,
    scaling: SceneScaling = None,
    overwrite: bool = opt.OVERWRITE,
) -> None:
    """Distance in metres from each scene pixel to the nearest line or polygon."""
    opt.check_writable([out], overwrite)
    scene = _scene(scene_source, scaling)
    distance = distance_to_features(vector, scene, margin=margin)
    write_covariate(
        out, distance, scene, description=f"distance to {Path(vector).name}", unit="m",
        overwrite=overwrite,
    )  # fmt: skip
    say(
        f"distance to {vector}: {float(distance.min()):.0f}-{float(distance.max()):.0f} m on "
        f"{scene.width}x{scene.height} px; wrote {out}"
    )


@covariates_app.command("terrain")
def terrain_command(
    dem: Annotated[Path, typer.Argument(help="Digital elevation model (metres), any CRS.")],
    scene_source: SceneArg,
    out: Annotated[Path | None, opt.out_option("Folder for elevation.tif and slope.tif.")] = None,
    scaling: SceneScaling = None,
    overwrite: bool = opt.OVERWRITE,
    old_out_dir: opt.OldOutDir = None,
) -> None:
    """Elevation (m) and slope (degrees) from a DEM on the scene's grid."""
    out_dir = opt.required(opt.renamed(out, old_out_dir, "--out", "--out-dir"), "--out", "FOLDER")
    paths = [out_dir / "elevation.tif", out_dir / "slope.tif"]
    opt.check_writable(paths, overwrite)
    scene = _scene(scene_source, scaling)
    elevation, slope = terrain(dem, scene)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_covariate(paths[0], elevation, scene, description="elevation", unit="m",
                    overwrite=overwrite)  # fmt: skip
    write_covariate(paths[1], slope, scene, description="slope", unit="degree",
                    overwrite=overwrite)  # fmt: skip
    say(f"wrote {paths[0]} and {paths[1]}")


@opt.with_sample_options
def evaluate_covariates_command(
    samples_file: Annotated[Path, typer.Argument(help="Field samples with covariate columns.")],
    covariate: opt.CovariateColumns = None,
    categorical: opt.CategoricalColumns = None,
    min_count: opt.MinCount = None,
    models: opt.ModelList = "RF",
    indices: opt.Indices = "novel",
    log_target: opt.LogTarget = False,
    folds: opt.Folds = 5,
    repeats: opt.Repeats = 5,
    out: Annotated[
        Path | None, opt.out_option("Folder for the summary, folds and importance CSVs.")
    ] = None,
    jobs: opt.Jobs = 1,
    seed: int = opt.SEED,
    sample_options: opt.SampleOptions = opt.FROM_COMMAND_LINE,
    overwrite: bool = opt.OVERWRITE,
    old_out_dir: opt.OldOutDir = None,
    old_splits: opt.OldSplits = None,
) -> None:
    """What covariates add: the same models with and without them on the same folds.

    Prints R² (fold mean ± sd and pooled) with and without the covariates, the
    paired difference with its 95 % bootstrap CI, and the permutation importance
    of every predictor on the test folds.
    """
    out = opt.renamed(out, old_out_dir, "--out", "--out-dir")
    folds = opt.renamed(folds, old_splits, "--folds", "--splits", default=5)
    names = ("summary", "folds", "importance")
    paths = [out / f"covariate_gain_{n}.csv" for n in names] if out else []
    opt.check_writable(paths, overwrite)
    spec = Covariates(covariate or (), categorical or (), min_count)
    samples = sample_options.read(samples_file)
    settings = GainSettings(
        models=list(opt.comma_list(models)),
        indices=indices,
        cv=RepeatedKFold(n_splits=folds, n_repeats=repeats, random_state=seed),
        random_state=seed,
        log_target=log_target,
    )
    gain = covariate_gain(samples, spec, settings, n_jobs=jobs)
    print_covariate_gain(gain)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        for table, path in zip((gain.summary, gain.folds, gain.importance), paths, strict=True):
            atomic_to_csv(table, path, index=False)
        say(f"wrote {', '.join(map(str, paths))}")


def print_covariate_gain(gain: CovariateGain) -> None:
    """R² with and without the covariates, the paired gain, and permutation importance."""
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
        say(line)
    say("permutation importance (mean decrease of test-fold R²):")
    for row in gain.importance.itertuples():
        say(f"  {row.model:8s} {row.predictor:20s} {row.mean:.3f} ± {row.sd:.3f}")
    if gain.n_flagged:
        warn(
            f"{gain.n_flagged} test row(s) over all folds had a level missing from their "
            "training fold and were left out of every score"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(covariates_app, name="covariates")
    app.command("evaluate-covariates")(evaluate_covariates_command)

"""The command line: verbs, error messages and --overwrite."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from saltmap import datasets
from saltmap.cli import app
from saltmap.errors import SaltmapError

runner = CliRunner()
ODISHA_ARGS = [
    "--target",
    "EC",
    "--target-unit",
    "uS/cm",
    "--id",
    "Name",
    "--scaling",
    "landsat-c2l2",
]


def _saltmap(*args, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from saltmap.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
    )


def test_indices_lists_the_catalogue():
    result = runner.invoke(app, ["indices", "--group", "novel"])
    assert result.exit_code == 0
    for name in ("SAI", "TRSI", "SBCI", "GOSI"):
        assert name in result.stdout


def test_screen_on_odisha_with_options_only(tmp_path):
    out = tmp_path / "screen"
    args = ["screen", str(datasets.odisha_samples()), *ODISHA_ARGS, "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "screening.csv")
    assert len(table) == 21 and table["n"].eq(106).all()
    assert (out / "figure4_screening.png").stat().st_size > 10_000
    assert len(pd.read_csv(out / "rejected.csv")) == 7
    assert "rejected row" in result.stdout
    # A second run must not clobber without --overwrite.
    again = _saltmap(*args)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0


def test_errors_are_one_clear_line_without_traceback(tmp_path):
    result = _saltmap("screen", str(datasets.odisha_samples()), "--target", "Salt")
    assert result.returncode == 2
    assert "error:" in result.stderr and "Salt" in result.stderr
    assert "Traceback" not in result.stderr
    debug = _saltmap("--debug", "screen", str(datasets.odisha_samples()), "--target", "Salt")
    assert "Traceback" in debug.stderr and "MissingColumnError" in debug.stderr


def test_usage_errors_show_usage_without_traceback():
    result = _saltmap("train", str(datasets.odisha_samples()))  # no --out
    assert result.returncode == 2
    assert "Missing option '--out'" in result.stderr and "saltmap train --help" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_data_dir_is_explained(tmp_path):
    env = {**__import__("os").environ, datasets.ENV_VAR: str(tmp_path / "nowhere")}
    result = _saltmap("demo", "--out", str(tmp_path / "demo"), env=env)
    assert result.returncode == 2
    assert "SALTMAP_DATA_DIR" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("bad", ["N", "N=", "=nir"])
def test_bad_band_option(bad):
    result = _saltmap("screen", str(datasets.odisha_samples()), "--band", bad)
    assert result.returncode == 2 and "ROLE=COLUMN" in result.stderr


def test_demo_runs_the_shipped_study(tmp_path, monkeypatch):
    # The demo is `saltmap run` on the packaged study (whole runs: tests/test_study.py).
    import saltmap.cli.demo as demo_module
    from saltmap.study.config import demo_study_path

    calls = []
    monkeypatch.setattr(demo_module, "run_and_report", lambda *args: calls.append(args))
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo"), "-q"])
    assert result.exit_code == 0, result.output
    assert calls == [(demo_study_path(), tmp_path / "demo", 0, True)]


def _train(tmp_path, name, *extra):
    out = tmp_path / name
    args = ["train", str(datasets.odisha_samples()), *ODISHA_ARGS, "--model", "RF",
            "--trials", "0", "--budget", "quick", "--out", str(out), *extra]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_train_saves_intervals_and_aoa_unless_told_not_to(tmp_path):
    from saltmap.io.samples import odisha
    from saltmap.models.persistence import load_model, load_trust

    samples = odisha()
    path, output = _train(tmp_path, "rf.skops")
    model, _ = load_model(path)
    trust = load_trust(path)
    assert trust.info["confidence"] == 0.9 and trust.bands == tuple(model[0].bands_)
    assert "90% prediction intervals" in output and "area of applicability" in output
    # Refitted with the saved model's parameters on the same rows: the same forest.
    np.testing.assert_allclose(
        trust.intervals.predict(samples.reflectance), model.predict(samples.reflectance)
    )
    narrower = load_trust(_train(tmp_path, "rf80.skops", "--level", "0.8")[0])
    assert narrower.info["confidence"] == 0.8
    width = np.diff(trust.intervals.quantiles_)[0]
    assert np.diff(narrower.intervals.quantiles_)[0] < width
    assert load_trust(_train(tmp_path, "plain.skops", "--no-trust")[0]) is None


def test_train_with_covariates_saves_trust_over_every_predictor(tmp_path):
    from saltmap.io.samples import odisha
    from saltmap.models.inspect import model_input
    from saltmap.models.persistence import load_model, load_trust

    path, _ = _train(tmp_path, "cov.skops", "--covariate", "Dist_Sea")
    model, _ = load_model(path)
    trust = load_trust(path)
    assert trust.feature_names[-1] == "Dist_Sea"
    X = model_input(model, odisha())
    np.testing.assert_allclose(trust.intervals.predict(X), model.predict(X))


def _boundary(tmp_path):
    """A synthetic polygon in longitude/latitude over part of the real Patagonia cut."""
    import geopandas as gpd
    import shapely

    area = shapely.Polygon(
        [(-67.652, -47.850), (-67.636, -47.848), (-67.632, -47.858), (-67.650, -47.860)]
    )
    path = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[area], crs="EPSG:4326").to_file(path)
    return path


def test_train_then_map_writes_the_trust_layers(tmp_path):
    import rasterio

    model, _ = _train(tmp_path, "rf.skops")
    area = _boundary(tmp_path)
    args = ["map", str(model), str(datasets.patagonia_scene()), "--scaling", "sentinel2-l2a",
            "--scheme", "fao-ec", "--block-size", "64", "--boundary", str(area)]  # fmt: skip
    out = tmp_path / "map"
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "area of applicability:" in text and "90% prediction interval width" in text
    assert "(5th / 50th / 95th percentile)" in text
    assert "by dissimilarity index:" in text and "median_width" in text
    names = ["salinity_lower", "salinity_upper", "salinity_width", "dissimilarity", "aoa"]
    for name in names:
        assert (out / f"{name}.tif").is_file(), name
    with rasterio.open(out / "aoa.tif") as src:
        aoa = src.read(1)
    with rasterio.open(out / "salinity.tif") as src:
        mapped = np.isfinite(src.read(1))
    assert set(np.unique(aoa)) <= {0, 1, 255} and 0 in aoa and 255 in aoa
    np.testing.assert_array_equal(aoa != 255, mapped)  # AOA known exactly where mapped
    # Again, leaving pixels outside the AOA out of the classes.
    again = runner.invoke(app, [*args, "--out", str(out), "--exclude-outside-aoa", "--overwrite"])
    assert again.exit_code == 0, again.output
    assert "left out of the classes" in " ".join(again.output.split())
    with rasterio.open(out / "salinity_classes.tif") as src:
        assert not src.read(1)[aoa == 0].any()
    assert "scope" in pd.read_csv(out / "class_areas.csv").columns


def _map_patagonia(model, out):
    """``saltmap map`` of the real Patagonia cut with ``model``, which must succeed."""
    result = runner.invoke(app, ["map", str(model), str(datasets.patagonia_scene()),
                                 "--scaling", "sentinel2-l2a", "--scheme", "fao-ec",
                                 "--out", str(out), "--block-size", "256"])  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def test_map_with_a_model_without_trust_says_how_to_get_it(tmp_path):
    model, _ = _train(tmp_path, "plain.skops", "--no-trust")
    out = tmp_path / "map"
    result = _map_patagonia(model, out)
    text = " ".join(result.output.split())
    assert "holds no prediction intervals or area of applicability" in text
    assert "saltmap train" in text
    assert sorted(p.name for p in out.iterdir()) == [
        "class_areas.csv", "salinity.qml", "salinity.tif", "salinity_classes.qml",
        "salinity_classes.tif", "salinity_classes.tif.aux.xml",
        "salinity_map.png",
    ]  # fmt: skip


def test_a_model_chosen_without_evidence_of_skill_maps_with_the_warning(tmp_path, monkeypatch):
    # `train --model auto` keeps the evaluation's verdict (test_selection checks that an
    # evaluation of shuffled targets gives this one); `map` says it and tags the COGs.
    import rasterio

    from saltmap.cli import train as train_module

    verdict = {"evidence": False, "reasons": ["the pooled R² interval reaches -0.12"]}
    spec = {"name": "RF", "label": "RF", "indices": "novel", "covariates": False,
            "fixed": None, "untuned": False, "skill": verdict}  # fmt: skip
    monkeypatch.setattr(train_module, "choose_model", lambda *args: spec)
    model, _ = _train(tmp_path, "auto.skops", "--model", "auto", "--no-trust")
    out = tmp_path / "map"
    result = _map_patagonia(model, out)
    text = " ".join(result.output.split())
    assert "no evidence of skill" in text and "pooled R² interval reaches -0.12" in text
    with rasterio.open(out / "salinity.tif") as src:
        tags = src.tags()
    assert tags["model"] == "RF (no evidence of skill)" and "warning" in tags


# -- every verb prints what it means: names with [brackets] come out verbatim -----------------


def _flat(text):
    """Text without any whitespace: rich wraps (and may fold) long lines at the terminal width."""
    return "".join(text.split())


def _says(result, *expected):
    assert result.exit_code == 0, result.output
    for text in expected:
        assert _flat(str(text)) in _flat(result.output), (text, result.output)


@pytest.fixture(scope="module")
def bracketed(tmp_path_factory):
    """Real inputs under names that rich would read as markup: ``[in]/[odisha] samples.csv``."""
    import shutil

    root = tmp_path_factory.mktemp("brackets")
    inputs = root / "[in]"
    inputs.mkdir()
    samples = inputs / "[odisha] samples [1].csv"
    shutil.copy(datasets.odisha_samples(), samples)
    scene = inputs / "[scene] patagonia"
    shutil.copytree(datasets.patagonia_scene(), scene)
    lab = inputs / "[lab] raw.xlsx"
    shutil.copy(datasets.xinjiang_lab_sheet(), lab)
    (root / "[out]").mkdir()  # each test may run alone: none relies on another's folder
    return {"root": root, "samples": samples, "scene": scene, "lab": lab, "out": root / "[out]"}


def test_init_prints_the_toml_sections_it_names(tmp_path):
    path = tmp_path / "[x]" / "study [1].toml"
    path.parent.mkdir()
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    assert "[samples]" in result.output and "[[scenes]]" in result.output
    _says(
        result, f"wrote {path}: set [samples] path and [[scenes]] path, then `saltmap run {path}`"
    )


def test_sample_verbs_print_file_names_and_units_verbatim(bracketed):
    samples, out = bracketed["samples"], bracketed["out"]
    head = ["[odisha] samples [1].csv: 106 usable samples, 7 rejected; target EC [µS/cm]"]
    result = runner.invoke(app, ["screen", str(samples), *ODISHA_ARGS, "--out", str(out / "s")])
    _says(result, *head, f"wrote {out / 's' / 'screening.csv'}", "[+0.")
    result = runner.invoke(app, ["spectra", str(samples), *ODISHA_ARGS, "--out", str(out / "p")])
    _says(result, *head, f"wrote {out / 'p' / 'spectral_response.csv'}")
    args = ["discover", str(samples), *ODISHA_ARGS, "--folds", "2", "--top", "3"]
    result = runner.invoke(app, [*args, "--out", str(out / "d")])
    _says(result, *head, f"wrote {out / 'd' / 'discovery_ranked.csv'}")
    args = ["evaluate", str(samples), *ODISHA_ARGS, "--quick", "--models", "PLSR", "--trials",
            "0", "--protocols", "study", "--no-baseline", "--jobs", "1"]  # fmt: skip
    result = runner.invoke(app, [*args, "--out", str(out / "e")])
    _says(result, *head, "Table 4", f"files to {out / 'e'}")
    args = ["evaluate-covariates", str(samples), *ODISHA_ARGS, "--covariate", "Dist_Sea",
            "--models", "PLSR", "--folds", "2", "--repeats", "1"]  # fmt: skip
    result = runner.invoke(app, [*args, "--out", str(out / "g")])
    _says(result, *head, f"wrote {out / 'g' / 'covariate_gain_summary.csv'}")


def test_model_and_scene_verbs_print_file_names_verbatim(bracketed):
    samples, scene, out = bracketed["samples"], bracketed["scene"], bracketed["out"]
    model = out / "[model] rf.skops"
    args = ["train", str(samples), *ODISHA_ARGS, "--model", "RF", "--trials", "0",
            "--budget", "quick", "--no-trust", "--out", str(model)]  # fmt: skip
    _says(runner.invoke(app, args), f"wrote {model}")
    predictions = out / "[pred].csv"
    args = ["predict", str(model), str(samples), *ODISHA_ARGS, "--out", str(predictions)]
    _says(runner.invoke(app, args), f"predicted EC [µS/cm] for 106 samples; wrote {predictions}")
    scene_args = [str(scene), "--scaling", "sentinel2-l2a"]
    extracted = out / "[extracted].csv"
    args = ["extract", str(samples), *scene_args, *ODISHA_ARGS[:6], "--out", str(extracted)]
    _says(runner.invoke(app, args), str(scene), f"wrote {extracted} and")
    args = ["map", str(model), *scene_args, "--scheme", "fao-ec", "--block-size", "256"]
    result = runner.invoke(app, [*args, "--out", str(out / "[map]")])
    _says(result, f"{model} holds no prediction intervals", f"wrote {out / '[map]'}")
    dem = out / "[dem] 1.tif"
    dem.write_bytes((scene / "B02_10m.tif").read_bytes())  # any raster serves as heights here
    args = ["covariates", "terrain", str(dem), *scene_args, "--out", str(out / "[terrain]")]
    _says(runner.invoke(app, args), f"wrote {out / '[terrain]' / 'elevation.tif'}")


def test_convert_prints_file_names_verbatim(bracketed):
    lab, out = bracketed["lab"], bracketed["out"] / "[conv] 1.toml"
    result = runner.invoke(app, ["convert", "fit", str(lab), "--out", str(out), "--no-figure"])
    _says(result, f"lab sheet {lab}", f"wrote {out},")
    result = runner.invoke(app, ["convert", "ec", "1500", "--from", "uS/cm", "--to", "dS/m"])
    _says(result, "1500 µS/cm = 1.5 dS/m")


def test_run_and_demo_print_step_notes_and_folders_verbatim(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import saltmap.study.config as config_module
    import saltmap.study.runner as runner_module

    folder = tmp_path / "[runs]" / "study-1"
    step = SimpleNamespace(name="maps", status="skipped", note="no [[scenes]] given")
    done = SimpleNamespace(steps=[step], folder=folder, seconds=1.0, report=folder / "r.html")
    monkeypatch.setattr(config_module, "load_study", lambda path: path)
    monkeypatch.setattr(runner_module, "run_study", lambda *args, **kwargs: done)
    for verb in (["run", str(tmp_path / "[s].toml")], ["demo"]):
        result = runner.invoke(app, [*verb, "--out", str(tmp_path / "[runs]"), "-q"])
        _says(result, "left out: maps (no [[scenes]] given)", f"run written to {folder}",
              f"report: {folder / 'r.html'}")  # fmt: skip


def test_errors_and_old_option_spellings_print_verbatim(tmp_path):
    missing = tmp_path / "[in]" / "[missing] samples.csv"
    result = _saltmap("screen", str(missing), *ODISHA_ARGS)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error:") and _flat(str(missing)) in _flat(result.stderr)
    # An old spelling works, says it is old, and cannot contradict the new one.
    old = ["--splits", "2", "--out-dir", str(tmp_path / "[g]"), "--covariate", "Dist_Sea"]
    args = ["evaluate-covariates", str(datasets.odisha_samples()), *ODISHA_ARGS, "--models",
            "PLSR", "--repeats", "1", *old]  # fmt: skip
    result = runner.invoke(app, args)
    _says(result, "--out-dir is now --out", "--splits is now --folds")
    assert (tmp_path / "[g]" / "covariate_gain_summary.csv").is_file()
    clash = runner.invoke(app, [*args, "--folds", "3", "--overwrite"])
    assert isinstance(clash.exception, SaltmapError) and "--splits" in str(clash.exception)


def test_the_printing_path_shows_markup_and_emoji_codes_as_written(capsys):
    from saltmap.cli import _print

    _print.say("[bold]x[/] :smile: [samples]")
    _print.warn("[[scenes]] [dS/m]")
    _print.table("t [1]", ["a [b]", "n"], [["[red]c[/]", 1]], left=["a [b]"])
    _print.error("[in]/f.csv")
    out, err = capsys.readouterr()
    for text in (
        "[bold]x[/] :smile: [samples]",
        "[[scenes]] [dS/m]",
        "t [1]",
        "a [b]",
        "[red]c[/]",
    ):
        assert text in out, out
    assert err.strip() == "error: [in]/f.csv"


def test_rich_progress_draws_ticks_and_task_names_as_written():
    from io import StringIO

    from rich.console import Console

    from saltmap.cli._progress import RichProgress

    buffer = StringIO()
    bars = RichProgress(Console(file=buffer, width=120), transient=False)
    with bars.task("fitting [sets]", total=3) as tick:
        for done in range(1, 4):
            tick(done, 3)
    assert "fitting [sets]" in buffer.getvalue() and "3/3" in buffer.getvalue()

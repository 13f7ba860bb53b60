"""Study files, the run folder and reruns.

Validation is tested on small TOML texts; runs use the real shared data (Odisha
samples, the Patagonia scene) with quick settings so that both runs of the
rerun test stay within about a minute.
"""

import importlib
import json
import re
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from saltmap import datasets
from saltmap.cli import app
from saltmap.errors import ConfigError, InputFileError
from saltmap.progress import RecordedProgress
from saltmap.study import (
    demo_study_path,
    expand_path_text,
    load_study,
    run_study,
    study_from_text,
)

runner = CliRunner()
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""")

SAMPLES = """
[samples]
path = "${SALTMAP_DATA_DIR}/odisha-2024/samples.csv"
target = "EC"
target_unit = "uS/cm"
id = "Name"
x = "lon"
y = "lat"
crs = "EPSG:4326"
scaling = "landsat-c2l2"
"""

# A quick but complete study: every step runs, on the real data.
QUICK = f"""
name = "quick"
seed = 3
{SAMPLES}
[samples.salt_conversion]
lab_sheet = "${{SALTMAP_DATA_DIR}}/xinjiang-ec-ssc/raw.xlsx"

[[scenes]]
name = "patagonia"
path = "${{SALTMAP_DATA_DIR}}/patagonia-s2"
scaling = "sentinel2-l2a"

[discovery]
folds = 2
top = 5

[indices]
sets = {{ N-SI = "novel", D-SI = "discovered:2" }}

[models]
names = ["PLSR"]
final = "PLSR"
final_indices = "discovered:2"

[validation]
protocols = ["study", "repeated"]
repeats = 1
baseline = false
bootstrap = 100

[tuning]
budget = "quick"
n_trials = 0

[outputs]
figure_formats = ["png", "svg"]
"""


def _problems(text: str, check_files: bool = True) -> str:
    with pytest.raises(ConfigError) as info:
        study_from_text(text, path="study.toml", check_files=check_files)
    return str(info.value)


# -- validation ---------------------------------------------------------------------------------


def test_demo_study_points_at_the_shared_data():
    study = load_study(demo_study_path())
    data = datasets.data_dir()
    assert study.config.samples.path == data / "odisha-2024" / "samples.csv"
    assert Path(study.config.scenes[0].path) == data / "patagonia-s2"
    assert study.config.samples.salt_conversion.lab_sheet == data / "xinjiang-ec-ssc" / "raw.xlsx"


def test_demo_study_maps_patagonia_and_the_unnao_landsat_cut():
    scenes = load_study(demo_study_path()).config.scenes
    assert [s.label for s in scenes] == ["patagonia", "unnao"]
    unnao = scenes[1]
    assert Path(unnao.path) == datasets.data_dir() / "unnao-landsat"
    assert unnao.scaling == "landsat-c2l2"
    assert unnao.bands == {"B": "Blue.tif", "G": "Green.tif", "R": "Red.tif", "N": "NIR.tif",
                           "S1": "SWIR1.tif", "S2": "SWIR2.tif"}  # fmt: skip


def test_data_dir_variable_works_when_unset(monkeypatch, tmp_path):
    # The default folder sits beside the clone; point it at a synthetic one so the
    # test does not depend on where the repository was cloned.
    monkeypatch.delenv("SALTMAP_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "DEFAULT_DATA_DIR", tmp_path)
    assert datasets.data_dir() == tmp_path
    assert expand_path_text("${SALTMAP_DATA_DIR}/x") == f"{datasets.data_dir()}/x"


def test_other_variables_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("FIELD_DATA", "/srv/field")
    assert expand_path_text("$FIELD_DATA/a.csv") == "/srv/field/a.csv"
    monkeypatch.delenv("FIELD_DATA")
    with pytest.raises(ValueError, match="FIELD_DATA"):
        expand_path_text("${FIELD_DATA}/a.csv")


def test_relative_paths_resolve_against_the_study_folder(tmp_path):
    text = 'name = "x"\n[samples]\npath = "field/samples.csv"\n'
    study = study_from_text(text, base=tmp_path, check_files=False)
    assert study.config.samples.path == tmp_path / "field" / "samples.csv"
    assert study.config.indices.sets == {"N-SI": "novel", "SI": "classic"}


def test_unknown_key_is_named_with_a_suggestion():
    message = _problems(f'name = "x"\nseeed = 2\n{SAMPLES}\n[modles]\nfinal = "RF"\n')
    assert "unknown key 'seeed'" in message
    assert "did you mean 'seed'?" in message
    assert "unknown key 'modles'" in message
    assert "did you mean 'models'?" in message


def test_bad_values_name_the_key_the_value_and_what_is_accepted():
    text = f"""name = "x"
{SAMPLES.replace('"landsat-c2l2"', '"landsat"')}
[models]
names = ["Stacking", "GBM"]
[validation]
test_size = 1.5
[classes]
scheme = "soviet"
"""
    message = _problems(text)
    assert "4 problem(s)" in message
    assert "samples.scaling = 'landsat'" in message
    assert "landsat-c2l2" in message  # the fix: the names it accepts
    assert "models.names[1] = 'GBM'" in message
    assert "'Stacking', 'XGBoost', 'RF', 'MLP' or 'PLSR'" in message
    assert "validation.test_size = 1.5" in message
    assert "less than 1" in message
    assert "classes.scheme = 'soviet'" in message
    assert "fao-ec" in message


def test_unknown_index_in_a_feature_set():
    message = _problems(f'name = "x"\n{SAMPLES}\n[indices]\nsets = {{A = "novel,XYZ"}}\n')
    assert "indices.sets" in message
    assert "unknown index 'XYZ'" in message


def test_missing_file_is_named():
    message = _problems('name = "x"\n[samples]\npath = "no/such/samples.csv"\n')
    assert "samples.path = 'no/such/samples.csv'" in message
    assert "does not exist" in message


def test_missing_required_keys():
    message = _problems('title = "no name, no samples"\n')
    assert "missing key 'name'" in message
    assert "missing key 'samples'" in message


def test_salt_conversion_needs_exactly_one_source():
    message = _problems(f'name = "x"\n{SAMPLES}\n[samples.salt_conversion]\nslope = 2.0\n')
    assert "samples.salt_conversion" in message
    assert "needs both slope and intercept" in message


def test_discovered_sets_need_discovery():
    text = f'name = "x"\n{SAMPLES}\n[indices]\nsets = {{D = "discovered:3"}}\n'
    text += "[discovery]\nenabled = false\n"
    assert "enable discovery" in _problems(text)


def test_not_toml_and_missing_study_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = [unclosed\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_study(bad)
    with pytest.raises(InputFileError, match="saltmap init"):
        load_study(tmp_path / "none.toml")


def test_init_writes_a_study_that_loads_and_refuses_to_clobber(tmp_path):
    path = tmp_path / "study.toml"
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code == 0, result.output
    study = load_study(path, check_files=False)
    assert study.config.name == "my-study"
    assert study.config.samples.path == tmp_path / "samples.csv"
    path.write_text("# mine\n")
    result = runner.invoke(app, ["init", str(path)])
    assert result.exit_code != 0
    assert path.read_text() == "# mine\n"
    assert runner.invoke(app, ["init", str(path), "--overwrite"]).exit_code == 0
    assert "[samples]" in path.read_text()


def test_classes_out_of_reach_fail_before_the_long_steps(tmp_path):
    # EC target, g/kg classes, no conversion: stop at the samples step.
    text = QUICK.split("[samples.salt_conversion]")[0] + QUICK.split('raw.xlsx"')[1]
    study = study_from_text(text, base=tmp_path)
    with pytest.raises(ConfigError, match=r"Add a samples\.salt_conversion table"):
        run_study(study, folder=tmp_path / "run", progress=None)
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["incomplete_at"] == "samples"
    assert [s["status"] for s in record["steps"]] == ["failed"]


# -- runs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The quick study run twice: once by the command line, once by the API."""
    base = tmp_path_factory.mktemp("study")
    study_file = base / "quick.toml"
    study_file.write_text(QUICK, encoding="utf-8")
    out = base / "runs"
    result = runner.invoke(app, ["run", str(study_file), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    (first,) = out.iterdir()
    second = run_study(load_study(study_file), out, progress=None)
    return first, second


def test_run_folder_holds_everything(two_runs):
    folder, _ = two_runs
    assert folder.name.startswith("quick-")
    for name in ("study.toml", "study_resolved.json", "versions.json", "run.json", "run.log",
                 "report.html"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert (folder / "study.toml").read_text() == QUICK
    resolved = json.loads((folder / "study_resolved.json").read_text())
    assert resolved["samples"]["path"] == str(datasets.odisha_samples())
    assert resolved["validation"]["test_size"] == 0.3  # defaults filled in
    versions = json.loads((folder / "versions.json").read_text())
    assert {"saltmap", "numpy", "scikit-learn", "python"} <= set(versions)
    record = json.loads((folder / "run.json").read_text())
    assert record["seed"] == 3
    assert "incomplete_at" not in record
    statuses = {s["name"]: s["status"] for s in record["steps"]}
    assert list(statuses) == ["samples", "screening", "discovery", "evaluation", "final fit",
                              "maps", "report"]  # fmt: skip
    assert set(statuses.values()) <= {"done", "skipped"}
    for table in ("table2_indices", "table3_screening", "table4_study_split", "cv_honest",
                  "table5_class_areas_patagonia"):  # fmt: skip
        assert (folder / "tables" / f"{table}.csv").is_file(), table
        assert (folder / "tables" / f"{table}.md").is_file(), table
    for figure in ("figure3_spectral_response", "figure4_screening",
                   "figure5_predicted_measured", "figure6_patagonia"):  # fmt: skip
        assert (folder / "figures" / f"{figure}.png").is_file()
        assert (folder / "figures" / f"{figure}.svg").is_file()
    maps = folder / "maps" / "patagonia"
    assert (maps / "salinity.tif").is_file() and (maps / "salinity_classes.tif").is_file()
    log = (folder / "run.log").read_text()
    assert "[4/7] evaluation" in log and "run finished" in log
    trust = pd.read_csv(folder / "tables" / "trust_summary.csv")
    assert trust["valid_pixels"].iloc[0] == 300 * 200
    assert 0 <= trust["share_inside_aoa"].iloc[0] <= 1
    # The trust layers are the map's own COGs; the summary and figure come from them.
    import rasterio

    with rasterio.open(maps / "aoa.tif") as src:
        aoa = src.read(1)
    assert trust["share_inside_aoa"].iloc[0] == pytest.approx((aoa == 1).sum() / (aoa != 255).sum())
    assert (folder / "figures" / "trust_patagonia.png").is_file()
    coverage = pd.read_csv(folder / "tables" / "interval_coverage.csv")
    assert list(coverage["protocol"]) == ["repeated", "spatial"]
    # Adaptive and constant intervals on the same folds, by tercile, and their curves.
    calibration = pd.read_csv(folder / "tables" / "interval_calibration.csv")
    assert set(zip(calibration["protocol"], calibration["method"], strict=True)) == {
        (p, m) for p in ("repeated", "spatial") for m in ("normalized", "base")
    }
    assert {"coverage_pred_t1", "coverage_di_t3", "width_iqr_share"} <= set(calibration)
    assert (folder / "figures" / "interval_calibration.png").is_file()
    assert (folder / "tables" / "width_by_di_patagonia.csv").is_file()
    assert {"width_p05", "width_p95", "share_one_class"} <= set(trust)


def test_report_is_self_contained(two_runs):
    folder, _ = two_runs
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert REMOTE.search(page) is None
    assert "<script" not in page and "<link" not in page
    images = re.findall(r'src="data:image/png;base64,', page)
    figures = list((folder / "figures").glob("*.png"))
    assert len(images) == len(figures) >= 4
    summary = page[page.index('id="s1-summary"') : page.index('id="s2-samples"')]
    assert "pooled R²" in summary and "prediction intervals cover" in summary
    assert "area of applicability; median interval width" in summary
    assert "inside AOA (%)" in page and "Area of applicability and interval width" in page
    for title in ("Table 2.", "Table 3.", "Table 4.", "Table 5.", "Figure 3.", "Figure 4.",
                  "Figure 5.", "Figure 6.", "Cross-validated accuracy",
                  "Discovery optimism"):  # fmt: skip
        assert title in page, title
    # Figure 6 greys the pixels outside the AOA, as saltmap map's figure does.
    assert "Hatched grey: outside the area of applicability" in page


def test_the_run_model_is_reused_by_predict_and_map(two_runs, tmp_path):
    # The model file (with discovered indices D1, D2) and the salt conversion of the run,
    # reused without retraining as the report says: the same numbers as the run's own.
    import numpy as np
    import rasterio

    from saltmap.validation.metrics import regression_metrics

    folder, _ = two_runs
    model = folder / "model" / "model.skops"
    conversion = folder / "model" / "salt_conversion.toml"
    assert model.is_file() and conversion.is_file()
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(model), str(datasets.odisha_samples()),
                                 "--id", "Name", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    assert len(table) == 106 and table["predicted_EC"].notna().all()
    # The report quotes the final model's fit on its own training samples: the same figures.
    fit = regression_metrics(table["measured_EC"], table["predicted_EC"])
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert f"On its own training samples R² = {fit['R2']:.3f}, RMSE = {fit['RMSE']:.4g}" in page
    maps = tmp_path / "map"
    result = runner.invoke(app, ["map", str(model), str(datasets.patagonia_scene()),
                                 "--scaling", "sentinel2-l2a", "--scheme", "study",
                                 "--conversion", str(conversion), "--out", str(maps)])  # fmt: skip
    assert result.exit_code == 0, result.output
    run_maps = folder / "maps" / "patagonia"
    for name in ("salinity", "salinity_classes", "salinity_lower", "salinity_upper",
                 "salinity_width", "dissimilarity", "aoa"):  # fmt: skip
        with (
            rasterio.open(maps / f"{name}.tif") as mine,
            rasterio.open(run_maps / f"{name}.tif") as run,
        ):
            np.testing.assert_array_equal(mine.read(), run.read(), err_msg=name)
    areas = pd.read_csv(maps / "class_areas.csv")
    run_areas = pd.read_csv(folder / "tables" / "table5_class_areas_patagonia.csv")
    assert list(areas["pixels"]) == list(run_areas["pixels"])
    assert areas["pixels"].sum() == 300 * 200


#: Columns that measure time (each candidate's inference cost): they differ between runs.
TIMED = ["kpx_per_cpu_s", "s2_tile_cpu_min"]


def _deterministic(table: pd.DataFrame) -> pd.DataFrame:
    """A table without its timing columns."""
    return table.drop(columns=[c for c in TIMED if c in table.columns])


def test_rerun_gives_the_same_tables(two_runs):
    first, second = two_runs
    assert first != second.folder
    names = sorted(p.name for p in (first / "tables").glob("*.csv"))
    assert names == sorted(p.name for p in (second.folder / "tables").glob("*.csv"))
    # run_steps holds wall times and versions nothing random: every other table must match.
    for name in names:
        if name == "run_steps.csv":
            continue
        a = _deterministic(pd.read_csv(first / "tables" / name))
        b = _deterministic(pd.read_csv(second.folder / "tables" / name))
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)


def test_run_result_reads_tables_back(two_runs):
    _, result = two_runs
    table3 = result.table("table3_screening")
    assert len(table3) == 21
    # Discovered indices reach the evaluation, the final model and its file.
    assert list(result.table("table4_study_split")["feature_set"]) == ["N-SI", "D-SI"]
    assert result.model_file == result.folder / "model" / "model.skops"
    assert result.model_file.is_file()
    assert result.step("evaluation").status == "done"
    assert result.report == result.folder / "report.html"
    with pytest.raises(KeyError, match="no table"):
        result.table("nope")


def test_existing_run_folder_is_refused(two_runs, tmp_path):
    folder, _ = two_runs
    copy = tmp_path / "copy.toml"
    shutil.copy(folder / "study.toml", copy)
    from saltmap.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        run_study(load_study(copy), folder=folder, progress=None)


def test_the_api_is_importable_from_saltmap():
    import saltmap
    import saltmap.study.config
    import saltmap.study.runner

    assert saltmap.load_study is saltmap.study.config.load_study
    assert saltmap.run_study is saltmap.study.runner.run_study
    assert {"run_study", "load_study", "read_samples", "map_scene"} <= set(dir(saltmap))
    with pytest.raises(AttributeError):
        saltmap.no_such_function  # noqa: B018


def test_every_public_name_and_module_resolves():
    import saltmap

    for name in saltmap.__all__:
        assert getattr(saltmap, name) is not None, name
    for module in saltmap._MODULES:
        assert getattr(saltmap, module).__name__ == f"saltmap.{module}"
    moved = {"extract": "extraction", "modelfile": "persistence"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # test_architecture checks it
        for module in saltmap._OLD_MODULES:
            new = importlib.import_module("saltmap._compat").MOVED[module][0]
            assert new.endswith("." + moved.get(module, module))
            assert getattr(saltmap, module).__name__ == f"saltmap.{module}"


def _lean(text: str) -> str:
    """The quick study without discovery, intervals, AOA and cross-validation."""
    text = text.replace("[discovery]\n", "[discovery]\nenabled = false\n")
    text = text.replace('D-SI = "discovered:2"', 'SI = "classic"')
    text = text.replace('final_indices = "discovered:2"', 'final_indices = "novel"')
    text = text.replace('protocols = ["study", "repeated"]', 'protocols = ["study"]')
    lean = "[intervals]\nenabled = false\n[aoa]\nenabled = false\n[outputs]\n"
    return text.replace("[outputs]\n", lean)


def test_target_converted_to_salt_content_before_modelling(tmp_path):
    text = _lean(QUICK).replace('raw.xlsx"\n', 'raw.xlsx"\napply_to = "target"\n', 1)
    result = run_study(study_from_text(text, base=tmp_path), folder=tmp_path / "r", progress=None)
    assert list(result.table("samples_summary").columns) == ["statistic", "salt content (g/kg)"]
    page = result.report.read_text(encoding="utf-8")
    assert "applied to the target before modelling" in page
    assert "Figure 6." in page


def test_a_lean_study_with_a_boundary(tmp_path):
    # Synthetic boundary (mechanics): the western half of the real Patagonia scene.
    import geopandas as gpd
    import rasterio
    from shapely.geometry import box

    with rasterio.open(datasets.patagonia_scene() / "B02_10m.tif") as src:
        b, crs = src.bounds, src.crs
    half = box(b.left, b.bottom, (b.left + b.right) / 2, b.top)
    gpd.GeoDataFrame(geometry=[half], crs=crs).to_file(tmp_path / "west.geojson")
    text = _lean(QUICK).replace("seed = 3\n", 'seed = 3\nboundary = "west.geojson"\n')
    study = study_from_text(text, base=tmp_path)
    result = run_study(study, folder=tmp_path / "run", progress=None)
    assert result.step("discovery").status == "skipped"
    assert "enabled = false" in result.step("discovery").note
    areas = result.table("table5_class_areas_patagonia")
    assert 0 < areas["pixels"].sum() < 300 * 200
    assert "interval_coverage" not in result.tables
    log = (result.folder / "run.log").read_text()
    assert "discovery left out of this run: discovery.enabled = false" in log


# -- covariates ---------------------------------------------------------------------------------

COVARIATES = """
[covariates]
numeric = ["Dist_Sea"]
categorical = ["Land_cover"]
"""


def test_covariate_keys_are_checked_against_the_covariates_and_scenes():
    base = f'name = "x"\n{SAMPLES}\n'
    scene = '[[scenes]]\nname = "p"\npath = "${SALTMAP_DATA_DIR}/patagonia-s2"\n'
    rasters = '[covariates.rasters]\nDist_Se = "a.tif"\n'
    message = _problems(base + COVARIATES + rasters, check_files=False)
    assert "covariates.rasters names Dist_Se, which is not a covariate" in message
    distance = '[covariates.distance]\nLand_cover = "coast.gpkg"\n'
    message = _problems(base + COVARIATES + distance, check_files=False)
    assert "Land_cover: a computed distance is a numeric covariate" in message
    message = _problems(base + '[covariates]\nnumeric = ["N"]\n')
    assert "band roles, not covariates" in message
    # Maps need every covariate on every scene, checked before any work.
    message = _problems(base + scene + COVARIATES)
    assert "covariate(s) Dist_Sea, Land_cover" in message and "scene 'p'" in message
    text = base + scene.replace("scenes]]\n", "scenes]]\ncovariates = {Dist_Sea = 'd.tif'}\n")
    message = _problems(text + COVARIATES + "[outputs]\nmaps = false\n")
    assert "d.tif does not exist" in message
    study_from_text(base + scene + COVARIATES + "[outputs]\nmaps = false\n")


def test_example_study_documents_covariates_that_validate():
    from saltmap.study import example_study_text

    lines = example_study_text().splitlines()
    start = lines.index("# [covariates]")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line.removeprefix("# ").removeprefix("#"))
    text = f'name = "x"\n{SAMPLES}\n' + "\n".join(block) + "\n[outputs]\nmaps = false\n"
    config = study_from_text(text, check_files=False).config.covariates
    assert config.numeric and config.distance and config.spec.names


def test_a_study_with_covariates_evaluates_fits_and_maps_with_them(tmp_path):
    # Synthetic mechanics on the real data: Dist_Sea on the scene is the distance in metres
    # to a synthetic line (Odisha's column is a 1-5 class), Land_cover a synthetic raster of
    # code 1 whose legend names a real Odisha level.
    import geopandas as gpd
    import numpy as np
    import rasterio
    from rasterio.warp import transform_bounds
    from shapely.geometry import LineString

    from saltmap.features.covariate_layers import distance_to_features, write_covariate
    from saltmap.features.covariate_rasters import CovariateRasters
    from saltmap.features.covariates import model_covariates
    from saltmap.io.scene import open_scene
    from saltmap.mapping.blocks import predict_block_with_unseen
    from saltmap.models.persistence import load_model, load_trust

    scene = open_scene(datasets.patagonia_scene(), scaling="sentinel2-l2a")
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    line = LineString([(west, south + 0.3 * (north - south)), (east, north)])
    gpd.GeoDataFrame(geometry=[line], crs="EPSG:4326").to_file(tmp_path / "synthetic_line.gpkg")
    write_covariate(tmp_path / "synthetic_land.tif", np.ones(scene.shape, np.float32), scene,
                    description="synthetic land cover code")  # fmt: skip
    text = _lean(QUICK).replace('protocols = ["study"]', 'protocols = ["study", "repeated"]')
    text = text.replace("[intervals]\nenabled = false\n[aoa]\nenabled = false\n", "")
    text += (
        COVARIATES
        + """
[covariates.distance]
Dist_Sea = "synthetic_line.gpkg"
[covariates.rasters]
Land_cover = "synthetic_land.tif"
[covariates.labels.Land_cover]
1 = "Fallow rice field"
[intervals]
coverage = ["repeated"]
"""
    )
    result = run_study(study_from_text(text, base=tmp_path), folder=tmp_path / "r", progress=None)
    # Evaluation: the same model with and without them, and what each predictor adds.
    gain = result.table("covariate_gain")
    assert list(gain["predictors"]) == ["indices", "indices+covariates"]
    assert set(gain["protocol"]) == {"repeated"} and gain["dR2_pooled"].notna().iloc[1]
    importance = result.table("covariate_importance")
    assert {"Dist_Sea", "Land_cover", "SAI"} <= set(importance["predictor"])
    # The final model and its trust read them; both are in the model file.
    model, _ = load_model(result.model_file)
    assert set(model_covariates(model)) == {"Dist_Sea", "Land_cover"}
    trust = load_trust(result.model_file)
    assert set(trust.covariates) == {"Dist_Sea", "Land_cover"}
    assert "Land_cover_Fallow rice field" in trust.feature_names
    # The map: the distance computed on the scene grid, the map equal to the block hook.
    distance = result.folder / "covariates" / "patagonia" / "Dist_Sea.tif"
    with rasterio.open(distance) as src:
        np.testing.assert_array_equal(
            src.read(1), distance_to_features(tmp_path / "synthetic_line.gpkg", scene)
        )
    rasters = CovariateRasters(
        {"Dist_Sea": distance, "Land_cover": tmp_path / "synthetic_land.tif"},
        {"Dist_Sea": "numeric", "Land_cover": "categorical"},
        labels={"Land_cover": {1: "Fallow rice field"}},
    )
    direct, _ = predict_block_with_unseen(model, scene.read(), scene.roles, rasters.read(scene))
    with rasterio.open(result.maps["patagonia"] / "salinity.tif") as src:
        np.testing.assert_array_equal(src.read(1), direct)
    assert result.table("trust_summary")["valid_pixels"].iloc[0] == np.isfinite(direct).sum()
    page = result.report.read_text(encoding="utf-8")
    assert "With and without the covariates" in page and "Permutation importance" in page
    assert "Dist_Sea (numeric), Land_cover (categorical)" in page


# -- interval method ----------------------------------------------------------------------------


def test_interval_method_and_score_are_validated():
    message = _problems(f'name = "x"\n{SAMPLES}\n[intervals]\nmethod = "cv+"\nscore = "rel"\n')
    assert "intervals.method = 'cv+'" in message and "'base', 'plus' or 'minmax'" in message
    assert "intervals.score = 'rel'" in message and "'absolute' or 'gamma'" in message
    text = f'name = "x"\n{SAMPLES}\n[intervals]\nmethod = "plus"\n{COVARIATES}'
    message = _problems(text + "[outputs]\nmaps = false\n")
    assert "intervals.method = 'plus'" in message and "Land_cover" in message
    default = study_from_text(f'name = "x"\n{SAMPLES}', check_files=False).config.intervals
    assert (default.method, default.score) == ("normalized", "absolute")


def test_example_study_documents_the_interval_method():
    from saltmap.study import example_study_text

    text = example_study_text()
    intervals = study_from_text(text, check_files=False).config.intervals
    assert (intervals.method, intervals.score) == ("normalized", "absolute")
    lines = text.splitlines()
    start = lines.index("[intervals]")
    block = "\n".join(lines[start : lines.index("[aoa]")])
    for said in ("reuses the map's prediction", "finite-sample guarantee", "K+1 model predictions",
                 "gamma"):  # fmt: skip
        assert said in block, said


def test_the_study_interval_method_reaches_the_model_file(tmp_path):
    # A small untuned RF on the real Odisha samples, no maps: only the trust model matters.
    from saltmap.models.persistence import load_trust

    text = _lean(QUICK).replace('names = ["PLSR"]\nfinal = "PLSR"', 'names = ["RF"]\nfinal = "RF"')
    text = text.replace("[intervals]\nenabled = false\n[aoa]\nenabled = false\n", "")
    text = text.replace("[outputs]\n", "[outputs]\nmaps = false\nreport = false\n")
    text += '[intervals]\nmethod = "plus"\nscore = "gamma"\ncoverage = ["repeated"]\n'
    text = text.replace('protocols = ["study"]', 'protocols = ["study", "repeated"]')
    result = run_study(study_from_text(text, base=tmp_path), folder=tmp_path / "r", progress=None)
    trust = load_trust(result.model_file)
    assert (trust.info["method"], trust.info["conformity_score"]) == ("plus", "gamma")
    assert len(trust.intervals.fold_estimators_) == trust.info["n_folds"]
    coverage = result.table("interval_coverage")
    assert list(coverage["protocol"]) == ["repeated"] and 0 < coverage["coverage"].iloc[0] <= 1


class _OpenedProgress(RecordedProgress):
    """A recorder that also keeps each task as it is opened: (what, total)."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[tuple[str, int | None]] = []

    def task(self, what: str, total: int | None = None):
        self.opened.append((what, total))
        return super().task(what, total)


def test_discovery_and_final_fit_report_progress(tmp_path):
    # Drawing is the CLI's; what is checked is that discovery reports each of its searches,
    # that the final fit's tuning and trust fit run as spinners (tasks without a total),
    # and that without a reporter (saltmap run -q) the run is the same.
    text = QUICK.replace('protocols = ["study", "repeated"]', 'protocols = ["study"]')
    text = text.replace("[outputs]\n", "[intervals]\ncoverage = []\n[outputs]\nmaps = false\n")
    text = text.replace("[outputs]\n", "[outputs]\nreport = false\n")
    study = study_from_text(text, base=tmp_path)
    progress = _OpenedProgress()
    result = run_study(study, folder=tmp_path / "run", progress=progress)
    assert result.step("final fit").status == "done"
    # the search on all samples, then one per outer fold (2 folds)
    assert progress.ticks["index discovery"] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    spinners = [what for what, total in progress.opened if total is None and
                what.startswith("final fit:")]  # fmt: skip
    assert len(spinners) == 2
    assert "PLSR" in spinners[0] and "intervals" in spinners[1]
    assert all(progress.ticks[what] == [] for what in spinners)
    quiet = run_study(study, folder=tmp_path / "run-quiet", progress=None)
    assert quiet.step("final fit").status == "done"
    assert quiet.table("table3_screening").equals(result.table("table3_screening"))


def test_the_study_names_resolve_from_the_package():
    import saltmap.study

    for name in ("load_study", "study_from_text", "validate_study", "describe_errors",
                 "example_study_text", "demo_study_path", "write_example_study",
                 "expand_path_text", "package_versions", "RunResult", "StepRecord", "Study",
                 "STEPS", "RECORDED_PACKAGES", "run_study"):  # fmt: skip
        assert getattr(saltmap.study, name) is not None, name


# -- the schema's messages and the run context -------------------------------------------------


def test_explain_errors_works_on_any_schema():
    from pydantic import BaseModel, ConfigDict, Field, ValidationError

    from saltmap.study.schema_errors import explain_errors

    class Inner(BaseModel):
        model_config = ConfigDict(extra="forbid")
        depth: float = Field(description="sampling depth in cm")

    class Outer(BaseModel):
        model_config = ConfigDict(extra="forbid")
        inner: list[Inner]

    with pytest.raises(ValidationError) as info:
        Outer.model_validate({"inner": [{"dept": 1}]})
    message = explain_errors(info.value, Outer, "plot.toml")
    assert message.startswith("plot.toml has 2 problem(s):")
    assert "unknown key 'inner[0].dept' in [inner[0]]: did you mean 'depth'?" in message
    assert "missing key 'inner[0].depth' (sampling depth in cm): add it" in message


def test_run_context_records_each_step_and_the_run_json(tmp_path):
    from saltmap.study.context import RunContext, Skip

    study = study_from_text(f'name = "x"\n{SAMPLES}', check_files=False)
    ctx = RunContext(study, tmp_path)
    assert ctx.run_step("[1/7] samples", "samples", lambda: 42) == 42
    assert ctx.run_step("[2/7] screening", "screening", lambda: Skip("not today")) is None

    def fails():
        raise ValueError("broken")

    with pytest.raises(ValueError, match="broken"):
        ctx.run_step("[3/7] discovery", "discovery", fails)
    assert [(s.name, s.status) for s in ctx.steps] == [
        ("samples", "done"), ("screening", "skipped"), ("discovery", "failed")
    ]  # fmt: skip
    assert ctx.steps[1].note == "not today"
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["incomplete_at"] == "discovery" and record["seconds"] is None
    assert record["steps"][2]["note"] == "ValueError: broken"
    # Sections are made in page order; the report keeps that order.
    titles = [s.title for s in ctx.report.sections]
    assert titles[0] == "Summary" and titles[-1] == "Run provenance"
    assert ctx.section("final").title == "Final model"


def test_discovered_indices_give_the_same_tables_with_one_worker_or_two(two_runs, tmp_path,
                                                                        monkeypatch):  # fmt: skip
    # The quick study selects discovered indices (D-SI, final_indices). The first runs fitted
    # the evaluation with two workers and mapped with one; this one the other way round.
    # The indices travel as definitions, so the tables match to the last digit.
    from saltmap.study.steps import evaluation

    first, _ = two_runs
    monkeypatch.setattr(evaluation, "JOBS", 1)
    study_file = tmp_path / "quick.toml"
    study_file.write_text(QUICK.replace("[outputs]\n", "[outputs]\njobs = 2\n"), encoding="utf-8")
    other = run_study(load_study(study_file), tmp_path / "runs")
    assert json.loads((other.folder / "study_resolved.json").read_text())["outputs"]["jobs"] == 2
    names = sorted(p.name for p in (first / "tables").glob("*.csv") if p.name != "run_steps.csv")
    assert "table5_class_areas_patagonia.csv" in names and "cv_honest.csv" in names
    for name in names:
        pd.testing.assert_frame_equal(_deterministic(pd.read_csv(first / "tables" / name)),
                                      _deterministic(pd.read_csv(other.folder / "tables" / name)),
                                      check_exact=True, obj=name)  # fmt: skip


def test_a_covariate_model_on_a_discovered_index_loads_in_a_fresh_interpreter(tmp_path):
    # Nothing is registered: the model computes D1 from the definition it was given, saves
    # it, and a new interpreter (which never saw D1) predicts the same numbers.
    import subprocess
    import sys

    import numpy as np

    from saltmap.features.covariates import Covariates
    from saltmap.features.discovered import definitions_of
    from saltmap.features.formulas import Candidate
    from saltmap.io.samples import odisha
    from saltmap.models.building import make_model
    from saltmap.models.persistence import save_model

    samples = odisha()
    (d1,) = definitions_of([Candidate("ratio", ("G", "N"))], prefix="DX")
    rng = np.random.default_rng(0)
    X = samples.reflectance.assign(
        elevation=rng.normal(10, 2, len(samples.target)),
        soil=np.where(np.arange(len(samples.target)) % 2, "a", "b"),
    )
    model = make_model(
        "PLSR",
        indices=["SAI", d1],
        covariates=Covariates(numeric=("elevation",), categorical=("soil",)),
    )
    model.fit(X, samples.target.to_numpy(dtype=float))  # fmt: skip
    assert model.named_steps["indices"].index_items_ == ["SAI", d1]
    path = save_model(
        tmp_path / "model.skops",
        model,
        metadata={"target": "EC", "target_unit": "uS/cm", "scaling": "none"},
    )
    X.to_csv(tmp_path / "X.csv")
    np.savetxt(tmp_path / "here.txt", model.predict(X))
    code = (
        "import numpy as np, pandas as pd\n"
        "from saltmap.models.persistence import load_model\n"
        f"model, meta = load_model({str(path)!r})\n"
        "assert [d['name'] for d in meta['discovered_indices']] == ['DX1'], meta\n"
        f"X = pd.read_csv({str(tmp_path / 'X.csv')!r}, index_col=0)\n"
        f"np.savetxt({str(tmp_path / 'there.txt')!r}, model.predict(X))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "here.txt"),
                                  np.loadtxt(tmp_path / "there.txt"))  # fmt: skip


# -- scenes from band files named by the user ----------------------------------------------------

UNNAO = """
[[scenes]]
name = "unnao"
path = "${SALTMAP_DATA_DIR}/unnao-landsat"
scaling = "landsat-c2l2"
bands = { B = "Blue.tif", G = "Green.tif", R = "Red.tif", nir = "NIR.tif", S1 = "SWIR1.tif", \
S2 = "ABSOLUTE" }
"""


def _unnao_study(text: str) -> str:
    """``text`` with the Unnao Landsat cut as its scene (SWIR2 given by an absolute path)."""
    swir2 = str(datasets.data_dir() / "unnao-landsat" / "SWIR2.tif")
    scene = UNNAO.replace("ABSOLUTE", swir2).replace("\\\n", "")
    start = text.index("[[scenes]]")
    end = text.index("[discovery]")
    return text[:start] + scene + "\n" + text[end:]


def test_scene_bands_take_a_table_of_files_or_a_list_of_names():
    config = study_from_text(_unnao_study(QUICK)).config
    bands = config.scenes[0].bands
    assert bands["B"] == "Blue.tif" and bands["nir"] == "NIR.tif"
    assert bands["S2"] == str(datasets.data_dir() / "unnao-landsat" / "SWIR2.tif")
    names = QUICK.replace('scaling = "sentinel2-l2a"\n', 'scaling = "sentinel2-l2a"\n'
                          'bands = ["B02", "B03", "B04", "B08", "B11", "B12"]\n')  # fmt: skip
    assert study_from_text(names).config.scenes[0].bands[0] == "B02"


def test_scene_band_table_errors_name_the_key_and_the_value():
    message = _problems(_unnao_study(QUICK).replace('G = "Green.tif"', 'Q = "Green.tif"'))
    assert "bands.Q = 'Green.tif'" in message and "not a band role" in message
    message = _problems(_unnao_study(QUICK).replace('R = "Red.tif"', 'R = "Rouge.tif"'))
    assert "bands.R = 'Rouge.tif'" in message and "Rouge.tif does not exist" in message
    # Without checking files, a missing file passes (as every other path does).
    study_from_text(_unnao_study(QUICK).replace("Red.tif", "Rouge.tif"), check_files=False)


def test_example_study_documents_a_scene_band_table_that_validates():
    from saltmap.study import example_study_text

    lines = [line for line in example_study_text().splitlines() if line.startswith("# bands = {")]
    assert len(lines) == 1
    text = _unnao_study(QUICK).split("bands = {")[0] + lines[0].removeprefix("# ")
    text += "\n" + QUICK[QUICK.index("[discovery]") :]
    bands = study_from_text(text).config.scenes[0].bands
    assert set(bands) == {"B", "G", "R", "N", "S1", "S2"}


def test_a_study_maps_unnao_from_its_band_table_and_says_what_the_aoa_shows(tmp_path):
    # Quick settings (no discovery, one protocol), maps with intervals and the AOA on.
    text = _unnao_study(QUICK).replace("[discovery]\n", "[discovery]\nenabled = false\n")
    text = text.replace('D-SI = "discovered:2"', 'SI = "classic"')
    text = text.replace('final_indices = "discovered:2"', 'final_indices = "novel"')
    text = text.replace('protocols = ["study", "repeated"]', 'protocols = ["study"]')
    result = run_study(study_from_text(text, base=tmp_path), folder=tmp_path / "r", progress=None)
    areas = result.table("table5_class_areas_unnao")
    # 605 × 558 pixels, 3,594 of them nodata in the data's README.
    assert areas["pixels"].sum() == 605 * 558 - 3594
    share = result.table("trust_summary").set_index("scene").loc["unnao", "share_inside_aoa"]
    page = result.report.read_text(encoding="utf-8")
    assert f"{share:.1%} of the valid pixels of unnao lie inside the area of applicability" in page
    assert (result.folder / "figures" / "figure6_unnao.png").is_file()
    assert (result.folder / "figures" / "trust_unnao.png").is_file()


def test_aoa_note_says_in_words_how_much_of_a_scene_the_model_knows():
    from saltmap.study.steps.maps import aoa_note

    assert aoa_note("s", 0.95).kind == "text" and "Nearly all" in aoa_note("s", 0.95).text
    assert "Most of the scene" in aoa_note("s", 0.6).text
    low = aoa_note("s", 0.081)
    assert low.kind == "warning" and low.text.startswith("Only 8.1% of the valid pixels of s")
    assert "Almost nothing" in aoa_note("s", 0.001).text

"""Tests of covariates as predictors (saltmap.features.covariates).

Science tests use the real Odisha samples (``Dist_Sea`` numeric 1-5, ``Land_cover``
categorical) and the real Patagonia scene. Rasters and lines built here are
synthetic and named so: they test mechanics (alignment, coverage, distances), not
salinity.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import LineString
from sklearn.base import clone

from saltmap.datasets import patagonia_scene
from saltmap.errors import ConfigError, MissingColumnError, SampleDataError, SceneError
from saltmap.features.covariate_layers import (
    FAR_STEP,
    distance_to_features,
    terrain,
    write_covariate,
)
from saltmap.features.covariate_rasters import CovariateRasters
from saltmap.features.covariates import (
    Covariates,
    PredictorFeatures,
    UnseenLevelError,
    level_text,
    predictor_table,
)
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.mapping.blocks import predict_block_with_unseen
from saltmap.models.building import make_model
from saltmap.models.inspect import model_covariates, model_input
from saltmap.models.persistence import load_model, save_model
from saltmap.models.training import train_model
from saltmap.validation.covariates import covariate_gain

BOTH = Covariates(numeric=["Dist_Sea"], categorical=["Land_cover"])
SMALL_RF = {"n_estimators": 20}


@pytest.fixture(scope="module")
def samples():
    return odisha()


@pytest.fixture(scope="module")
def table(samples):
    return predictor_table(samples, BOTH)


def test_spec_refuses_overlaps_band_roles_and_blanks():
    with pytest.raises(ConfigError, match="both numeric and categorical"):
        Covariates(numeric=["a"], categorical=["a"])
    with pytest.raises(ConfigError, match="band roles"):
        Covariates(numeric=["N"])
    with pytest.raises(ConfigError, match="unique"):
        Covariates(numeric=["a", "a"])
    assert not Covariates()
    assert Covariates(numeric="Dist_Sea").kinds == {"Dist_Sea": "numeric"}


def test_levels_compare_as_text():
    assert list(level_text([3, 3.0, "3", " 3.0 ", np.nan, None, "Rice"])) == [
        "3", "3", "3", "3", None, None, "Rice",
    ]  # fmt: skip


def test_no_covariates_keeps_the_plain_pipeline():
    plain = make_model("RF")
    same = make_model("RF", covariates=Covariates())
    assert [n for n, _ in same.steps] == [n for n, _ in plain.steps] == ["indices", "model"]
    assert type(same.named_steps["indices"]).__name__ == "IndexFeatures"


def test_predictors_are_indices_then_numeric_then_one_hot(samples, table):
    step = PredictorFeatures("novel", ("Dist_Sea",), ("Land_cover",)).fit(table)
    out = step.transform(table)
    levels = sorted(set(level_text(samples.table["Land_cover"].to_numpy())))
    assert list(step.feature_names_out_[:5]) == ["SAI", "TRSI", "SBCI", "GOSI", "Dist_Sea"]
    assert out.shape == (len(table), 5 + len(levels))
    np.testing.assert_array_equal(out[:, 4], pd.to_numeric(samples.table["Dist_Sea"]))
    # one-hot: exactly one level column is 1 in every row
    np.testing.assert_array_equal(out[:, 5:].sum(axis=1), 1.0)
    assert step.covariates_["Land_cover"]["categories"] == levels
    assert step.columns_ == [*step.bands_, "Dist_Sea", "Land_cover"]


def test_unseen_level_is_an_error_naming_it(table):
    step = PredictorFeatures("novel", ("Dist_Sea",), ("Land_cover",)).fit(table)
    odd = table.copy()
    odd.loc[odd.index[0], "Land_cover"] = "Salt pan (synthetic level)"
    with pytest.raises(UnseenLevelError, match=r"Salt pan \(synthetic level\)") as err:
        step.transform(odd)
    assert str(odd.index[0]) in str(err.value)
    assert list(step.seen_rows(odd)) == [False] + [True] * (len(odd) - 1)


def test_min_count_pools_rare_and_unseen_levels(table):
    step = PredictorFeatures("novel", (), ("Land_cover",), min_count=5).fit(table)
    info = step.covariates_["Land_cover"]
    counts = table["Land_cover"].value_counts()
    assert set(info["pooled"]) == set(counts.index[counts < 5])
    odd = table.copy()
    odd.loc[odd.index[0], "Land_cover"] = "Salt pan (synthetic level)"
    rare = counts.index[counts < 5][0]
    odd.loc[odd.index[1], "Land_cover"] = rare
    out = step.transform(odd)
    # the unseen level and a rare level land in the same pooled column
    np.testing.assert_array_equal(out[0, 4:], out[1, 4:])
    assert out[0, -1] == 1.0


def test_missing_column_and_non_numeric_values_are_errors(samples, table):
    with pytest.raises(MissingColumnError, match="Salt_Crust"):
        predictor_table(samples, Covariates(numeric=["Salt_Crust"]))
    with pytest.raises(SampleDataError, match="not numbers"):
        predictor_table(samples, Covariates(numeric=["Land_cover"]))
    step = PredictorFeatures("novel", ("Dist_Sea",), ()).fit(table)
    with pytest.raises(SampleDataError, match="covariate"):
        step.transform(table[["B", "G", "R", "N", "S1", "S2"]].to_numpy())


def test_a_missing_categorical_level_is_refused_in_fit_and_predict(table):
    blank = table.copy()
    blank.iloc[[0, 3], blank.columns.get_loc("Land_cover")] = None
    step = PredictorFeatures("novel", ("Dist_Sea",), ("Land_cover",))
    with pytest.raises(SampleDataError, match=r"'Land_cover' is missing for 2 training row"):
        step.fit(blank)
    step.fit(table)
    with pytest.raises(SampleDataError, match=r"missing for 2 row.*cannot predict them"):
        step.transform(blank)


@pytest.mark.parametrize("name", ["RF", "PLSR", "Stacking"])
def test_models_with_covariates_save_load_and_predict_the_same(samples, table, tmp_path, name):
    params = {
        "RF": SMALL_RF,
        "PLSR": {},
        "Stacking": {"RF__n_estimators": 5, "XGBoost__n_estimators": 5, "MLP__max_iter": 20},
    }[name]
    model = make_model(name, covariates=BOTH, params=params, log_target=True)
    model.fit(table, samples.target)
    assert clone(model).get_params()["indices__categorical"] == ("Land_cover",)
    path = save_model(tmp_path / "m.skops", model, metadata={
        "target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2",
    })  # fmt: skip
    loaded, meta = load_model(path)
    np.testing.assert_array_equal(loaded.predict(table), model.predict(table))
    assert meta["covariates"]["Dist_Sea"] == {"kind": "numeric"}
    assert meta["covariates"]["Land_cover"]["kind"] == "categorical"
    assert model_covariates(loaded) == model_covariates(model)
    assert model_input(loaded, samples).columns.tolist() == table.columns.tolist()


def test_train_model_with_covariates_tunes_inside_and_records_them(samples):
    model, meta = train_model(samples, model="RF", budget="quick", covariates=BOTH)
    assert set(model_covariates(model)) == {"Dist_Sea", "Land_cover"}
    assert meta["training"]["covariate_ranges"]["Dist_Sea"] == [1.0, 5.0]


# --------------------------------------------------------------------------- rasters and maps


@pytest.fixture(scope="module")
def scene():
    return open_scene(patagonia_scene(), scaling="sentinel2-l2a")


def _synthetic_lonlat_raster(path, scene, values_of, *, shrink=0.0, dtype="float32", res=0.0005):
    """A synthetic EPSG:4326 raster around the scene (coarser than 10 m), value = f(lon, lat)."""
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    west, south, east, north = west - 0.01, south - 0.01, east + 0.01, north + 0.01
    if shrink:
        east = west + (east - west) * shrink
    width, height = int(np.ceil((east - west) / res)), int(np.ceil((north - south) / res))
    transform = from_origin(west, north, res, res)
    cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    lon, lat = transform * (cols, rows)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype=dtype,
                   crs="EPSG:4326", transform=transform)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values_of(lon, lat).astype(dtype), 1)
    return path


def _pixel_lonlat(scene, rows, cols):
    xs, ys = scene.transform * (np.asarray(cols) + 0.5, np.asarray(rows) + 0.5)
    return Transformer.from_crs(scene.crs, "EPSG:4326", always_xy=True).transform(xs, ys)


def test_numeric_raster_is_warped_bilinear_onto_the_scene_grid(scene, tmp_path):
    # A plane in lon/lat: bilinear resampling reproduces it exactly inside the raster.
    def plane(lon, lat):
        return 1000 * (lon + 68) + 500 * (lat + 48)

    path = _synthetic_lonlat_raster(tmp_path / "synthetic_plane.tif", scene, plane)
    rasters = CovariateRasters({"plane": path})
    rasters.check(scene)
    window = Window(40, 30, 50, 60)
    block = rasters.read(scene, window)["plane"]
    assert block.shape == (60, 50) and block.dtype == np.float32
    rows, cols = np.array([0, 17, 59]), np.array([0, 33, 49])
    lon, lat = _pixel_lonlat(scene, rows + 30, cols + 40)
    np.testing.assert_allclose(block[rows, cols], plane(np.asarray(lon), np.asarray(lat)),
                               atol=1e-3)  # fmt: skip


CODES = (3, 7, 12, 40)


def _synthetic_coded_raster(path, scene, res=0.001):
    """A synthetic land-cover raster in EPSG:4326 around the scene, ~75 x 110 m cells (the
    scene has 10 m): codes 3, 7, 12, 40 laid so that every cell differs from its four
    neighbours, where any blending of codes would show."""
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    west, north = west - 0.01, north + 0.01
    width = int(np.ceil((east + 0.01 - west) / res))
    height = int(np.ceil((north - (south - 0.01)) / res))
    rows, cols = np.mgrid[0:height, 0:width]
    codes = np.array(CODES, dtype=np.uint8)[(3 * rows + cols) % len(CODES)]
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint8",
                   crs="EPSG:4326", transform=from_origin(west, north, res, res))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(codes, 1)
    return path


def _codes_at_pixel_centres(path, scene, rows, cols):
    """The raster's code under each scene pixel centre, computed without GDAL's warper:
    pyproj to longitude/latitude, rasterio's row/column index into the raster (floor). Also
    how far each centre lies from its cell's edges, as a fraction of the cell."""
    from rasterio.transform import rowcol

    lon, lat = _pixel_lonlat(scene, rows, cols)
    with rasterio.open(path) as src:
        r, c = (np.asarray(v) for v in rowcol(src.transform, lon, lat))
        fc, fr = ~src.transform * (np.asarray(lon), np.asarray(lat))
        codes = src.read(1)[r, c]
    margin = np.minimum.reduce([fc % 1, 1 - fc % 1, fr % 1, 1 - fr % 1])
    return codes, margin


def test_categorical_raster_is_read_nearest_onto_the_scene_grid(scene, tmp_path):
    path = _synthetic_coded_raster(tmp_path / "synthetic_codes.tif", scene)
    rasters = CovariateRasters({"land": path}, {"land": "categorical"})
    rasters.check(scene)
    levels = rasters.read(scene)["land"]
    assert levels.shape == scene.shape
    # Only the raster's own codes, never a blend of neighbouring ones; several of them.
    seen = set(np.unique(levels.astype(str)))
    assert seen <= {str(c) for c in CODES} and len(seen) >= 3
    # Read as numeric (bilinear), the same raster does blend: the check above can fail.
    blended = CovariateRasters({"land": path}).read(scene)["land"]
    assert not np.isin(blended, CODES).all()
    # Each pixel holds the code at its centre. Centres within 5 % of a cell edge are left
    # out: GDAL's approximate transformer may put them in the neighbouring cell.
    rows, cols = np.mgrid[0 : scene.height : 7, 0 : scene.width : 11]
    rows, cols = rows.ravel(), cols.ravel()
    expected, margin = _codes_at_pixel_centres(path, scene, rows, cols)
    inside = margin > 0.05
    assert inside.sum() > 0.8 * rows.size
    np.testing.assert_array_equal(
        levels[rows, cols][inside].astype(int), expected[inside].astype(int)
    )


def test_cli_extract_reads_a_categorical_raster_at_the_points(scene, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app

    path = _synthetic_coded_raster(tmp_path / "synthetic_codes.tif", scene)
    # Eight synthetic points at pixel centres well inside their raster cells (see above).
    rows, cols = (g.ravel() for g in np.mgrid[3 : scene.height : 23, 5 : scene.width : 31])
    expected, margin = _codes_at_pixel_centres(path, scene, rows, cols)
    take = np.flatnonzero(margin > 0.1)[::7][:8]
    rows, cols, expected = rows[take], cols[take], expected[take]
    assert len(take) == 8 and len(set(expected)) >= 3
    xs, ys = scene.transform * (cols + 0.5, rows + 0.5)
    points = tmp_path / "synthetic_points.csv"
    ids = [f"p{i}" for i in range(len(rows))]
    pd.DataFrame({"id": ids, "x": xs, "y": ys, "EC": np.arange(1.0, 9.0)}).to_csv(
        points, index=False
    )
    out = tmp_path / "synthetic_extracted.csv"
    result = CliRunner().invoke(app, [
        "extract", str(points), str(patagonia_scene()), "--out", str(out), "--x", "x", "--y", "y",
        "--crs", str(scene.crs), "--scaling", "sentinel2-l2a", "--categorical", f"Land={path}",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out, dtype={"Land": str}).set_index("id").loc[ids]
    assert set(table["Land"]) <= {str(c) for c in CODES}
    assert list(table["Land"]) == [str(c) for c in expected]
    # The same levels mapping reads on the scene grid.
    grid = CovariateRasters({"Land": path}, {"Land": "categorical"}).read(scene)["Land"]
    assert list(table["Land"]) == list(grid[rows, cols])


def test_raster_not_covering_the_scene_is_an_error_before_reading(scene, tmp_path):
    path = _synthetic_lonlat_raster(
        tmp_path / "synthetic_half.tif", scene, lambda lon, lat: lon * 0, shrink=0.4
    )
    with pytest.raises(SceneError, match="does not cover the scene"):
        CovariateRasters({"half": path}).check(scene)


def test_model_covariate_without_raster_is_an_error(samples, table):
    model = make_model("RF", covariates=BOTH, params=SMALL_RF).fit(table, samples.target)
    with pytest.raises(ConfigError, match="Land_cover"):
        CovariateRasters.for_model(model, {"Dist_Sea": "synthetic.tif"})


def test_unseen_raster_level_is_flagged_not_predicted(samples, table):
    # Dist_Sea as a categorical covariate: the samples have levels 1..5.
    cov = Covariates(categorical=["Dist_Sea"])
    X = predictor_table(samples, cov)
    model = make_model("RF", covariates=cov, params=SMALL_RF).fit(X, samples.target)
    reflectance = np.repeat(samples.reflectance.to_numpy().T[:, :4, None], 3, axis=2)
    codes = np.array([[1, 2, 9], [3, 4, 9], [5, 1, 2], [np.nan, 2, 3]], dtype=np.float32)
    roles = list(samples.reflectance.columns)
    salinity, n_unseen = predict_block_with_unseen(model, reflectance, roles, {"Dist_Sea": codes})
    assert n_unseen == 2
    assert np.isnan(salinity[:, 2][:2]).all() and np.isnan(salinity[3, 0])
    # every other pixel is the model's prediction for that pixel taken as a sample
    row = pd.DataFrame({r: [reflectance[i, 2, 1]] for i, r in enumerate(roles)})
    row["Dist_Sea"] = "1"
    assert salinity[2, 1] == np.float32(model.predict(row)[0])
    with pytest.raises(UnseenLevelError):
        model.predict(row.assign(Dist_Sea="9"))


def test_distance_to_synthetic_line_matches_shapely(scene, tmp_path):
    # A synthetic line across the scene, in EPSG:4326 (the scene is UTM 19S).
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    line = LineString([(west - 0.001, south + 0.3 * (north - south)),
                       (east + 0.001, south + 0.8 * (north - south))])  # fmt: skip
    path = tmp_path / "synthetic_line.gpkg"
    gpd.GeoDataFrame({"name": ["synthetic"]}, geometry=[line], crs="EPSG:4326").to_file(path)
    distance = distance_to_features(path, scene, margin=500)
    assert distance.shape == scene.shape and np.isfinite(distance).all()
    line_utm = gpd.GeoSeries([line], crs="EPSG:4326").to_crs(scene.crs).iloc[0]
    rows, cols = np.array([0, 50, 120, 199, 199]), np.array([0, 150, 20, 299, 0])
    xs, ys = scene.transform * (cols + 0.5, rows + 0.5)
    exact = shapely.distance(shapely.points(xs, ys), line_utm)
    half_diagonal = np.hypot(*scene.res) / 2
    np.testing.assert_allclose(distance[rows, cols], exact, atol=half_diagonal + 1e-3)
    assert distance.max() > 100  # the line does not cover the scene
    # blocks with their own padded grids meet without seams: equal within the margin,
    # within the far-pixel interpolation bound beyond it
    blocked = distance_to_features(path, scene, margin=500, block_size=64)
    near = distance <= 500
    np.testing.assert_array_equal(blocked[near], distance[near])
    np.testing.assert_allclose(blocked, distance, atol=FAR_STEP * np.hypot(*scene.res))


def test_far_features_are_measured_exactly(scene, tmp_path):
    _, south, east, north = scene.bounds
    line = LineString([(east + 20_000, south), (east + 20_000, north)])  # synthetic, outside
    path = tmp_path / "synthetic_far_line.geojson"
    gpd.GeoDataFrame(geometry=[line], crs=scene.crs).to_file(path)
    distance = distance_to_features(path, scene, margin=100)
    xs, _ = scene.transform * (np.arange(scene.width) + 0.5, np.zeros(scene.width))
    np.testing.assert_allclose(distance[0], east + 20_000 - xs, rtol=1e-6)


def test_terrain_from_a_synthetic_tilted_dem(scene, tmp_path):
    # A synthetic DEM sloping 2 m per 100 m eastwards in UTM: slope = atan(0.02).
    west, south, east, north = scene.bounds
    res = 30.0
    transform = from_origin(west - 300, north + 300, res, res)
    width, height = int((east - west + 600) / res), int((north - south + 600) / res)
    xs, _ = transform * (np.arange(width) + 0.5, np.zeros(width))
    dem = np.tile(0.02 * (xs - west) + 100, (height, 1)).astype("float32")
    path = tmp_path / "synthetic_dem.tif"
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=1,
                       dtype="float32", crs=scene.crs, transform=transform) as dst:  # fmt: skip
        dst.write(dem, 1)
    elevation, slope = terrain(path, scene)
    centre_x = (scene.transform * (150.5, 0))[0]
    assert elevation[100, 150] == pytest.approx(0.02 * (centre_x - west) + 100, abs=1e-2)
    np.testing.assert_allclose(slope[1:-1, 1:-1], np.degrees(np.arctan(0.02)), atol=1e-3)
    out = write_covariate(tmp_path / "slope.tif", slope, scene, description="slope", unit="deg")
    with rasterio.open(out) as src:
        assert src.crs == scene.crs and src.transform == scene.transform
        np.testing.assert_array_equal(src.read(1), slope)


def _synthetic_line_file(scene, path):
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    line = LineString([(west - 0.001, south + 0.3 * (north - south)),
                       (east + 0.001, south + 0.8 * (north - south))])  # fmt: skip
    gpd.GeoDataFrame({"name": ["synthetic"]}, geometry=[line], crs="EPSG:4326").to_file(path)
    return path


def test_patagonia_mapped_end_to_end_with_a_computed_distance_covariate(samples, scene, tmp_path):
    # Distance to a synthetic line, turned into a synthetic 1-5 distance class so that a
    # model trained on Odisha's Dist_Sea can read it: mechanics, not salinity.
    line = _synthetic_line_file(scene, tmp_path / "synthetic_line.gpkg")
    distance = distance_to_features(line, scene)
    classes = np.clip(1 + distance // 300, 1, 5).astype(np.float32)
    raster = write_covariate(tmp_path / "synthetic_dist_class.tif", classes, scene,
                             description="synthetic distance class")  # fmt: skip
    cov = Covariates(numeric=["Dist_Sea"])
    model = make_model("RF", covariates=cov, params=SMALL_RF)
    model.fit(predictor_table(samples, cov), samples.target)
    rasters = CovariateRasters.for_model(model, {"Dist_Sea": raster})
    rasters.check(scene)
    salinity = np.full(scene.shape, np.nan, dtype=np.float32)
    for window in scene.block_windows(128):
        block, n_unseen = predict_block_with_unseen(
            model, scene.read(window), scene.roles, rasters.read(scene, window)
        )
        assert n_unseen == 0
        rows, cols = window.toslices()
        salinity[rows, cols] = block
    valid = np.isfinite(scene.read()).all(axis=0)
    assert np.isfinite(salinity[valid]).all() and np.isnan(salinity[~valid]).all()
    # a mapped pixel equals the model's prediction for that pixel taken as a sample
    reflectance = scene.read()
    for r, c in [(10, 10), (150, 250), (199, 0)]:
        row = pd.DataFrame({role: [reflectance[i, r, c]] for i, role in enumerate(scene.roles)})
        row["Dist_Sea"] = classes[r, c]
        assert salinity[r, c] == np.float32(model.predict(row)[0])
    # the covariate changes the map: both distance classes near and far are present
    assert len(np.unique(classes)) == 5


def test_cli_distance_extract_and_evaluate_covariates(scene, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.datasets import odisha_samples

    runner = CliRunner()
    line = _synthetic_line_file(scene, tmp_path / "synthetic_line.gpkg")
    dist = tmp_path / "synthetic_dist.tif"
    args = ["covariates", "distance", str(line), str(patagonia_scene()), "--out", str(dist)]
    result = runner.invoke(app, [*args, "--scaling", "sentinel2-l2a"])
    assert result.exit_code == 0, result.output
    with rasterio.open(dist) as src:
        np.testing.assert_array_equal(src.read(1), distance_to_features(line, scene))
    # extract samples the covariate at the points as mapping reads it
    xs, ys = scene.transform * (np.array([20.5, 150.5, 280.5]), np.array([10.5, 100.5, 190.5]))
    points = tmp_path / "synthetic_points.csv"
    pd.DataFrame({"id": ["p1", "p2", "p3"], "x": xs, "y": ys, "EC": [1.0, 2.0, 3.0]}).to_csv(
        points, index=False
    )
    out = tmp_path / "synthetic_extracted.csv"
    result = runner.invoke(app, [
        "extract", str(points), str(patagonia_scene()), "--out", str(out), "--x", "x", "--y", "y",
        "--crs", str(scene.crs), "--scaling", "sentinel2-l2a", "--covariate", f"dist={dist}",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    with rasterio.open(dist) as src:
        expected = src.read(1)[[10, 100, 190], [20, 150, 280]]
    np.testing.assert_allclose(table["dist"], expected, rtol=1e-6)
    # evaluate-covariates on the real Odisha samples, a tiny run
    result = runner.invoke(app, [
        "evaluate-covariates", str(odisha_samples()), "--target", "EC", "--target-unit", "uS/cm",
        "--id", "Name", "--scaling", "landsat-c2l2", "--covariate", "Dist_Sea",
        "--categorical", "Land_cover", "--models", "PLSR", "--splits", "3", "--repeats", "1",
        "--out-dir", str(tmp_path / "gain"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(tmp_path / "gain" / "covariate_gain_summary.csv")
    assert list(summary["predictors"]) == ["indices", "indices+covariates"]
    importance = pd.read_csv(tmp_path / "gain" / "covariate_gain_importance.csv")
    assert {"Dist_Sea", "Land_cover", "SAI"} <= set(importance["predictor"])


def test_covariate_gain_uses_the_same_rows_for_both_and_flags_unseen_levels(samples):
    from sklearn.model_selection import KFold

    cv = KFold(3, shuffle=True, random_state=1)
    gain = covariate_gain(samples, BOTH, models=["PLSR"], cv=cv, n_repeats=2, n_boot=200)
    # Land_cover has levels of one sample: their test fold cannot predict them
    singles = (samples.table["Land_cover"].value_counts() == 1).sum()
    assert gain.n_flagged >= singles
    folds = gain.folds
    without = folds[folds.predictors == "indices"]["n"].to_numpy()
    with_cov = folds[folds.predictors == "indices+covariates"]["n"].to_numpy()
    np.testing.assert_array_equal(without, with_cov)
    assert without.sum() == len(samples.target) - gain.n_flagged
    row = gain.summary.set_index("predictors").loc["indices+covariates"]
    assert row["dR2_ci_low"] <= row["dR2"] <= row["dR2_ci_high"]


def test_gain_settings_give_what_the_keywords_give(samples):
    from sklearn.model_selection import KFold

    from saltmap.validation.covariates import GainSettings

    keywords = dict(models=["PLSR"], cv=KFold(3, shuffle=True, random_state=1), n_repeats=2,
                    n_boot=100)  # fmt: skip
    by_keywords = covariate_gain(samples, BOTH, **keywords)
    by_settings = covariate_gain(samples, BOTH, GainSettings(**keywords))
    beside = covariate_gain(samples, BOTH, GainSettings(**{**keywords, "n_boot": 50}), n_boot=100)
    for got in (by_settings, beside):
        pd.testing.assert_frame_equal(got.summary, by_keywords.summary)
        pd.testing.assert_frame_equal(got.importance, by_keywords.importance)
        assert got.settings == by_keywords.settings
    with pytest.raises(TypeError, match="n_boots"):
        covariate_gain(samples, BOTH, n_boots=100)


def test_cli_train_with_covariates_saves_them_in_the_model(tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.datasets import odisha_samples

    out = tmp_path / "rf_cov.skops"
    result = CliRunner().invoke(app, [
        "train", str(odisha_samples()), "--target", "EC", "--target-unit", "uS/cm", "--id",
        "Name", "--scaling", "landsat-c2l2", "--model", "RF", "--trials", "0", "--budget",
        "quick", "--covariate", "Dist_Sea", "--categorical", "Land_cover", "--out", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Dist_Sea, Land_cover" in result.output
    model, meta = load_model(out)
    assert meta["covariates"]["Land_cover"]["kind"] == "categorical"
    assert model_covariates(model) == meta["covariates"]


def test_cli_terrain_writes_elevation_and_slope(scene, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app

    # A synthetic DEM in EPSG:4326 (heights = a plane in lon/lat), coarser than the scene.
    dem = _synthetic_lonlat_raster(tmp_path / "synthetic_dem.tif", scene,
                                   lambda lon, lat: 50 + 2000 * (lat + 48), res=0.0003)  # fmt: skip
    out_dir = tmp_path / "terrain"
    result = CliRunner().invoke(app, [
        "covariates", "terrain", str(dem), str(patagonia_scene()), "--out-dir", str(out_dir),
        "--scaling", "sentinel2-l2a",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    elevation, slope = terrain(dem, scene)
    with rasterio.open(out_dir / "slope.tif") as src:
        np.testing.assert_array_equal(src.read(1), slope)
    with rasterio.open(out_dir / "elevation.tif") as src:
        np.testing.assert_array_equal(src.read(1), elevation)
    # 2000 m per degree of latitude is ~0.018 m/m northwards: a gentle, constant slope
    inner = slope[2:-2, 2:-2]
    assert np.degrees(np.arctan(2000 / 111_500)) == pytest.approx(np.median(inner), rel=0.02)


def test_map_scene_with_a_covariate_raster_equals_the_block_hook(samples, scene, tmp_path):
    from saltmap.mapping.engine import map_scene

    line = _synthetic_line_file(scene, tmp_path / "synthetic_line.gpkg")
    classes = np.clip(1 + distance_to_features(line, scene) // 300, 1, 5).astype(np.float32)
    raster = write_covariate(tmp_path / "synthetic_dist_class.tif", classes, scene,
                             description="synthetic distance class")  # fmt: skip
    cov = Covariates(numeric=["Dist_Sea"])
    model = make_model("RF", covariates=cov, params=SMALL_RF)
    model.fit(predictor_table(samples, cov), samples.target)
    kw = {"scheme": "fao-ec", "target_unit": "uS/cm", "target_name": "EC", "progress": None,
          "figure": False}  # fmt: skip
    with pytest.raises(ConfigError, match="Dist_Sea"):
        map_scene(model, scene, tmp_path / "none", **kw)
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())
    result = map_scene(model, scene, tmp_path / "map", block_size=64,
                       covariates={"Dist_Sea": raster}, **kw)  # fmt: skip
    with rasterio.open(result.outputs.salinity) as src:
        mapped = src.read(1)
    rasters = CovariateRasters.for_model(model, {"Dist_Sea": raster})
    direct, _ = predict_block_with_unseen(model, scene.read(), scene.roles, rasters.read(scene))
    np.testing.assert_array_equal(mapped, direct)


def test_cli_map_with_a_covariate(scene, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.datasets import odisha_samples

    runner = CliRunner()
    model_file = tmp_path / "rf_dist.skops"
    result = runner.invoke(app, [
        "train", str(odisha_samples()), "--target", "EC", "--target-unit", "uS/cm", "--id",
        "Name", "--scaling", "landsat-c2l2", "--model", "RF", "--trials", "0", "--budget",
        "quick", "--covariate", "Dist_Sea", "--out", str(model_file),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    raster = write_covariate(tmp_path / "synthetic_const3.tif",
                             np.full(scene.shape, 3, np.float32), scene,
                             description="synthetic constant class")  # fmt: skip
    args = ["map", str(model_file), str(patagonia_scene()), "--scaling", "sentinel2-l2a",
            "--scheme", "fao-ec"]  # fmt: skip
    missing = runner.invoke(app, [*args, "--out", str(tmp_path / "no")])
    assert missing.exit_code != 0 and "Dist_Sea" in str(missing.exception)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "map"),
                                 "--covariate", f"Dist_Sea={raster}"])  # fmt: skip
    assert result.exit_code == 0, result.output


def test_map_scene_flags_unseen_raster_levels_and_refuses_a_raster_of_no_known_level(
    samples, scene, tmp_path
):
    from saltmap.mapping.engine import map_scene

    cov = Covariates(categorical=["Soil_Type"])
    model = make_model("RF", covariates=cov, params=SMALL_RF)
    model.fit(predictor_table(samples, cov), samples.target)
    known = model_covariates(model)["Soil_Type"]["categories"][0]
    codes = np.ones(scene.shape, np.float32)
    codes[:50] = 7  # synthetic code 7: a soil type the samples do not have
    raster = write_covariate(tmp_path / "synthetic_soil_codes.tif", codes, scene,
                             description="synthetic soil codes")  # fmt: skip
    kw = {"scheme": "fao-ec", "target_unit": "uS/cm", "target_name": "EC", "progress": None,
          "figure": False}  # fmt: skip
    # codes 1 and 7 are no training level: a legend is missing, refused before output
    with pytest.raises(ConfigError, match="labels"):
        map_scene(model, scene, tmp_path / "none", covariates={"Soil_Type": raster}, **kw)
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())
    rasters = CovariateRasters({"Soil_Type": raster}, labels={"Soil_Type": {1: known}})
    with pytest.warns(UserWarning, match="15,000 pixel"):
        result = map_scene(model, scene, tmp_path / "map", covariates=rasters, **kw)
    with rasterio.open(result.outputs.salinity) as src:
        mapped = src.read(1)
    assert np.isnan(mapped[:50]).all()
    valid = np.isfinite(scene.read()).all(axis=0)
    assert np.isfinite(mapped[50:][valid[50:]]).all()
    # the same from the command line, the legend as a CSV
    from typer.testing import CliRunner

    from saltmap.cli import app

    model_file = save_model(tmp_path / "rf_soil.skops", model, metadata={
        "target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2",
    })  # fmt: skip
    legend = tmp_path / "synthetic_legend.csv"
    pd.DataFrame({"value": [1], "level": [known]}).to_csv(legend, index=False)
    args = ["map", str(model_file), str(patagonia_scene()), "--scaling", "sentinel2-l2a",
            "--scheme", "fao-ec", "--covariate", f"Soil_Type={raster}"]  # fmt: skip
    refused = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "cli_none")])
    assert refused.exit_code != 0 and "--labels" in str(refused.exception)
    done = CliRunner().invoke(
        app, [*args, "--out", str(tmp_path / "cli_map"), "--labels", f"Soil_Type={legend}"]
    )
    assert done.exit_code == 0, done.output
    with rasterio.open(tmp_path / "cli_map" / result.outputs.salinity.name) as src:
        np.testing.assert_array_equal(src.read(1), mapped)


def test_cli_predict_reads_the_covariates_from_the_samples(samples, table, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.datasets import odisha_samples

    model = make_model("RF", covariates=BOTH, params=SMALL_RF).fit(table, samples.target)
    model_file = save_model(tmp_path / "rf_both.skops", model, metadata={
        "target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2",
    })  # fmt: skip
    out = tmp_path / "predicted.csv"
    args = ["predict", str(model_file)]
    done = CliRunner().invoke(
        app, [*args, str(odisha_samples()), "--id", "Name", "--out", str(out)]
    )
    assert done.exit_code == 0, done.output
    predicted = pd.read_csv(out, index_col=0)
    np.testing.assert_allclose(predicted["predicted_EC"], model.predict(table))
    # The same samples without the Dist_Sea column: refused, the column named.
    lacking = tmp_path / "samples_without_dist_sea.csv"
    pd.read_csv(odisha_samples()).drop(columns=["Dist_Sea"]).to_csv(lacking, index=False)
    refused = CliRunner().invoke(
        app, [*args, str(lacking), "--id", "Name", "--out", str(tmp_path / "no.csv")]
    )
    assert refused.exit_code != 0
    assert isinstance(refused.exception, MissingColumnError)
    assert "'Dist_Sea'" in str(refused.exception) and "trained with covariate" in str(
        refused.exception
    )
    assert not (tmp_path / "no.csv").exists()


def test_inspect_answers_for_models_with_and_without_covariates():
    from sklearn.linear_model import LinearRegression

    from saltmap.errors import ModelFileError
    from saltmap.models.inspect import (
        categorical_of,
        model_parts,
        predictor_of_column,
        predictor_step,
        seen_rows,
        take_rows,
    )
    from saltmap.models.tuning import TunedModel

    samples = odisha()
    plain = make_model("PLSR").fit(samples.reflectance, samples.target)
    step, regressor = model_parts(plain)
    assert step is predictor_step(plain) and regressor.steps[-1][0] == "model"
    assert seen_rows(plain, samples.reflectance).all()
    assert categorical_of(plain) == () and predictor_of_column(step) == list(step.index_names_)
    assert categorical_of(TunedModel("RF", covariates=BOTH)) == ("Land_cover",)
    assert predictor_step(LinearRegression()) is None
    with pytest.raises(ModelFileError, match="not a fitted saltmap model"):
        model_parts(LinearRegression())
    rows = np.array([2, 0])
    assert take_rows(samples.reflectance, rows).index.tolist() == [
        samples.reflectance.index[2],
        samples.reflectance.index[0],
    ]
    np.testing.assert_array_equal(
        take_rows(samples.reflectance.to_numpy(), rows), samples.reflectance.to_numpy()[rows]
    )

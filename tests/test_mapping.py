"""Tests of saltmap.mapping on the real Patagonia scene with a model trained on Odisha.

The model is the study's stacking regressor kept small (few trees) so the tests stay
fast; it is trained on the real Odisha samples (Landsat reflectance) and applied to
the real Sentinel-2 scene, which works because both share band roles.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.windows import Window

from saltmap import mapping, salinity
from saltmap.datasets import patagonia_scene, unnao_landsat_scene, xinjiang_lab_sheet
from saltmap.errors import (
    BoundaryError,
    ConfigError,
    MissingBandError,
    OutputExistsError,
    UnitError,
)
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.models.building import make_model

SMALL = {"RF__n_estimators": 15, "XGBoost__n_estimators": 15, "MLP__max_iter": 300}
EC = {"target_name": "EC", "target_unit": "µS/cm"}


@pytest.fixture(scope="module")
def model():
    samples = odisha()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs convergence notes of the small MLP
        return make_model("Stacking", indices="novel", params=SMALL, random_state=0).fit(
            samples.reflectance, samples.target
        )


@pytest.fixture(scope="module")
def scene():
    # The README of the data explains why this cut has no BOA offset.
    return open_scene(patagonia_scene(), scaling="sentinel2-l2a")


@pytest.fixture(scope="module")
def conversion():
    return salinity.fit_lab_sheet(xinjiang_lab_sheet()).conversion


@pytest.fixture(scope="module")
def mapped(model, scene, conversion, tmp_path_factory):
    out = tmp_path_factory.mktemp("map")
    # 128 does not divide 300 x 200: edge blocks are partial.
    result = mapping.map_scene(
        model, scene, out, block_size=128, conversion=conversion, progress=None, **EC
    )
    return result


def read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_outputs_are_cogs_with_metadata(mapped, scene):
    out = mapped.outputs
    for path in out.all():
        assert path.exists(), path
    with rasterio.open(out.salinity) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert (src.crs, src.transform, src.shape) == (
            scene.crs,
            scene.transform,
            (scene.height, scene.width),
        )
        assert src.tags()["unit"] == "µS/cm" and src.tags()["target"] == "EC"
        assert src.tags()["model"]
    with rasterio.open(out.classes) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.dtypes[0] == "uint8" and src.nodata == 0
        assert src.colormap(1)[1][:3] == (0x1A, 0x98, 0x50)  # the study scheme's first colour
        assert src.tags(1)["class_names"].split("|") == list(salinity.STUDY.labels)
    assert "paletteEntry" in out.style.read_text()


def test_mapped_pixel_equals_model_on_that_pixel_as_a_sample(mapped, model, scene):
    values = read(mapped.outputs.salinity)
    whole = scene.read()
    rng = np.random.default_rng(0)
    rows, cols = np.nonzero(np.isfinite(values))
    pick = rng.choice(rows.size, size=8, replace=False)
    for r, c in zip(rows[pick], cols[pick], strict=True):
        sample = pd.DataFrame([whole[:, r, c]], columns=list(scene.roles)).astype(float)
        expected = model.predict(sample)[0]
        assert values[r, c] == pytest.approx(expected, rel=1e-6)


def test_blockwise_map_equals_whole_scene_prediction(mapped, model, scene):
    whole = mapping.predict_block(model, scene.read(), scene.roles)
    np.testing.assert_allclose(read(mapped.outputs.salinity), whole, rtol=1e-6, equal_nan=True)
    assert mapped.n_valid == np.isfinite(whole).sum() > 0


def test_classes_and_areas_follow_the_scheme(mapped, conversion):
    values = read(mapped.outputs.salinity)
    codes = read(mapped.outputs.classes)
    salt = conversion.to_salt(values.astype(float), ec_unit="µS/cm")
    np.testing.assert_array_equal(codes, salinity.classify(salt, "study"))
    areas = pd.read_csv(mapped.outputs.areas)
    assert list(areas["class"]) == list(salinity.STUDY.labels)
    counts = np.bincount(codes.ravel(), minlength=6)[1:]
    np.testing.assert_array_equal(areas["pixels"], counts)
    # 10 m pixels: 1e-4 km² each.
    np.testing.assert_allclose(areas["area_km2"], counts * 1e-4)
    assert areas["percent"].sum() == pytest.approx(100.0)


def test_predict_block_leaves_pixels_without_a_needed_band_empty(model, scene):
    block = scene.read(window=Window(0, 0, 40, 30))
    roles = list(scene.roles)
    block[roles.index("S1"), 3, 4] = np.nan  # novel indices read S1
    block[roles.index("S2"), 5, 6] = np.nan  # ... but not S2
    block[roles.index("G"), 7, 8] = 0.0  # SAI = (G²-N²+S1²)/(G·N·S1) is undefined
    out = mapping.predict_block(model, block, roles, chunk_rows=97)
    assert out.dtype == np.float32 and out.shape == (30, 40)
    assert np.isnan(out[3, 4])
    assert np.isfinite(out[5, 6])
    assert np.isnan(out[7, 8])
    assert np.isfinite(out).sum() == 30 * 40 - 2
    # chunking does not change a value
    again = mapping.predict_block(model, block, roles)
    np.testing.assert_array_equal(out, again)
    # each value is the model's own for that pixel, whether its chunk was a run or not
    pixels = pd.DataFrame(block.reshape(len(roles), -1).T, columns=roles).astype(float)
    ok = np.isfinite(out.ravel())
    np.testing.assert_allclose(out.ravel()[ok], model.predict(pixels[ok]), rtol=1e-6)


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_two_jobs_give_the_same_map(mapped, model, scene, conversion, tmp_path, workers):
    result = mapping.map_scene(
        model,
        scene,
        tmp_path,
        block_size=128,
        jobs=2,
        workers=workers,
        conversion=conversion,
        progress=None,
        figure=False,
        **EC,
    )
    np.testing.assert_array_equal(read(result.outputs.salinity), read(mapped.outputs.salinity))
    np.testing.assert_array_equal(read(result.outputs.classes), read(mapped.outputs.classes))


def test_dask_cluster_gives_the_same_map(mapped, model, scene, conversion, tmp_path):
    import distributed

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        result = mapping.map_scene(
            model,
            scene,
            tmp_path,
            block_size=128,
            scheduler=cluster.scheduler_address,
            conversion=conversion,
            progress=None,
            figure=False,
            **EC,
        )
    np.testing.assert_array_equal(read(result.outputs.salinity), read(mapped.outputs.salinity))
    np.testing.assert_array_equal(read(result.outputs.classes), read(mapped.outputs.classes))


def test_boundary_in_another_crs_clips_the_map(
    mapped, model, scene, conversion, tmp_path, monkeypatch
):
    # A synthetic polygon in longitude/latitude over part of the real scene.
    lonlat = shapely.Polygon(
        [(-67.652, -47.850), (-67.636, -47.848), (-67.632, -47.858), (-67.650, -47.860)]
    )
    boundary = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[lonlat], crs="EPSG:4326").to_file(boundary)
    import saltmap.mapping.engine as engine

    framed, real_draw = [], engine.draw_class_map

    def draw(*args, **kwargs):
        framed.append(kwargs["boundary"])
        return real_draw(*args, **kwargs)

    monkeypatch.setattr(engine, "draw_class_map", draw)
    result = mapping.map_scene(
        model,
        scene,
        tmp_path / "out",
        block_size=128,
        boundary=boundary,
        conversion=conversion,
        progress=None,
        **EC,
    )
    assert framed == [boundary]  # figure 6 is framed to the boundary
    clipped = read(result.outputs.salinity)
    full = read(mapped.outputs.salinity)
    # Independent check: pixel centres inside the polygon, projected with shapely/pyproj.
    utm = gpd.GeoSeries([lonlat], crs="EPSG:4326").to_crs(scene.crs).iloc[0]
    rows, cols = np.mgrid[0 : scene.height, 0 : scene.width]
    x, y = (np.asarray(v).reshape(rows.shape) for v in rasterio.transform.xy(
        scene.transform, rows.ravel(), cols.ravel(), offset="center"))  # fmt: skip
    inside = shapely.contains_xy(utm, x, y)
    assert 0 < inside.sum() < inside.size
    np.testing.assert_array_equal(np.isfinite(clipped), inside & np.isfinite(full))
    np.testing.assert_array_equal(clipped[inside], full[inside])
    assert (read(result.outputs.classes)[~inside] == 0).all()
    areas = pd.read_csv(result.outputs.areas)
    assert areas["pixels"].sum() == (inside & np.isfinite(full)).sum()


def test_errors_come_before_any_output(model, scene, conversion, tmp_path):
    out = tmp_path / "out"
    far = tmp_path / "far.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(10, 50, 11, 51)], crs="EPSG:4326").to_file(far)
    with pytest.raises(BoundaryError, match="does not overlap"):
        mapping.map_scene(model, scene, out, boundary=far, conversion=conversion, **EC)
    four = open_scene(patagonia_scene(), scaling="sentinel2-l2a", bands=["B", "G", "R", "N"])
    with pytest.raises(MissingBandError, match="S1"):
        mapping.map_scene(model, four, out, conversion=conversion, **EC)
    with pytest.raises(UnitError, match="conversion"):
        mapping.map_scene(model, scene, out, scheme="study", **EC)
    with pytest.raises(UnitError, match="unit"):
        mapping.map_scene(model, scene, out, scheme="fao-ec")
    assert not out.exists()


def test_existing_outputs_are_kept_without_overwrite(model, scene, tmp_path):
    kw = {"block_size": 256, "scheme": "fao-ec", "progress": None, "figure": False, **EC}
    first = mapping.map_scene(model, scene, tmp_path, **kw)
    before = first.outputs.salinity.stat().st_mtime_ns
    with pytest.raises(OutputExistsError, match="overwrite"):
        mapping.map_scene(model, scene, tmp_path, **kw)
    assert first.outputs.salinity.stat().st_mtime_ns == before
    second = mapping.map_scene(model, scene, tmp_path, overwrite=True, **kw)
    assert second.outputs.salinity.stat().st_mtime_ns >= before
    # fao-ec classes EC in dS/m: the µS/cm predictions are converted by a unit factor.
    codes = read(second.outputs.classes)
    values = read(second.outputs.salinity)
    np.testing.assert_array_equal(codes, salinity.classify(values, "fao-ec", unit="µS/cm"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_map_counts_the_predictions_held_at_zero_block_by_block(tmp_path):
    # PLSR with 3 components on Odisha predicts negative EC over part of the real Unnao
    # Landsat cut; those pixels are set to zero and counted as the blocks are written.
    samples = odisha()
    model = make_model("PLSR", params={"n_components": 3}).fit(samples.reflectance, samples.target)
    scene = open_scene(unnao_landsat_scene(), scaling="landsat-c2l2")
    kw = {"block_size": 256, "scheme": "fao-ec", "progress": None, "figure": False, **EC}
    result = mapping.map_scene(model, scene, tmp_path, **kw)
    values = read(result.outputs.salinity)
    assert np.nanmin(values) == 0
    assert result.n_clipped == int((values == 0).sum()) > 0


def test_user_thresholds_are_in_the_model_unit(model):
    plan = mapping.plan_classes("1000, 3000", "EC", "µS/cm")
    assert plan.scheme.thresholds == (1000.0, 3000.0)
    codes = mapping.classify_block(np.array([np.nan, 999.0, 1000.0, 5000.0]), plan.scheme,
                                   plan.convert)  # fmt: skip
    np.testing.assert_array_equal(codes, [0, 1, 2, 3])


def test_cli_map_writes_the_outputs(model, conversion, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.models.persistence import save_model

    model_file = save_model(
        tmp_path / "m.skops",
        model,
        metadata={"target": "EC", "target_unit": "µS/cm", "scaling": "landsat-c2l2",
                  "model": "Stacking"},
    )  # fmt: skip
    conv = salinity.save_conversion(conversion, tmp_path / "conv.toml")
    scene_args = [str(model_file), str(patagonia_scene()), "--scaling", "sentinel2-l2a"]
    runner = CliRunner()
    out = tmp_path / "map"
    refused = runner.invoke(app, ["map", *scene_args, "--out", str(out)])
    assert refused.exit_code != 0
    assert "conversion" in str(refused.exception) + refused.output
    assert not out.exists()
    done = runner.invoke(
        app, ["map", *scene_args, "--out", str(out), "--conversion", str(conv),
              "--block-size", "160"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "km²" in done.output
    with rasterio.open(out / "salinity.tif") as src:
        assert src.tags()["model"] == "Stacking" and src.tags()["unit"] == "µS/cm"
    assert (out / "salinity_map.png").stat().st_size > 10_000


# ------------------------------------------------------------------ trust layers
# A small forest (20 trees) with its intervals and AOA fitted on the real Odisha samples,
# mapped over the real Patagonia cut (300 x 200 px): the map model is the trust model's
# full model, as `saltmap train` saves them.


@pytest.fixture(scope="module")
def rf_trust():
    from saltmap.trust.maps import fit_trust

    samples = odisha()
    model = make_model("RF", params={"n_estimators": 20}, random_state=0)
    return fit_trust(model, samples.reflectance, samples.target.to_numpy(float), random_state=0)


@pytest.fixture(scope="module")
def trust_mapped(rf_trust, scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("trust-map")
    return mapping.map_scene(
        rf_trust.intervals.estimator_, scene, out, block_size=128, scheme="fao-ec",
        trust=rf_trust, progress=None, **EC,
    )  # fmt: skip


def read_layers(result):
    return {name: read(path) for name, path in result.outputs.trust.items()}


def test_trust_cogs_equal_a_direct_call_on_the_same_pixels(trust_mapped, rf_trust, scene):
    from saltmap.trust.maps import AOA_NODATA

    layers = read_layers(trust_mapped)
    assert set(layers) == set(mapping.TRUST_FILES)
    values = read(trust_mapped.outputs.salinity)
    valid = np.isfinite(values)
    assert valid.sum() > 50_000
    # Direct: every valid pixel as a sample, through the trust model's own calls.
    refl = scene.read()
    table = pd.DataFrame(refl.reshape(len(scene.roles), -1).T, columns=list(scene.roles))
    rows = table[valid.ravel()][list(rf_trust.bands)]
    pred, lower, upper = rf_trust.intervals.predict_interval(rows)
    di = rf_trust.aoa.dissimilarity(rf_trust.features(rows.to_numpy()))
    np.testing.assert_allclose(values[valid], pred, rtol=1e-5)
    np.testing.assert_allclose(layers["lower"][valid], lower, rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(layers["upper"][valid], upper, rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(layers["width"][valid], upper - lower, rtol=1e-5)
    np.testing.assert_allclose(layers["di"][valid], di, rtol=1e-4)
    # AOA: DI against the threshold; float32 pixels may only flip a DI at the threshold.
    threshold = rf_trust.aoa.threshold_
    flipped = layers["aoa"][valid] != (di <= threshold)
    assert np.all(np.abs(di[flipped] - threshold) <= 1e-4 * threshold)
    assert {0, 1} <= set(np.unique(layers["aoa"][valid]))  # both occur on this scene
    # Pixels without a prediction have no trust value either.
    for name in ("lower", "upper", "width", "di"):
        assert np.isnan(layers[name][~valid]).all(), name
    assert (layers["aoa"][~valid] == AOA_NODATA).all()


def test_trust_cogs_have_their_dtype_nodata_and_description(trust_mapped, rf_trust, scene):
    from saltmap.trust.maps import TRUST_LAYERS

    for name, path in trust_mapped.outputs.trust.items():
        assert path.name == mapping.TRUST_FILES[name]
        dtype, nodata, description = TRUST_LAYERS[name]
        with rasterio.open(path) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", name
            assert src.dtypes[0] == dtype, name
            assert np.isnan(src.nodata) if np.isnan(nodata) else src.nodata == nodata, name
            assert src.descriptions[0] == description.format(unit="µS/cm"), name
            assert (src.crs, src.transform, src.shape) == (
                scene.crs, scene.transform, (scene.height, scene.width),
            )  # fmt: skip
            tags = src.tags()
            assert float(tags["aoa_threshold"]) == rf_trust.aoa.threshold_
            assert tags["trust_confidence"] == "0.9" and tags["unit"] == "µS/cm"
            if name in ("lower", "upper", "width"):
                assert src.tags(1)["units"] == "µS/cm"
    aoa = read(trust_mapped.outputs.trust["aoa"])
    assert set(np.unique(aoa)) <= {0, 1, 255}
    assert trust_mapped.outputs.figure.stat().st_size > 10_000


def test_map_result_reports_aoa_share_and_median_width(trust_mapped):
    layers = read_layers(trust_mapped)
    aoa = layers["aoa"]
    summary = trust_mapped.trust
    assert summary.n_valid == np.sum(aoa != 255) == trust_mapped.n_valid
    assert summary.share_inside_aoa == pytest.approx(np.mean(aoa[aoa != 255] == 1))
    assert 0 < summary.share_inside_aoa < 1
    assert summary.median_width == pytest.approx(np.nanmedian(layers["width"]), rel=2e-3)


def test_exclude_outside_aoa_leaves_those_pixels_out_of_classes_and_areas(
    trust_mapped, rf_trust, scene, tmp_path
):
    result = mapping.map_scene(
        rf_trust.intervals.estimator_, scene, tmp_path, block_size=128, scheme="fao-ec",
        trust=rf_trust, exclude_outside_aoa=True, progress=None, figure=False, **EC,
    )  # fmt: skip
    aoa = read(trust_mapped.outputs.trust["aoa"])
    every = read(trust_mapped.outputs.classes)
    codes = read(result.outputs.classes)
    np.testing.assert_array_equal(codes, np.where(aoa == 0, 0, every))
    # The salinity and trust layers are those of the map without exclusion.
    np.testing.assert_array_equal(read(result.outputs.salinity),
                                  read(trust_mapped.outputs.salinity))  # fmt: skip
    for name, layer in read_layers(result).items():
        np.testing.assert_array_equal(layer, read(trust_mapped.outputs.trust[name]))
    areas = pd.read_csv(result.outputs.areas)
    counts = np.bincount(codes.ravel(), minlength=len(areas) + 1)[1:]
    np.testing.assert_array_equal(areas["pixels"], counts)
    outside = int(np.sum(aoa == 0))
    assert areas["scope"].nunique() == 1
    assert f"{outside} valid pixel(s) outside it excluded" in areas["scope"].iloc[0]
    assert "inside the area of applicability" in areas["scope"].iloc[0]
    assert "scope" not in pd.read_csv(trust_mapped.outputs.areas).columns
    assert result.excluded_outside_aoa and not trust_mapped.excluded_outside_aoa


def test_exclude_outside_aoa_without_trust_is_an_error_before_output(model, scene, tmp_path):
    from saltmap.errors import SaltmapError

    out = tmp_path / "out"
    with pytest.raises(SaltmapError, match="trust model"):
        mapping.map_scene(model, scene, out, scheme="fao-ec", exclude_outside_aoa=True, **EC)
    assert not out.exists()


@pytest.mark.parametrize("workers", ["threads", "processes"])
def test_two_jobs_give_the_same_trust_layers(trust_mapped, rf_trust, scene, tmp_path, workers):
    result = mapping.map_scene(
        rf_trust.intervals.estimator_, scene, tmp_path, block_size=128, scheme="fao-ec",
        trust=rf_trust, jobs=2, workers=workers, progress=None, figure=False, **EC,
    )  # fmt: skip
    one = trust_mapped.outputs.salinity.parent
    for path in (result.outputs.salinity, result.outputs.classes, *result.outputs.trust.values()):
        np.testing.assert_array_equal(read(path), read(one / path.name), err_msg=path.name)
    assert result.trust.as_dict() == trust_mapped.trust.as_dict()


# ------------------------------------------------------------------ resumable runs


def _stored_blocks(out):
    return [p for p in out.glob(f".{mapping.STORE_NAME}.work-*/*.npz") if p.name[0] != "."]


@pytest.mark.parametrize("jobs", ["1", "2"])  # 2: threads, each storing its own blocks
def test_killed_map_resumes_from_its_finished_blocks_with_the_same_values(rf_trust, tmp_path, jobs):
    import re
    import signal
    import subprocess
    import sys
    import time

    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.models.persistence import save_model

    meta = {"target": "EC", "target_unit": "µS/cm", "scaling": "landsat-c2l2", "model": "RF"}
    model_file = save_model(tmp_path / "rf.skops", rf_trust.intervals.estimator_, metadata=meta,
                            trust=rf_trust)  # fmt: skip
    # 32-pixel blocks: 70 blocks over the 300 x 200 cut, each stored as it finishes.
    args = ["map", str(model_file), str(patagonia_scene()), "--scaling", "sentinel2-l2a",
            "--scheme", "fao-ec", "--block-size", "32", "--jobs", jobs]  # fmt: skip
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", "from saltmap.cli import main; main()", *args, "--out", str(out)]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while len(_stored_blocks(out)) < 2:
            assert child.poll() is None, (
                f"the run ended before it was killed: {child.stderr.read()}"
            )
            assert time.monotonic() < deadline, "no block was stored within 60 s"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    stored = len(_stored_blocks(out))
    assert 2 <= stored < 70 and not (out / "salinity.tif").exists()

    # Started again with the same arguments (no --overwrite): it continues.
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    found = re.search(
        r"resumed (\d+) of (\d+) blocks .* computed (\d+)", " ".join(rerun.stdout.split())
    )
    assert found, rerun.stdout
    assert (int(found[1]), int(found[2]), int(found[3])) == (stored, 70, 70 - stored)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # work store cleared

    # An uninterrupted run gives the same files, pixel for pixel.
    fresh = tmp_path / "fresh"
    done = CliRunner().invoke(app, [*args, "--out", str(fresh)])
    assert done.exit_code == 0, done.output
    tifs = sorted(p.name for p in fresh.glob("*.tif"))
    assert len(tifs) == 8 and tifs == sorted(p.name for p in out.glob("*.tif"))
    for name in tifs:
        np.testing.assert_array_equal(read(out / name), read(fresh / name), err_msg=name)
    pd.testing.assert_frame_equal(pd.read_csv(out / "class_areas.csv"),
                                  pd.read_csv(fresh / "class_areas.csv"))  # fmt: skip


def test_interrupted_map_needs_no_overwrite_but_a_finished_one_does(
    rf_trust, scene, tmp_path, monkeypatch
):
    kw = {"block_size": 64, "scheme": "fao-ec", "trust": rf_trust, "progress": None,
          "figure": False, **EC}  # fmt: skip
    model = rf_trust.intervals.estimator_
    from saltmap.mapping import writer

    real_to_cog = writer._to_cog

    def fail_after_salinity(tmp, final, **options):
        real_to_cog(tmp, final, **options)
        if final.name == "salinity.tif":
            raise OSError("synthetic failure after the first COG")

    monkeypatch.setattr(writer, "_to_cog", fail_after_salinity)
    with pytest.raises(OSError, match="synthetic"):
        mapping.map_scene(model, scene, tmp_path, **kw)
    monkeypatch.undo()
    assert (tmp_path / "salinity.tif").exists() and len(_stored_blocks(tmp_path)) == 20
    # Its own partial outputs do not stop the rerun; every block comes from the store.
    resumed = mapping.map_scene(model, scene, tmp_path, **kw)
    assert (resumed.n_resumed, resumed.n_computed, resumed.n_blocks) == (20, 0, 20)
    assert _stored_blocks(tmp_path) == []
    # A finished map needs overwrite; other arguments start afresh.
    with pytest.raises(OutputExistsError, match="overwrite"):
        mapping.map_scene(model, scene, tmp_path, **kw)
    again = mapping.map_scene(model, scene, tmp_path, overwrite=True, **{**kw, "block_size": 128})
    assert (again.n_resumed, again.n_computed) == (0, 6)


def test_salinity_cog_has_a_qgis_default_stretch_over_its_2_to_98_percent(mapped):
    import xml.etree.ElementTree as ET

    style = mapped.outputs.salinity_style
    assert style == mapped.outputs.salinity.with_suffix(".qml")  # QGIS's default-style name
    values = read(mapped.outputs.salinity)
    low, high = np.quantile(values[np.isfinite(values)], [0.02, 0.98])
    renderer = ET.parse(style).getroot().find("pipe/rasterrenderer")
    assert renderer.get("type") == "singlebandpseudocolor"
    assert float(renderer.get("classificationMin")) == pytest.approx(low, rel=1e-5)
    assert float(renderer.get("classificationMax")) == pytest.approx(high, rel=1e-5)
    stops = [float(i.get("value")) for i in renderer.iter("item")]
    assert stops == sorted(stops) and stops[0] < stops[-1]


def test_stretch_sample_takes_the_same_pixels_whatever_the_blocks_and_their_order():
    """SYNTHETIC values: a raster wider than the sample is sampled on one grid of every
    4th pixel, whatever block edges cut it (13 px blocks) and in whatever order."""
    from saltmap.mapping.styles import StretchSample

    values = np.random.default_rng(0).normal(size=(50, 70)).astype(np.float32)
    values[3, :] = np.nan
    sample = StretchSample(70, 50, max_pixels=20)  # stride ceil(70 / 20) = 4
    windows = [Window(c, r, min(13, 70 - c), min(13, 50 - r))
               for r in range(0, 50, 13) for c in range(0, 70, 13)]  # fmt: skip
    for w in reversed(windows):
        sample.add(w, values[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width])
    grid = values[::4, ::4]
    expected = np.quantile(grid[np.isfinite(grid)], [0.02, 0.98])
    assert sample.stretch() == pytest.approx(tuple(expected), rel=1e-6)
    assert StretchSample(70, 50).stretch() == pytest.approx((np.nan, np.nan), nan_ok=True)


def test_stretch_style_of_a_map_without_valid_pixels_is_still_valid_xml():
    import xml.etree.ElementTree as ET

    from saltmap.mapping.writer import qml_stretch_style

    root = ET.fromstring(qml_stretch_style(float("nan"), float("nan"), 'µS/cm "x"'))
    renderer = root.find("pipe/rasterrenderer")
    assert float(renderer.get("classificationMin")) < float(renderer.get("classificationMax"))


# ------------------------------------------------- settings, progress, one predictor


def test_map_settings_give_the_map_of_the_old_keywords_and_report_progress(
    mapped, model, scene, conversion, tmp_path
):
    from saltmap.mapping.plan import MapSettings
    from saltmap.progress import RecordedProgress

    settings = MapSettings(block_size=128, conversion=conversion, **EC)
    recorded = RecordedProgress()
    result = mapping.map_scene(model, scene, tmp_path, settings, progress=recorded)
    np.testing.assert_array_equal(read(result.outputs.salinity), read(mapped.outputs.salinity))
    np.testing.assert_array_equal(read(result.outputs.classes), read(mapped.outputs.classes))
    pd.testing.assert_frame_equal(result.areas, mapped.areas)
    (what, ticks), = recorded.ticks.items()  # fmt: skip
    assert what.startswith(f"mapping {scene.source}")
    n = result.n_blocks
    assert ticks == [(done, n) for done in range(1, n + 1)]


def test_map_settings_refuse_an_unknown_name_before_any_output(model, scene, tmp_path):
    from saltmap.mapping.plan import MapSettings

    with pytest.raises(TypeError, match="blocksize"):
        MapSettings().replace(blocksize=64)
    with pytest.raises(TypeError, match="blocksize"):
        mapping.map_scene(model, scene, tmp_path / "none", blocksize=64, **EC)
    assert not (tmp_path / "none").exists()
    assert MapSettings(jobs=2).replace(block_size=64) == MapSettings(jobs=2, block_size=64)
    with pytest.raises(ConfigError, match=r"'thread'.*'threads'"):
        MapSettings(jobs=2, workers="thread")


def test_one_block_predictor_serves_models_with_and_without_covariates(model):
    from saltmap.features.covariates import Covariates, UnseenLevelError, predictor_table
    from saltmap.mapping.blocks import predict_block, predict_block_with_unseen

    samples = odisha()
    roles = list(samples.reflectance.columns)
    reflectance = np.repeat(samples.reflectance.to_numpy().T[:, :4, None], 3, axis=2)
    # Without covariates: nothing unseen, the same values as before the covariates path.
    plain, n_unseen = predict_block_with_unseen(model, reflectance, roles, chunk_rows=5)
    assert n_unseen == 0
    np.testing.assert_array_equal(plain, predict_block(model, reflectance, roles))
    # Dist_Sea as a categorical covariate: the samples have levels 1..5.
    cov = Covariates(categorical=["Dist_Sea"])
    with_cov = make_model("RF", covariates=cov, params={"n_estimators": 20}).fit(
        predictor_table(samples, cov), samples.target
    )
    codes = np.array([[1, 2, 9], [3, 4, 9], [5, 1, 2], [np.nan, 2, 3]], dtype=np.float32)
    salinity, n_unseen = predict_block_with_unseen(
        with_cov, reflectance, roles, {"Dist_Sea": codes}, chunk_rows=5
    )
    assert n_unseen == 2
    assert np.isnan(salinity[:, 2][:2]).all() and np.isnan(salinity[3, 0])
    np.testing.assert_array_equal(
        salinity, predict_block(with_cov, reflectance, roles, {"Dist_Sea": codes})
    )
    # every other pixel is the model's prediction for that pixel taken as a sample
    row = pd.DataFrame({r: [reflectance[i, 2, 1]] for i, r in enumerate(roles)})
    row["Dist_Sea"] = "1"
    assert salinity[2, 1] == np.float32(with_cov.predict(row)[0])
    with pytest.raises(UnseenLevelError):
        with_cov.predict(row.assign(Dist_Sea="9"))


# ------------------------------------------------------------------ figures frame the map


def _small_patch():
    """Synthetic class codes: 100 × 200 pixels of 10 m, a 10 × 20 pixel patch with classes
    at rows 40-49, cols 120-139; its bounds are x 2200-2400, y 500-600."""
    codes = np.zeros((100, 200), np.uint8)
    codes[40:50, 120:140] = 1
    codes[45:50, 130:140] = 2
    return codes, (1000.0, 3000.0, 0.0, 1000.0), (2200.0, 2400.0, 500.0, 600.0)


def _write_classes(path, codes):
    from rasterio.transform import from_origin

    with rasterio.open(path, "w", driver="GTiff", width=200, height=100, count=1,
                       dtype="uint8", crs="EPSG:32644", nodata=0,
                       transform=from_origin(1000.0, 1000.0, 10.0, 10.0)) as ds:  # fmt: skip
        ds.write(codes, 1)
    return path


def test_class_map_frames_the_valid_pixels_not_the_empty_raster(tmp_path):
    import matplotlib.pyplot as plt

    codes, _, bounds = _small_patch()
    path = _write_classes(tmp_path / "classes.tif", codes)
    plan = mapping.plan_classes("1000, 3000", "EC", "µS/cm")
    fig = mapping.class_map_of(path, plan, title="t", aoa_path=path)
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx(bounds[:2])
    assert ax.get_ylim() == pytest.approx(bounds[2:])
    plt.close(fig)


def test_class_colours_and_the_aoa_veil_are_composited_as_matplotlib_would():
    """Code 0 transparent, each class its colour, and outside the AOA the grey veil laid
    over the class ("over" compositing: 0.65 grey + 0.35 class; grey at 0.65 on no data)."""
    from matplotlib.colors import to_rgb

    from saltmap.map_figures import AOA_VEIL, class_rgba

    codes = np.array([[0, 1, 2], [0, 1, 2]], dtype=np.uint8)
    outside = np.array([[False] * 3, [True] * 3])
    rgba = class_rgba(codes, ["#ff0000", "#0000ff"], outside)
    assert rgba.dtype == np.uint8 and rgba.shape == (2, 3, 4)
    np.testing.assert_array_equal(rgba[0], [[0, 0, 0, 0], [255, 0, 0, 255], [0, 0, 255, 255]])
    grey, alpha = AOA_VEIL
    veil = np.array(to_rgb(grey))
    over_red = np.round(255 * (alpha * veil + (1 - alpha) * np.array([1.0, 0, 0])))
    np.testing.assert_array_equal(rgba[1, 1, :3], over_red)
    np.testing.assert_array_equal(rgba[1, 1, 3], 255)
    np.testing.assert_array_equal(rgba[1, 0], [*np.round(255 * veil), round(255 * alpha)])


def test_trust_figure_frames_the_pixels_with_an_aoa_value():
    import matplotlib.pyplot as plt

    from saltmap.map_figures import trust_map_figure

    codes, extent, bounds = _small_patch()
    aoa = np.where(codes > 0, codes - 1, 255).astype(np.uint8)
    di = np.where(codes > 0, codes * 0.4, np.nan)
    fig = trust_map_figure(di, aoa, di * 10, extent, threshold=0.5)
    for ax in fig.axes[:3]:
        assert ax.get_xlim() == pytest.approx(bounds[:2])
        assert ax.get_ylim() == pytest.approx(bounds[2:])
    plt.close(fig)


def test_class_map_of_frames_the_boundary_when_one_is_given(tmp_path):
    import matplotlib.pyplot as plt

    codes, _, _ = _small_patch()
    path = _write_classes(tmp_path / "classes.tif", codes)
    # The boundary reaches beyond the raster on the right: the frame stops at the raster.
    boundary = tmp_path / "area.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(2000, 300, 3500, 700)], crs="EPSG:32644").to_file(
        boundary
    )
    plan = mapping.plan_classes("1000, 3000", "EC", "µS/cm")
    fig = mapping.class_map_of(path, plan, title="t", boundary=boundary)
    ax = fig.axes[0]
    assert ax.get_xlim() == pytest.approx((2000.0, 3000.0))
    assert ax.get_ylim() == pytest.approx((300.0, 700.0))
    plt.close(fig)


def _features_at_thresholds(regressor, pixels):
    """Real pixels' features, plus rows whose values sit exactly on, just below and just
    above the ensemble's thresholds: where an off-by-one in the cell rule would show."""
    from saltmap.models.inference import tree_cells

    cells = tree_cells(regressor)
    rng = np.random.default_rng(0)
    rows = [pixels]
    for f, edges in zip(cells.features, cells.edges, strict=True):
        for value in (edges, np.nextafter(edges.astype(np.float32), np.inf)):
            block = pixels[rng.integers(0, len(pixels), len(edges))].copy()
            block[:, f] = value
            rows.append(block)
    return np.concatenate(rows).astype(np.float32)


@pytest.mark.parametrize("name", ["RF", "XGBoost", "Stacking"])
def test_prediction_by_cell_equals_the_model_value_for_value(name, scene):
    from saltmap.mapping.blocks import model_bands
    from saltmap.models.inference import predict_rows, tree_cells

    samples = odisha()
    params = {"Stacking": SMALL, "RF": {"n_estimators": 15}, "XGBoost": {"n_estimators": 15}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model(name, params=params[name], random_state=0).fit(
            samples.reflectance, samples.target
        )
    cube = scene.read(roles=list(model_bands(model)))
    pixels = cube.reshape(len(cube), -1).T
    feats = model[0].transform(pixels[np.isfinite(pixels).all(axis=1)])
    feats = feats[np.isfinite(feats).all(axis=1)]
    regressor = model[-1]  # the model inside its PhysicalTarget wrapper
    inner = regressor.regressor_
    trees = [inner] if name != "Stacking" else inner.estimators_[1:]
    for est in trees:
        assert tree_cells(est) is not None and tree_cells(est).features
        X = _features_at_thresholds(est, feats)
        expected = est.predict(X)
        got = predict_rows(est, X)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(predict_rows(regressor, feats), regressor.predict(feats))


@pytest.mark.parametrize("name", ["MLP", "PLSR"])
def test_prediction_in_slices_equals_the_model_value_for_value(name, scene, monkeypatch):
    import saltmap.models.inference as inference
    from saltmap.mapping.blocks import model_bands

    samples = odisha()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model(name, random_state=0).fit(samples.reflectance, samples.target)
    cube = scene.read(roles=list(model_bands(model)))
    pixels = cube.reshape(len(cube), -1).T
    feats = model[0].transform(pixels[np.isfinite(pixels).all(axis=1)])
    feats = feats[np.isfinite(feats).all(axis=1)]
    # Slices of 4,096 rows, the last one short, on the real scene's pixels.
    monkeypatch.setattr(inference, "SLICE_ROWS", 4096)
    assert len(feats) > 2 * 4096 and len(feats) % 4096
    expected = model[-1].predict(feats)
    got = inference.predict_rows(model[-1], feats)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)

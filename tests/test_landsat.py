"""Scenes users really have: Landsat Collection 2 Level-2 products and files named by band.

Landsat products here are synthetic (small GeoTIFFs written in ``tmp_path`` with a
hand-written MTL); the files named by band are the real Unnao Landsat cut
(``../shared/data/unnao-landsat``), opened in place, and synthetic folders for the
bad inputs.
"""

from __future__ import annotations

import json
import tarfile
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from rasterio.windows import Window
from typer.testing import CliRunner

from saltmap.bands import LANDSAT_C2L2, LANDSAT_SR_BANDS, ROLES
from saltmap.cli import app
from saltmap.datasets import odisha_samples, unnao_landsat_scene
from saltmap.errors import InputFileError, MissingBandError, ScalingError, SceneError
from saltmap.io.landsat import QA_PIXEL_MASKED, QA_PIXEL_WATER, parse_mtl, qa_pixel_masked
from saltmap.io.named_bands import role_of_file
from saltmap.io.scene import open_scene

runner = CliRunner()
SHAPE = (12, 16)
TRANSFORM = from_origin(448_000.0, 2_930_000.0, 30.0, 30.0)
CRS = "EPSG:32644"
OLI_ID = "LC08_L2SP_144041_20240315_20240322_02_T1"
TM_ID = "LT05_L2SP_144041_20010315_20200905_02_T1"
# A clear pixel of QA_PIXEL: bit 6 (clear) with low-confidence bits 8-15 set, as USGS writes it.
QA_CLEAR = 21824
# Pixels of the synthetic QA_PIXEL and the value written there: one per flag tested.
QA_PIXELS = {
    (0, 0): 1 << 0,  # fill
    (1, 1): (1 << 1) | QA_CLEAR,  # dilated cloud
    (2, 2): 1 << 2,  # cirrus
    (3, 3): (1 << 3) | (1 << 1),  # cloud
    (4, 4): 1 << 4,  # cloud shadow
    (5, 5): 1 << 5,  # snow
    (6, 6): (1 << 7) | QA_CLEAR,  # water
}


def _dn(number: int) -> np.ndarray:
    """DN of synthetic band ``number``: reflectance about 0.05 × number, a gradient across."""
    reflectance = 0.05 * number + np.linspace(0.0, 0.02, SHAPE[1])[None, :] * np.ones(SHAPE)
    return np.round((reflectance + 0.2) / 2.75e-5).astype(np.uint16)


def _write(path, data, *, nodata=None, transform=TRANSFORM) -> None:
    height, width = data.shape
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 1,
               "dtype": data.dtype, "crs": CRS, "transform": transform,
               "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)


def _mtl_text(product_id: str, spacecraft: str, sensor: str, mult: float, add: float) -> str:
    numbers = range(1, 8)
    level2 = "".join(
        f"    REFLECTANCE_MULT_BAND_{n} = {mult:.4E}\n    REFLECTANCE_ADD_BAND_{n} = {add:.6f}\n"
        for n in numbers
    )
    # Level-1 top-of-atmosphere keys of the same name, which must never be used.
    level1 = "".join(
        f"    REFLECTANCE_MULT_BAND_{n} = 2.0000E-05\n    REFLECTANCE_ADD_BAND_{n} = -0.100000\n"
        for n in numbers
    )
    return (
        "GROUP = LANDSAT_METADATA_FILE\n  GROUP = PRODUCT_CONTENTS\n"
        f'    LANDSAT_PRODUCT_ID = "{product_id}"\n  END_GROUP = PRODUCT_CONTENTS\n'
        f'  GROUP = IMAGE_ATTRIBUTES\n    SPACECRAFT_ID = "{spacecraft}"\n'
        f'    SENSOR_ID = "{sensor}"\n  END_GROUP = IMAGE_ATTRIBUTES\n'
        f"  GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS\n{level2}"
        "  END_GROUP = LEVEL2_SURFACE_REFLECTANCE_PARAMETERS\n"
        f"  GROUP = LEVEL1_RADIOMETRIC_RESCALING\n{level1}"
        "  END_GROUP = LEVEL1_RADIOMETRIC_RESCALING\nEND_GROUP = LANDSAT_METADATA_FILE\nEND\n"
    )


def _landsat_product(folder, product_id=OLI_ID, *, numbers=(1, 2, 3, 4, 5, 6, 7), qa=True,
                     mtl=None, prefix=None):  # fmt: skip
    """Write a synthetic Collection 2 Level-2 product folder; ``mtl`` is (name, text) or None."""
    folder.mkdir(parents=True, exist_ok=True)
    prefix = product_id if prefix is None else prefix
    for n in numbers:
        _write(folder / f"{prefix}_SR_B{n}.TIF", _dn(n), nodata=0)
    if qa:
        values = np.full(SHAPE, QA_CLEAR, dtype=np.uint16)
        for (r, c), value in QA_PIXELS.items():
            values[r, c] = value
        _write(folder / f"{prefix}_QA_PIXEL.TIF", values, nodata=1)
    if mtl is not None:
        (folder / mtl[0]).write_text(mtl[1])
    return folder


@pytest.fixture
def oli(tmp_path):
    mtl = (f"{OLI_ID}_MTL.txt", _mtl_text(OLI_ID, "LANDSAT_8", "OLI_TIRS", 3.0e-5, -0.25))
    return _landsat_product(tmp_path / OLI_ID, mtl=mtl)


# -- Landsat Collection 2 Level-2 ------------------------------------------------------------


def test_synthetic_landsat8_takes_oli_numbering_and_the_mtl_level2_scaling(oli):
    scene = open_scene(oli)
    assert scene.roles == ROLES
    for role in ROLES:
        assert scene.files[role].path.endswith(f"_SR_B{LANDSAT_SR_BANDS['OLI'][role]}.TIF")
    # The MTL's Level-2 values (3e-5, -0.25), not its Level-1 ones nor the constants.
    got = scene.read(Window(8, 8, 4, 4))
    for i, role in enumerate(ROLES):
        dn = _dn(LANDSAT_SR_BANDS["OLI"][role])[8:12, 8:12]
        np.testing.assert_allclose(got[i], dn * 3.0e-5 - 0.25, rtol=1e-5)
    assert "MTL" in scene.describe()["scaling"]
    assert scene.qa is not None and "QA_PIXEL" in repr(scene)


def test_synthetic_landsat5_numbering_from_the_product_id_and_constants_without_mtl(tmp_path):
    folder = _landsat_product(tmp_path / TM_ID, TM_ID, numbers=(1, 2, 3, 4, 5, 7))
    scene = open_scene(folder)
    assert scene.files["B"].path.endswith("_SR_B1.TIF")
    assert scene.files["N"].path.endswith("_SR_B4.TIF")
    assert scene.files["S2"].path.endswith("_SR_B7.TIF")
    assert scene.scaling == LANDSAT_C2L2
    got = scene.read(Window(8, 8, 2, 2), roles=["N"])[0]
    np.testing.assert_allclose(got, _dn(4)[8:10, 8:10] * 2.75e-5 - 0.2, rtol=1e-5)


def test_synthetic_landsat7_sensor_from_the_mtl_json(tmp_path):
    # No product id in the file names: the JSON MTL says it is Landsat 7 ETM+.
    doc = {"LANDSAT_METADATA_FILE": {
        "IMAGE_ATTRIBUTES": {"SPACECRAFT_ID": "LANDSAT_7", "SENSOR_ID": "ETM"},
        "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS": {
            **{f"REFLECTANCE_MULT_BAND_{n}": "2.75E-05" for n in range(1, 8)},
            **{f"REFLECTANCE_ADD_BAND_{n}": "-0.200000" for n in range(1, 8)},
        },
    }}  # fmt: skip
    folder = _landsat_product(
        tmp_path / "scene", prefix="scene", mtl=("scene_MTL.json", json.dumps(doc))
    )
    scene = open_scene(folder)
    assert scene.files["B"].path.endswith("scene_SR_B1.TIF")
    assert scene.files["S1"].path.endswith("scene_SR_B5.TIF")
    assert scene.files["N"].path.endswith("scene_SR_B4.TIF")


def test_parse_mtl_keeps_groups_apart():
    mtl = parse_mtl(_mtl_text(OLI_ID, "LANDSAT_9", "OLI_TIRS", 2.75e-5, -0.2), "x_MTL.txt")
    assert mtl["IMAGE_ATTRIBUTES"]["SPACECRAFT_ID"] == "LANDSAT_9"
    assert mtl["LEVEL1_RADIOMETRIC_RESCALING"]["REFLECTANCE_ADD_BAND_2"] == "-0.100000"
    assert mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]["REFLECTANCE_ADD_BAND_2"] == "-0.200000"


def test_synthetic_qa_pixel_masks_fill_clouds_shadow_snow_and_water_only_when_asked(oli):
    keep = open_scene(oli).valid_mask()
    drop = open_scene(oli, mask_water=True).valid_mask()
    for (r, c), value in QA_PIXELS.items():
        water_only = value & (1 << QA_PIXEL_WATER) and not value & 0b111111
        assert keep[r, c] == bool(water_only), (r, c, value)
        assert not drop[r, c]
    assert keep.sum() == keep.size - len(QA_PIXELS) + 1
    assert open_scene(oli, use_scl=False).valid_mask().all()
    assert sorted(QA_PIXEL_MASKED) == [0, 1, 2, 3, 4, 5]
    assert not qa_pixel_masked(np.array([QA_CLEAR, 1 << 6, 1 << 7])).any()


def test_synthetic_landsat_tar_reads_in_place_like_the_folder(oli, tmp_path):
    tar = tmp_path / f"{OLI_ID}.tar"
    with tarfile.open(tar, "w") as tf:
        for path in sorted(oli.iterdir()):
            tf.add(path, arcname=path.name)
    from_tar, from_folder = open_scene(tar), open_scene(oli)
    assert all(bf.path.startswith("/vsitar/") for bf in from_tar.files.values())
    assert from_tar.qa is not None and from_tar.qa.path.startswith("/vsitar/")
    np.testing.assert_array_equal(from_tar.read(), from_folder.read())
    assert from_tar.scaling == from_folder.scaling


def test_synthetic_landsat_tar_without_qa_pixel_warns_no_cloud_mask(tmp_path):
    folder = _landsat_product(tmp_path / OLI_ID, qa=False)
    tar = tmp_path / f"{OLI_ID}.tar"
    with tarfile.open(tar, "w") as tf:
        for path in sorted(folder.iterdir()):
            tf.add(path, arcname=f"{OLI_ID}/{path.name}")
    with pytest.warns(UserWarning, match="no cloud mask"):
        scene = open_scene(tar)
    assert scene.qa is None and scene.valid_mask().all()


def test_a_truncated_tar_is_an_input_file_error(oli, tmp_path):
    tar = tmp_path / "cut.tar"
    with tarfile.open(tar, "w") as tf:
        for path in sorted(oli.iterdir()):
            tf.add(path, arcname=path.name)
    with tarfile.open(tar) as tf:
        last = tf.getmembers()[-1]
    data = tar.read_bytes()
    # Cut in the middle of the last band, and after the first member.
    for size in (last.offset_data + last.size // 2, 3000):
        tar.write_bytes(data[:size])
        with pytest.raises(InputFileError, match=r"cut\.tar"):
            open_scene(tar)


def test_synthetic_landsat_folder_missing_a_band_names_it_and_the_files_found(tmp_path):
    folder = _landsat_product(tmp_path / OLI_ID, numbers=(1, 2, 3, 4, 5, 6))
    with pytest.raises(MissingBandError, match="SR_B7") as err:
        open_scene(folder)
    message = str(err.value)
    assert "S2 (shortwave infrared 2, SR_B7)" in message
    assert f"{OLI_ID}_SR_B6.TIF" in message and "Landsat 8 OLI" in message


# -- files named by band ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "role"),
    [("Blue.tif", "B"), ("GREEN.TIF", "G"), ("red.tiff", "R"), ("NIR.tif", "N"),
     ("SWIR1.tif", "S1"), ("swir2.tif", "S2"), ("SR_B5.TIF", "N"), ("B02.tif", "B"),
     ("B8.tif", "N"), ("unnao_red.tif", "R"), ("2024-03-01 SWIR2.tif", "S2"),
     ("S2_blue.tif", "B"), ("elevation.tif", None), ("red_nir_ratio.tif", None)],
)  # fmt: skip
def test_file_names_that_say_their_band(name, role):
    assert role_of_file(name) == role


def test_unnao_opens_by_its_obvious_names_with_the_landsat_scaling():
    scene = open_scene(unnao_landsat_scene(), scaling="landsat-c2l2")
    assert scene.roles == ROLES and scene.res == (30.0, 30.0)
    names = {"B": "Blue", "G": "Green", "R": "Red", "N": "NIR", "S1": "SWIR1", "S2": "SWIR2"}
    data = scene.read()
    for i, role in enumerate(ROLES):
        with rasterio.open(unnao_landsat_scene() / f"{names[role]}.tif") as ds:
            dn = ds.read(1).astype(np.float64)
            nodata = ds.nodata
        assert scene.files[role].path.endswith(f"{names[role]}.tif")
        assert (dn == nodata).any()
        # The 65535 no data pixels are masked, every other pixel is scaled reflectance.
        np.testing.assert_array_equal(np.isnan(data[i]), dn == nodata)
        valid = dn != nodata
        np.testing.assert_allclose(data[i][valid], dn[valid] * 2.75e-5 - 0.2, rtol=1e-5)


def test_unnao_without_scaling_says_landsat_c2l2():
    with pytest.raises(ScalingError, match="landsat-c2l2"):
        open_scene(unnao_landsat_scene())


def test_band_files_given_by_role_relative_or_absolute(tmp_path):
    unnao = unnao_landsat_scene()
    for src, dst in (("Blue.tif", "b.tif"), ("Green.tif", "band_a.tif"), ("Red.tif", "Red.tif"),
                     ("NIR.tif", "NIR.tif"), ("SWIR1.tif", "SWIR1.tif")):  # fmt: skip
        (tmp_path / dst).symlink_to(unnao / src)
    named = {"B": "b.tif", "G": "band_a.tif", "S2": str(unnao / "SWIR2.tif")}
    scene = open_scene(tmp_path, bands=named, scaling="landsat-c2l2")
    assert scene.files["G"].path == str(tmp_path / "band_a.tif")
    assert scene.files["S2"].path == str(unnao / "SWIR2.tif")
    assert scene.files["N"].path == str(tmp_path / "NIR.tif")  # found by its name
    reference = open_scene(unnao, scaling="landsat-c2l2")
    np.testing.assert_array_equal(scene.read(), reference.read())
    # A list of files whose names say their band is a scene too.
    listed = open_scene(sorted(unnao.glob("*.tif")), scaling="landsat-c2l2")
    np.testing.assert_array_equal(listed.read(), reference.read())


def test_a_named_band_file_that_does_not_exist_is_named(tmp_path):
    with pytest.raises(InputFileError, match=r"nir_band\.tif"):
        open_scene(tmp_path, bands={"N": "nir_band.tif"}, scaling="landsat-c2l2")
    with pytest.raises(SceneError, match="not a band role"):
        open_scene(tmp_path, bands={"X": "a.tif"})


def test_synthetic_float_reflectance_with_nodata_and_nan_works_as_it_is(tmp_path):
    for k, name in enumerate(["blue", "green", "red", "nir", "swir1", "swir2"]):
        data = (0.05 * (k + 1) + np.zeros(SHAPE)).astype(np.float32)
        data[0, 0] = -9999.0  # the declared nodata
        data[1, 1] = np.nan
        _write(tmp_path / f"{name}.tif", data, nodata=-9999.0)
    scene = open_scene(tmp_path)
    assert scene.scaling.name == "reflectance"
    data = scene.read()
    assert np.isnan(data[:, 0, 0]).all() and np.isnan(data[:, 1, 1]).all()
    assert np.isfinite(data).sum() == data.size - 2 * len(ROLES)
    np.testing.assert_allclose(data[:, 5, 5], 0.05 * np.arange(1, 7), rtol=1e-6)


def test_synthetic_two_files_claiming_one_band_are_refused_by_name(tmp_path):
    for name in ("Blue.tif", "blue_band.tif", "green.tif"):
        _write(tmp_path / name, _dn(2))
    with pytest.raises(SceneError, match="two files claim band B") as err:
        open_scene(tmp_path, scaling="landsat-c2l2")
    assert "Blue.tif" in str(err.value) and "blue_band.tif" in str(err.value)
    # Saying which one settles it.
    scene = open_scene(tmp_path, bands={"B": "blue_band.tif"}, roles=["B", "G"],
                       scaling="landsat-c2l2")  # fmt: skip
    assert scene.files["B"].path.endswith("blue_band.tif")


def test_synthetic_band_files_that_disagree_in_extent_are_refused_by_name(tmp_path):
    names = ["blue", "green", "red", "nir", "swir1", "swir2"]
    for k, name in enumerate(names):
        # The red file is shifted by 5 pixels: it does not cover the grid of the others.
        shift = 150.0 if name == "red" else 0.0
        transform = from_origin(448_000.0 + shift, 2_930_000.0, 30.0, 30.0)
        _write(tmp_path / f"{name}.tif", _dn(k + 2), transform=transform)
    with pytest.raises(SceneError, match="does not cover") as err:
        open_scene(tmp_path, scaling="landsat-c2l2")
    assert "red.tif" in str(err.value)


# -- the command line on the real Unnao cut --------------------------------------------------


def _points(tmp_path):
    """Three synthetic points on the real Unnao grid: a valid pixel, a no data pixel, outside."""
    with rasterio.open(unnao_landsat_scene() / "Blue.tif") as ds:
        dn = ds.read(1)
        transform = ds.transform
    rows, cols = np.nonzero(dn == 65535)
    pixels = {"ok": (300, 300), "nodata": (int(rows[0]), int(cols[0]))}
    rows_xy = [(name, *(transform @ (c + 0.5, r + 0.5))) for name, (r, c) in pixels.items()]
    rows_xy.append(("outside", 400_000.0, 2_920_000.0))
    table = pd.DataFrame(rows_xy, columns=["id", "x", "y"]).assign(EC=1000.0)
    path = tmp_path / "points.csv"
    table.to_csv(path, index=False)
    return path, pixels


def test_cli_extract_reads_unnao_with_the_scaling_alone_and_with_band_files(tmp_path):
    points, pixels = _points(tmp_path)
    out = tmp_path / "extracted.csv"
    args = ["extract", str(points), str(unnao_landsat_scene()), "--out", str(out), "--id", "id",
            "--x", "x", "--y", "y", "--crs", "EPSG:32644", "--scaling", "landsat-c2l2"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    report = pd.read_csv(tmp_path / "extracted_report.csv").set_index("id")
    assert report.loc["ok", "status"] == "ok"
    assert report.loc["nodata", "status"] == "masked"
    assert report.loc["outside", "status"] == "outside"
    with rasterio.open(unnao_landsat_scene() / "NIR.tif") as ds:
        nir = ds.read(1)[pixels["ok"]] * 2.75e-5 - 0.2
    assert table.loc[table["id"] == "ok", "N"].item() == pytest.approx(nir, rel=1e-5)
    # The same with every band file named on the command line (absolute paths).
    files = {"B": "Blue", "G": "Green", "R": "Red", "N": "NIR", "S1": "SWIR1", "S2": "SWIR2"}
    bands = [f"--band={r}={unnao_landsat_scene() / n}.tif" for r, n in files.items()]
    (tmp_path / "empty").mkdir()
    named = [*args[:2], str(tmp_path / "empty"), *args[3:], "--overwrite", *bands]
    again = runner.invoke(app, named)
    assert again.exit_code == 0, again.output
    pd.testing.assert_frame_equal(pd.read_csv(out), table)
    bad = runner.invoke(app, [*named, "--band", "N"])
    assert bad.exit_code != 0


def test_cli_map_of_unnao_with_a_model_trained_on_odisha(tmp_path):
    model = tmp_path / "odisha.skops"
    train = ["train", str(odisha_samples()), "--target", "EC", "--target-unit", "uS/cm",
             "--id", "Name", "--scaling", "landsat-c2l2", "--model", "RF", "--trials", "0",
             "--budget", "quick", "--out", str(model)]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert runner.invoke(app, train).exit_code == 0
    # A small block in the top-left corner, where some pixels are no data (65535).
    with rasterio.open(unnao_landsat_scene() / "Blue.tif") as ds:
        transform, crs = ds.transform, ds.crs
        window = Window(0, 0, 120, 100)
        dn = ds.read(1, window=window)
    west, north = transform @ (0, 0)
    east, south = transform @ (window.width, window.height)
    area = tmp_path / "block.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(west, south, east, north)], crs=crs).to_file(area)
    out = tmp_path / "map"
    args = ["map", str(model), str(unnao_landsat_scene()), "--scaling", "landsat-c2l2",
            "--boundary", str(area), "--scheme", "fao-ec", "--out", str(out)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "salinity.tif") as src:
        salinity = src.read(1)
        col0, row0 = ~src.transform @ (west, north)
    block = salinity[round(row0) : round(row0) + 100, round(col0) : round(col0) + 120]
    assert block.shape == dn.shape
    assert (dn == 65535).any()
    assert np.isnan(block[dn == 65535]).all()
    assert np.isfinite(block[dn != 65535]).all()


def test_cli_prints_the_no_cloud_mask_warning_and_refuses_band_with_bands(tmp_path):
    folder = _landsat_product(tmp_path / OLI_ID, qa=False)
    x, y = TRANSFORM @ (3.5, 2.5)
    points = tmp_path / "points.csv"
    pd.DataFrame({"id": ["p"], "x": [x], "y": [y], "EC": [1.0]}).to_csv(points, index=False)
    args = ["extract", str(points), str(folder), "--out", str(tmp_path / "e.csv"), "--id", "id",
            "--x", "x", "--y", "y", "--crs", CRS]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no cloud mask" in " ".join(result.output.split())
    both = runner.invoke(app, [*args, "--overwrite", "--bands", "B02", "--band", "B=x.tif"])
    assert both.exit_code != 0 and "only one of them" in str(both.exception)


def test_synthetic_landsat_tar_scene_pickles_and_reads_the_same(oli, tmp_path):
    # Dask workers receive the scene pickled: the QA_PIXEL mask and /vsitar/ paths go along.
    import pickle

    tar = tmp_path / f"{OLI_ID}.tar"
    with tarfile.open(tar, "w") as tf:
        for path in sorted(oli.iterdir()):
            tf.add(path, arcname=path.name)
    scene = open_scene(tar)
    before = scene.read()
    again = pickle.loads(pickle.dumps(scene))
    assert again.qa == scene.qa
    np.testing.assert_array_equal(again.read(), before)
    assert np.isnan(before[:, 3, 3]).all()  # the cloud pixel stays masked

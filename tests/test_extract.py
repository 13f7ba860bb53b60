"""Tests of saltmap.features.extraction: reflectance at points of the real Patagonia scene.

No field samples fall on the Patagonia cut, so the points here are synthetic
(placed on the real scene) and every extracted value is checked against a direct
rasterio read of the same pixels; the real Odisha samples must all be reported
outside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer

from saltmap.datasets import patagonia_scene
from saltmap.errors import OutputExistsError, SceneError
from saltmap.features.extraction import extract_at_points, summary, write_extracted
from saltmap.io.samples import odisha, read_samples
from saltmap.io.scene import open_scene

TEN_M = {"B": "B02_10m.tif", "G": "B03_10m.tif", "R": "B04_10m.tif", "N": "B08_10m.tif"}
UTM = "EPSG:32719"


@pytest.fixture(scope="module")
def scene():
    return open_scene(patagonia_scene(), scaling="sentinel2-l2a")


@pytest.fixture(scope="module")
def direct():
    """Reflectance of the 10 m bands read straight from the files (DN / 10000)."""
    out = {}
    for role, name in TEN_M.items():
        with rasterio.open(patagonia_scene() / name) as ds:
            out[role] = ds.read(1).astype(np.float64) / 10000
    return out


def _synthetic_points(scene, pixels, *, jitter=(0.3, -0.2)):
    """Synthetic sample points inside given (row, col) pixels of the real scene, in UTM."""
    t = scene.transform
    rows = np.array([p[0] for p in pixels])
    cols = np.array([p[1] for p in pixels])
    x = t.c + t.a * (cols + 0.5 + jitter[0])
    y = t.f + t.e * (rows + 0.5 + jitter[1])
    ec = np.linspace(200, 4000, len(pixels))  # synthetic target, only carried through
    ids = [f"synthetic-{i}" for i in range(len(pixels))]
    return pd.DataFrame({"x": x, "y": y, "EC": ec}, index=pd.Index(ids, name="id"))


PIXELS = [(0, 0), (10, 20), (57, 133), (100, 150), (199, 299), (150, 3)]


def test_pixel_values_equal_direct_reads(scene, direct):
    points = _synthetic_points(scene, PIXELS)
    table, report = extract_at_points(points, scene, crs=UTM)
    assert (report["status"] == "ok").all()
    assert list(report[["row", "col"]].itertuples(index=False, name=None)) == PIXELS
    for role, band in direct.items():
        expected = [band[r, c] for r, c in PIXELS]
        np.testing.assert_allclose(table[role].to_numpy(), expected, rtol=1e-6)
    full = scene.read()
    for i, role in enumerate(scene.roles):
        np.testing.assert_array_equal(table[role].to_numpy(), [full[i, r, c] for r, c in PIXELS])
    np.testing.assert_array_equal(table["EC"], points["EC"])
    assert (table["n_pixels"] == 1).all()


def test_window_mean_equals_mean_of_direct_reads(scene, direct):
    points = _synthetic_points(scene, PIXELS)
    table, _ = extract_at_points(points, scene, crs=UTM, window=3)
    for role, band in direct.items():
        expected = [band[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2].mean() for r, c in PIXELS]
        np.testing.assert_allclose(table[role].to_numpy(), expected, rtol=1e-6)
    # Corner points average the part of the window inside the scene.
    assert table["n_pixels"].tolist() == [4, 9, 9, 9, 4, 9]


def test_points_in_lon_lat_land_on_the_same_pixels(scene):
    points = _synthetic_points(scene, PIXELS)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(
        points["x"].to_numpy(), points["y"].to_numpy()
    )
    geo = points.assign(x=lon, y=lat)
    utm_table, _ = extract_at_points(points, scene, crs=UTM)
    geo_table, geo_report = extract_at_points(geo, scene, crs="EPSG:4326")
    assert list(geo_report[["row", "col"]].itertuples(index=False, name=None)) == PIXELS
    np.testing.assert_array_equal(geo_table[list(scene.roles)], utm_table[list(scene.roles)])
    np.testing.assert_allclose(geo_table["x"], lon)  # coordinates stay as given


def test_small_block_size_gives_the_same_values(scene):
    points = _synthetic_points(scene, PIXELS)
    big, _ = extract_at_points(points, scene, crs=UTM, window=3)
    small, _ = extract_at_points(points, scene, crs=UTM, window=3, block_size=16)
    pd.testing.assert_frame_equal(big, small)


def test_odisha_samples_are_all_outside_patagonia(scene):
    samples = odisha()
    table, report = extract_at_points(samples, scene)
    assert table.empty
    assert summary(report) == {"ok": 0, "outside": len(samples), "masked": 0}
    assert report["reason"].str.startswith("outside the scene").all()
    assert report["id"].tolist() == samples.table.index.tolist()


def test_points_partly_outside_are_reported_one_by_one(scene):
    points = _synthetic_points(scene, PIXELS[:2])
    t = scene.transform
    extra = pd.DataFrame(
        {"x": [t.c - 5, t.c + 3005], "y": [t.f - 5, t.f - 5], "EC": [1.0, 2.0]},
        index=pd.Index(["west-of-scene", "east-of-scene"], name="id"),
    )
    table, report = extract_at_points(pd.concat([points, extra]), scene, crs=UTM)
    assert table.index.tolist() == points.index.tolist()
    assert (
        report.set_index("id").loc[["west-of-scene", "east-of-scene"], "status"].eq("outside").all()
    )


def test_even_window_is_refused(scene):
    with pytest.raises(SceneError, match="odd"):
        extract_at_points(_synthetic_points(scene, PIXELS), scene, crs=UTM, window=2)


def _scl_folder(tmp_path):
    """The real bands plus a synthetic SCL: cloud over 20 m rows 10-19, cols 10-29."""
    folder = tmp_path / "synthetic_scl"
    folder.mkdir()
    for name in (*TEN_M.values(), "B11_20m.tif", "B12_20m.tif"):
        (folder / name).symlink_to(patagonia_scene() / name)
    with rasterio.open(patagonia_scene() / "B11_20m.tif") as ds:
        profile = ds.profile
    scl = np.full((profile["height"], profile["width"]), 5, np.uint8)
    scl[10:20, 10:30] = 9
    profile.update(dtype="uint8", nodata=None)
    with rasterio.open(folder / "SCL_20m.tif", "w", **profile) as out:
        out.write(scl, 1)
    return folder


def test_masked_points_are_reported_and_windows_skip_masked_pixels(tmp_path, direct):
    scene = open_scene(_scl_folder(tmp_path), scaling="sentinel2-l2a")
    # 10 m rows 20-39 and cols 20-59 are cloud. (30, 40): inside; (40, 40): just below it.
    points = _synthetic_points(scene, [(30, 40), (40, 40), (100, 100)])
    _, report = extract_at_points(points, scene, crs=UTM, window=1)
    assert report["status"].tolist() == ["masked", "ok", "ok"]
    assert "scene classification 9" in report["reason"].iloc[0]
    table3, report3 = extract_at_points(points, scene, crs=UTM, window=3)
    assert report3["status"].tolist() == ["masked", "ok", "ok"]
    # Below the cloud, the 3 x 3 window keeps only its two rows outside the cloud.
    assert table3.loc["synthetic-1", "n_pixels"] == 6
    expected = direct["B"][40:42, 39:42].mean()
    assert table3.loc["synthetic-1", "B"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("suffix", [".csv", ".gpkg"])
def test_extracted_table_reads_back_as_samples(tmp_path, scene, suffix):
    points = _synthetic_points(scene, PIXELS)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(
        points["x"].to_numpy(), points["y"].to_numpy()
    )
    table, _ = extract_at_points(points.assign(x=lon, y=lat), scene, crs="EPSG:4326", window=3)
    path = write_extracted(table, tmp_path / f"synthetic_extracted{suffix}")
    back = read_samples(path, target="EC")
    assert back.rejected.empty
    assert back.roles == scene.roles
    np.testing.assert_allclose(back.reflectance.to_numpy(), table[list(scene.roles)].to_numpy())
    np.testing.assert_allclose(back.target.to_numpy(), table["EC"].to_numpy())
    np.testing.assert_allclose(back.coords, np.column_stack([lon, lat]), rtol=1e-9)
    assert back.table.index.tolist() == table.index.tolist()
    with pytest.raises(OutputExistsError):
        write_extracted(table, path)


def test_cli_extract_writes_a_table_and_a_report(tmp_path, scene):
    from typer.testing import CliRunner

    from saltmap.cli import app

    points = _synthetic_points(scene, PIXELS)
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(
        points["x"].to_numpy(), points["y"].to_numpy()
    )
    samples_csv = tmp_path / "synthetic_points.csv"
    outside = pd.DataFrame({"lon": [86.5], "lat": [20.2], "EC": [10.0]}, index=["far"])
    pd.concat([points.assign(lon=lon, lat=lat).drop(columns=["x", "y"]), outside]).rename_axis(
        "id"
    ).to_csv(samples_csv)
    out = tmp_path / "synthetic_extracted.csv"
    args = ["extract", str(samples_csv), str(patagonia_scene()), "--out", str(out)]
    runner = CliRunner()
    result = runner.invoke(app, [*args, "--window", "3", "--scaling", "sentinel2-l2a"])
    assert result.exit_code == 0, result.output
    assert "6 point(s) extracted, 1 outside" in result.output
    back = read_samples(out)
    direct, _ = extract_at_points(points, scene, crs=UTM, window=3)
    np.testing.assert_allclose(back.reflectance.to_numpy(), direct[list(scene.roles)].to_numpy())
    report = pd.read_csv(tmp_path / "synthetic_extracted_report.csv")
    assert report.set_index("id").loc["far", "status"] == "outside"
    # No scaling for a folder of DN: refused before anything is written.
    again = runner.invoke(app, [*args, "--overwrite"])
    assert again.exit_code != 0
    assert "sentinel2-l2a" in str(again.exception)


def _synthetic_landsat(tmp_path):
    """A synthetic Landsat 8 Collection 2 Level-2 folder (SR_B2-SR_B7, QA_PIXEL) of 8 × 8
    pixels at 30 m: cloud (bit 3) with dilated cloud (bit 1) at (2, 2), cloud shadow
    (bit 4) at (5, 5), clear (bit 6 and the low-confidence bits) elsewhere."""
    from rasterio.transform import from_origin

    folder = tmp_path / "LC08_L2SP_144041_20240315_20240322_02_T1"
    folder.mkdir()
    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "crs": "EPSG:32644",
               "transform": from_origin(448_000.0, 2_930_000.0, 30.0, 30.0)}  # fmt: skip
    for n in range(2, 8):
        dn = np.full((8, 8), round((0.05 * n + 0.2) / 2.75e-5), np.uint16)
        with rasterio.open(folder / f"{folder.name}_SR_B{n}.TIF", "w", dtype="uint16",
                           nodata=0, **profile) as ds:  # fmt: skip
            ds.write(dn, 1)
    qa = np.full((8, 8), 21824, np.uint16)
    qa[2, 2] = (1 << 3) | (1 << 1) | 21824
    qa[5, 5] = (1 << 4) | 21824
    with rasterio.open(folder / f"{folder.name}_QA_PIXEL.TIF", "w", dtype="uint16",
                       nodata=1, **profile) as ds:  # fmt: skip
        ds.write(qa, 1)
    return folder


def test_a_point_masked_by_landsat_qa_pixel_names_the_qa_bits(tmp_path):
    scene = open_scene(_synthetic_landsat(tmp_path), scaling="landsat-c2l2")
    assert scene.qa is not None
    points = _synthetic_points(scene, [(2, 2), (5, 5), (0, 7)], jitter=(0.0, 0.0))
    _, report = extract_at_points(points, scene, crs="EPSG:32644", window=1)
    assert report["status"].tolist() == ["masked", "masked", "ok"]
    cloud, shadow = report["reason"].iloc[0], report["reason"].iloc[1]
    assert "QA_PIXEL" in cloud and "bit 3 cloud" in cloud and "bit 1 dilated cloud" in cloud
    assert "bit 4 cloud shadow" in shadow and "bit 3" not in shadow
    assert report["reason"].iloc[2] == ""

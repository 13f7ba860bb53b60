"""Tests of saltmap.scene on the real Patagonia Sentinel-2 cut and small synthetic products."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from saltmap.bands import ROLES
from saltmap.datasets import patagonia_scene
from saltmap.errors import MissingBandError, ScalingError
from saltmap.scene import Scene, open_scene

PATAGONIA_FILES = {
    "B": "B02_10m.tif",
    "G": "B03_10m.tif",
    "R": "B04_10m.tif",
    "N": "B08_10m.tif",
    "S1": "B11_20m.tif",
    "S2": "B12_20m.tif",
}


def _dn(name: str) -> tuple[np.ndarray, rasterio.Affine]:
    with rasterio.open(patagonia_scene() / name) as ds:
        return ds.read(1).astype(np.float64), ds.transform


@pytest.fixture(scope="module")
def patagonia() -> Scene:
    return open_scene(patagonia_scene(), scaling="sentinel2-l2a")


def test_patagonia_folder_is_six_roles_on_the_10m_grid(patagonia):
    with rasterio.open(patagonia_scene() / "B02_10m.tif") as ds:
        assert patagonia.crs == ds.crs
        assert patagonia.transform == ds.transform
        assert (patagonia.height, patagonia.width) == ds.shape
    assert patagonia.roles == ROLES
    assert patagonia.res == (10.0, 10.0)


def test_patagonia_10m_reflectance_is_dn_over_10000(patagonia):
    data = patagonia.read(roles=["B", "G", "R", "N"])
    for i, role in enumerate(["B", "G", "R", "N"]):
        dn, _ = _dn(PATAGONIA_FILES[role])
        expected = np.where(dn == 0, np.nan, dn / 10000)
        np.testing.assert_allclose(data[i], expected, rtol=1e-6, equal_nan=True)


def test_patagonia_20m_bands_are_bilinear_on_the_10m_grid(patagonia):
    """Compare GDAL's bilinear resampling with an independent one (scipy) away from edges."""
    t10 = patagonia.transform
    for role in ("S1", "S2"):
        dn, t20 = _dn(PATAGONIA_FILES[role])
        rows, cols = np.mgrid[0 : patagonia.height, 0 : patagonia.width]
        # Centre of each 10 m pixel in the 20 m file's fractional pixel coordinates.
        x, y = t10.c + t10.a * (cols + 0.5), t10.f + t10.e * (rows + 0.5)
        c20, r20 = (x - t20.c) / t20.a, (y - t20.f) / t20.e
        expected = ndimage.map_coordinates(dn, [r20 - 0.5, c20 - 0.5], order=1) / 10000
        got = patagonia.read(roles=[role])[0]
        inner = (slice(1, -1), slice(1, -1))  # edge pixels need 20 m pixels outside the file
        np.testing.assert_allclose(got[inner], expected[inner], rtol=1e-5)


def test_window_read_equals_the_same_window_of_a_full_read(patagonia):
    full = patagonia.read()
    for window in (Window(37, 51, 100, 60), Window(0, 0, 1, 1), Window(299, 199, 1, 1)):
        part = patagonia.read(window)
        r, c = window.toslices()
        np.testing.assert_array_equal(part, full[:, r, c])


def test_block_windows_tile_the_grid_once(patagonia):
    count = np.zeros(patagonia.shape, dtype=int)
    for w in patagonia.block_windows(128):
        r, c = w.toslices()
        count[r, c] += 1
    assert (count == 1).all()


def test_scene_pickles_and_reads_the_same(patagonia):
    window = Window(10, 20, 64, 32)
    before = patagonia.read(window)
    clone = pickle.loads(pickle.dumps(patagonia))
    np.testing.assert_array_equal(clone.read(window), before)


def test_patagonia_without_scaling_asks_for_it():
    with pytest.raises(ScalingError, match="sentinel2-l2a"):
        open_scene(patagonia_scene())


def test_the_user_decides_the_boa_offset():
    plain = open_scene(patagonia_scene(), scaling="sentinel2-l2a").read(Window(0, 0, 5, 5))
    offset = open_scene(patagonia_scene(), baseline="05.09").read(Window(0, 0, 5, 5))
    np.testing.assert_allclose(offset, plain - 0.1, atol=1e-6)


def test_missing_band_lists_what_was_found(tmp_path):
    for name in ("B02_10m.tif", "B03_10m.tif", "B04_10m.tif", "B08_10m.tif", "B11_20m.tif"):
        (tmp_path / name).symlink_to(patagonia_scene() / name)
    with pytest.raises(MissingBandError, match="S2") as err:
        open_scene(tmp_path, scaling="sentinel2-l2a")
    assert "B11_20m.tif" in str(err.value)
    scene = open_scene(tmp_path, scaling="sentinel2-l2a", roles=["B", "G", "R", "N", "S1"])
    assert scene.roles == ("B", "G", "R", "N", "S1")

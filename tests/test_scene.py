"""Tests of saltmap.io.scene on the real Patagonia Sentinel-2 cut and small synthetic products."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from scipy import ndimage

from saltmap.bands import ROLES
from saltmap.datasets import patagonia_scene
from saltmap.errors import InputFileError, MissingBandError, ScalingError, SceneError
from saltmap.io.scene import Scene, open_scene

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


# -- synthetic products built from the real bands (mechanics of the readers) -----------------

SYNTHETIC_BASELINE = "05.09"


def _copy_band(src_name: str, dst, *, driver: str = "GTiff", add: int = 0, **edits) -> None:
    """Write a real Patagonia band to ``dst``, optionally in another format or with DN + add."""
    with rasterio.open(patagonia_scene() / src_name) as ds:
        profile = ds.profile
        data = ds.read(1)
    if add:
        data = np.where(data > 0, data + add, 0).astype(np.uint16)
    profile.update(driver=driver, **edits)
    if driver == "JP2OpenJPEG":
        for key in ("compress", "tiled", "blockxsize", "blockysize", "interleave"):
            profile.pop(key, None)
        profile.update(quality=100, reversible=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(data, 1)


def _synthetic_scl(shape=(200, 300)) -> np.ndarray:
    """A synthetic scene classification: bare soil (5) with patches of other classes."""
    scl = np.full(shape, 5, dtype=np.uint8)
    scl[10:20, 10:30] = 9  # high-probability cloud
    scl[30:40, 40:45] = 3  # cloud shadow
    scl[50:60, 5:15] = 6  # water
    scl[70:75, 60:70] = 10  # cirrus
    scl[80:85, 20:25] = 4  # vegetation, kept
    scl[0:3, 140:150] = 0  # no data
    return scl


def _write_scl(dst, driver: str = "GTiff") -> np.ndarray:
    with rasterio.open(patagonia_scene() / "B11_20m.tif") as ds:
        profile = ds.profile
    scl = _synthetic_scl((profile["height"], profile["width"]))
    profile.update(dtype="uint8", nodata=None, driver=driver)
    if driver == "JP2OpenJPEG":
        for key in ("compress", "tiled", "blockxsize", "blockysize", "interleave"):
            profile.pop(key, None)
        profile.update(quality=100, reversible=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(dst, "w", **profile) as out:
        out.write(scl, 1)
    return scl


MTD_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<n1:Level-2A_User_Product xmlns:n1="https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd">
  <n1:General_Info>
    <Product_Info>
      <PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>
      <PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>
    </Product_Info>
    <Product_Image_Characteristics>
      <Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>
        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>
      <QUANTIFICATION_VALUES_LIST>
        <BOA_QUANTIFICATION_VALUE unit="none">10000</BOA_QUANTIFICATION_VALUE>
        <AOT_QUANTIFICATION_VALUE unit="none">1000.0</AOT_QUANTIFICATION_VALUE>
      </QUANTIFICATION_VALUES_LIST>
      {offsets}
      <Spectral_Information_List>{spectral}</Spectral_Information_List>
    </Product_Image_Characteristics>
  </n1:General_Info>
</n1:Level-2A_User_Product>
"""
S2_BAND_ORDER = "B1 B2 B3 B4 B5 B6 B7 B8 B8A B9 B10 B11 B12".split()


def _synthetic_safe(root, *, baseline=SYNTHETIC_BASELINE, offset=-1000, driver="JP2OpenJPEG"):
    """A synthetic L2A .SAFE tree holding the real Patagonia bands, stored as a baseline-04+
    product would store them (DN + 1000), with a synthetic SCL and MTD_MSIL2A.xml."""
    name = f"S2B_MSIL2A_20240101T141049_N{baseline.replace('.', '')}_R110_T19FDV_20240101T170000"
    safe = root / f"{name}.SAFE"
    img = safe / "GRANULE" / "L2A_T19FDV_A035000_20240101T141045" / "IMG_DATA"
    ext = ".jp2" if driver == "JP2OpenJPEG" else ".tif"
    stamp = "T19FDV_20240101T141049"
    add = -offset if offset else 0
    for band in ("B02", "B03", "B04", "B08"):
        _copy_band(
            f"{band}_10m.tif", img / "R10m" / f"{stamp}_{band}_10m{ext}", driver=driver, add=add
        )
    for band in ("B11", "B12"):
        _copy_band(
            f"{band}_20m.tif", img / "R20m" / f"{stamp}_{band}_20m{ext}", driver=driver, add=add
        )
    # A 20 m version of a 10 m band, as real products have: the reader must take the 10 m one.
    _copy_band("B11_20m.tif", img / "R20m" / f"{stamp}_B02_20m{ext}", driver=driver)
    scl = _write_scl(img / "R20m" / f"{stamp}_SCL_20m{ext}", driver=driver)
    offsets = ""
    if offset:
        items = "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13)
        )
        offsets = f"<BOA_ADD_OFFSET_VALUES_LIST>{items}</BOA_ADD_OFFSET_VALUES_LIST>"
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b}"/>'
        for i, b in enumerate(S2_BAND_ORDER)
    )
    (safe / "MTD_MSIL2A.xml").write_text(
        MTD_TEMPLATE.format(baseline=baseline, offsets=offsets, spectral=spectral)
    )
    return safe, scl


def _expected_scl_mask(scl20: np.ndarray, shape, water: bool = False) -> np.ndarray:
    """10 m and 20 m grids share their origin: 10 m pixel (r, c) lies in 20 m (r//2, c//2)."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    classes = [0, 1, 3, 8, 9, 10, 11] + ([6] if water else [])
    return np.isin(scl20[rows // 2, cols // 2], classes)


@pytest.fixture(scope="module")
def synthetic_safe(tmp_path_factory):
    return _synthetic_safe(tmp_path_factory.mktemp("safe"))


def test_synthetic_safe_takes_scaling_from_metadata_and_masks_scl(synthetic_safe, patagonia):
    safe, scl = synthetic_safe
    scene = open_scene(safe)
    assert scene.files["B"].path.endswith("_B02_10m.jp2")
    assert scene.files["S1"].path.endswith("_B11_20m.jp2")
    assert scene.scl is not None and scene.scl.path.endswith("_SCL_20m.jp2")
    assert scene.baseline == SYNTHETIC_BASELINE
    assert scene.scaling.offset == pytest.approx(-0.1) and scene.scaling.scale == 1e-4
    data = scene.read()
    masked = _expected_scl_mask(scl, scene.shape)
    assert masked.any() and not masked.all()
    assert np.isnan(data[:, masked]).all()
    # Unmasked pixels: the same reflectance as the plain folder (DN + 1000 - 1000).
    np.testing.assert_allclose(data[:, ~masked], patagonia.read()[:, ~masked], atol=2e-6)
    np.testing.assert_array_equal(scene.valid_mask(), ~masked)


def test_scl_water_is_masked_only_when_asked(synthetic_safe):
    safe, scl = synthetic_safe
    keep = open_scene(safe).valid_mask()
    drop = open_scene(safe, mask_water=True).valid_mask()
    water = _expected_scl_mask(scl, keep.shape, water=True) & ~_expected_scl_mask(scl, keep.shape)
    assert water.any()
    assert keep[water].all() and not drop[water].any()
    np.testing.assert_array_equal(drop, ~_expected_scl_mask(scl, keep.shape, water=True))


def test_synthetic_safe_zip_reads_like_the_folder(synthetic_safe, tmp_path):
    import shutil

    safe, _ = synthetic_safe
    archive = shutil.make_archive(str(tmp_path / safe.stem), "zip", safe.parent, safe.name)
    zipped = open_scene(archive)
    assert zipped.files["N"].path.startswith("/vsizip/")
    window = Window(100, 50, 120, 90)
    np.testing.assert_array_equal(zipped.read(window), open_scene(safe).read(window))


def test_synthetic_old_baseline_safe_has_no_offset(tmp_path):
    safe, _ = _synthetic_safe(tmp_path, baseline="02.14", offset=0, driver="GTiff")
    scene = open_scene(safe)
    assert scene.scaling.offset == 0 and scene.scaling.scale == 1e-4
    dn, _ = _dn("B08_10m.tif")
    clear = Window(200, 150, 50, 50)  # no synthetic SCL patch there
    np.testing.assert_allclose(
        scene.read(clear, roles=["N"])[0], dn[150:200, 200:250] / 1e4, rtol=1e-6
    )


def test_synthetic_safe_with_baseline_4_but_no_offsets_is_refused(tmp_path):
    safe, _ = _synthetic_safe(tmp_path, baseline="05.00", offset=0, driver="GTiff")
    with pytest.raises(ScalingError, match="BOA_ADD_OFFSET"):
        open_scene(safe)
    # The user can still say what applies.
    assert open_scene(safe, scaling="sentinel2-l2a").scaling.offset == 0


def _write_multiband(path, data: np.ndarray, scene: Scene, descriptions=None) -> None:
    profile = {**scene.profile, "count": data.shape[0], "tiled": True, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as out:
        out.write(data.astype(np.float32))
        for i, d in enumerate(descriptions or [], start=1):
            out.set_band_description(i, d)


def test_synthetic_multiband_by_descriptions_in_any_order(tmp_path, patagonia):
    full = patagonia.read()
    order = [5, 3, 0, 1, 4, 2]  # S2, N, B, G, S1, R
    path = tmp_path / "synthetic_stack.tif"
    _write_multiband(path, full[order], patagonia, ["B12", "nir", "blue", "B03", "swir1", "red"])
    scene = open_scene(path)  # float32 values: reflectance, no scaling needed
    assert scene.roles == ROLES and scene.scaling.name == "reflectance"
    np.testing.assert_array_equal(scene.read(), full)


def test_synthetic_multiband_without_descriptions_needs_band_names(tmp_path, patagonia):
    full = patagonia.read()
    path = tmp_path / "synthetic_plain.tif"
    _write_multiband(path, np.concatenate([full, full[:1]]), patagonia)
    with pytest.raises(MissingBandError, match="bands"):
        open_scene(path)
    names = ["B02", "B03", "B04", "B08", "B11", "B12", "-"]
    np.testing.assert_array_equal(open_scene(path, bands=names).read(), full)
    with pytest.raises(SceneError, match="7 band"):
        open_scene(path, bands=names[:6])


def _stac_item(tmp_path, assets: dict[str, dict], properties=None):
    import datetime as dt

    import pystac

    item = pystac.Item(
        id="synthetic-patagonia",
        geometry=None,
        bbox=None,
        datetime=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        properties=properties or {},
    )
    for key, spec in assets.items():
        extra = {k: v for k, v in spec.items() if k not in ("href", "type")}
        item.add_asset(
            key, pystac.Asset(href=spec["href"], media_type=spec.get("type"), extra_fields=extra)
        )
    path = tmp_path / "item.json"
    item.set_self_href(str(path))
    item.save_object(include_self_link=False, dest_href=str(path))
    return path


def test_synthetic_stac_item_by_common_name(tmp_path, patagonia):
    common = {"B": "blue", "G": "green", "R": "red", "N": "nir", "S1": "swir16", "S2": "swir22"}
    tif = "image/tiff; application=geotiff; profile=cloud-optimized"
    assets = {
        common[r]: {
            "href": str(patagonia_scene() / f),
            "type": tif,
            "eo:bands": [{"name": f[:3], "common_name": common[r]}],
            "raster:bands": [{"scale": 0.0001, "offset": 0.0, "nodata": 0}],
        }
        for r, f in PATAGONIA_FILES.items()
    }
    # A true-colour composite and a JPEG 2000 duplicate must not be taken as bands.
    assets["visual"] = {
        "href": str(patagonia_scene() / "B04_10m.tif"),
        "eo:bands": [{"name": "B04"}, {"name": "B03"}, {"name": "B02"}],
    }
    assets["blue-jp2"] = {
        "href": "/nonexistent/B02.jp2",
        "type": "image/jp2",
        "eo:bands": [{"name": "B02", "common_name": "blue"}],
    }
    scl = tmp_path / "synthetic_SCL_20m.tif"
    _write_scl(scl)
    assets["scl"] = {"href": str(scl), "type": tif}
    assets["scl-jp2"] = {"href": "/nonexistent/SCL.jp2", "type": "image/jp2"}
    scene = open_scene(_stac_item(tmp_path, assets), use_scl=False)
    assert scene.scl is None
    scene = open_scene(_stac_item(tmp_path, assets))
    assert scene.scl is not None and scene.scl.path == str(scl)
    assert scene.files["B"].path == str(patagonia_scene() / "B02_10m.tif")
    assert scene.scaling.scale == 1e-4 and scene.scaling.offset == 0
    data = scene.read()
    masked = _expected_scl_mask(_synthetic_scl(), scene.shape)
    assert np.isnan(data[:, masked]).all()
    np.testing.assert_array_equal(data[:, ~masked], patagonia.read()[:, ~masked])
    assert "B=blue" in scene.describe()["bands"]


def test_synthetic_stac_item_by_band_name_and_baseline(tmp_path, patagonia):
    assets = {f[:3]: {"href": str(patagonia_scene() / f)} for f in PATAGONIA_FILES.values()}
    item = _stac_item(tmp_path, assets, {"s2:processing_baseline": "05.09"})
    scene = open_scene(item)
    assert scene.scaling.offset == pytest.approx(-0.1)
    window = Window(0, 0, 20, 20)
    np.testing.assert_allclose(scene.read(window), patagonia.read(window) - 0.1, atol=1e-6)
    # The user's word overrides the metadata.
    assert open_scene(item, scaling="sentinel2-l2a").scaling.offset == 0


# -- errors before any output ----------------------------------------------------------------


def _folder_with(tmp_path, replace: dict[str, object] | None = None):
    """A synthetic folder: links to the real bands, some replaced by edited copies."""
    folder = tmp_path / "bands"
    folder.mkdir()
    replace = replace or {}
    for name in PATAGONIA_FILES.values():
        if name in replace:
            replace[name](folder / name)
        else:
            (folder / name).symlink_to(patagonia_scene() / name)
    return folder


def test_a_20m_band_that_does_not_cover_the_grid_is_refused(tmp_path):
    def cropped(dst):
        with rasterio.open(patagonia_scene() / "B11_20m.tif") as ds:
            data, profile = ds.read(1, window=Window(0, 0, 100, 200)), ds.profile
        profile.update(width=100, blockxsize=256)
        with rasterio.open(dst, "w", **{**profile, "tiled": False}) as out:
            out.write(data, 1)

    folder = _folder_with(tmp_path, {"B11_20m.tif": cropped})
    with pytest.raises(SceneError, match="does not cover"):
        open_scene(folder, scaling="sentinel2-l2a")


def test_bands_in_a_crs_that_cannot_be_aligned_are_refused(tmp_path):
    def elsewhere(dst):
        _copy_band("B12_20m.tif", dst, crs="EPSG:32633")  # same numbers, other side of the world

    folder = _folder_with(tmp_path, {"B12_20m.tif": elsewhere})
    with pytest.raises(SceneError, match="cannot be aligned"):
        open_scene(folder, scaling="sentinel2-l2a")


def test_a_band_without_crs_is_refused(tmp_path):
    def no_crs(dst):
        _copy_band("B03_10m.tif", dst, crs=None)

    folder = _folder_with(tmp_path, {"B03_10m.tif": no_crs})
    with pytest.raises(SceneError, match="no CRS"):
        open_scene(folder, scaling="sentinel2-l2a")


@pytest.mark.parametrize("keep", [0.3, 0.8])
def test_a_truncated_file_is_an_input_file_error(tmp_path, keep):
    def truncated(dst):
        raw = (patagonia_scene() / "B04_10m.tif").read_bytes()
        dst.write_bytes(raw[: int(len(raw) * keep)])

    folder = _folder_with(tmp_path, {"B04_10m.tif": truncated})
    with pytest.raises(InputFileError, match=r"B04_10m\.tif"):
        open_scene(folder, scaling="sentinel2-l2a")


def test_zero_dn_is_nodata_in_10m_and_20m_bands(tmp_path):
    def holes10(dst):
        _copy_band("B02_10m.tif", dst)
        with rasterio.open(dst, "r+") as ds:
            ds.write(np.zeros((10, 10), np.uint16), 1, window=Window(50, 40, 10, 10))

    def holes20(dst):
        _copy_band("B11_20m.tif", dst)
        with rasterio.open(dst, "r+") as ds:
            ds.write(np.zeros((10, 10), np.uint16), 1, window=Window(30, 30, 10, 10))

    folder = _folder_with(tmp_path, {"B02_10m.tif": holes10, "B11_20m.tif": holes20})
    data = open_scene(folder, scaling="sentinel2-l2a").read()
    blue, swir = data[0], data[4]
    assert (
        np.isnan(blue[40:50, 50:60]).all() and np.isfinite(np.delete(blue, slice(40, 50), 0)).all()
    )
    # 20 m pixels 30-39 are 10 m pixels 60-79: their inside is no data, well outside is not.
    assert np.isnan(swir[61:79, 61:79]).all()
    assert np.isfinite(swir[:55]).all() and np.isfinite(swir[85:]).all()
    assert not np.isnan(data[1]).any()


def test_reads_from_several_threads_equal_a_serial_read(patagonia):
    from concurrent.futures import ThreadPoolExecutor

    scene = pickle.loads(pickle.dumps(patagonia))  # fresh handles
    windows = scene.block_windows(64)
    serial = [patagonia.read(w) for w in windows]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(pool.map(scene.read, windows))
    for a, b in zip(serial, threaded, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_band_in_another_crs_over_the_same_place_is_reprojected(tmp_path, patagonia):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    def neighbour_zone(dst):
        with rasterio.open(patagonia_scene() / "B12_20m.tif") as ds:
            transform, width, height = calculate_default_transform(
                ds.crs, "EPSG:32720", ds.width, ds.height, *ds.bounds
            )
            profile = {**ds.profile, "crs": "EPSG:32720", "transform": transform}
            profile.update(width=width, height=height)
            with rasterio.open(dst, "w", **profile) as out:
                reproject(
                    rasterio.band(ds, 1),
                    rasterio.band(out, 1),
                    resampling=Resampling.bilinear,
                )

    folder = _folder_with(tmp_path, {"B12_20m.tif": neighbour_zone})
    with pytest.warns(UserWarning, match="reprojected") as record:
        scene = open_scene(folder, scaling="sentinel2-l2a")
    # the warning points at the caller of open_scene, not inside saltmap
    assert [w.filename for w in record if "reprojected" in str(w.message)] == [__file__]
    got = scene.read(roles=["S2"])[0]
    ref = patagonia.read(roles=["S2"])[0]
    ok = np.isfinite(got)
    assert ok.mean() > 0.99
    # Two resamplings blur the band a little; it must still be the same image.
    assert np.corrcoef(got[ok], ref[ok])[0, 1] > 0.9
    assert np.median(np.abs(got[ok] - ref[ok])) < 0.01


def test_wrong_scaling_is_caught_when_opening():
    with pytest.raises(ScalingError, match="median reflectance"):
        open_scene(patagonia_scene(), scaling="reflectance")


def test_folder_prefers_the_finest_file_of_a_band_and_refuses_duplicates(tmp_path):
    folder = _folder_with(tmp_path)
    _copy_band("B11_20m.tif", folder / "T19FDV_20240101T141049_B02_20m.tif")
    scene = open_scene(folder, scaling="sentinel2-l2a")
    assert scene.files["B"].path.endswith("B02_10m.tif") and scene.res == (10.0, 10.0)
    (folder / "copy_B02_10m.tif").symlink_to(patagonia_scene() / "B02_10m.tif")
    with pytest.raises(SceneError, match="several files for band B"):
        open_scene(folder, scaling="sentinel2-l2a")


def test_bands_of_a_folder_choose_the_roles(tmp_path):
    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a", bands=["B04", "B08"])
    assert scene.roles == ("R", "N")


def test_a_level_1c_product_is_refused(tmp_path):
    safe = tmp_path / "S2B_MSIL1C_20240101T141049_N0510_R110_T19FDV_20240101T160000.SAFE"
    safe.mkdir()
    (safe / "MTD_MSIL1C.xml").write_text("<synthetic/>")
    with pytest.raises(InputFileError, match="Level-1C"):
        open_scene(safe)


# -- the product readers behind open_scene (issue 12 split) ---------------------------------


def test_find_bands_hands_each_source_to_its_product_reader(tmp_path, synthetic_safe):
    from saltmap.io.products import find_bands

    assert find_bands(str(patagonia_scene()), None).kind == "folder"
    safe, _ = synthetic_safe
    found = find_bands(str(safe), None)
    assert found.kind == "Sentinel-2 product" and found.baseline == SYNTHETIC_BASELINE
    with pytest.raises(InputFileError, match="does not exist"):
        find_bands(str(tmp_path / "nowhere"), None)
    with pytest.raises(InputFileError, match=r"\.SAFE zip"):
        find_bands(str(tmp_path / "nowhere.zip"), None)


def test_is_multiband_file_and_is_safe_folder(tmp_path):
    from saltmap.io.products import is_multiband_file
    from saltmap.io.sentinel2 import is_safe_folder

    assert is_multiband_file(tmp_path / "stack.TIF")
    assert not is_multiband_file(patagonia_scene())
    assert is_safe_folder(tmp_path / "S2A_MSIL2A_X.SAFE")
    assert not is_safe_folder(tmp_path)
    (tmp_path / "MTD_MSIL2A.xml").write_text("<x/>")
    assert is_safe_folder(tmp_path)


def test_band_tokens_read_sentinel2_names():
    from saltmap.io.sentinel2 import band_tokens

    assert band_tokens("T19FDV_20240101T141049_B8A_20m.jp2") == ("B8A", 20)
    assert band_tokens("GRANULE/x/IMG_DATA/R20m/T19_SCL_20m.jp2") == ("SCL", 20)
    assert band_tokens("b2.tif") == ("B02", None)
    assert band_tokens("notes.txt") == (None, None)


def test_names_of_the_scene_module_are_those_of_their_new_homes():
    from saltmap.io import rasters, scene, sentinel2

    assert scene.SCL_MASKED is sentinel2.SCL_MASKED and scene.SCL_WATER == sentinel2.SCL_WATER
    assert scene.BandFile is rasters.BandFile
    assert scene.ThreadLocalDatasets is rasters.ThreadLocalDatasets
    assert scene.RASTER_SUFFIXES == rasters.RASTER_SUFFIXES

"""Tests of xarray input (saltmap.io.xarray_scene) on the real Unnao Landsat cut.

The Unnao band files are opened with rioxarray, lazily (dask) or in memory, into the
shapes odc-stac and stackstac return (a Dataset of named variables, a DataArray with
a band coordinate); each must read, map and extract exactly as the files opened by
open_scene do. The odc-stac-like and stackstac-like objects are built from the real
values by hand (neither library is installed): only their layout is imitated.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.windows import Window

from saltmap.datasets import unnao_landsat_scene
from saltmap.errors import MissingBandError, ScalingError, SceneError
from saltmap.features.extraction import extract_at_points
from saltmap.io import ArrayScene, open_array_scene
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.mapping import map_scene
from saltmap.mapping.plan import MapSettings, plan_map
from saltmap.models.building import make_model

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")
pytest.importorskip("dask")

FILES = ("Blue", "Green", "Red", "NIR", "SWIR1", "SWIR2")
ODC_NAMES = ("blue", "green", "red", "nir08", "swir16", "swir22")
EC = {"target_name": "EC", "target_unit": "µS/cm", "scheme": "fao-ec"}


def bands(chunks):
    """The six Unnao files as (band: 1, y, x) DataArrays: dask with chunks={}, else lazy."""
    return [
        rioxarray.open_rasterio(unnao_landsat_scene() / f"{n}.tif", chunks=chunks) for n in FILES
    ]


def unnao_dataarray(chunks=None):
    return xr.concat(bands(chunks), dim="band").assign_coords(band=list(FILES))


def unnao_dataset(chunks=None, names=FILES):
    return xr.Dataset(
        {n: b.squeeze("band", drop=True) for n, b in zip(names, bands(chunks), strict=True)}
    )


@pytest.fixture(scope="module")
def reference():
    return open_scene(unnao_landsat_scene(), scaling="landsat-c2l2")


@pytest.fixture(scope="module")
def model():
    samples = odisha()
    return make_model("RF", params={"n_estimators": 10}, random_state=0).fit(
        samples.reflectance, samples.target
    )


@pytest.mark.parametrize("chunks", [{}, None], ids=["dask", "in-memory"])
@pytest.mark.parametrize("make", [unnao_dataarray, unnao_dataset], ids=["DataArray", "Dataset"])
def test_xarray_unnao_reads_as_the_band_files(make, chunks, reference):
    scene = open_scene(make(chunks), scaling="landsat-c2l2")
    assert isinstance(scene, ArrayScene) and scene.is_lazy == (chunks is not None)
    assert (scene.crs, scene.transform, scene.shape) == (
        reference.crs,
        reference.transform,
        reference.shape,
    )
    assert scene.roles == reference.roles
    window = Window(0, 0, 200, 150)  # the top-left corner holds no-data pixels (65535)
    got, expected = scene.read(window), reference.read(window)
    assert np.isnan(expected).any()
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(scene.read(roles=["S2", "B"]), reference.read(roles=["S2", "B"]))
    again = pickle.loads(pickle.dumps(scene))
    np.testing.assert_array_equal(again.read(window), expected)


def test_rows_stored_south_up_are_flipped(reference):
    south_up = unnao_dataarray({}).isel(y=slice(None, None, -1))
    scene = open_array_scene(south_up, scaling="landsat-c2l2")
    assert scene.transform == reference.transform
    np.testing.assert_array_equal(scene.read(), reference.read())


def test_map_of_xarray_input_equals_the_map_of_the_files(model, reference, tmp_path):
    def salinity(scene, name, jobs):
        result = map_scene(
            model, scene, tmp_path / name, block_size=256, jobs=jobs, figure=False, **EC
        )
        with rasterio.open(result.outputs.salinity) as src:
            return src.read(1), src.transform, src.crs

    expected, transform, crs = salinity(reference, "files", 1)
    assert np.isfinite(expected).sum() > 0.9 * expected.size
    lazy, t, c = salinity(open_scene(unnao_dataarray({}), scaling="landsat-c2l2"), "dask", 2)
    assert (t, c) == (transform, crs)
    np.testing.assert_array_equal(lazy, expected)
    # map_scene opens an xarray object itself, the keywords taken as open_scene's defaults
    floats = unnao_dataset(None).astype("float32") * np.float32(0.0000275) - np.float32(0.2)
    floats = floats.where(unnao_dataset(None) != 65535)
    in_memory, _, _ = salinity(floats.rio.write_crs(crs.to_wkt()), "memory", 1)
    np.testing.assert_allclose(in_memory, expected, rtol=1e-5, equal_nan=True)


def test_resume_key_of_xarray_input_is_the_same_for_the_same_data(model, tmp_path):
    def key(obj, **options):
        scene = open_array_scene(obj, **{"scaling": "landsat-c2l2", **options})
        return plan_map(model, scene, tmp_path, MapSettings(**EC)).key

    for chunks in ({}, None):
        # two opens of the same files: dask graphs and file handles differ, the key must not
        assert key(unnao_dataarray(chunks)) == key(unnao_dataarray(chunks))
        assert key(unnao_dataarray(chunks)) != key(unnao_dataarray(chunks), mask_water=True)
    shifted = unnao_dataarray({}).isel(x=slice(1, None))
    assert key(shifted) != key(unnao_dataarray({}))


def test_extraction_reads_xarray_input_as_the_band_files(reference):
    rng = np.random.default_rng(1)
    cols, rows = rng.integers(0, reference.width, 40), rng.integers(0, reference.height, 40)
    x, y = reference.transform @ (cols + 0.5, rows + 0.5)
    points = pd.DataFrame({"x": x, "y": y}, index=pd.Index([f"p{i}" for i in range(40)], name="id"))
    scene = open_scene(unnao_dataset({}), scaling="landsat-c2l2")
    table, report = extract_at_points(points, scene, crs="EPSG:32644", window=3)
    expected, expected_report = extract_at_points(points, reference, crs="EPSG:32644", window=3)
    pd.testing.assert_frame_equal(table, expected)
    pd.testing.assert_frame_equal(report, expected_report)
    # an xarray object of reflectance is opened by the extraction itself
    dn = unnao_dataset(None)
    floats = (dn.astype("float32") * np.float32(0.0000275) - np.float32(0.2)).where(dn != 65535)
    direct, _ = extract_at_points(points, floats, crs="EPSG:32644", window=3)
    pd.testing.assert_frame_equal(direct, expected, rtol=1e-6)


def odc_like(reference, qa=None):
    """A Dataset as odc-stac loads Landsat Collection 2 Level-2 from Earth Search: named
    variables with a nodata attribute, a spatial_ref coordinate (CF) and one time."""
    ds = unnao_dataset(None, names=ODC_NAMES).drop_vars("spatial_ref")
    for name in ODC_NAMES:
        ds[name].attrs = {"nodata": 65535, "units": "1"}
    ds["coastal"] = ds["blue"]  # bands saltmap does not use are left alone
    if qa is not None:
        ds["qa_pixel"] = (("y", "x"), qa)
    ds = ds.assign_coords(spatial_ref=((), 0, {"crs_wkt": reference.crs.to_wkt()}))
    return ds.expand_dims(time=[np.datetime64("2024-03-01T05:10:00")])


def test_odc_stac_like_dataset_opens_with_its_date_and_qa_pixel(reference, monkeypatch):
    # without rioxarray's answer: the CF spatial_ref coordinate gives the CRS
    monkeypatch.setattr("saltmap.io.xarray_layout._rio", lambda obj, get: None)
    qa = np.zeros(reference.shape, dtype=np.uint16)
    qa[300:320, 200:260] = 1 << 3  # a synthetic cloud (QA_PIXEL bit 3)
    scene = open_scene(odc_like(reference, qa), scaling="landsat-c2l2")
    assert scene.names["N"] == "nir08" and scene.qa == "qa_pixel"
    assert str(scene.date) == "2024-03-01" and scene.crs == reference.crs
    assert scene.transform == reference.transform
    got, expected = scene.read(), reference.read()
    assert np.isnan(got[:, 300:320, 200:260]).all()
    np.testing.assert_array_equal(
        np.delete(got, np.s_[300:320], axis=1), np.delete(expected, np.s_[300:320], axis=1)
    )
    assert scene.describe()["scl_mask"].startswith("QA_PIXEL (qa_pixel)")


def test_stackstac_like_dataarray_opens_on_its_corner_coordinates(reference):
    """stackstac: (time, band, y, x) float64 with NaN fill, band coordinate of asset names,
    coordinates at pixel top-left corners, and ``crs``/``transform`` attributes."""
    dn = unnao_dataarray(None)
    values = (dn.astype("float64") * 0.0000275 - 0.2).where(dn != 65535).values
    t = reference.transform
    x = t.c + t.a * np.arange(reference.width)
    y = t.f + t.e * np.arange(reference.height)
    names = ["blue", "green", "red", "nir", "swir16", "swir22"]
    stack = xr.DataArray(
        values[None], dims=("time", "band", "y", "x"),
        coords={"time": [np.datetime64("2024-03-01")], "band": names, "x": x, "y": y,
                "platform": ("time", ["landsat-8"])},
        attrs={"crs": "epsg:32644", "transform": t, "resolution": 30.0},
    )  # fmt: skip
    scene = open_array_scene(stack)
    assert scene.transform == t and scene.crs == reference.crs and scene.sensor == "landsat-8"
    np.testing.assert_allclose(scene.read(), reference.read(), rtol=1e-6, equal_nan=True)
    # a slice keeps the attributes: the coordinates still place it
    part = open_array_scene(stack.isel(x=slice(101, 300), y=slice(7, 80)))
    assert part.transform == t @ Affine.translation(101, 7)
    np.testing.assert_allclose(
        part.read(), reference.read(Window(101, 7, 199, 73)), rtol=1e-6, equal_nan=True
    )


def test_xarray_errors_say_how_to_fix(reference):
    plain = xr.DataArray(
        unnao_dataarray(None).values, dims=("band", "y", "x"), coords={"band": list(FILES)}
    )
    with pytest.raises(SceneError, match=r"no CRS.*write_crs\('EPSG:32633'\)"):
        open_array_scene(plain, scaling="landsat-c2l2")
    two_dates = xr.concat([unnao_dataarray({})] * 2, dim="time")
    with pytest.raises(SceneError, match=r"2 dates.*isel\(time=i\).*mosaic"):
        open_array_scene(two_dates, scaling="landsat-c2l2")
    five = unnao_dataarray({}).sel(band=list(FILES[:5]))
    with pytest.raises(MissingBandError, match=r"S2 \(shortwave infrared 2.*bands=\{'S2'"):
        open_array_scene(five, scaling="landsat-c2l2")
    with pytest.raises(ScalingError, match=r"uint16.*scaling='sentinel2-l2a-offset'.*landsat-c2l2"):
        open_array_scene(unnao_dataarray({}))
    with warnings.catch_warnings(), pytest.raises(ScalingError, match="scaling mistake"):
        warnings.simplefilter("ignore")
        open_array_scene(unnao_dataarray({}), scaling="reflectance")
    with pytest.raises(MissingBandError, match="has no band 'nir08'"):
        open_array_scene(unnao_dataarray({}), scaling="landsat-c2l2", bands={"N": "nir08"})
    twice = unnao_dataset({}).assign(nir=unnao_dataset({})["NIR"])
    with pytest.raises(SceneError, match=r"two bands claim band N.*bands=\{'N'"):
        open_array_scene(twice, scaling="landsat-c2l2")


def test_bands_given_by_the_user_and_obvious_names_combine(reference):
    ds = unnao_dataset({}, names=("b", "band_g", "C", "D", "swir1", "swir2"))
    scene = open_array_scene(
        ds, scaling="landsat-c2l2", bands={"red": "C", "N": "D", "G": "band_g"}
    )
    assert scene.names == {
        "B": "b",
        "G": "band_g",
        "R": "C",
        "N": "D",
        "S1": "swir1",
        "S2": "swir2",
    }
    np.testing.assert_array_equal(scene.read(), reference.read())
    two = open_array_scene(ds, scaling="landsat-c2l2", bands={"R": "C", "N": "D"}, roles=["N", "R"])
    assert two.roles == ("R", "N")
    np.testing.assert_array_equal(two.read(), reference.read(roles=["R", "N"]))


def test_rioxarray_multiband_file_names_its_bands_by_their_descriptions(tmp_path, reference):
    # rioxarray numbers the bands 1..6 and keeps the GeoTIFF band descriptions in long_name
    profile = {"driver": "GTiff", "count": 6, "dtype": "uint16", "nodata": 65535,
               "crs": reference.crs, "transform": reference.transform,
               "width": reference.width, "height": reference.height}  # fmt: skip
    path = tmp_path / "stack.tif"
    with rasterio.open(path, "w", **profile) as dst:
        for i, band in enumerate(bands(None), start=1):
            dst.write(band.values[0], i)
            dst.set_band_description(i, f"SR_B{i + 1}")
    stack = rioxarray.open_rasterio(path, chunks={"x": 256, "y": 256})
    scene = open_scene(stack, scaling="landsat-c2l2")
    assert scene.names["N"] == "SR_B5" and scene.is_lazy
    np.testing.assert_array_equal(scene.read(), reference.read())

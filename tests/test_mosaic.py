"""Mosaics of several scenes on one grid, on the real Unnao and Patagonia cuts.

The real scenes are cut into overlapping pieces, reprojected or given synthetic clouds
(a synthetic SCL band) in temporary folders; the pixel values are the real ones.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window, from_bounds

from saltmap import mapping
from saltmap.datasets import patagonia_scene, unnao_landsat_scene
from saltmap.errors import BoundaryError, SceneError, UnreadableFileError
from saltmap.features.extraction import extract_at_points
from saltmap.features.mosaic_extraction import extract_from_mosaic
from saltmap.io.mosaic import open_mosaic, sensor_family
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.models.building import make_model

EC = {"scheme": "fao-ec", "target_name": "EC", "target_unit": "µS/cm"}
UNNAO = {"scaling": "landsat-c2l2"}
PATAGONIA = {"scaling": "sentinel2-l2a"}


@pytest.fixture(scope="module")
def model():
    samples = odisha()
    rf = make_model("RF", params={"n_estimators": 15}, random_state=0)
    return rf.fit(samples.reflectance, samples.target)


def cut(src: Path, window: Window, out: Path) -> Path:
    """The band files of ``src`` cut to ``window`` (values unchanged)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in src.glob("*.tif"):
        with rasterio.open(path) as ds:
            profile = ds.profile | {
                "width": window.width,
                "height": window.height,
                "transform": rasterio.windows.transform(window, ds.transform),
            }
            with rasterio.open(out / path.name, "w", **profile) as dst:
                dst.write(ds.read(1, window=window), 1)
    return out


def warp(src: Path, out: Path, crs: str) -> Path:
    """The band files of ``src`` reprojected to ``crs`` (bilinear, same pixel size)."""
    out.mkdir(parents=True, exist_ok=True)
    for path in src.glob("*.tif"):
        with rasterio.open(path) as ds:
            transform, width, height = calculate_default_transform(
                ds.crs, crs, ds.width, ds.height, *ds.bounds, resolution=ds.res[0]
            )
            data = np.full((height, width), ds.nodata, ds.dtypes[0])
            reproject(
                ds.read(1), data, src_transform=ds.transform, src_crs=ds.crs,
                dst_transform=transform, dst_crs=crs, resampling=Resampling.bilinear,
                src_nodata=ds.nodata, dst_nodata=ds.nodata,
            )  # fmt: skip
            profile = ds.profile | {
                "crs": crs, "transform": transform, "width": width, "height": height,
            }  # fmt: skip
            with rasterio.open(out / path.name, "w", **profile) as dst:
                dst.write(data, 1)
    return out


@pytest.fixture(scope="module")
def unnao_pieces(tmp_path_factory):
    """West and east pieces of Unnao overlapping by 50 columns; the east one in UTM 45N."""
    root = tmp_path_factory.mktemp("unnao-pieces")
    west = cut(unnao_landsat_scene(), Window(0, 0, 350, 558), root / "west")
    east = cut(unnao_landsat_scene(), Window(300, 0, 305, 558), root / "east44")
    return west, warp(east, root / "east45", "EPSG:32645")


def test_unnao_pieces_mosaic_back_to_the_original_map(model, unnao_pieces, tmp_path):
    original = open_scene(unnao_landsat_scene(), **UNNAO)
    mosaic = open_mosaic(list(unnao_pieces), **UNNAO)
    assert mosaic.crs == original.crs  # the zone most scenes share; a tie: the first
    whole = mapping.map_scene(model, original, tmp_path / "whole", block_size=128, **EC)
    pieces = mapping.map_scene(model, mosaic, tmp_path / "pieces", block_size=128, **EC)
    with rasterio.open(pieces.outputs.salinity) as ds:
        inside = from_bounds(*original.bounds, ds.transform)
        mosaicked = ds.read(1, window=inside)
    with rasterio.open(pieces.outputs.provenance["source"]) as ds:
        source = ds.read(1, window=inside)
    with rasterio.open(whole.outputs.salinity) as ds:
        direct = ds.read(1)
    valid = np.isfinite(direct)
    # The west piece is on the original grid: its pixels are read unresampled.
    west = valid & (source == 1)
    np.testing.assert_array_equal(mosaicked[west], direct[west])
    # The east piece went to UTM 45N and back: two bilinear resamplings.
    east = valid & (source == 2)
    relative = np.abs(mosaicked[east] - direct[east]) / np.abs(direct[east])
    assert east.sum() > 0.3 * valid.sum()
    assert np.median(relative) < 0.05, np.median(relative)
    assert np.isfinite(mosaicked[valid]).mean() > 0.999


def test_unnao_pieces_provenance_counts_the_overlap(unnao_pieces):
    mosaic = open_mosaic(list(unnao_pieces), **UNNAO)
    _, layers = mosaic.read_with_provenance()
    counts = layers["observations"]
    assert set(np.unique(counts)) == {0, 1, 2}
    # The 50 overlapping columns are seen twice (less the no-data edge of the warp).
    assert 0.5 * 50 * 558 < (counts == 2).sum() < 1.1 * 50 * 558
    assert np.all((layers["source"] > 0) == (counts > 0))


def clouded_copy(src: Path, out: Path, box: tuple[slice, slice]) -> Path:
    """A copy of the Patagonia bands with a synthetic SCL: cloud (class 9) inside ``box``."""
    shutil.copytree(src, out)
    with rasterio.open(src / "B11_20m.tif") as ds:
        profile = ds.profile | {"dtype": "uint8", "nodata": None}
        scl = np.full((ds.height, ds.width), 4, np.uint8)  # vegetation: kept
    scl[box] = 9
    with rasterio.open(out / "SCL_20m.tif", "w", **profile) as dst:
        dst.write(scl, 1)
    return out


@pytest.mark.parametrize("composite", ["first", "median"])
def test_patagonia_with_synthetic_clouds_composites_to_the_clear_copy(model, composite, tmp_path):
    clouded = clouded_copy(patagonia_scene(), tmp_path / "clouded", (slice(20, 90), slice(30, 80)))
    clear = open_scene(patagonia_scene(), **PATAGONIA)
    assert not open_scene(clouded, **PATAGONIA).valid_mask().all()
    mosaic = open_mosaic([clouded, patagonia_scene()], composite=composite, **PATAGONIA)
    assert (mosaic.transform, mosaic.shape) == (clear.transform, clear.shape)
    np.testing.assert_array_equal(mosaic.read(), clear.read())
    _, layers = mosaic.read_with_provenance()
    assert (layers["observations"] == 1).any() and (layers["observations"] == 2).any()
    if composite == "first":  # the clouded copy comes first: the clear one fills the cloud
        assert set(np.unique(layers["source"])) == {1, 2}
    # The mosaic goes to two worker processes as a scene does (pickled once each).
    jobs = 2 if composite == "first" else 1
    a = mapping.map_scene(model, mosaic, tmp_path / "mosaic", block_size=64, jobs=jobs, **EC)
    b = mapping.map_scene(model, clear, tmp_path / "clear", block_size=64, **EC)
    with rasterio.open(a.outputs.salinity) as x, rasterio.open(b.outputs.salinity) as y:
        np.testing.assert_array_equal(x.read(1), y.read(1))
    assert list(a.scenes["pixels_mapped"]) == [int((layers["source"] == i).sum()) for i in (1, 2)]


def test_first_valid_takes_the_date_closest_to_the_one_given(tmp_path):
    early = open_scene(patagonia_scene(), date="2024-03-01", **PATAGONIA)
    late = open_scene(patagonia_scene(), date="2024-03-20", **PATAGONIA)
    mosaic = open_mosaic([early, late], date="2024-03-18")
    assert [s.date.day for s in mosaic.scenes] == [20, 1]
    assert "2024-03-18" in mosaic.describe()["composite"]
    given = open_mosaic([early, late])
    assert [s.date.day for s in given.scenes] == [1, 20]


def test_mixed_sensors_need_the_users_word(unnao_pieces):
    landsat = open_scene(unnao_pieces[0], **UNNAO)
    landsat.sensor = "Landsat 8 OLI"
    sentinel = open_scene(patagonia_scene(), **PATAGONIA)
    with pytest.raises(SceneError, match=r"different sensors.*mixed_sensors"):
        open_mosaic([landsat, sentinel])
    assert sensor_family("Landsat 9 OLI") == sensor_family("Landsat 8 OLI")
    # Allowed, the two still lie half the world apart: named, not a planet-sized grid.
    with pytest.raises(SceneError, match="far apart"):
        open_mosaic([landsat, sentinel], mixed_sensors=True)


def test_scenes_outside_the_boundary_are_named(unnao_pieces, tmp_path):
    import geopandas as gpd

    west = open_scene(unnao_pieces[0], **UNNAO)
    b = west.bounds
    # A boundary over the western third of the west piece only: the east piece is left out.
    area = shapely.box(b.left, b.bottom, b.left + (b.right - b.left) / 3, b.top)
    path = tmp_path / "area.gpkg"
    gpd.GeoDataFrame(geometry=[area], crs=west.crs).to_file(path)
    with pytest.warns(UserWarning, match="share no area with the boundary.*east45"):
        mosaic = open_mosaic(list(unnao_pieces), boundary=path, **UNNAO)
    assert len(mosaic.members) == 1
    far = shapely.box(b.left - 1e5, b.bottom, b.left - 9e4, b.top)
    gpd.GeoDataFrame(geometry=[far], crs=west.crs).to_file(tmp_path / "far.gpkg")
    with pytest.raises(BoundaryError, match=r"no scene shares any area.*west"):
        open_mosaic(list(unnao_pieces), boundary=tmp_path / "far.gpkg", **UNNAO)


def corrupt_a_tile(path: Path) -> bytes:
    """Overwrite the bytes of one compressed tile of ``path``; return the good file."""
    good = path.read_bytes()
    with rasterio.open(path) as ds:
        offset = int(ds.get_tag_item("BLOCK_OFFSET_1_1", "TIFF", bidx=1))
    data = bytearray(good)
    data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return good


def test_a_corrupt_band_file_met_mid_map_is_named_and_the_rerun_resumes(model, tmp_path):
    folder = tmp_path / "scene"
    folder.mkdir()
    for path in patagonia_scene().glob("*.tif"):
        with rasterio.open(path) as ds:
            profile = ds.profile | {
                "tiled": True, "blockxsize": 64, "blockysize": 64, "compress": "deflate",
            }  # fmt: skip
            with rasterio.open(folder / path.name, "w", **profile) as dst:
                dst.write(ds.read())
    scene = open_scene(folder, **PATAGONIA)
    good = corrupt_a_tile(folder / "B04_10m.tif")  # after opening: met in the middle
    out = tmp_path / "map"
    with pytest.raises(UnreadableFileError, match=r"B04_10m.tif in the window of rows.*kept"):
        mapping.map_scene(model, scene, out, block_size=32, **EC)
    (folder / "B04_10m.tif").write_bytes(good)  # replaced: a new size and time
    result = mapping.map_scene(model, scene, out, block_size=32, **EC)
    assert result.n_resumed > 0
    clean = mapping.map_scene(model, scene, tmp_path / "clean", block_size=32, **EC)
    with rasterio.open(result.outputs.salinity) as a, rasterio.open(clean.outputs.salinity) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_unknown_composite_rule_is_refused():
    with pytest.raises(SceneError, match=r"composite rule 'mean'.*first"):
        open_mosaic([patagonia_scene()], composite="mean", **PATAGONIA)


def test_map_scene_takes_a_list_of_scenes(model, tmp_path):
    scenes = [open_scene(patagonia_scene(), **PATAGONIA) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = mapping.map_scene(model, scenes, tmp_path, block_size=128, **EC, figure=False)
    assert result.outputs.provenance["observations"].exists()


def synthetic_points(scene, pixels):
    """Synthetic sample points at the centres of (row, col) pixels of the real scene."""
    t = scene.transform
    x = [t.c + t.a * (c + 0.5) for _, c in pixels]
    y = [t.f + t.e * (r + 0.5) for r, _ in pixels]
    ids = [f"synthetic-{i}" for i in range(len(pixels))]
    return pd.DataFrame({"x": x, "y": y}, index=pd.Index(ids, name="id"))


@pytest.mark.parametrize("composite", ["first", "median"])
def test_extraction_reads_a_clouded_point_from_the_other_scene(composite, tmp_path):
    # Cloud over 20 m rows 20-89, cols 30-79: 10 m rows 40-179, cols 60-159.
    clouded = clouded_copy(patagonia_scene(), tmp_path / "clouded", (slice(20, 90), slice(30, 80)))
    clear = open_scene(patagonia_scene(), **PATAGONIA)
    mosaic = open_mosaic([clouded, patagonia_scene()], composite=composite, **PATAGONIA)
    points = synthetic_points(clear, [(100, 100), (10, 10), (150, 250)])
    table, report = extract_from_mosaic(points, mosaic, crs=clear.crs)
    direct, _ = extract_at_points(points, clear, crs=clear.crs)
    assert report["status"].tolist() == ["ok", "ok", "ok"]
    pd.testing.assert_frame_equal(table[list(clear.roles)], direct[list(clear.roles)])
    if composite == "first":
        assert report["scene"].tolist() == ["2", "1", "1"]
    else:
        assert report["scene"].tolist() == ["median of 2", "median of 1, 2", "median of 1, 2"]


def test_extraction_says_why_no_scene_gave_a_point(tmp_path):
    clouded = clouded_copy(patagonia_scene(), tmp_path / "clouded", (slice(20, 90), slice(30, 80)))
    mosaic = open_mosaic([clouded, clouded], **PATAGONIA)
    clear = open_scene(patagonia_scene(), **PATAGONIA)
    points = synthetic_points(clear, [(100, 100), (10, 10)])
    table, report = extract_from_mosaic(points, mosaic, crs=clear.crs)
    assert report["status"].tolist() == ["masked", "ok"]
    assert report["reason"].iloc[0].count("scene classification 9") == 2
    assert list(table.index) == ["synthetic-1"]


def test_cli_maps_several_scenes_and_extracts_from_them(model, unnao_pieces, tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.models.persistence import save_model

    meta = {"target": "EC", "target_unit": "µS/cm", "scaling": "landsat-c2l2"}
    path = save_model(tmp_path / "model.skops", model, metadata=meta)
    west, east = map(str, unnao_pieces)
    out = tmp_path / "map"
    args = ["map", str(path), west, east, "--scaling", "landsat-c2l2", "--scheme", "fao-ec",
            "--composite", "median", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "scene 2:" in text and "east45" in text
    assert "pixels mapped from" in text
    legend = pd.read_csv(out / "scenes.csv")
    assert legend["pixels_mapped"].sum() > 0 and (out / "source_scene.qml").exists()
    # Points on either side of the seam: each is read from the piece that holds it.
    scene = open_scene(west, **UNNAO)
    points = synthetic_points(scene, [(100, 10), (100, 340)])
    points.assign(EC=[1.0, 2.0]).to_csv(tmp_path / "synthetic_points.csv")
    table = tmp_path / "extracted.csv"
    args = ["extract", str(tmp_path / "synthetic_points.csv"), east, west, "--scaling",
            "landsat-c2l2", "--crs", str(scene.crs), "--out", str(table)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = pd.read_csv(tmp_path / "extracted_report.csv", dtype={"scene": str})
    assert report["scene"].tolist() == ["2", "1"]  # east45 is scene 1 here


MOSAIC_STUDY = """
name = "mosaic"
[samples]
path = "${{SALTMAP_DATA_DIR}}/odisha-2024/samples.csv"
target = "EC"
target_unit = "uS/cm"
id = "Name"
x = "lon"
y = "lat"
crs = "EPSG:4326"
scaling = "landsat-c2l2"

[[scenes]]
name = "west"
path = "{west}"
scaling = "landsat-c2l2"
mosaic = "unnao"
date = "2024-02-10"

[[scenes]]
name = "east"
path = "{east}"
scaling = "landsat-c2l2"
mosaic = "unnao"
date = "2024-02-26"

[mosaic]
date = "2024-02-25"

[models]
names = ["PLSR"]
final = "PLSR"
final_indices = "classic"

[validation]
protocols = ["repeated"]
repeats = 1
baseline = false
bootstrap = 100

[tuning]
n_trials = 0

[classes]
scheme = "fao-ec"

[outputs]
figure_formats = ["png"]
"""


def test_a_study_maps_the_scenes_of_one_mosaic_as_one_map(unnao_pieces, tmp_path):
    from saltmap.study import load_study, run_study

    west, east = unnao_pieces
    path = tmp_path / "mosaic.toml"
    path.write_text(MOSAIC_STUDY.format(west=west, east=east), encoding="utf-8")
    run = run_study(load_study(path), tmp_path / "runs", progress=None)
    folder = Path(run.folder) / "maps" / "unnao"
    legend = pd.read_csv(folder / "scenes.csv")
    # The east piece's date is closest to the date preferred: it comes first.
    assert [Path(s).name for s in legend["source"]] == ["east45", "west"]
    assert legend["date"].tolist() == ["2024-02-26", "2024-02-10"]
    assert not (Path(run.folder) / "maps" / "west").exists()
    report = (Path(run.folder) / "report.html").read_text(encoding="utf-8")
    assert "mosaic of 2 scenes" in report


def test_a_mosaic_name_may_not_be_a_scene_name(unnao_pieces, tmp_path):
    from saltmap.errors import ConfigError
    from saltmap.study import study_from_text

    west, east = unnao_pieces
    text = MOSAIC_STUDY.format(west=west, east=east).replace('mosaic = "unnao"', 'mosaic = "west"')
    with pytest.raises(ConfigError, match="also scene names"):
        study_from_text(text.replace("{{", "{").replace("}}", "}"), path="study.toml")


def test_median_in_strips_equals_median_at_once(unnao_pieces, monkeypatch):
    import saltmap.io.mosaic as mosaic_module

    mosaic = open_mosaic(list(unnao_pieces), composite="median", **UNNAO)
    window = Window(280, 100, 100, 64)  # across the overlap
    whole, layers = mosaic.read_with_provenance(window)
    monkeypatch.setattr(mosaic_module, "MEDIAN_BYTES", 4 * 2 * 6 * 100 * 3)  # 3 rows a strip
    strips, strip_layers = mosaic.read_with_provenance(window)
    np.testing.assert_array_equal(strips, whole)
    for name in layers:
        np.testing.assert_array_equal(strip_layers[name], layers[name])
    assert (layers["observations"] == 2).any()


def test_a_mosaic_maps_on_a_dask_cluster_as_in_this_process(model, unnao_pieces, tmp_path):
    import distributed

    mosaic = open_mosaic(list(unnao_pieces), **UNNAO)
    local = mapping.map_scene(model, mosaic, tmp_path / "local", block_size=256, **EC)
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        dask = mapping.map_scene(
            model, mosaic, tmp_path / "dask", block_size=256, scheduler=client, **EC
        )
    for name in ("salinity", "classes"):
        with (
            rasterio.open(getattr(local.outputs, name)) as a,
            rasterio.open(getattr(dask.outputs, name)) as b,
        ):
            np.testing.assert_array_equal(a.read(1), b.read(1))
    for name, path in local.outputs.provenance.items():
        with rasterio.open(path) as a, rasterio.open(dask.outputs.provenance[name]) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))

"""Bad inputs: each row of docs/bad-inputs.md that is not checked elsewhere.

Every test feeds saltmap one thing a soil scientist's files really contain (a censored EC
value, a blank line, a boundary without CRS, a model file from somewhere else) and checks
that saltmap says what is wrong and how to fix it, or reports the row and carries on.
Test names start with the row id of the table (``s01``, ``c03``, ...).

The files are synthetic, built in tmp folders, often from the real Odisha samples or the
real Patagonia bands. Tests marked ``xfail(strict=True)`` state how saltmap SHOULD behave
where the code does not yet; each names the module to fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saltmap import mapping, models
from saltmap.datasets import odisha_samples, patagonia_scene
from saltmap.errors import (
    BoundaryError,
    ConfigError,
    InputFileError,
    MissingBandError,
    MissingColumnError,
    ModelFileError,
    OutputExistsError,
    OutputWriteError,
    SaltmapError,
    SampleDataError,
    ScalingError,
    SceneError,
    UnitError,
)
from saltmap.io.samples import odisha, read_samples
from saltmap.models import persistence as modelfile
from saltmap.study import runner as study
from saltmap.validation import evaluation

GOOD_BANDS = "0.05,0.08,0.09,0.20,0.25,0.18"
HEADER = "id,EC,Blue,Green,Red,NIR,SWIR1,SWIR2,lon,lat"


def _csv(tmp_path: Path, *rows: str, header: str = HEADER, name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _row(sid: str, ec: str, bands: str = GOOD_BANDS, lon: str = "86.4", lat: str = "20.2"):
    return f"{sid},{ec},{bands},{lon},{lat}"


def _reasons(samples) -> dict[int, str]:
    return dict(zip(samples.rejected["row"], samples.rejected["reason"], strict=True))


@pytest.fixture(scope="module")
def real_samples():
    return odisha()


@pytest.fixture(scope="module")
def plsr(real_samples):
    """A small real model: PLSR on the novel indices of the Odisha samples (fast to fit)."""
    return models.make_model("PLSR", indices="novel").fit(
        real_samples.reflectance, real_samples.target
    )


# ============================================================================ samples


def test_s01_non_numeric_and_censored_ec_are_rejected_with_the_cell(tmp_path):
    path = _csv(tmp_path, _row("a", "510"), _row("b", "n.d."), _row("c", "<0.5"))
    got = read_samples(path, target="EC")
    assert got.table.index.tolist() == ["a"]
    reasons = _reasons(got)
    assert "target EC value 'n.d.' is not a number" in reasons[3]
    assert "'<0.5' is not a number (a censored value: enter a number)" in reasons[4]


def test_s03_ambiguous_thousands_or_decimal_comma_is_not_guessed(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(
        f"id;EC;Blue;Green;Red;NIR;SWIR1;SWIR2\na;1.5;{GOOD_BANDS.replace(',', ';')}\n"
        f'b;"1,234";{GOOD_BANDS.replace(",", ";")}\n'
    )
    got = read_samples(path, target="EC")
    assert got.table.index.tolist() == ["a"]
    assert "'1,234' is ambiguous" in _reasons(got)[3]
    assert "write 1.234 or 1234" in _reasons(got)[3]


def test_s05_empty_id_is_rejected_not_invented(tmp_path):
    got = read_samples(_csv(tmp_path, _row("a", "510"), _row("", "520")), target="EC", id="id")
    assert got.table.index.tolist() == ["a"]
    assert "id id is empty" in _reasons(got)[3]


def test_s09_no_recognisable_band_columns_says_how_to_map_them(tmp_path):
    path = _csv(tmp_path, "a,510,0.1,0.2", header="id,EC,b_one,b_two")
    with pytest.raises(MissingColumnError, match="--band B=Blue"):
        read_samples(path, target="EC")


def test_s13_unknown_crs_is_a_config_error(tmp_path):
    path = _csv(tmp_path, _row("a", "510"), header=HEADER.replace("lon,lat", "x,y"))
    with pytest.raises(ConfigError, match=r"EPSG:12345678.*not understood"):
        read_samples(path, target="EC", crs="EPSG:12345678")


def test_s15_coordinates_in_another_crs_than_declared_are_rejected(tmp_path):
    """lon/lat degrees declared as UTM 45N metres land outside that zone."""
    path = _csv(
        tmp_path,
        _row("a", "510", lon="86.4", lat="20.2"),
        header=HEADER.replace("lon,lat", "x,y"),
    )
    got = read_samples(path, target="EC", crs="EPSG:32645")
    assert len(got) == 0
    assert "outside the bounds of EPSG:32645" in _reasons(got)[2]


def test_s16_empty_file_is_an_input_file_error(tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputFileError, match=r"empty\.csv"):
        read_samples(tmp_path / "empty.csv", target="EC")


def test_s17_header_only_file_has_no_rows(tmp_path):
    with pytest.raises(InputFileError, match="has no rows"):
        read_samples(_csv(tmp_path), target="EC")


def test_s18_first_row_with_extra_fields_is_refused_not_shifted(tmp_path):
    """pandas would take the first two columns as an index and shift EC onto Blue."""
    path = _csv(tmp_path, _row("a", "510") + ",9,9", _row("b", "520"))
    with pytest.raises(InputFileError, match="more fields than the header"):
        read_samples(path, target="EC")


def test_s18b_later_row_with_extra_fields_names_the_line(tmp_path):
    path = _csv(tmp_path, _row("a", "510"), _row("b", "520") + ",9")
    with pytest.raises(InputFileError, match="line 3"):
        read_samples(path, target="EC")


def test_s19_blank_line_keeps_row_numbers_as_in_the_file(tmp_path):
    path = _csv(tmp_path, _row("a", "510"), "", _row("b", "high"))
    got = read_samples(path, target="EC")
    reasons = _reasons(got)
    assert "target EC value 'high' is not a number" in reasons[4]  # line 4 of the file
    assert "target EC is empty" in reasons[3]  # the blank line is reported, not hidden
    assert got.table.index.tolist() == ["a"]


def test_s20_xlsx_number_beyond_float_range_is_an_input_file_error(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["id", "EC", "Blue", "Green", "Red", "NIR", "SWIR1", "SWIR2"])
    book.active.append(["a", 1.7976931348623155e308, 0.05, 0.08, 0.09, 0.2, 0.25, 0.18])
    book.save(tmp_path / "huge.xlsx")
    with pytest.raises(InputFileError, match=r"huge\.xlsx"):
        read_samples(tmp_path / "huge.xlsx", target="EC")


def test_s21_unknown_target_unit_lists_the_accepted_ones(tmp_path):
    with pytest.raises(UnitError, match=r"'ppm'.*dS/m"):
        read_samples(_csv(tmp_path, _row("a", "510")), target="EC", target_unit="ppm")


def test_s23_latin1_file_is_read_with_the_bad_bytes_replaced(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER},site\n{_row('a', '510')},Périphérie\n".encode("latin-1"))
    got = read_samples(path, target="EC")
    assert got.table.index.tolist() == ["a"]
    assert got.table.loc["a", "site"].startswith("P")
    assert got.table.loc["a", "target"] == 510.0


def test_s24_zero_and_negative_reflectance_give_nan_indices_counted_by_screening(tmp_path):
    from saltmap.features.indices import compute_indices
    from saltmap.features.screening import screen

    rows = [
        _row(f"p{i}", str(500 + 40 * i), f"0.05,0.{i + 1},0.09,0.2,0.25,0.18") for i in range(8)
    ]
    rows.append(_row("zero_g", "900", "0.05,0,0.09,0.2,0.25,0.18"))
    rows.append(_row("neg_b", "950", "-0.04,0.08,0.09,0.2,0.25,0.18"))
    got = read_samples(_csv(tmp_path, *rows), target="EC")
    assert len(got) == 10  # such reflectance is legal input, not a rejected row
    values = compute_indices(got.reflectance, "novel")
    assert np.isnan(values.loc["zero_g", "SAI"])  # G·N·S1 = 0
    assert not np.isinf(values.to_numpy()).any()
    table = screen(got, "novel").set_index("index")
    assert table.loc["SAI", "n_undefined"] == 1 and table.loc["SAI", "n"] == 9


def test_s25_zero_reflectance_sample_in_evaluation_is_named(real_samples):
    # Issue 14: the sample is set aside for the feature set needing the index, and named;
    # the run goes on.
    table = real_samples.table.copy()
    first = table.index[0]
    table.loc[first, "G"] = 0.0
    samples = dataclasses.replace(real_samples, table=table)
    result = evaluation.evaluate_study(
        samples, models=["PLSR"], feature_sets={"N-SI": "novel"}, protocols=["repeated"],
        quick=True, n_trials=0, baseline=False, n_jobs=1, select=False,
    )  # fmt: skip
    aside = result.set_aside
    # The plain random forest beside every evaluation reads all 21 indices: listed too.
    assert set(aside["sample"]) == {first}
    assert set(aside["feature_set"]) <= {"N-SI", "plain RF"} and "N-SI" in set(aside["feature_set"])
    assert "SAI" in aside.set_index("feature_set").loc["N-SI", "undefined"]
    assert result.honest.set_index("feature_set").loc["N-SI", "n_folds"] == 5


def test_s27_constant_target_in_evaluation_is_an_error(real_samples):
    table = real_samples.table.copy()
    table["target"] = 500.0
    with pytest.raises(SampleDataError, match="constant"):
        evaluation.evaluate_study(
            dataclasses.replace(real_samples, table=table), models=["PLSR"],
            feature_sets={"N-SI": "novel"}, protocols=["study"], quick=True, n_trials=0,
            baseline=False, n_jobs=1,
        )  # fmt: skip


def test_s28_fewer_samples_than_folds_is_a_sample_data_error(real_samples):
    small = dataclasses.replace(real_samples, table=real_samples.table.iloc[:4])
    with pytest.raises(SampleDataError, match="4 samples"):
        evaluation.evaluate_study(
            small, models=["PLSR"], feature_sets={"N-SI": "novel"}, protocols=["repeated"],
            quick=True, n_trials=0, baseline=False, n_jobs=1,
        )  # fmt: skip


@pytest.mark.parametrize("scaling", ["0,0", "nan,0", "1,inf", "0.0001"])
def test_s34_degenerate_custom_scaling_is_refused(tmp_path, scaling):
    with pytest.raises(ScalingError, match=re.escape(repr(scaling))):
        read_samples(_csv(tmp_path, _row("a", "510")), target="EC", scaling=scaling)


def test_s35_zero_or_negative_salinity_cannot_be_logged(real_samples):
    target = real_samples.target.to_numpy(copy=True)
    target[3] = 0.0
    model = models.make_model("PLSR", indices="novel", log_target=True)
    with pytest.raises(SampleDataError, match="log10 of the target needs positive values"):
        model.fit(real_samples.reflectance, target)


def test_s29_columns_file_with_unknown_key_names_it(tmp_path):
    columns = tmp_path / "columns.toml"
    columns.write_text('target = "EC"\ntarget_column = "EC"\n')
    with pytest.raises(ConfigError, match="target_column"):
        read_samples(_csv(tmp_path, _row("a", "510")), columns_file=columns)


def test_s30_every_row_rejected_still_reports_every_row(tmp_path):
    got = read_samples(_csv(tmp_path, _row("a", ""), _row("b", "x")), target="EC")
    assert len(got) == 0 and len(got.rejected) == 2
    from saltmap.features.screening import screen

    with pytest.raises(SampleDataError):
        screen(got, "novel")


# ============================================================================ scenes


def _band_folder(tmp_path: Path, replace: dict[str, bytes] | None = None) -> Path:
    folder = tmp_path / "scene"
    folder.mkdir()
    for band in sorted(patagonia_scene().glob("B*_*m.tif")):
        if replace and band.name in replace:
            (folder / band.name).write_bytes(replace[band.name])
        else:
            (folder / band.name).symlink_to(band)
    return folder


def test_c06_a_text_file_named_like_a_band_is_an_input_file_error(tmp_path):
    from saltmap.io.scene import open_scene

    folder = _band_folder(tmp_path, {"B04_10m.tif": b"id,EC\n1,2\n"})
    with pytest.raises(InputFileError, match=r"B04_10m\.tif"):
        open_scene(folder, scaling="sentinel2-l2a")


def _zero_band(src: Path, dst: Path) -> None:
    import rasterio

    with rasterio.open(src) as ds:
        profile = ds.profile
    with rasterio.open(dst, "w", **profile) as out:
        out.write(np.zeros((profile["height"], profile["width"]), profile["dtype"]), 1)


def test_c10_nodata_at_every_point_reports_each_point_masked(tmp_path):
    from saltmap.features.extraction import extract_at_points
    from saltmap.io.scene import open_scene

    folder = _band_folder(tmp_path, {"B08_10m.tif": b""})
    (folder / "B08_10m.tif").unlink()
    _zero_band(patagonia_scene() / "B08_10m.tif", folder / "B08_10m.tif")  # DN 0 = no data
    scene = open_scene(folder, scaling="sentinel2-l2a")
    west, south, east, north = scene.bounds
    points = pd.DataFrame(
        {"x": np.linspace(west + 15, east - 15, 5), "y": np.linspace(south + 15, north - 15, 5)},
        index=pd.Index([f"p{i}" for i in range(5)], name="id"),
    )
    table, report = extract_at_points(points, scene, crs=scene.crs.to_string())
    assert len(table) == 0
    assert (report["status"] == "masked").all()
    assert report["reason"].str.len().gt(0).all()


def test_c11_points_without_crs_are_refused(tmp_path):
    from saltmap.features.extraction import extract_at_points
    from saltmap.io.scene import open_scene

    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    points = pd.DataFrame({"x": [1.0], "y": [2.0]})
    with pytest.raises(SampleDataError, match="crs"):
        extract_at_points(points, scene)


def test_c11b_samples_without_coordinates_cannot_be_placed(tmp_path):
    from saltmap.features.extraction import extract_at_points
    from saltmap.io.scene import open_scene

    header = "id,EC,Blue,Green,Red,NIR,SWIR1,SWIR2"
    samples = read_samples(_csv(tmp_path, f"a,510,{GOOD_BANDS}", header=header), target="EC")
    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    with pytest.raises(SampleDataError, match="no coordinates"):
        extract_at_points(samples, scene)


def test_c13_zero_reflectance_pixel_is_no_data_not_a_crash(plsr, real_samples):
    block = np.tile(real_samples.reflectance.to_numpy().T[:, :4, None], (1, 1, 2))
    block[1, 0, 0] = 0.0  # G = 0: SAI undefined at this pixel
    out = mapping.predict_block(plsr, block, real_samples.roles)
    assert np.isnan(out[0, 0]) and np.isfinite(out).sum() == out.size - 1


def test_c14_model_needing_a_band_the_scene_lacks_fails_before_output(plsr, tmp_path):
    from saltmap.io.scene import open_scene

    four = open_scene(patagonia_scene(), scaling="sentinel2-l2a", bands=["B", "G", "R", "N"])
    out = tmp_path / "map"
    with pytest.raises(MissingBandError, match="S1"):
        mapping.map_scene(plsr, four, out, scheme="fao-ec", target_name="EC",
                          target_unit="µS/cm", progress=None)  # fmt: skip
    assert not out.exists()


def test_c15_scene_without_a_valid_pixel_is_mapped_as_empty_and_reported(plsr, tmp_path):
    from saltmap.io.scene import open_scene

    folder = _band_folder(tmp_path, {"B08_10m.tif": b""})
    (folder / "B08_10m.tif").unlink()
    _zero_band(patagonia_scene() / "B08_10m.tif", folder / "B08_10m.tif")  # NIR all no data
    scene = open_scene(folder, scaling="sentinel2-l2a")
    result = mapping.map_scene(plsr, scene, tmp_path / "map", scheme="fao-ec", target_name="EC",
                               target_unit="µS/cm", progress=None, figure=False)  # fmt: skip
    assert result.n_valid == 0 and result.n_pixels == scene.width * scene.height
    assert result.areas["pixels"].sum() == 0


# ============================================================================ boundaries


def _boundary_call(path: Path):
    from saltmap.io.scene import open_scene

    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    return mapping.read_boundary(path, scene.crs, tuple(scene.bounds))


def test_b01_empty_boundary_is_refused(tmp_path):
    import geopandas as gpd

    empty = gpd.GeoDataFrame({"name": []}, geometry=gpd.GeoSeries([], crs=4326))
    empty.to_file(tmp_path / "empty.gpkg")
    with pytest.raises(BoundaryError, match="holds no polygon"):
        _boundary_call(tmp_path / "empty.gpkg")


def test_b02_boundary_of_points_is_refused(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    gpd.GeoDataFrame(geometry=[Point(-69, -45)], crs=4326).to_file(tmp_path / "pts.geojson")
    with pytest.raises(BoundaryError, match=r"no polygon.*Point"):
        _boundary_call(tmp_path / "pts.geojson")


def test_b03_boundary_without_crs_is_refused(tmp_path):
    import geopandas as gpd
    import shapely

    gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)]).to_file(tmp_path / "nocrs.shp")
    with pytest.raises(BoundaryError, match="no coordinate reference system"):
        _boundary_call(tmp_path / "nocrs.shp")


def test_b04_boundary_elsewhere_does_not_overlap(tmp_path):
    import geopandas as gpd
    import shapely

    far = gpd.GeoDataFrame(geometry=[shapely.box(86, 20, 87, 21)], crs=4326)  # Odisha
    far.to_file(tmp_path / "odisha.gpkg")
    with pytest.raises(BoundaryError, match="does not overlap"):
        _boundary_call(tmp_path / "odisha.gpkg")


def test_b05_unreadable_boundary_file(tmp_path):
    (tmp_path / "district.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(BoundaryError, match="cannot read the boundary"):
        _boundary_call(tmp_path / "district.gpkg")


# ============================================================================ model files

META = {"target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2"}


def _rewrite(path: Path, header=None, model: bytes | None = None) -> None:
    """Rewrite a model file's parts (a crafted or edited file)."""
    with zipfile.ZipFile(path) as archive:
        old_header = json.loads(archive.read(modelfile.HEADER_NAME))
        old_model = archive.read(modelfile.MODEL_NAME)
    header = header(old_header) if header else old_header
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(modelfile.HEADER_NAME, json.dumps(header))
        archive.writestr(modelfile.MODEL_NAME, old_model if model is None else model)


@pytest.fixture
def model_file(plsr, tmp_path):
    return modelfile.save_model(tmp_path / "ec.skops", plsr, metadata=META)


def test_m01_model_file_that_would_run_code_is_refused_unrun(model_file):
    import os

    import skops.io as sio

    from saltmap.models.persistence import load_model

    crafted = sio.dumps({"model": os.system})  # loading it would hand out os.system

    def fix_checksum(header):
        return {**header, "model_sha256": hashlib.sha256(crafted).hexdigest()}

    _rewrite(model_file, header=fix_checksum, model=crafted)
    with pytest.raises(ModelFileError, match=r"posix\.system|nt\.system") as err:
        load_model(model_file)
    assert "nothing in it was run" in str(err.value)


class _Trap:
    """A pickle payload: unpickling it would create a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_m02_a_pickle_posing_as_a_model_is_never_unpickled(tmp_path):
    marker = tmp_path / "code-ran"
    (tmp_path / "model.skops").write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises(ModelFileError, match="not a zip archive"):
        modelfile.load_model(tmp_path / "model.skops")
    assert not marker.exists()


def test_m03_model_file_from_another_version_is_refused(model_file):
    from saltmap.models.persistence import load_model

    def older(header):
        return {**header, "versions": {**header["versions"], "scikit-learn": "1.2.2"}}

    _rewrite(model_file, header=older)
    with pytest.raises(ModelFileError, match=r"scikit-learn 1\.2\.2.*[Rr]etrain"):
        load_model(model_file)


def test_m03b_model_format_from_the_future_is_refused(model_file):
    from saltmap.models.persistence import load_model

    _rewrite(model_file, header=lambda h: {**h, "format_version": 99})
    with pytest.raises(ModelFileError, match="format version 99"):
        load_model(model_file)


def test_m04_edited_model_part_fails_its_checksum(model_file):
    from saltmap.models.persistence import MODEL_NAME, load_model

    with zipfile.ZipFile(model_file) as archive:
        part = bytearray(archive.read(MODEL_NAME))
    part[-10] ^= 0xFF
    _rewrite(model_file, model=bytes(part))
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(model_file)


def test_m05_truncated_model_file_is_refused(model_file):
    from saltmap.models.persistence import load_model

    data = model_file.read_bytes()
    model_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"ec\.skops"):
        load_model(model_file)


def test_m06_missing_model_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"does not exist.*saltmap train"):
        modelfile.load_model(tmp_path / "nope.skops")


# ============================================================================ study files


def _study(text: str, tmp_path: Path):
    path = tmp_path / "study.toml"
    path.write_text(text, encoding="utf-8")
    return study.load_study(path)


def _minimal_study(tmp_path: Path, extra: str = "") -> str:
    samples = tmp_path / "samples.csv"
    samples.write_text(Path(odisha_samples()).read_text())
    return f'name = "t"\n{extra}\n[samples]\npath = "samples.csv"\ntarget = "EC"\n'


def test_t01_unknown_key_is_named(tmp_path):
    with pytest.raises(ConfigError, match="colour"):
        _study(_minimal_study(tmp_path, 'colour = "red"'), tmp_path)


def test_t02_wrong_value_type_names_key_and_value(tmp_path):
    with pytest.raises(ConfigError, match=r"seed = 'zero'"):
        _study(_minimal_study(tmp_path, 'seed = "zero"'), tmp_path)


def test_t03_samples_path_that_does_not_exist(tmp_path):
    text = _minimal_study(tmp_path).replace("samples.csv", "gone.csv")
    with pytest.raises(ConfigError, match=r"gone\.csv does not exist"):
        _study(text, tmp_path)


def test_t04_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        _study(_minimal_study(tmp_path) + "[samples\n", tmp_path)


def test_t05_missing_study_file(tmp_path):
    with pytest.raises(InputFileError, match="saltmap init"):
        study.load_study(tmp_path / "nope.toml")


# ============================================================================ outputs


def test_o04_existing_output_is_kept_without_overwrite(tmp_path):
    from saltmap.features.extraction import write_extracted

    target = tmp_path / "extracted.csv"
    target.write_text("keep\n")
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_extracted(pd.DataFrame({"x": [1.0]}), target)
    assert target.read_text() == "keep\n"


def test_o05_map_into_a_file_instead_of_a_folder_fails_before_any_block(plsr, tmp_path):
    from saltmap.io.scene import open_scene

    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    (tmp_path / "maps").write_text("I am a file")
    with pytest.raises(OutputWriteError, match="maps"):
        mapping.map_scene(plsr, scene, tmp_path / "maps", scheme="fao-ec", target_name="EC",
                          target_unit="µS/cm", progress=None, figure=False)  # fmt: skip


def test_every_error_is_a_saltmap_error_and_a_builtin():
    """The table's error classes can be caught as saltmap errors or as the built-in."""
    for cls, builtin in [
        (InputFileError, OSError),
        (OutputWriteError, OSError),
        (MissingBandError, KeyError),
        (SampleDataError, ValueError),
        (SceneError, ValueError),
        (BoundaryError, ValueError),
        (ModelFileError, ValueError),
        (ConfigError, ValueError),
    ]:
        assert issubclass(cls, SaltmapError) and issubclass(cls, builtin)


warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")


# ============================================================================ the table itself

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad-inputs.md"


def _table_rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            line.startswith("| ")
            and len(cells) == 4
            and cells[0][:1].isupper()
            and cells[0] != "id"
        ):
            rows.append(cells)
    return rows


def _test_refs(cell: str) -> list[tuple[Path, str]]:
    refs = []
    for ref in cell.replace("`", "").split(","):
        file, _, name = ref.strip().partition("::")
        file = "tests/test_bad_inputs.py" if file == "bad" else file
        refs.append((DOC.parents[1] / file, name))
    return refs


def test_the_bad_inputs_table_has_30_rows_each_with_a_real_test():
    rows = _table_rows()
    assert len(rows) >= 30
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "row ids repeat"
    for row_id, _, _, tests in rows:
        refs = _test_refs(tests)
        assert refs, row_id
        for file, name in refs:
            assert file.is_file(), f"{row_id}: {file} does not exist"
            assert f"def {name}(" in file.read_text(encoding="utf-8"), f"{row_id}: no {name}"


def test_xfail_rows_and_xfail_tests_agree():
    """A row says **xfail** exactly when its test here is marked xfail; every row test has a row."""
    tests = {n: f for n, f in globals().items() if n.startswith("test_") and callable(f)}
    marked = {
        n for n, f in tests.items() if any(m.name == "xfail" for m in getattr(f, "pytestmark", []))
    }
    rows = _table_rows()
    in_table = {name for row in rows if "**xfail**" in row[1] for _, name in _test_refs(row[3])}
    assert marked == in_table
    referenced = {name for row in rows for _, name in _test_refs(row[3])}
    # Row tests are named test_<letter><two digits>_...
    row_tests = {n for n in tests if n[5:6].isalpha() and n[6:8].isdigit()}
    assert row_tests <= referenced, f"tests of no row: {sorted(row_tests - referenced)}"


@pytest.mark.parametrize("level", ["1.5", "90", "0"])
def test_x04_train_level_outside_zero_one_is_refused_before_training(tmp_path, level):
    from typer.testing import CliRunner

    from saltmap.cli import app

    out = tmp_path / "m.skops"
    result = CliRunner().invoke(app, [
        "train", str(odisha_samples()), "--target", "EC", "--target-unit", "uS/cm", "--id",
        "Name", "--scaling", "landsat-c2l2", "--model", "RF", "--level", level, "--out", str(out),
    ])  # fmt: skip
    assert isinstance(result.exception, ConfigError)
    assert f"--level {float(level)}" in str(result.exception) and "0.9" in str(result.exception)
    assert not out.exists()


def test_x05_exclude_outside_aoa_without_an_aoa_is_refused_before_output(tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.models.building import make_model
    from saltmap.models.persistence import save_model

    samples = odisha()
    model = make_model("RF", params={"n_estimators": 5}).fit(samples.reflectance, samples.target)
    meta = {"target": "EC", "target_unit": "µS/cm", "scaling": "landsat-c2l2"}
    plain = save_model(tmp_path / "plain.skops", model, metadata=meta)
    out = tmp_path / "map"
    args = ["map", str(plain), str(patagonia_scene()), "--scaling", "sentinel2-l2a",
            "--scheme", "fao-ec", "--out", str(out), "--exclude-outside-aoa"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, ModelFileError)
    assert "plain.skops holds no area of applicability" in str(result.exception)
    assert "saltmap train" in str(result.exception)
    both = CliRunner().invoke(app, [*args, "--no-trust"])
    assert isinstance(both.exception, ConfigError) and "--no-trust" in str(both.exception)
    assert not out.exists()


def _covariate_model(tmp_path, covariates):
    """A small RF on the real Odisha samples and the given covariates, saved to a model file."""
    from saltmap.features.covariates import predictor_table
    from saltmap.models.building import make_model
    from saltmap.models.persistence import save_model

    samples = odisha()
    X = predictor_table(samples, covariates)
    model = make_model("RF", params={"n_estimators": 5}, covariates=covariates)
    model.fit(X, samples.target)
    meta = {"target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2"}
    return model, save_model(tmp_path / "cov.skops", model, metadata=meta), X


def _scene():
    from saltmap.io.scene import open_scene

    return open_scene(patagonia_scene(), scaling="sentinel2-l2a")


MAP_KW = {"scheme": "fao-ec", "target_name": "EC", "target_unit": "uS/cm", "progress": None,
          "figure": False}  # fmt: skip


def test_v01_predict_without_a_covariate_column_names_it(tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.features.covariates import Covariates

    _, model_file, _ = _covariate_model(tmp_path, Covariates(numeric=["Dist_Sea"]))
    lacking = tmp_path / "no_dist_sea.csv"
    pd.read_csv(odisha_samples()).drop(columns=["Dist_Sea"]).to_csv(lacking, index=False)
    out = tmp_path / "predicted.csv"
    result = CliRunner().invoke(
        app, ["predict", str(model_file), str(lacking), "--id", "Name", "--out", str(out)]
    )
    assert isinstance(result.exception, MissingColumnError)
    message = str(result.exception)
    assert "trained with covariate(s) Dist_Sea" in message and "'Dist_Sea' are missing" in message
    assert not out.exists()


def test_v02_map_without_a_covariate_raster_is_refused_before_output(tmp_path):
    from saltmap.features.covariates import Covariates
    from saltmap.mapping.engine import map_scene

    model, _, _ = _covariate_model(tmp_path, Covariates(numeric=["Dist_Sea"]))
    out = tmp_path / "map"
    with pytest.raises(ConfigError, match=r"'Dist_Sea' but no raster was given.*--covariate"):
        map_scene(model, _scene(), out, **MAP_KW)
    with pytest.raises(InputFileError, match=r"covariate 'Dist_Sea': cannot open raster"):
        map_scene(model, _scene(), out, covariates={"Dist_Sea": tmp_path / "gone.tif"}, **MAP_KW)
    assert not out.exists() or not any(out.iterdir())


def test_v03_covariate_raster_not_covering_the_scene_is_refused(tmp_path):
    import rasterio

    from saltmap.features.covariates import Covariates
    from saltmap.mapping.engine import map_scene

    model, _, _ = _covariate_model(tmp_path, Covariates(numeric=["Dist_Sea"]))
    scene = _scene()
    # A synthetic raster on the scene's grid covering only its western 100 columns.
    profile = {"driver": "GTiff", "width": 100, "height": scene.height, "count": 1,
               "dtype": "float32", "crs": scene.crs, "transform": scene.transform}  # fmt: skip
    part = tmp_path / "synthetic_west_only.tif"
    with rasterio.open(part, "w", **profile) as dst:
        dst.write(np.full((scene.height, 100), 3, np.float32), 1)
    out = tmp_path / "map"
    with pytest.raises(SceneError, match=r"'Dist_Sea' .*does not cover the scene") as info:
        map_scene(model, scene, out, covariates={"Dist_Sea": part}, **MAP_KW)
    assert "synthetic_west_only.tif" in str(info.value) and "covers the whole scene" in str(
        info.value
    )
    assert not out.exists() or not any(out.iterdir())


def test_v04_unseen_categorical_level_in_samples_and_rasters(tmp_path):
    import rasterio

    from saltmap.features.covariate_layers import write_covariate
    from saltmap.features.covariate_rasters import CovariateRasters
    from saltmap.features.covariates import Covariates, UnseenLevelError
    from saltmap.mapping.engine import map_scene
    from saltmap.trust.maps import AOA_NODATA, fit_trust

    cov = Covariates(numeric=["Dist_Sea"], categorical=["Land_cover"])
    model, _, X = _covariate_model(tmp_path, cov)
    # Samples: a level no training row has is refused, with the known levels.
    odd = X.iloc[:3].copy()
    odd.iloc[1, odd.columns.get_loc("Land_cover")] = "Salt pan"
    with pytest.raises(UnseenLevelError, match=r"'Land_cover' has level\(s\) 'Salt pan'") as info:
        model.predict(odd)
    assert isinstance(info.value, SampleDataError) and "min_count" in str(info.value)
    # Rasters: code 7 (synthetic) is no training level; code 1 is given a real one.
    scene = _scene()
    codes = np.ones(scene.shape, np.float32)
    codes[:50] = 7
    land = write_covariate(tmp_path / "synthetic_land.tif", codes, scene, description="codes")
    dist = write_covariate(tmp_path / "synthetic_dist.tif", np.full(scene.shape, 3, np.float32),
                           scene, description="synthetic distance class")  # fmt: skip
    paths = {"Dist_Sea": dist, "Land_cover": land}
    with pytest.raises(ConfigError, match=r"--labels Land_cover=legend.csv"):
        map_scene(model, scene, tmp_path / "none", covariates=paths, **MAP_KW)
    assert not (tmp_path / "none").exists() or not any((tmp_path / "none").iterdir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trust = fit_trust(model, X, odisha().target, random_state=0)
    rasters = CovariateRasters(paths, labels={"Land_cover": {1: "Fallow rice field"}})
    with pytest.warns(UserWarning, match=r"'Land_cover': 15,000 pixel\(s\) have level"):
        result = map_scene(model, scene, tmp_path / "map", covariates=rasters, trust=trust,
                           **MAP_KW)  # fmt: skip
    with (
        rasterio.open(result.outputs.salinity) as src,
        rasterio.open(result.outputs.trust["aoa"]) as a,
    ):
        salinity, aoa = src.read(1), a.read(1)
    assert np.isnan(salinity[:50]).all() and (aoa[:50] == AOA_NODATA).all()
    valid = np.isfinite(scene.read()).all(axis=0)
    assert (
        np.isfinite(salinity[50:][valid[50:]]).all() and (aoa[50:][valid[50:]] != AOA_NODATA).all()
    )

"""Reading field samples: formats, mapping, units and the rejected-row report."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from saltmap import datasets
from saltmap.errors import (
    ConfigError,
    DataDirError,
    InputFileError,
    MissingColumnError,
    SaltmapError,
    SampleDataError,
    ScalingError,
    UnitError,
)
from saltmap.io.samples import odisha, read_samples

ODISHA_OPTIONS = {"target": "EC", "target_unit": "uS/cm", "id": "Name", "scaling": "landsat-c2l2"}


@pytest.fixture(scope="module")
def real():
    return odisha()


@pytest.fixture(scope="module")
def raw_csv():
    return pd.read_csv(datasets.odisha_samples())


def test_odisha_reads_with_options_only(real, raw_csv):
    assert len(real) + len(real.rejected) == len(raw_csv)
    no_bands = raw_csv.loc[raw_csv["Blue"].isna(), "Name"]
    assert sorted(real.rejected["id"]) == sorted(no_bands)
    assert real.rejected["reason"].str.contains("band Blue is empty").all()
    assert real.roles == ("B", "G", "R", "N", "S1", "S2")
    assert real.crs == "EPSG:4326"
    first = raw_csv.iloc[0]
    assert real.table.loc[first["Name"], "N"] == pytest.approx(first["NIR"] * 0.0000275 - 0.2)
    assert real.target.loc[first["Name"]] == first["EC"]
    # Other columns are kept for later use (covariates, reports).
    assert {"Dist_Sea", "Land_cover", "pH"} <= set(real.table.columns)


def _as_geodataframe(raw_csv):
    return gpd.GeoDataFrame(
        raw_csv.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(raw_csv["lon"], raw_csv["lat"]),
        crs="EPSG:4326",
    )


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".gpkg", ".geojson", ".shp"])
def test_every_format_gives_the_same_samples(tmp_path, real, raw_csv, suffix):
    path = tmp_path / f"odisha{suffix}"
    if suffix == ".csv":
        raw_csv.to_csv(path, index=False)
    elif suffix == ".xlsx":
        raw_csv.to_excel(path, index=False)
    else:
        _as_geodataframe(
            raw_csv[["Name", "EC", "Blue", "Green", "Red", "NIR", "SWIR1", "SWIR2", "lon", "lat"]]
        ).to_file(path)
    got = read_samples(path, **ODISHA_OPTIONS)
    assert got.crs is not None and "4326" in got.crs
    pd.testing.assert_frame_equal(got.reflectance, real.reflectance, check_exact=False, rtol=1e-12)
    np.testing.assert_allclose(got.target, real.target)
    np.testing.assert_allclose(got.coords, real.coords)
    assert len(got.rejected) == len(real.rejected)


def test_columns_file_maps_renamed_columns(tmp_path, raw_csv, real):
    renamed = raw_csv.rename(columns={"NIR": "nir_dn", "SWIR1": "sw16", "EC": "ec_field"})
    renamed.to_csv(tmp_path / "renamed.csv", index=False)
    (tmp_path / "columns.toml").write_text(
        'target = "ec_field"\ntarget_unit = "uS/cm"\nid = "Name"\nscaling = "landsat-c2l2"\n'
        '[bands]\nN = "nir_dn"\nS1 = "sw16"\n'
    )
    got = read_samples(
        tmp_path / "renamed.csv", target=None, columns_file=tmp_path / "columns.toml"
    )
    pd.testing.assert_frame_equal(got.reflectance, real.reflectance)


def test_unit_conversion_to_ds_per_m(real):
    got = read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, to_unit="dS/m")
    assert got.target_unit == "dS/m"
    np.testing.assert_allclose(got.target.to_numpy() * 1000, real.target.to_numpy())


def test_columns_file_to_unit_converts_and_the_keyword_wins(real, tmp_path):
    columns = tmp_path / "columns.toml"
    columns.write_text(
        'target = "EC"\ntarget_unit = "uS/cm"\nto_unit = "dS/m"\nid = "Name"\n'
        'scaling = "landsat-c2l2"\n',
        encoding="utf-8",
    )
    got = read_samples(datasets.odisha_samples(), target=None, columns_file=columns)
    assert got.target_unit == "dS/m"
    np.testing.assert_allclose(got.target.to_numpy(), real.target.to_numpy() / 1000)
    kept = read_samples(
        datasets.odisha_samples(), target=None, columns_file=columns, to_unit="mS/cm"
    )
    assert kept.target_unit == "mS/cm"
    np.testing.assert_allclose(kept.target.to_numpy(), real.target.to_numpy() / 1000)
    same = read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, to_unit="uS/cm")
    assert same.target_unit == "µS/cm"
    np.testing.assert_array_equal(same.target.to_numpy(), real.target.to_numpy())


def test_salt_content_needs_a_conversion(real):
    from saltmap.salinity.conversion import SaltConversion

    with pytest.raises(UnitError, match="conversion"):
        read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, to_unit="g/kg")
    # SYNTHETIC conversion (salt = 0.64 × EC in dS/m), to check the mechanics only.
    conv = SaltConversion(slope=0.64, intercept=0.0, ec_unit="dS/m")
    salt = read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, conversion=conv)
    assert (salt.target_name, salt.target_unit) == ("salt content", "g/kg")
    np.testing.assert_allclose(salt.target.to_numpy(), 0.64 * real.target.to_numpy() / 1000)
    with pytest.raises(UnitError, match="dS/m"):
        read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, to_unit="dS/m", conversion=conv)


def test_to_unit_without_a_known_unit_is_refused(tmp_path):
    # Synthetic sheet whose EC header carries no unit.
    (tmp_path / "nounit.csv").write_text(
        "id,EC,B,G,R,N,S1,S2,lon,lat\na,500,0.05,0.08,0.09,0.2,0.25,0.18,86.4,20.2\n"
    )
    with pytest.raises(UnitError, match="--target-unit"):
        read_samples(tmp_path / "nounit.csv", target="EC", to_unit="dS/m")


def test_decimal_commas_and_semicolons_are_read(tmp_path):
    # Synthetic European-style sheet.
    (tmp_path / "eu.csv").write_text(
        "id;EC;B;G;R;N;S1;S2;lon;lat\n"
        "a;6,1;0,05;0,08;0,09;0,2;0,25;0,18;86,4;20,2\n"
        "b;7,25;0,06;0,09;0,1;0,22;0,27;0,2;86,5;20,3\n"
    )
    got = read_samples(tmp_path / "eu.csv", target="EC", target_unit="dS/m")
    assert got.target.tolist() == [6.1, 7.25]
    assert got.table.loc["b", "S1"] == pytest.approx(0.27)
    assert got.rejected.empty


def test_bad_rows_are_reported_with_their_reason_never_dropped_silently(tmp_path):
    # Synthetic sheet with one fault per row.
    (tmp_path / "junk.csv").write_text(
        "id,EC,B,G,R,N,S1,S2,lon,lat\n"
        "ok,500,0.05,0.08,0.09,0.2,0.25,0.18,86.4,20.2\n"
        "text,high,0.05,0.08,0.09,0.2,0.25,0.18,86.4,20.2\n"
        "ok,510,0.05,0.08,0.09,0.2,0.25,0.18,86.4,20.2\n"
        "nob,520,,0.08,0.09,0.2,0.25,0.18,86.4,20.2\n"
        "far,530,0.05,0.08,0.09,0.2,0.25,0.18,286.4,20.2\n"
        "noec,,0.05,0.08,0.09,0.2,0.25,0.18,86.4,20.2\n"
        "junkband,540,0.05,n/a,0.09,0.2,0.25,0.18,86.4,20.2\n"
    )
    got = read_samples(tmp_path / "junk.csv", target="EC", target_unit="uS/cm")
    assert got.table.index.tolist() == ["ok"]
    reasons = dict(zip(got.rejected["row"], got.rejected["reason"], strict=True))
    assert "'high' is not a number" in reasons[3]
    assert "duplicate id 'ok' (first at row 2)" in reasons[4]
    assert "band B is empty" in reasons[5]
    assert "outside the bounds of EPSG:4326" in reasons[6]
    assert "target EC is empty" in reasons[7]
    assert "band G value 'n/a' is not a number" in reasons[8]
    saved = pd.read_csv(got.save_rejected(tmp_path / "rejected.csv"))
    assert len(saved) == 6


def test_missing_target_column_names_the_columns(tmp_path):
    with pytest.raises(MissingColumnError, match="Salt") as info:
        read_samples(datasets.odisha_samples(), target="Salt", scaling="landsat-c2l2")
    assert "EC" in str(info.value) and isinstance(info.value, KeyError)


def test_two_columns_claiming_one_band_is_an_error(tmp_path):
    (tmp_path / "two.csv").write_text(
        "id,EC,Blue,B2,G,R,N,S1,S2\na,1,0.1,0.1,0.1,0.1,0.1,0.1,0.1\n"
    )
    with pytest.raises(ConfigError, match="--band B="):
        read_samples(tmp_path / "two.csv", target="EC")


def test_wrong_scaling_is_reported(tmp_path):
    with pytest.raises(ScalingError, match="scaling mistake"):
        read_samples(datasets.odisha_samples(), target="EC", scaling="reflectance")


def test_unknown_format_and_missing_file(tmp_path):
    (tmp_path / "s.parquet").write_text("x")
    with pytest.raises(InputFileError, match="unknown format"):
        read_samples(tmp_path / "s.parquet")
    with pytest.raises(InputFileError, match="does not exist"):
        read_samples(tmp_path / "nope.csv")


def test_projected_coordinates_need_a_crs(tmp_path):
    (tmp_path / "utm.csv").write_text(
        "id,EC,B,G,R,N,S1,S2,x,y\na,1,0.1,0.1,0.1,0.1,0.1,0.1,600000,4700000\n"
    )
    with pytest.raises(ConfigError, match="--crs"):
        read_samples(tmp_path / "utm.csv")
    got = read_samples(tmp_path / "utm.csv", crs="EPSG:32719")
    assert got.rejected.empty and got.crs == "EPSG:32719"


def test_data_dir_error_names_both_places(monkeypatch, tmp_path):
    monkeypatch.setenv(datasets.ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(DataDirError) as info:
        datasets.data_dir()
    message = str(info.value)
    assert "SALTMAP_DATA_DIR" in message and str(datasets.DEFAULT_DATA_DIR) in message
    assert isinstance(info.value, SaltmapError) and isinstance(info.value, FileNotFoundError)


def test_samples_without_a_target_can_be_read_for_prediction(real):
    got = read_samples(datasets.odisha_samples(), target=None, id="Name", scaling="landsat-c2l2")
    assert "target" not in got.table and len(got) == len(real)
    assert "EC" in got.table.columns  # kept as an ordinary column
    with pytest.raises(SampleDataError, match="--target"):
        got.target  # noqa: B018


def test_every_sample_verb_can_convert_the_target(tmp_path):
    from typer.testing import CliRunner

    from saltmap.cli import app
    from saltmap.salinity.conversion import SaltConversion, save_conversion

    runner = CliRunner()
    args = ["screen", str(datasets.odisha_samples()), "--target", "EC", "--target-unit", "uS/cm",
            "--id", "Name", "--scaling", "landsat-c2l2", "--indices", "study"]  # fmt: skip
    plain = runner.invoke(app, [*args, "--out", str(tmp_path / "us")])
    assert plain.exit_code == 0, plain.output
    in_ds = runner.invoke(app, [*args, "--to-unit", "dS/m", "--out", str(tmp_path / "ds")])
    assert in_ds.exit_code == 0, in_ds.output
    assert "target EC [dS/m]" in " ".join(in_ds.output.split())
    before = pd.read_csv(tmp_path / "us" / "screening.csv").set_index("index")
    after = pd.read_csv(tmp_path / "ds" / "screening.csv").set_index("index")
    # A unit factor changes no correlation.
    np.testing.assert_allclose(after.loc[before.index, "r"], before["r"], rtol=1e-9)
    # SYNTHETIC conversion, saved as `saltmap convert fit` saves one: salt content in g/kg.
    conv = save_conversion(SaltConversion(0.64, 0.1, "dS/m"), tmp_path / "conversion.toml")
    salt = runner.invoke(app, [*args, "--conversion", str(conv), "--out", str(tmp_path / "g")])
    assert salt.exit_code == 0, salt.output
    assert "target salt content [g/kg]" in " ".join(salt.output.split())
    in_salt = pd.read_csv(tmp_path / "g" / "screening.csv").set_index("index")
    np.testing.assert_allclose(in_salt.loc[before.index, "r"], before["r"], rtol=1e-9)
    refused = runner.invoke(app, [*args, "--to-unit", "g/kg", "--out", str(tmp_path / "no")])
    assert isinstance(refused.exception, UnitError)
    assert "--conversion" in str(refused.exception)


def test_missing_by_sample_names_ids_and_columns_synthetic():
    from saltmap.io.samples import missing_by_sample

    bad = pd.DataFrame(
        {"a": [True, False, True], "b": [True, False, False]}, index=["s1", "s2", "s3"]
    )
    assert missing_by_sample(bad) == (2, "s1: a, b; s3: a")
    assert missing_by_sample(bad, limit=1) == (2, "s1: a, b ...")


# -- the steps of read_samples (issue 12 split) --------------------------------------------


def test_column_options_given_win_over_the_columns_file():
    from saltmap.bands import Scaling
    from saltmap.io.sample_columns import ColumnOptions

    config = {
        "target": "SSC",
        "id": "Code",
        "scaling": "landsat-c2l2",
        "bands": {"B": "b", "G": "g"},
    }
    given = ColumnOptions("EC", None, None, None, None, None, None, {"G": "green"}, "reflectance",
                          None, None)  # fmt: skip
    merged = given.over(config)
    assert (merged.target, merged.id) == ("EC", "Code")
    assert merged.bands == {"B": "b", "G": "green"}
    # "reflectance" is the default, so the file's scaling is taken
    assert merged.scaling == "landsat-c2l2"
    assert (
        merged.reflectance_scaling().describe()
        == given.over({"scaling": "landsat-c2l2"}).reflectance_scaling().describe()
    )
    own = Scaling(2.0, 0.0, "mine")
    kept = ColumnOptions(None, None, None, None, None, None, None, {}, own, None, None)
    assert kept.over(config).reflectance_scaling() is own
    assert kept.over(config).target == "SSC"


def test_resolve_columns_finds_each_meaning(tmp_path):
    import pandas as pd

    from saltmap.io.sample_columns import ColumnOptions, resolve_columns

    raw = pd.DataFrame(columns=["Name", "lon", "lat", "EC", "Blue", "Green", "note"])
    options = ColumnOptions("EC", None, None, None, None, None, None, {}, "reflectance",
                            None, None)  # fmt: skip
    found = resolve_columns(raw, options, None, tmp_path / "s.csv", True)
    assert (found.target, found.id, found.x, found.y) == ("EC", "Name", "lon", "lat")
    assert found.crs == "EPSG:4326" and found.bands == {"B": "Blue", "G": "Green"}
    assert resolve_columns(raw, options, None, tmp_path / "s.csv", False).bands == {}


def test_sample_names_moved_out_still_import_from_samples():
    from saltmap.io import sample_columns, sample_files, samples

    assert samples.detect_band_columns is sample_columns.detect_band_columns
    assert samples.TABLE_SUFFIXES is sample_files.TABLE_SUFFIXES
    assert samples.VECTOR_SUFFIXES is sample_files.VECTOR_SUFFIXES


def test_column_settings_give_what_the_keywords_give():
    from saltmap.io.sample_columns import ColumnOptions

    by_keywords = read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, to_unit="dS/m")
    settings = ColumnOptions(**ODISHA_OPTIONS, to_unit="dS/m")
    by_settings = read_samples(datasets.odisha_samples(), settings)
    pd.testing.assert_frame_equal(by_settings.table, by_keywords.table)
    pd.testing.assert_frame_equal(by_settings.rejected, by_keywords.rejected)
    assert (by_settings.target_name, by_settings.target_unit) == (
        by_keywords.target_name,
        by_keywords.target_unit,
    )
    # a keyword beside the settings wins over the settings' field
    beside = read_samples(
        datasets.odisha_samples(), ColumnOptions(**ODISHA_OPTIONS), to_unit="dS/m"
    )
    pd.testing.assert_frame_equal(beside.table, by_keywords.table)


def test_an_unknown_read_option_is_refused_by_name():
    with pytest.raises(TypeError, match="colour"):
        read_samples(datasets.odisha_samples(), **ODISHA_OPTIONS, colour="red")

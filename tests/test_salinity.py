"""Tests of saltmap.salinity: EC units, the EC → salt fit on the real Xinjiang sheet, classes.

The Xinjiang lab sheet is real data; small CSV files written here are synthetic
fixtures for reading mechanics (decimal commas, blank lines), and say so.
"""

from __future__ import annotations

import math

import numpy as np
import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from typer.testing import CliRunner

from saltmap.cli import app
from saltmap.datasets import xinjiang_lab_sheet
from saltmap.errors import (
    ConfigError,
    MissingColumnError,
    OutputExistsError,
    SaltmapError,
    SampleDataError,
    UnitError,
)
from saltmap.salinity.classes import (
    FAO_EC,
    SCHEMES,
    STUDY,
    ClassScheme,
    classify,
    scheme_from_thresholds,
)
from saltmap.salinity.conversion import (
    SaltConversion,
    fit_salt_conversion,
    load_conversion,
    save_conversion,
)
from saltmap.salinity.labsheet import fit_lab_sheet, read_lab_sheet
from saltmap.salinity.units import convert_ec, normalise_unit, parse_numbers

# -- units ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "unit"),
    [("uS/cm", "µS/cm"), ("µS/cm", "µS/cm"), ("μS/cm", "µS/cm"), ("us_cm", "µS/cm"),
     ("uS cm-1", "µS/cm"), ("mS/cm", "mS/cm"), ("ms cm-1", "mS/cm"), ("MS/CM", "mS/cm"),
     ("mmhos/cm", "mS/cm"), ("dS/m", "dS/m"), ("ds m-1", "dS/m"), ("dS·m⁻¹", "dS/m"),
     ("dS m^-1", "dS/m"), ("g/kg", "g/kg"), ("g kg-1", "g/kg"), ("%", "%")],
)  # fmt: skip
def test_normalise_unit_reads_lab_spellings(text, unit):
    assert normalise_unit(text) == unit


def test_unknown_unit_names_the_accepted_ones():
    with pytest.raises(UnitError, match=r"'ppm'.*µS/cm.*mS/cm.*dS/m.*g/kg") as err:
        normalise_unit("ppm")
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [(1500.0, "uS/cm", "dS/m", 1.5), (1.5, "dS/m", "uS/cm", 1500.0), (2.0, "mS/cm", "dS/m", 2.0),
     (0.25, "mS/cm", "us_cm", 250.0), (1.2, "%", "g/kg", 12.0)],
)  # fmt: skip
def test_convert_ec_factors(value, src, dst, expected):
    assert convert_ec(value, src, dst) == pytest.approx(expected)


@given(
    values=st.lists(st.floats(0, 1e5, allow_nan=False), min_size=1, max_size=20),
    src=st.sampled_from(["uS/cm", "mS/cm", "dS/m"]),
    dst=st.sampled_from(["uS/cm", "mS/cm", "dS/m"]),
)
def test_convert_ec_round_trip(values, src, dst):
    back = convert_ec(convert_ec(values, src, dst), dst, src)
    np.testing.assert_allclose(back, values, rtol=1e-12, atol=1e-300)  # subnormals underflow


def test_convert_ec_keeps_pandas_type_and_nan():
    out = convert_ec(pd.Series([1000.0, np.nan], index=["a", "b"]), "uS/cm", "dS/m")
    assert isinstance(out, pd.Series) and list(out.index) == ["a", "b"]
    assert out["a"] == 1.0 and np.isnan(out["b"])


@pytest.mark.parametrize(("src", "dst"), [("mS/cm", "g/kg"), ("g kg-1", "dS/m")])
def test_ec_to_salt_content_needs_a_conversion(src, dst):
    with pytest.raises(UnitError, match="conversion"):
        convert_ec(1.0, src, dst)


# -- messy cells ---------------------------------------------------------------------------


def test_parse_numbers_reads_decimal_commas_and_reports_the_rest():
    cells = ["6,1", " 7.5 ", 3, "", None, "n.d.", "<0.1", "1,234", "1,234.5", "inf"]
    out = parse_numbers(cells)
    assert out.value.iloc[:3].tolist() == [6.1, 7.5, 3.0]
    assert out.decimal_comma.tolist() == [True] + [False] * 9
    assert out.reason.iloc[:3].isna().all()
    assert out.value.iloc[3:].isna().all()
    reasons = out.reason.iloc[3:].tolist()
    assert reasons[:2] == ["blank", "blank"]
    assert "not a number" in reasons[2] and "censored" in reasons[3]
    assert "ambiguous" in reasons[4]  # 1,234: decimal comma or thousands? not guessed
    assert all(r for r in reasons)


def test_thousands_or_decimal_comma_is_decided_by_the_column():
    # "1,234" alone is ambiguous; beside "6,1" the column writes decimal commas;
    # beside "6.1" the comma could be a thousands separator, so it is reported.
    assert parse_numbers(["1,234"]).value.isna().all()
    assert parse_numbers(["1,234", "6,1"]).value.tolist() == [1.234, 6.1]
    mixed = parse_numbers(["1,234", "6.1"])
    assert "ambiguous" in mixed.reason.iloc[0] and mixed.value.iloc[1] == 6.1


# -- the real Xinjiang lab sheet -----------------------------------------------------------


@pytest.fixture(scope="module")
def raw_sheet():
    """The real sheet's EC, SSC and ID cells exactly as openpyxl reads them, by row number."""
    ws = openpyxl.load_workbook(xinjiang_lab_sheet(), read_only=True).active
    rows = ws.iter_rows(values_only=True)
    header = list(next(rows))
    ie, isal, iid = header.index("EC(ms cm-1)"), header.index("SSC(g kg-1)"), header.index("ID")
    cells = {n: (r[ie], r[isal], r[iid]) for n, r in enumerate(rows, start=2)}
    return pd.DataFrame.from_dict(cells, orient="index", columns=["ec", "salt", "id"])


@pytest.fixture(scope="module")
def xinjiang_fit():
    return fit_lab_sheet(xinjiang_lab_sheet())


def _is_number(cell) -> bool:
    return isinstance(cell, int | float) and not isinstance(cell, bool) and math.isfinite(cell)


def test_xinjiang_columns_and_units_are_found_by_name(xinjiang_fit):
    sheet = xinjiang_fit.sheet
    assert (sheet.ec_column, sheet.ec_unit) == ("EC(ms cm-1)", "mS/cm")
    assert (sheet.salt_column, sheet.salt_unit) == ("SSC(g kg-1)", "g/kg")
    assert sheet.id_column == "ID"


def test_xinjiang_every_row_is_used_or_reported(xinjiang_fit, raw_sheet):
    conv, rejected = xinjiang_fit.conversion, xinjiang_fit.rejected
    assert conv.n + len(rejected) == len(raw_sheet) == 322
    assert len(rejected) > 0
    assert set(rejected["row"]).isdisjoint(xinjiang_fit.usable.index)


def test_xinjiang_rejected_rows_really_are_unusable_in_the_raw_file(xinjiang_fit, raw_sheet):
    for row in xinjiang_fit.rejected.itertuples():
        ec, salt, ident = raw_sheet.loc[row.row]
        assert not (_is_number(ec) and _is_number(salt)), row
        assert row.id == ident
        assert row.reason
    # and every other row has two numbers or a decimal-comma text that parse_numbers reads
    kept = raw_sheet.drop(index=xinjiang_fit.rejected["row"])
    for ec, salt in zip(kept.ec, kept.salt, strict=True):
        assert _is_number(salt)
        assert _is_number(ec) or ("," in ec and float(ec.replace(",", ".")) >= 0)


def test_xinjiang_decimal_comma_cells_are_read_not_dropped(xinjiang_fit, raw_sheet):
    texts = raw_sheet[raw_sheet.ec.map(lambda c: isinstance(c, str) and "," in c)]
    assert len(texts) >= 1  # the real sheet has "6,1"
    commas = xinjiang_fit.decimal_commas.set_index("row")
    for row, cell in texts.ec.items():
        assert commas.loc[row, "read_as"] == float(cell.replace(",", "."))
        assert xinjiang_fit.usable.loc[row, "ec"] == float(cell.replace(",", "."))


def test_xinjiang_fit_equals_linregress_on_the_usable_rows(xinjiang_fit, raw_sheet):
    def number(cell):
        return float(cell.replace(",", ".")) if isinstance(cell, str) else cell

    usable = raw_sheet[[_is_number(number(e)) and _is_number(s) for e, s in
                        zip(raw_sheet.ec, raw_sheet.salt, strict=True)]]  # fmt: skip
    expected = stats.linregress(usable.ec.map(number).astype(float), usable.salt.astype(float))
    conv = xinjiang_fit.conversion
    assert conv.n == len(usable)
    assert conv.slope == pytest.approx(expected.slope, rel=1e-12)
    assert conv.intercept == pytest.approx(expected.intercept, rel=1e-12)
    assert conv.r2 == pytest.approx(expected.rvalue**2, rel=1e-12)
    assert conv.ec_unit == "mS/cm" and "raw.xlsx" in conv.source


def test_xinjiang_suspect_rows_are_listed_not_removed(xinjiang_fit):
    suspects, usable, conv = xinjiang_fit.suspects, xinjiang_fit.usable, xinjiang_fit.conversion
    assert set(suspects.index) <= set(usable.index)  # still in the fit
    residual = usable.salt - conv.to_salt(usable.ec)
    sd = np.sqrt((residual**2).sum() / (len(residual) - 2))
    assert set(suspects.index) == set(residual.index[residual.abs() > 4 * sd])


def test_real_sheet_as_csv_gives_the_same_fit(tmp_path, xinjiang_fit):
    # Fixture written by the test from the real sheet, semicolon-separated with decimal
    # commas as a European spreadsheet would save it.
    table = pd.read_excel(xinjiang_lab_sheet(), dtype=object)
    table = table.map(lambda c: str(c).replace(".", ",") if _is_number(c) else c)
    path = tmp_path / "lab.csv"
    table.to_csv(path, sep=";", index=False)
    fit = fit_lab_sheet(path)
    assert fit.conversion.n == xinjiang_fit.conversion.n
    assert fit.conversion.slope == pytest.approx(xinjiang_fit.conversion.slope, rel=1e-9)
    assert list(fit.rejected["row"]) == list(xinjiang_fit.rejected["row"])


# -- reading mechanics (synthetic CSV fixtures) ----------------------------------------------


def test_synthetic_csv_rows_are_numbered_as_in_the_file(tmp_path):
    path = tmp_path / "synthetic_lab.csv"
    path.write_text(
        "sample,EC (dS/m),Salt content (g/kg)\n"  # line 1
        "a,1.0,3.1\n"
        "b,2,5.9\n"
        "\n"  # line 4: a blank line is a row, reported
        "c,abc,9.0\n"  # line 5
        "d,4.0,\n"  # line 6
        "e,5.0,17.2\n"
        "f,-1,2\n",  # line 8
        encoding="utf-8",
    )
    conv, rejected = fit_salt_conversion(*_lab_columns(path), "dS/m")
    reasons = dict(zip(rejected["row"], rejected["reason"], strict=True))
    assert set(reasons) == {4, 5, 6, 8}
    assert "'abc' is not a number" in reasons[5]
    assert reasons[6] == "salt content blank"
    assert "negative" in reasons[8]
    assert conv.n == 3


def _lab_columns(path):
    sheet = read_lab_sheet(path)
    return sheet.ec, sheet.salt


def test_column_detection_errors_name_the_columns(tmp_path):
    path = tmp_path / "synthetic_lab.csv"
    path.write_text("site,EC,pH\nx,1,7\n", encoding="utf-8")
    with pytest.raises(MissingColumnError, match=r"salt content.*\['site', 'EC', 'pH'\].*--salt"):
        read_lab_sheet(path)
    path.write_text("EC,ECe,SSC (g/kg)\n1,2,3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="several columns look like EC"):
        read_lab_sheet(path)
    with pytest.raises(UnitError, match="--ec-unit"):
        read_lab_sheet(path, ec_column="EC")
    assert read_lab_sheet(path, ec_column="EC", ec_unit="uS/cm").ec_unit == "µS/cm"
    with pytest.raises(MissingColumnError, match="'EC25'"):
        read_lab_sheet(path, ec_column="EC25")


def test_given_unit_must_agree_with_the_header():
    with pytest.raises(UnitError, match="says mS/cm but µS/cm"):
        read_lab_sheet(xinjiang_lab_sheet(), ec_unit="uS/cm")
    assert read_lab_sheet(xinjiang_lab_sheet(), ec_unit="dS/m").ec_unit == "dS/m"  # same factor


def test_fit_needs_three_pairs_and_varying_ec():
    with pytest.raises(SampleDataError, match="only 2 usable"):
        fit_salt_conversion([1, 2, "x"], [3, 4, 5], "dS/m")
    with pytest.raises(SampleDataError, match="all 3 EC values are 2"):
        fit_salt_conversion([2, 2, 2], [3, 4, 5], "dS/m")


# -- conversions ---------------------------------------------------------------------------


def test_conversion_units_and_inverse():
    conv = SaltConversion(slope=4.0, intercept=-1.0, ec_unit="ms cm-1")
    assert conv.ec_unit == "mS/cm"
    assert conv.to_salt(2.0) == 7.0
    assert conv.to_salt(2000.0, ec_unit="uS/cm") == 7.0
    np.testing.assert_allclose(conv.to_ec(conv.to_salt([0.5, 3.0])), [0.5, 3.0])
    with pytest.raises(UnitError):
        SaltConversion(slope=1.0, intercept=0.0, ec_unit="g/kg")


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_conversion_file_round_trip(tmp_path, xinjiang_fit, suffix):
    path = save_conversion(xinjiang_fit.conversion, tmp_path / f"conversion{suffix}")
    assert load_conversion(path) == xinjiang_fit.conversion


def test_bad_conversion_file_says_what_is_missing(tmp_path):
    path = tmp_path / "conversion.toml"
    path.write_text("[salt_conversion]\nslope = 4.0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"conversion\.toml.*intercept"):
        load_conversion(path)
    path.write_text("[salt_conversion]\nslope = 4.0\nintercept = 1\nec_unit = 'S/m'\n")
    with pytest.raises(UnitError, match="S/m"):
        load_conversion(path)


# -- classes -------------------------------------------------------------------------------


def test_study_classes_lower_bound_inclusive():
    values = np.array([-0.5, 0.0, 0.999, 1.0, 1.999, 2.0, 3.99, 4.0, 5.99, 6.0, 250.0])
    assert classify(values, "study").tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert STUDY.labels[4] == "solonchak"


def test_classify_no_data_shape_and_dtype():
    grid = np.array([[np.nan, 1.5], [np.inf, -9999.0]])
    codes = classify(grid, STUDY, nodata=-9999.0)
    assert codes.dtype == np.uint8 and codes.shape == (2, 2)
    assert codes.tolist() == [[0, 2], [0, 0]]


def test_fao_classes_with_unit_conversion():
    ec_us_cm = [1999.0, 2000.0, 4000.0, 7999.0, 8000.0, 16000.0, 40000.0]
    assert classify(ec_us_cm, "fao-ec", unit="uS/cm").tolist() == [1, 2, 3, 3, 4, 5, 5]
    assert FAO_EC.thresholds == (2.0, 4.0, 8.0, 16.0) and FAO_EC.unit == "dS/m"
    with pytest.raises(UnitError, match="conversion"):
        classify([1.0], "fao-ec", unit="g/kg")


def test_user_thresholds_and_colour_table():
    scheme = scheme_from_thresholds("0.5, 3, 10", unit="dS/m")
    assert scheme.quantity == "EC" and scheme.n_classes == 4
    assert scheme.labels == ("< 0.5 dS/m", "0.5–3 dS/m", "3–10 dS/m", "≥ 10 dS/m")
    assert classify([0.4, 0.5, 3.0, 11.0], scheme).tolist() == [1, 2, 3, 4]
    table = scheme.colour_table()
    assert table[0][3] == 0 and len(table) == 5
    assert all(len(c) == 7 for c in scheme.colours)


def test_scheme_colours_run_green_then_yellow_to_dark():
    for scheme in SCHEMES.values():
        rgb = np.array([scheme.colour_table()[k][:3] for k in range(1, scheme.n_classes + 1)])
        assert rgb[0, 1] > rgb[0, 0]  # first class green-ish
        brightness = rgb[1:].sum(axis=1)
        assert np.all(np.diff(brightness) < 0)  # saline classes darken steadily


@pytest.mark.parametrize(
    "kwargs",
    [{"thresholds": (2.0, 1.0)}, {"thresholds": (1.0, np.nan)}, {"labels": ("a", "b")},
     {"colours": ("red",) * 5}],
)  # fmt: skip
def test_bad_schemes_are_config_errors(kwargs):
    base = {"name": "x", "quantity": "salt content", "unit": "g/kg", "thresholds": (1, 2, 4, 6),
            "labels": STUDY.labels, "colours": STUDY.colours}  # fmt: skip
    base.update(kwargs)
    with pytest.raises(ConfigError):
        ClassScheme(**base)


def test_unknown_scheme_lists_the_built_ins():
    with pytest.raises(ConfigError, match=r"fao-ec.*study"):
        classify([1.0], "usda")


# -- command line --------------------------------------------------------------------------


def test_cli_convert_fit_on_the_real_sheet(tmp_path, xinjiang_fit):
    out = tmp_path / "xj.toml"
    runner = CliRunner()
    args = ["convert", "fit", str(xinjiang_lab_sheet()), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    conv = xinjiang_fit.conversion
    text = " ".join(result.output.split())
    for needle in (f"{conv.slope:.6g}", f"{conv.intercept:.6g}", f"{conv.r2:.6f}",
                   f"n {conv.n} rows used", f"rejected {len(xinjiang_fit.rejected)} rows",
                   "'6,1' as 6.1"):  # fmt: skip
        assert needle in text, needle
    for row in xinjiang_fit.rejected.itertuples():
        assert f"row {row.row} ({row.id}): {row.reason}" in text
    assert load_conversion(out) == conv
    written = pd.read_csv(tmp_path / "xj_rejected.csv")
    assert written["row"].tolist() == xinjiang_fit.rejected["row"].tolist()
    assert (tmp_path / "xj.png").stat().st_size > 0

    again = runner.invoke(app, args)
    assert isinstance(again.exception, OutputExistsError)
    assert runner.invoke(app, [*args, "--overwrite", "--no-figure"]).exit_code == 0


def test_cli_convert_ec(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["convert", "ec", "1500", "250", "--from", "uS/cm", "--to", "dS/m"])
    assert result.exit_code == 0, result.output
    assert "1500 µS/cm = 1.5 dS/m" in result.output and "250 µS/cm = 0.25 dS/m" in result.output
    bad = runner.invoke(app, ["convert", "ec", "1", "--from", "mS/cm", "--to", "g/kg"])
    assert isinstance(bad.exception, SaltmapError) and "conversion" in str(bad.exception)
    path = save_conversion(SaltConversion(4.0, -1.0, "mS/cm"), tmp_path / "c.toml")
    args = ["convert", "ec", "2", "--from", "mS/cm", "--to", "g/kg", "--conversion", str(path)]
    assert "2 mS/cm = 7 g/kg" in runner.invoke(app, args).output


# -- the module split of issue 12 ---------------------------------------------------------


def test_unit_factor_is_the_factor_to_the_base_unit():
    from saltmap.salinity.units import unit_factor

    assert unit_factor("uS/cm") == pytest.approx(1e-3)
    assert unit_factor("ms cm-1") == unit_factor("dS/m") == 1.0
    assert unit_factor("%") == 10.0
    with pytest.raises(UnitError):
        unit_factor("ppm")

"""Property-based tests (hypothesis): the index catalogue's domain rule and the sample readers.

Synthetic inputs by design: hypothesis draws reflectance arrays with zeros, negatives, NaN and
exact cancellations, and sample files made of junk cells. Example counts are kept small so the
file runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import math
import tempfile
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from saltmap.bands import ROLES
from saltmap.errors import SaltmapError
from saltmap.features.indices import CATALOGUE, IndexFeatures, compute_indices
from saltmap.io.samples import read_samples
from saltmap.salinity.units import parse_numbers

QUICK = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FILES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------------------- reflectance

# Dyadic values (k/16) add and multiply exactly, so denominators such as S1+N-B and
# N·R+G·B really reach zero; quantised values are what sensors store (Sentinel-2 DN/10000,
# Landsat C2L2 DN·2.75e-5-0.2); generic floats are bounded away from under/overflow:
# reflectance of 1e-300 is not a measurement and would make any ratio overflow.
_special = st.sampled_from([0.0, -0.0, math.nan, 0.125, -0.125, 0.5, 1.0, -0.5])
_dyadic = st.integers(-16, 24).map(lambda k: k / 16)
_sentinel2 = st.integers(-2000, 20000).map(lambda dn: dn / 10_000)
_landsat = st.integers(0, 65535).map(lambda dn: dn * 0.0000275 - 0.2)
_generic = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False).map(
    lambda v: 0.0 if abs(v) < 1e-30 else v
)
REFLECTANCE = st.one_of(_special, _dyadic, _dyadic, _sentinel2, _landsat, _generic)


@st.composite
def band_arrays(draw) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 25))
    return {r: draw(hnp.arrays(np.float64, n, elements=REFLECTANCE)) for r in ROLES}


def _never(b):
    return np.zeros_like(b["G"], dtype=bool)


def _crsi_undefined(b):
    den = b["N"] * b["R"] + b["G"] * b["B"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (b["N"] * b["R"] - b["G"] * b["B"]) / den
    return (den == 0) | (ratio < 0)


# Where each index is undefined, written here from its formula (denominators and radicands),
# independently of the catalogue's code: (bands it reads, undefined(bands)).
UNDEFINED = {
    "SI": ("GR", lambda b: b["G"] * b["R"] < 0),
    "SI1": ("GR", lambda b: b["G"] + b["R"] < 0),
    "SI2": ("GRN", _never),
    "SI3": ("GR", _never),
    "SI4": ("N S1", lambda b: b["N"] == 0),
    "S1": ("BR", lambda b: b["R"] == 0),
    "S2": ("BR", lambda b: b["B"] + b["R"] == 0),
    "S3": ("BGR", lambda b: b["B"] == 0),
    "S5": ("BGR", lambda b: b["G"] == 0),
    "S6": ("GRN", lambda b: b["G"] == 0),
    "S8": ("GR", _never),
    "S9": ("GRN", _never),
    "SSSI-1": ("RN", _never),
    "SSSI-2": ("RN", lambda b: b["R"] == 0),
    "NDSI": ("N S1", lambda b: b["N"] + b["S1"] == 0),
    "CRSI": ("BGRN", _crsi_undefined),
    "SRSI": ("GRN", lambda b: (b["N"] + b["R"] == 0) | (b["G"] * b["R"] < 0)),
    "SAI": ("G N S1", lambda b: b["G"] * b["N"] * b["S1"] == 0),
    "TRSI": ("B N S1", lambda b: b["S1"] + b["N"] - b["B"] == 0),
    "SBCI": ("G R S1", lambda b: b["R"] ** 2 + b["G"] ** 2 == 0),
    "GOSI": ("R N S1", _never),
    "NDVI": ("RN", lambda b: b["N"] + b["R"] == 0),
    "SSSI-1-SWIR": ("S1 S2", _never),
    "SSSI-2-SWIR": ("S1 S2", lambda b: b["S1"] == 0),
}


def _roles(spec: str) -> list[str]:
    return spec.split() if " " in spec else list(spec)


def test_every_catalogue_index_has_an_independent_domain():
    assert set(UNDEFINED) == set(CATALOGUE)
    for name, (spec, _) in UNDEFINED.items():
        assert sorted(_roles(spec)) == sorted(CATALOGUE[name].bands), name


@QUICK
@given(band_arrays())
def test_indices_are_nan_exactly_where_undefined_and_never_inf(bands):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the domain rule: no RuntimeWarning either
        got = compute_indices(bands, "all")
    for name, (spec, undefined) in UNDEFINED.items():
        inputs = {r: bands[r] for r in _roles(spec)}
        with np.errstate(all="ignore"):
            expect_nan = np.logical_or.reduce([np.isnan(v) for v in inputs.values()])
            expect_nan |= undefined(bands)
        values = np.asarray(got[name])
        assert not np.isinf(values).any(), name
        np.testing.assert_array_equal(np.isnan(values), expect_nan, err_msg=name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(band_arrays(), st.integers(1, 7))
def test_numpy_pandas_xarray_dask_agree(bands, chunk):
    on_numpy = compute_indices(bands, "all")
    frame = pd.DataFrame(bands, index=pd.RangeIndex(len(bands["G"])) + 100)
    on_pandas = compute_indices(frame, "all")
    on_xarray = compute_indices({r: xr.DataArray(v, dims="pixel") for r, v in bands.items()}, "all")
    on_dask = compute_indices({r: da.from_array(v, chunks=chunk) for r, v in bands.items()}, "all")
    # One synchronous compute for all indices: the graph, not the thread pool, is under test.
    dask_values = dict(
        zip(on_dask, da.compute(*on_dask.values(), scheduler="synchronous"), strict=True)
    )
    features = IndexFeatures("all").fit(frame).transform(frame)
    assert list(on_pandas.index) == list(frame.index)
    for i, name in enumerate(CATALOGUE):
        expected = on_numpy[name]
        np.testing.assert_array_equal(on_pandas[name].to_numpy(), expected, err_msg=name)
        assert isinstance(on_xarray[name], xr.DataArray)
        np.testing.assert_array_equal(on_xarray[name].values, expected, err_msg=name)
        assert isinstance(on_dask[name], da.Array)
        np.testing.assert_array_equal(dask_values[name], expected, err_msg=name)
        np.testing.assert_array_equal(features[:, i], expected, err_msg=name)


# ---------------------------------------------------------------------------- parse_numbers

_ANY_CELL = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # including integers too large for a float
    st.floats(),  # NaN and ±inf included
    st.decimals(allow_nan=True),
    st.text(),
    st.sampled_from(["6,1", "1,234", "1.234,5", "<0.5", "n.d.", "1e999", "-inf", "١٢٫٥", "１２"]),
    st.just(np.float32(3.5)),
    st.just(np.int64(7)),
    st.just(pd.NA),
    st.just(dt.date(2024, 5, 1)),
)


@QUICK
@given(st.lists(_ANY_CELL, max_size=30))
def test_parse_numbers_never_crashes_and_explains_every_gap(cells):
    parsed = parse_numbers(cells)
    assert len(parsed) == len(cells)
    values = parsed["value"].to_numpy()
    assert not np.isinf(values).any()
    for value, reason in zip(values, parsed["reason"], strict=True):
        # A number, or NaN with a reason: never a silent gap, never a reason on a number.
        assert (reason is None) == (not math.isnan(value))
        assert reason is None or (isinstance(reason, str) and reason)


# ---------------------------------------------------------------------------- read_samples

COLUMNS = ["id", "EC", "lon", "lat", "Blue", "Green", "Red", "NIR", "SWIR1", "SWIR2"]
_JUNK = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "n.d.",
            "<0.5",
            ">2",
            "NA",
            "nan",
            "inf",
            "-inf",
            "1e999",
            "1e308",
            "-1e308",
            "1,234",
            "1.234,5",
            "0,25",
            "TRUE",
            "١٢٫٥",
            "１２",
            "1_000",
            "—",
            "\u00a0",
            "é",
            "🙂",
            "0x10",
            '"',
            "a,b",
            "line\nbreak",
            "-",
            ".",
        ]
    ),
    st.text(max_size=6),
    st.floats(allow_nan=False).map(repr),
)
_REFL = st.floats(0, 0.9).map(lambda v: f"{v:.4f}")
_GOOD = {
    "id": st.sampled_from(["a", "b", "c", "d", " a ", "P-1", "P-2", "P-3", "ü", "7"]),
    "EC": st.floats(0, 60_000).map(lambda v: f"{v:.1f}"),
    "lon": st.floats(-180, 180).map(lambda v: f"{v:.5f}"),
    "lat": st.floats(-90, 90).map(lambda v: f"{v:.5f}"),
}


def _cell(column: str):
    good = _GOOD.get(column, _REFL)
    decimal_comma = good.map(lambda t: t.replace(".", ","))
    return st.one_of(good, good, good, decimal_comma, _JUNK)


@st.composite
def junk_table(draw) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in COLUMNS if c in ("EC", "Blue") or draw(st.booleans())]
    n_rows = draw(st.integers(1, 10))
    rows = [[draw(_cell(c)) for c in columns] for _ in range(n_rows)]
    return columns, rows


def _check_accounted(samples, n_rows: int) -> None:
    table, rejected = samples.table, samples.rejected
    assert len(table) + len(rejected) == n_rows
    kept_rows = [int(t[1:]) for t in table["rowtag"]]
    assert sorted(kept_rows + list(rejected["row"])) == list(range(2, n_rows + 2))
    assert all(isinstance(r, str) and r for r in rejected["reason"])
    assert table.index.is_unique
    used = [*samples.roles, "target", *(c for c in ("x", "y") if c in table)]
    assert np.isfinite(table[used].to_numpy(dtype=float)).all()


def _read_or_saltmap_error(path: Path, n_rows: int, **options) -> None:
    try:
        samples = read_samples(path, target="EC", **options)
    except SaltmapError:
        return  # a clear, saltmap-worded refusal is an allowed outcome
    _check_accounted(samples, n_rows)


@FILES
@given(junk_table(), st.sampled_from([",", ";", "\t"]))
def test_read_samples_on_junk_csv_never_crashes_and_accounts_for_every_row(table, sep):
    columns, rows = table
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "samples.csv"
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, delimiter=sep)
            writer.writerow(["rowtag", *columns])
            writer.writerows([f"r{i + 2}", *row] for i, row in enumerate(rows))
        options = {"id": "id"} if "id" in columns else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # implausible-reflectance warnings are expected
            _read_or_saltmap_error(path, len(rows), **options)


_XLSX_CELL = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(0, 0.9),
    st.floats(0, 0.9),
    # XLSX cannot hold control characters; "=" would start a formula.
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=6).filter(
        lambda t: not t.startswith("=")
    ),
    st.just(1.7976931348623155e308),  # rounds to inf when read back
    st.just(dt.datetime(2024, 5, 1, 12, 0)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_XLSX_CELL, min_size=8, max_size=8), min_size=1, max_size=6))
def test_read_samples_on_junk_xlsx_never_crashes(rows):
    import openpyxl

    columns = ["EC", "Blue", "Green", "Red", "NIR", "SWIR1", "SWIR2", "note"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "samples.xlsx"
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(["rowtag", *columns])
        for i, row in enumerate(rows):
            sheet.append([f"r{i + 2}", *row])
        book.save(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _read_or_saltmap_error(path, len(rows))


def test_decimal_cells_example():
    """A hand-made example of the property, so a failure reads plainly."""
    parsed = parse_numbers(["6,1", decimal.Decimal("2.5"), "", "n.d."])
    assert parsed["value"].tolist()[:2] == [6.1, 2.5]
    assert parsed["reason"].tolist()[2:] == ["blank", "'n.d.' is not a number"]

"""Index catalogue: values on real Odisha samples, domain rules, array types."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.base import clone

from saltmap.errors import MissingBandError, SaltmapError, UnknownIndexError
from saltmap.features.indices import (
    CATALOGUE,
    CLASSIC,
    NOVEL,
    IndexFeatures,
    catalogue_table,
    compute_indices,
    get_index,
    resolve,
)
from saltmap.io.samples import odisha

# Landsat C2 L2 digital numbers of three real Odisha samples (samples.csv), as B G R N S1 S2.
REAL_DN = {
    "C-S01_20240213": (9198, 10559, 10817, 15373, 16239, 13794),
    "C-S02_20240213": (9204, 10471, 10791, 14768, 15569, 13142),
    "C-S03_20240213": (9911, 11216, 11948, 16251, 18521, 16456),
}
# Worked out by hand from the study's Table 2 formulas on reflectance = DN * 0.0000275 - 0.2,
# with a calculator's arithmetic, independent of saltmap's catalogue.
BY_HAND = {
    "C-S01_20240213": {
        "SI": 0.093852979,
        "SI1": 0.43340512,
        "SI2": 0.25939932,
        "SI3": 0.13291765,
        "SI4": 1.10691,
        "S1": 0.54320671,
        "S2": -0.29600266,
        "S3": 0.16636853,
        "S5": 0.057101627,
        "S6": 0.24024583,
        "S8": 0.09392,
        "S9": 0.20529875,
        "SSSI-1": -0.12529,
        "SSSI-2": -0.28634455,
        "NDSI": -0.050742548,
        "CRSI": 0.79927211,
        "SRSI": 0.61593625,
        "SAI": 3.8970804,
        "TRSI": 0.18434862,
        "SBCI": 1.8550772,
        "GOSI": -0.1371975,
        "NDVI": 0.39125615,
    },
    "C-S02_20240213": {
        "SI": 0.092247625,
        "SI1": 0.4297732,
        "SI2": 0.24409454,
        "SI3": 0.13075431,
        "SI4": 1.1068674,
        "S1": 0.54892638,
        "S2": -0.29121695,
        "S3": 0.1602264,
        "S5": 0.058423868,
        "S6": 0.22674313,
        "S8": 0.0923525,
        "S9": 0.1954125,
        "SSSI-1": -0.1093675,
        "SSSI-2": -0.2329948,
        "NDSI": -0.050723344,
        "CRSI": 0.78768253,
        "SRSI": 0.64552445,
        "SAI": 4.1831068,
        "TRSI": 0.1971298,
        "SBCI": 1.7448565,
        "GOSI": -0.12038125,
        "NDVI": 0.36110079,
    },
    "C-S03_20240213": {
        "SI": 0.1180768,
        "SI1": 0.48683673,
        "SI2": 0.29874793,
        "SI3": 0.16819476,
        "SI4": 1.2528326,
        "S1": 0.56430349,
        "S2": -0.27852428,
        "S3": 0.1921661,
        "S5": 0.08602061,
        "S6": 0.29273565,
        "S8": 0.118505,
        "S9": 0.24195625,
        "SSSI-1": -0.1183325,
        "SSSI-2": -0.22724267,
        "NDSI": -0.11222875,
        "CRSI": 0.77637984,
        "SRSI": 0.69494828,
        "SAI": 5.6124213,
        "TRSI": 0.27906508,
        "SBCI": 1.839103,
        "GOSI": -0.149545,
        "NDVI": 0.31515624,
    },
}


@pytest.fixture(scope="module")
def samples():
    return odisha()


def test_catalogue_has_the_study_indices():
    assert len(CLASSIC) == 17 and len(NOVEL) == 4
    assert set(NOVEL) == {"SAI", "TRSI", "SBCI", "GOSI"}
    table = catalogue_table()
    assert {"name", "group", "formula", "bands", "reference"} <= set(table.columns)
    assert table["reference"].str.len().min() > 0


@pytest.mark.parametrize("sample_id", list(REAL_DN))
def test_index_values_on_real_samples_match_hand_computation(samples, sample_id):
    dn = samples.table.loc[sample_id, ["B", "G", "R", "N", "S1", "S2"]].to_numpy()
    assert np.allclose((dn + 0.2) / 0.0000275, REAL_DN[sample_id])
    values = compute_indices(samples.reflectance.loc[[sample_id]], list(BY_HAND[sample_id]))
    for name, expected in BY_HAND[sample_id].items():
        assert values[name].iloc[0] == pytest.approx(expected, rel=1e-6), name


def _zeros_and_negatives():
    """Synthetic reflectance that hits every undefined point of the catalogue."""
    bands = {r: np.full(6, 0.2) for r in ("B", "G", "R", "N", "S1", "S2")}
    bands["R"][0] = 0.0  # R = 0
    bands["N"][1] = 0.0  # N = 0
    bands["G"][2] = 0.0  # G = 0
    bands["B"][3] = 0.0  # B = 0
    bands["G"][4], bands["R"][4] = -0.1, 0.1  # G·R < 0
    bands["S1"][5] = 0.0  # S1 = 0
    return bands


@pytest.mark.parametrize(
    ("name", "undefined_rows"),
    [
        ("SI4", [1]),
        ("S1", [0]),
        ("S3", [3]),
        ("S5", [2]),
        ("S6", [2]),
        ("SSSI-2", [0]),
        ("SAI", [1, 2, 5]),
        ("SI", [4]),
        ("SRSI", [4]),
        ("SSSI-2-SWIR", [5]),
        ("GOSI", []),
    ],
)
def test_nan_exactly_where_undefined_and_never_inf(name, undefined_rows):
    with np.errstate(all="raise"):  # any division by zero or invalid sqrt would raise here
        values = compute_indices(_zeros_and_negatives(), [name])[name]
    assert not np.isinf(values).any()
    assert sorted(np.flatnonzero(np.isnan(values))) == undefined_rows


def test_no_runtime_warnings_on_undefined_points(recwarn):
    compute_indices(_zeros_and_negatives(), "all")
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_same_values_on_numpy_pandas_xarray_dask(samples):
    refl = samples.reflectance
    as_numpy = {r: refl[r].to_numpy() for r in refl}
    expected = compute_indices(as_numpy, "all")
    from_pandas = compute_indices(refl, "all")
    from_xarray = compute_indices({r: xr.DataArray(v) for r, v in as_numpy.items()}, "all")
    from_dask = compute_indices(
        {r: da.from_array(v, chunks=25) for r, v in as_numpy.items()}, "all"
    )
    for name in CATALOGUE:
        assert isinstance(from_xarray[name], xr.DataArray)
        assert isinstance(from_dask[name], da.Array)
        np.testing.assert_array_equal(from_pandas[name].to_numpy(), expected[name])
        np.testing.assert_array_equal(from_xarray[name].values, expected[name])
        np.testing.assert_array_equal(from_dask[name].compute(), expected[name])


def test_resolve_sets_and_unknown_names():
    assert resolve("N-SI") == list(NOVEL)
    assert resolve("study") == [*CLASSIC, *NOVEL]
    with pytest.raises(UnknownIndexError, match="saltmap indices") as info:
        resolve("SAI,NOPE")
    assert isinstance(info.value, KeyError) and isinstance(info.value, SaltmapError)
    assert "NOPE" in str(info.value) and not str(info.value).startswith("'")


def test_missing_band_is_named():
    with pytest.raises(MissingBandError, match="S1"):
        compute_indices(pd.DataFrame({"G": [0.1], "N": [0.2]}), ["SAI"])


def test_index_features_transformer_matches_catalogue(samples):
    features = clone(IndexFeatures("novel")).fit(samples.reflectance)
    out = features.transform(samples.reflectance)
    expected = compute_indices(samples.reflectance, "novel")
    np.testing.assert_allclose(out, expected.to_numpy())
    assert list(features.get_feature_names_out()) == list(NOVEL)
    # Array input follows the fitted band order.
    arr = samples.reflectance[list(features.bands_)].to_numpy()
    np.testing.assert_allclose(features.transform(arr), out)


def test_run_time_index_sets_expand_through_their_resolver(monkeypatch):
    from saltmap.features import indices

    monkeypatch.setitem(indices.SET_RESOLVERS, "picked", lambda item: ["SAI", item.split(":")[1]])
    assert resolve("novel,picked:NDVI") == [*NOVEL, "NDVI"]


def test_indices_are_chosen_as_values_without_a_registry():
    from saltmap.features.indices import SpectralIndex, index_of, resolve_items, safe_divide

    custom = SpectralIndex("GNRATIO", "green/NIR ratio", "G/N", ("G", "N"), "this test",
                           "other", "N = 0", lambda b: safe_divide(b["G"], b["N"]))  # fmt: skip
    X = odisha().reflectance
    assert resolve(["novel", custom]) == [*NOVEL, "GNRATIO"]
    assert resolve_items(["SAI", custom, "SAI"]) == ["SAI", custom]
    assert index_of(custom) is custom and index_of("SAI").name == "SAI"
    values = compute_indices(X, ["SAI", custom])
    assert list(values.columns) == ["SAI", "GNRATIO"]
    np.testing.assert_allclose(values["GNRATIO"], X["G"] / X["N"])
    step = IndexFeatures(["SAI", custom]).fit(X)
    np.testing.assert_allclose(step.transform(X), values.to_numpy())
    with pytest.raises(UnknownIndexError):
        get_index("GNRATIO")  # nothing was registered

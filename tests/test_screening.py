"""Screening on the real Odisha samples."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from saltmap.errors import SampleDataError
from saltmap.features.indices import compute_indices
from saltmap.features.screening import correlation, screen, screen_table
from saltmap.io.samples import odisha


@pytest.fixture(scope="module")
def samples():
    return odisha()


@pytest.fixture(scope="module")
def table(samples):
    return screen(samples, "study")


def test_screen_ranks_all_study_indices_by_abs_r(table):
    assert len(table) == 21
    assert table["rank"].tolist() == list(range(1, 22))
    assert table["abs_r"].is_monotonic_decreasing
    assert (table["ci_low"] <= table["r"]).all() and (table["r"] <= table["ci_high"]).all()


@pytest.mark.parametrize("name", ["GOSI", "SAI", "CRSI"])
def test_r_equals_scipy_pearsonr(samples, table, name):
    values = compute_indices(samples.reflectance, [name])[name]
    expected = stats.pearsonr(values, samples.target)
    row = table.set_index("index").loc[name]
    assert row["r"] == pytest.approx(expected.statistic, rel=1e-12)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-9)
    assert row["n"] == len(samples)


def test_undefined_values_are_counted_and_skipped():
    # Synthetic: one index value undefined out of six.
    values = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 7.0])
    target = np.array([1.1, 2.3, 3.0, 3.9, 5.2, 6.8])
    result = correlation(values, target)
    assert result["n"] == 5 and result["n_undefined"] == 1
    ok = np.isfinite(values)
    assert result["r"] == pytest.approx(stats.pearsonr(values[ok], target[ok]).statistic)


def test_constant_target_is_an_error():
    with pytest.raises(SampleDataError, match="constant"):
        screen_table(pd.DataFrame({"SAI": [1.0, 2.0, 3.0, 4.0]}), np.ones(4))

"""Spectral response by salinity class, on the real Odisha samples."""

import numpy as np
import pandas as pd
import pytest

from saltmap.errors import ConfigError
from saltmap.features.spectra import (
    SPECTRAL_TRANSFORMS,
    band_wavelengths,
    salinity_classes,
    sensor_of,
    spectral_response,
)
from saltmap.io.samples import odisha
from saltmap.plots import spectral_response_figure


@pytest.fixture(scope="module")
def samples():
    return odisha()


def test_quantile_classes_are_ordered_and_balanced(samples):
    classes = salinity_classes(samples.target, unit=samples.target_unit, n_classes=4)
    labels = classes.labels
    assert labels.cat.ordered and len(labels.cat.categories) == 4
    counts = labels.value_counts(sort=False).to_numpy()
    assert counts.sum() == len(samples) and counts.max() - counts.min() <= 1
    # Classes are ordered by salinity: each class's median EC exceeds the previous one.
    medians = samples.target.groupby(labels, observed=True).median().to_numpy()
    assert np.all(np.diff(medians) > 0)


def test_scheme_classes_convert_units(samples):
    # EC in µS/cm against FAO thresholds in dS/m: 2 dS/m is 2000 µS/cm.
    classes = salinity_classes(samples.target, unit=samples.target_unit, scheme="fao-ec")
    first = classes.labels.cat.categories[0]
    non_saline = classes.labels == first
    assert (samples.target[non_saline] < 2000).all()
    assert (samples.target[~non_saline] >= 2000).all()
    assert len(classes.colours) == len(classes.labels.cat.categories)


def test_response_means_match_a_direct_groupby(samples):
    classes = salinity_classes(samples.target, unit=samples.target_unit).labels
    sensor = sensor_of(samples.scaling)
    assert sensor == "landsat"
    table = spectral_response(samples.reflectance, classes, sensor=sensor)
    assert set(table["transform"]) == {"reflectance", "reciprocal", "square", "sqrt"}
    top = classes.cat.categories[-1]
    rows = table[(table["transform"] == "reciprocal") & (table["class"] == top)]
    expected = (1 / samples.reflectance[classes == top]).mean()
    np.testing.assert_allclose(rows.set_index("role")["mean"], expected[rows["role"]])
    waves = band_wavelengths(["N"], "landsat")["N"]
    assert (table.loc[table["role"] == "N", "wavelength_nm"] == waves).all()
    assert np.isfinite(table[["mean", "sd", "sem"]].to_numpy(dtype=float)).all()


def test_response_figure_has_four_panels(samples):
    classes = salinity_classes(samples.target, unit=samples.target_unit)
    table = spectral_response(samples.reflectance, classes.labels)
    fig = spectral_response_figure(table, colours=classes.colours)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 4
    assert len(fig.axes[0].get_lines()) == 4  # one line per class
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == [SPECTRAL_TRANSFORMS[t][0] for t in table["transform"].cat.categories]


def test_unknown_transform_or_sensor_is_refused(samples):
    classes = pd.Series("all", index=samples.table.index)
    with pytest.raises(ConfigError):
        spectral_response(samples.reflectance, classes, transforms=["cube"])
    with pytest.raises(ConfigError):
        spectral_response(samples.reflectance, classes, sensor="modis")

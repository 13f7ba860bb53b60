import numpy as np
import pytest

from saltmap.bands import (
    LANDSAT_C2L2,
    SENTINEL2_L2A_0400,
    SENTINEL2_L2A_PRE_0400,
    check_reflectance,
    role_of,
    scaling_from_name,
    sentinel2_scaling,
)
from saltmap.errors import SaltmapError, ScalingError


@pytest.mark.parametrize(
    ("name", "role"),
    [("Blue", "B"), ("SR_B5", "N"), ("B08", "N"), ("swir1", "S1"), ("B12", "S2"), ("EC", None)],
)
def test_role_of_known_names(name, role):
    assert role_of(name) == role


@pytest.mark.parametrize(
    ("baseline", "expected"),
    [
        ("02.14", SENTINEL2_L2A_PRE_0400),
        ("03.01", SENTINEL2_L2A_PRE_0400),
        ("04.00", SENTINEL2_L2A_0400),
        ("05.09", SENTINEL2_L2A_0400),
        ("N0510", None),
    ],
)
def test_sentinel2_offset_is_decided_by_baseline(baseline, expected):
    if expected is None:
        with pytest.raises(ScalingError, match="N0510"):
            sentinel2_scaling(baseline)
    else:
        assert sentinel2_scaling(baseline) == expected


def test_unknown_baseline_is_an_error_not_a_guess():
    with pytest.raises(ScalingError, match="baseline"):
        sentinel2_scaling(None)


def test_scalings_apply():
    assert SENTINEL2_L2A_0400.apply(np.array([2000]))[0] == pytest.approx(0.1)
    assert SENTINEL2_L2A_PRE_0400.apply(np.array([2000]))[0] == pytest.approx(0.2)
    assert LANDSAT_C2L2.apply(np.array([10000]))[0] == pytest.approx(0.075)
    custom = scaling_from_name("0.001,0.5")
    assert custom.apply(np.array([100]))[0] == pytest.approx(0.6)


def test_unscaled_dn_is_reported_as_a_scaling_mistake():
    dn = np.full(50, 9000.0)
    with pytest.raises(ScalingError, match="scaling mistake") as info:
        check_reflectance(dn, "samples.csv column Blue")
    assert isinstance(info.value, ValueError) and isinstance(info.value, SaltmapError)
    assert check_reflectance(LANDSAT_C2L2.apply(dn), "x") == 0.0


def test_unknown_scaling_names_the_choices():
    with pytest.raises(ScalingError, match="landsat-c2l2"):
        scaling_from_name("landsat")


def test_band_records_carry_both_sensors_resolutions():
    from saltmap.bands import BANDS, ROLES

    # Landsat 8/9 OLI reflective bands (SR_B2..SR_B7) are 30 m; Sentinel-2 10 m or 20 m.
    assert [BANDS[r].landsat for r in ROLES] == [f"SR_B{i}" for i in range(2, 8)]
    assert {r: BANDS[r].landsat_resolution_m for r in ROLES} == dict.fromkeys(ROLES, 30)
    assert {r: BANDS[r].sentinel2_resolution_m for r in ROLES} == {
        "B": 10, "G": 10, "R": 10, "N": 10, "S1": 20, "S2": 20
    }  # fmt: skip

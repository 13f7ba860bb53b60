"""Band roles, sensor band names and reflectance scaling.

saltmap computes everything from six band *roles* — blue (``B``), green (``G``),
red (``R``), near infrared (``N``), shortwave infrared 1 (``S1``) and 2 (``S2``) —
so that a model trained on Landsat reflectance can map a Sentinel-2 scene.

References
----------
.. [1] ESA (2022). Sentinel-2 Products Specification Document, issue 14.9:
   from processing baseline 04.00 (25 January 2022) L2A digital numbers carry a
   BOA_ADD_OFFSET of -1000, so that reflectance = (DN - 1000) / 10000.
.. [2] USGS (2021). Landsat 8-9 OLI/TIRS Collection 2 Level-2 Science Product
   Guide: surface reflectance = DN * 0.0000275 - 0.2.
.. [3] USGS (2020). Landsat 4-7 Collection 2 Level-2 Science Product Guide: TM and
   ETM+ surface reflectance bands SR_B1-SR_B5 and SR_B7.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from saltmap.errors import MissingBandError, ScalingError

ROLES: tuple[str, ...] = ("B", "G", "R", "N", "S1", "S2")


@dataclass(frozen=True)
class Band:
    """One band role and its names and wavelengths on each sensor."""

    role: str
    long_name: str
    common_name: str
    sentinel2: str
    sentinel2_wavelength_nm: float
    sentinel2_resolution_m: int
    landsat: str
    landsat_wavelength_nm: float
    # OLI reflective bands SR_B2..SR_B7 are all 30 m in Collection 2 Level-2.
    landsat_resolution_m: int


BANDS: dict[str, Band] = {
    b.role: b
    for b in (
        Band("B", "blue", "blue", "B02", 492.4, 10, "SR_B2", 482.0, 30),
        Band("G", "green", "green", "B03", 559.8, 10, "SR_B3", 561.5, 30),
        Band("R", "red", "red", "B04", 664.6, 10, "SR_B4", 654.5, 30),
        Band("N", "near infrared", "nir", "B08", 832.8, 10, "SR_B5", 865.0, 30),
        Band("S1", "shortwave infrared 1", "swir16", "B11", 1613.7, 20, "SR_B6", 1608.5, 30),
        Band("S2", "shortwave infrared 2", "swir22", "B12", 2202.4, 20, "SR_B7", 2200.5, 30),
    )
}

# The Collection 2 Level-2 surface reflectance band number of each role, by sensor [2]_ [3]_:
# OLI (Landsat 8 and 9) numbers from the coastal band, so blue is SR_B2 and NIR SR_B5;
# TM (Landsat 4 and 5) and ETM+ (Landsat 7) number from blue, and band 6 is thermal.
LANDSAT_SR_BANDS: dict[str, dict[str, int]] = {
    "OLI": {"B": 2, "G": 3, "R": 4, "N": 5, "S1": 6, "S2": 7},
    "TM": {"B": 1, "G": 2, "R": 3, "N": 4, "S1": 5, "S2": 7},
    "ETM+": {"B": 1, "G": 2, "R": 3, "N": 4, "S1": 5, "S2": 7},
}

# Names by which a table column or a file may name a band role; matched without
# regard to case, spaces, dashes or underscores.
_ALIASES: dict[str, tuple[str, ...]] = {
    "B": ("b", "blue", "b2", "b02", "srb2", "band2"),
    "G": ("g", "green", "b3", "b03", "srb3", "band3"),
    "R": ("r", "red", "b4", "b04", "srb4", "band4"),
    "N": ("n", "nir", "nearinfrared", "b8", "b08", "srb5", "band8"),
    "S1": ("s1", "swir1", "swir16", "b11", "srb6", "band11"),
    "S2": ("s2", "swir2", "swir22", "b12", "srb7", "band12"),
}


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def role_of(name: str) -> str | None:
    """Return the band role a column or band name stands for, or None.

    Examples
    --------
    >>> role_of("SWIR1"), role_of("SR_B4"), role_of("B08"), role_of("pH")
    ('S1', 'R', 'N', None)
    """
    key = _squash(name)
    for role, aliases in _ALIASES.items():
        if key in aliases:
            return role
    return None


def check_roles(roles: list[str] | tuple[str, ...], available: object, what: str) -> None:
    """Raise :class:`MissingBandError` unless every role is in ``available``."""
    have = set(available)  # type: ignore[call-overload]
    missing = [r for r in roles if r not in have]
    if missing:
        names = ", ".join(
            f"{r} ({BANDS[r].long_name}, Sentinel-2 {BANDS[r].sentinel2})" for r in missing
        )
        raise MissingBandError(
            f"{what} lacks band(s) {names}; it has {sorted(have)}. "
            "Map the missing bands to their columns or files, "
            "or choose indices that do not need them."
        )


@dataclass(frozen=True)
class Scaling:
    """A linear conversion from stored digital numbers to surface reflectance.

    ``reflectance = dn * scale + offset``.
    """

    scale: float = 1.0
    offset: float = 0.0
    name: str = "custom"

    def apply(self, dn: np.ndarray) -> np.ndarray:
        """Return reflectance for digital numbers ``dn`` (float64 unless float32 given)."""
        dn = np.asarray(dn)
        dtype = np.float32 if dn.dtype == np.float32 else np.float64
        return dn.astype(dtype, copy=False) * dtype(self.scale) + dtype(self.offset)

    def describe(self) -> str:
        """The scaling as one line of text, for messages and metadata."""
        return f"{self.name}: reflectance = DN × {self.scale:g} {self.offset:+g}"


REFLECTANCE = Scaling(1.0, 0.0, "reflectance")
LANDSAT_C2L2 = Scaling(0.0000275, -0.2, "landsat-c2l2")
SENTINEL2_L2A_PRE_0400 = Scaling(1e-4, 0.0, "sentinel2-l2a")
SENTINEL2_L2A_0400 = Scaling(1e-4, -0.1, "sentinel2-l2a-offset")


def sentinel2_scaling(processing_baseline: str | None) -> Scaling:
    """Scaling of Sentinel-2 L2A digital numbers for a processing baseline.

    Baselines 04.00 and later carry a BOA offset of -1000 DN [1]_. The decision is
    made from the baseline, never from the acquisition date, because ESA
    reprocessed older scenes with new baselines.

    Parameters
    ----------
    processing_baseline : str or None
        The ``PROCESSING_BASELINE`` of the product, such as ``"05.09"``. ``None``
        raises: the offset cannot be guessed.
    """
    if processing_baseline is None:
        raise ScalingError(
            "the Sentinel-2 processing baseline is unknown, so the BOA offset cannot be decided; "
            "give it (for example --baseline 05.09) or choose the scaling 'sentinel2-l2a' "
            "(no offset) or 'sentinel2-l2a-offset' (-1000 DN) yourself"
        )
    try:
        major, minor = (int(p) for p in str(processing_baseline).strip().lstrip("N").split("."))
    except ValueError as err:
        raise ScalingError(
            f"processing baseline {processing_baseline!r} is not of the form '04.00'; "
            "give it as written in the product's metadata, for example '05.09'"
        ) from err
    return SENTINEL2_L2A_0400 if (major, minor) >= (4, 0) else SENTINEL2_L2A_PRE_0400


NAMED_SCALINGS: dict[str, Scaling] = {
    s.name: s for s in (REFLECTANCE, LANDSAT_C2L2, SENTINEL2_L2A_PRE_0400, SENTINEL2_L2A_0400)
}


def scaling_from_name(name: str, baseline: str | None = None) -> Scaling:
    """Look up a scaling by name: ``reflectance``, ``landsat-c2l2``,
    ``sentinel2-l2a``, ``sentinel2-l2a-offset``, ``sentinel2`` (decided from
    ``baseline``) or ``SCALE,OFFSET`` such as ``"0.0001,-0.1"``."""
    key = name.strip().lower()
    if key == "sentinel2":
        return sentinel2_scaling(baseline)
    if key in NAMED_SCALINGS:
        return NAMED_SCALINGS[key]
    if "," in key or ":" in key:
        parts = key.replace(":", ",").split(",")
        try:
            scale, offset = float(parts[0]), float(parts[1])
        except (ValueError, IndexError) as err:
            raise ScalingError(
                f"scaling {name!r} is not 'SCALE,OFFSET' such as '0.0001,-0.1'"
            ) from err
        # A zero or non-finite scale would turn every band into one constant or NaN,
        # which no later check could tell from real data.
        if not (np.isfinite(scale) and np.isfinite(offset)) or scale == 0:
            raise ScalingError(
                f"scaling {name!r} needs a finite, non-zero scale and a finite offset, "
                "such as '0.0001,-0.1'"
            )
        return Scaling(scale, offset)
    raise ScalingError(
        f"unknown scaling {name!r}; use one of {sorted([*NAMED_SCALINGS, 'sentinel2'])} "
        "or 'SCALE,OFFSET'"
    )


PLAUSIBLE_REFLECTANCE = (-0.05, 1.5)


def check_reflectance(
    reflectance: np.ndarray, where: str, scaling: Scaling | None = None, *, strict: bool = True
) -> float:
    """Report reflectance that points to a scaling mistake.

    Returns the share of finite values outside ``PLAUSIBLE_REFLECTANCE``. When the
    median itself is outside that range the scaling is almost surely wrong and
    :class:`ScalingError` is raised (a warning if ``strict`` is False); when more
    than 1 % of values are outside, a warning is issued.
    """
    values = np.asarray(reflectance, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    lo, hi = PLAUSIBLE_REFLECTANCE
    share = float(np.mean((values < lo) | (values > hi)))
    median = float(np.median(values))
    used = f" after scaling {scaling.describe()}" if scaling else ""
    if not lo <= median <= hi:
        msg = (
            f"{where}: median reflectance {median:.4g}{used} is outside the plausible range "
            f"[{lo}, {hi}]; this is likely a scaling mistake. Choose the scaling that fits the "
            "data (for example 'landsat-c2l2' for Landsat Collection 2 Level-2 DN, 'sentinel2' "
            "with the processing baseline for Sentinel-2 L2A DN, 'reflectance' for values in 0–1)."
        )
        if strict:
            raise ScalingError(msg)
        warnings.warn(msg, stacklevel=2)
    elif share > 0.01:
        warnings.warn(
            f"{where}: {share:.1%} of reflectance values{used} are outside [{lo}, {hi}]; "
            "check the scaling and the nodata value.",
            stacklevel=2,
        )
    return share

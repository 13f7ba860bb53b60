"""Spectral response of soils by salinity class (the study's figure 3).

Mean reflectance per salinity class at each band's centre wavelength, and the
same for transformed reflectance (reciprocal, square, square root), the
transforms the study used to build its novel indices [1]_. Classes come either
from a salinity class scheme of :mod:`saltmap.salinity.units` (with unit conversion)
or from quantiles of the target, for samples whose EC is not on the scheme's
basis (such as a soil–water extract of unknown ratio, not ECe).

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025. Figure 3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from saltmap.bands import BANDS, ROLES, Scaling
from saltmap.errors import ConfigError, SampleDataError
from saltmap.features.indices import safe_divide, safe_sqrt

SENSORS = ("landsat", "sentinel2")
SENSOR_NAMES = {"landsat": "Landsat 8/9 OLI", "sentinel2": "Sentinel-2 MSI"}

# The four panels of the study's figure 3.
SPECTRAL_TRANSFORMS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "reflectance": ("reflectance ρ", lambda x: x),
    "reciprocal": ("reciprocal 1/ρ", lambda x: safe_divide(1.0, x)),
    "square": ("square ρ²", lambda x: x**2),
    "sqrt": ("square root √ρ", safe_sqrt),
}


def sensor_of(scaling: Scaling | str | None) -> str:
    """``"landsat"`` for Landsat scalings, else ``"sentinel2"`` (whose wavelengths saltmap uses
    for reflectance of unknown origin)."""
    name = scaling.name if isinstance(scaling, Scaling) else str(scaling or "")
    return "landsat" if name.lower().startswith("landsat") else "sentinel2"


def band_wavelengths(roles: Sequence[str], sensor: str = "sentinel2") -> dict[str, float]:
    """Centre wavelength (nm) of each band role on ``sensor``."""
    if sensor not in SENSORS:
        raise ConfigError(f"unknown sensor {sensor!r}; use one of {', '.join(SENSORS)}")
    attr = "landsat_wavelength_nm" if sensor == "landsat" else "sentinel2_wavelength_nm"
    return {r: getattr(BANDS[r], attr) for r in roles}


@dataclass
class SalinityClasses:
    """Salinity class of each sample.

    Attributes
    ----------
    labels : Series
        Ordered categorical, one label per sample (NaN where the target is).
    description : str
        How the classes were made, for figure titles.
    colours : list of str
        One colour per class, least saline first.
    """

    labels: pd.Series
    description: str
    colours: list[str]


def salinity_classes(
    target: pd.Series,
    *,
    unit: str | None = None,
    scheme: str = "quantile",
    n_classes: int = 4,
) -> SalinityClasses:
    """Put samples into salinity classes.

    Parameters
    ----------
    target : Series
        Measured salinity per sample.
    unit : str, optional
        Unit of ``target``; needed for a scheme whose unit differs.
    scheme : str, default="quantile"
        ``"quantile"`` for ``n_classes`` equal-count classes of the target, or
        a scheme of :func:`saltmap.salinity.units.get_scheme` (``"fao-ec"``,
        ``"study"``, ...). Only classes that hold samples are kept.
    n_classes : int, default=4
        Number of quantile classes.
    """
    from saltmap import salinity

    values = pd.to_numeric(target, errors="coerce")
    if values.notna().sum() < 2:
        raise SampleDataError("salinity classes need at least two samples with a target value")
    if scheme == "quantile":
        binned = pd.qcut(values, n_classes, duplicates="drop")
        cats = binned.cat.categories
        suffix = f" {unit}" if unit else ""
        names = [f"Q{i}: {iv.left:.4g}–{iv.right:.4g}{suffix}" for i, iv in enumerate(cats, 1)]
        labels = binned.cat.rename_categories(names)
        what = target.name or "target"
        desc = f"{len(names)} quantile classes of {what}" + (f" ({unit})" if unit else "")
        return SalinityClasses(labels, desc, list(salinity.ramp_colours(len(names))))
    chosen = salinity.get_scheme(scheme)
    codes = salinity.classify(values.to_numpy(), chosen, unit=unit)
    present = sorted(int(c) for c in set(codes.tolist()) - {0})
    names = [chosen.labels[c - 1] for c in present]
    cat = pd.Categorical.from_codes(
        [present.index(c) if c else -1 for c in codes], categories=names, ordered=True
    )
    what = target.name or "target"
    desc = (
        f"{chosen.name} classes of {what} in {chosen.unit}; "
        f"thresholds defined for {chosen.reference}"
    )
    return SalinityClasses(
        pd.Series(cat, index=target.index), desc, [chosen.colours[c - 1] for c in present]
    )


def spectral_response(
    reflectance: pd.DataFrame,
    classes: pd.Series,
    *,
    sensor: str = "sentinel2",
    transforms: Sequence[str] = tuple(SPECTRAL_TRANSFORMS),
) -> pd.DataFrame:
    """Mean (and spread) of transformed reflectance per salinity class and band.

    Parameters
    ----------
    reflectance : DataFrame
        Reflectance by band role, one row per sample.
    classes : Series
        Class label per sample (ordered categorical keeps its order), aligned
        with ``reflectance``.
    sensor : {"sentinel2", "landsat"}
        Whose band centre wavelengths to report.
    transforms : sequence of str
        Keys of :data:`SPECTRAL_TRANSFORMS`.

    Returns
    -------
    DataFrame
        Long table: ``transform``, ``class``, ``role``, ``wavelength_nm``,
        ``mean``, ``sd``, ``sem`` and ``n`` (samples where the value is defined).
    """
    roles = [r for r in ROLES if r in reflectance.columns]
    if not roles:
        raise SampleDataError("the samples have no band columns for a spectral response")
    unknown = [t for t in transforms if t not in SPECTRAL_TRANSFORMS]
    if unknown:
        raise ConfigError(f"unknown transform(s) {unknown}; use {', '.join(SPECTRAL_TRANSFORMS)}")
    classes = pd.Series(classes, index=reflectance.index)
    parts = [_class_stats(reflectance[roles], classes, name) for name in transforms]
    table = pd.concat(parts, ignore_index=True)
    table["wavelength_nm"] = table["role"].map(band_wavelengths(roles, sensor))
    table["sem"] = table["sd"] / np.sqrt(table["n"])
    table["class"] = pd.Categorical(table["class"], categories=_class_order(classes), ordered=True)
    table["transform"] = pd.Categorical(table["transform"], categories=list(transforms))
    table = table.sort_values(["transform", "class", "wavelength_nm"]).reset_index(drop=True)
    cols = ["transform", "class", "role", "wavelength_nm", "mean", "sd", "sem", "n"]
    table = table[cols]
    # the figure titles its panels with these (plots sits below features)
    table.attrs["transform_titles"] = {t: SPECTRAL_TRANSFORMS[t][0] for t in transforms}
    return table


def _class_order(classes: pd.Series) -> list[Any]:
    """The classes in order: an ordered categorical's own, else sorted."""
    if isinstance(classes.dtype, pd.CategoricalDtype):
        return list(classes.cat.categories)
    return sorted(classes.dropna().unique())


def _class_stats(reflectance: pd.DataFrame, classes: pd.Series, transform: str) -> pd.DataFrame:
    """Mean, sd and count of one transform of reflectance per class and band, long."""
    values = SPECTRAL_TRANSFORMS[transform][1](reflectance.astype(float))
    grouped = values.groupby(classes, observed=True, sort=False)
    agg = {"mean": grouped.mean(), "sd": grouped.std(ddof=1), "n": grouped.count()}
    long = pd.concat({k: v.stack() for k, v in agg.items()}, axis=1).reset_index()
    long.columns = ["class", "role", *agg]
    long.insert(0, "transform", transform)
    return long

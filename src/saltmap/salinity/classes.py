"""Salinity classes: class schemes as data, and classing values into map codes.

A :class:`ClassScheme` holds the thresholds, labels and colours of the salinity
classes: the study's Table 5 on salt content, the USDA/FAO EC classes, or the user's
own thresholds (:func:`scheme_from_thresholds`). :func:`classify` turns values into
uint8 class codes for a map.

References
----------
.. [1] Richards, L. A. (ed.) (1954). Diagnosis and Improvement of Saline and Alkali
   Soils. USDA Agriculture Handbook 60, Washington DC.
.. [2] Abrol, I. P., Yadav, J. S. P., Massoud, F. I. (1988). Salt-Affected Soils and
   their Management. FAO Soils Bulletin 39, Rome.
.. [3] FAO (2006). Guidelines for Soil Description, 4th ed. Rome.
.. [4] Agriculture and Agri-Food Canada, Canadian Soil Information Service: soil
   salinity rating, https://sis.agr.gc.ca/cansis/nsdb/dss/v3/prt/salsym.html

Class schemes
-------------
``study``: the study's Table 5, topsoil salt content (g/kg): < 1 normal, 1–2 mild,
2–4 moderate, 4–6 severe, ≥ 6 solonchak.

``fao-ec`` (alias ``usda-ec``): EC of the saturated paste extract, ECe (dS/m):
0–2 non-saline, 2–4 slightly, 4–8 moderately, 8–16 strongly, ≥ 16 very strongly
saline; the USDA classes of [1]_ that FAO uses in [2]_. The bounds were checked
against [4]_ (nonsaline 0–2, weakly 2–4, moderately 4–8, strongly 8–16, very strongly
> 16 dS/m) and against the "USDA" criterion of the R package soilassessment
(``saltSeverity``, citing [1]_).

``fao2006-ec``: the FAO soil description guidelines [3]_ use other bounds on ECse:
< 0.75 none, 0.75–2 slightly, 2–4 moderately, 4–8 strongly, 8–15 very strongly,
≥ 15 dS/m extremely saline (checked via soilassessment's "FAO" criterion, which
cites [3]_, not against the guidelines themselves).

Both EC schemes are for the saturated paste extract: EC of a 1:5 soil–water extract
is several times lower and must not be classed with them unconverted.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from saltmap.errors import ConfigError, UnitError
from saltmap.salinity.units import convert_ec, normalise_unit, quantity_of

# Anchors of the class ramp: green for non-saline, then yellow → orange → red → brown.
_RAMP = ("#1a9850", "#fee08b", "#fdae61", "#d73027", "#7f2704")


@dataclass(frozen=True)
class ClassScheme:
    """Salinity classes as data: ``k`` classes bounded by ``k - 1`` thresholds.

    Class ``i`` (code ``i``, 1-based) holds values ``v`` with
    ``thresholds[i-2] <= v < thresholds[i-1]``: **each class includes its lower
    bound**, so a value exactly on a threshold goes to the upper (more saline) class.
    The first class is open below (negative predictions land there), the last open above.

    Parameters
    ----------
    name : str
        Short name (``"study"``, ``"fao-ec"``, ...).
    quantity : str
        ``"salt content"`` or ``"EC"``.
    unit : str
        The unit of the thresholds.
    thresholds : tuple of float
        Strictly increasing inner class bounds.
    labels : tuple of str
        One label per class (``len(thresholds) + 1``).
    colours : tuple of str
        One ``#rrggbb`` colour per class, for the map's colour table.
    reference : str
        Where the classes come from.
    """

    name: str
    quantity: str
    unit: str
    thresholds: tuple[float, ...]
    labels: tuple[str, ...]
    colours: tuple[str, ...]
    reference: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", normalise_unit(self.unit))
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "colours", tuple(self.colours))
        t = np.asarray(self.thresholds)
        if len(t) == 0 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise ConfigError(
                f"class scheme {self.name!r}: thresholds {list(self.thresholds)} must be finite "
                "and strictly increasing, at least one"
            )
        k = len(t) + 1
        if k > 254:
            raise ConfigError(f"class scheme {self.name!r}: at most 254 classes fit a uint8 map")
        if len(self.labels) != k or len(self.colours) != k:
            raise ConfigError(
                f"class scheme {self.name!r}: {len(t)} thresholds make {k} classes, but "
                f"{len(self.labels)} labels and {len(self.colours)} colours were given"
            )
        bad = [c for c in self.colours if not re.fullmatch(r"#[0-9a-fA-F]{6}", c)]
        if bad:
            raise ConfigError(f"class scheme {self.name!r}: colours {bad} are not #rrggbb")
        if self.quantity != quantity_of(self.unit):
            raise UnitError(
                f"class scheme {self.name!r}: unit {self.unit} does not measure {self.quantity}"
            )

    @property
    def n_classes(self) -> int:
        """Number of classes: one more than the thresholds."""
        return len(self.thresholds) + 1

    def bounds(self) -> list[tuple[float, float]]:
        """``(lower, upper)`` of each class; -inf/inf at the open ends."""
        edges = [-math.inf, *self.thresholds, math.inf]
        return list(itertools.pairwise(edges))

    def table(self) -> pd.DataFrame:
        """One row per class: code, label, lower, upper, colour."""
        lower, upper = zip(*self.bounds(), strict=True)
        return pd.DataFrame(
            {
                "code": np.arange(1, self.n_classes + 1, dtype=np.uint8),
                "label": self.labels,
                "lower": lower,
                "upper": upper,
                "colour": self.colours,
            }
        )

    def colour_table(self) -> dict[int, tuple[int, int, int, int]]:
        """``{code: (r, g, b, 255)}`` for ``rasterio``'s ``write_colormap``; 0 is transparent."""
        table = {0: (0, 0, 0, 0)}
        for code, hexcolour in enumerate(self.colours, start=1):
            r, g, b = (int(hexcolour[i : i + 2], 16) for i in (1, 3, 5))
            table[code] = (r, g, b, 255)
        return table

    def class_names(self) -> dict[int, str]:
        """``{code: label}``, with 0 as ``"no data"``."""
        return {0: "no data", **{i: lab for i, lab in enumerate(self.labels, start=1)}}


def ramp_colours(k: int) -> tuple[str, ...]:
    """``k`` hex colours: green for the first (non-saline) class, then yellow → orange →
    red → brown for the saline ones, interpolated when there are more than four."""
    from matplotlib.colors import LinearSegmentedColormap, to_hex

    if k < 1:
        raise ConfigError(f"a class scheme needs at least one class, not {k}")
    saline = _RAMP[1:]
    n = k - 1
    if n <= len(saline):
        picks = np.round(np.linspace(0, len(saline) - 1, n)).astype(int) if n > 1 else [0][:n]
        return (_RAMP[0], *(saline[i] for i in picks))
    cmap = LinearSegmentedColormap.from_list("saline", saline)
    return (_RAMP[0], *(to_hex(cmap(x)) for x in np.linspace(0, 1, n)))


def _range_labels(thresholds: Sequence[float], unit: str) -> tuple[str, ...]:
    t = [f"{x:g}" for x in thresholds]
    inner = [f"{a}–{b} {unit}" for a, b in itertools.pairwise(t)]
    return (f"< {t[0]} {unit}", *inner, f"≥ {t[-1]} {unit}")


STUDY = ClassScheme(
    name="study",
    quantity="salt content",
    unit="g/kg",
    thresholds=(1.0, 2.0, 4.0, 6.0),
    labels=("normal", "mild", "moderate", "severe", "solonchak"),
    colours=_RAMP,
    reference="ACRS 2025 study, Table 5: topsoil salt content classes (g/kg)",
)

FAO_EC = ClassScheme(
    name="fao-ec",
    quantity="EC",
    unit="dS/m",
    thresholds=(2.0, 4.0, 8.0, 16.0),
    labels=(
        "non-saline",
        "slightly saline",
        "moderately saline",
        "strongly saline",
        "very strongly saline",
    ),
    colours=_RAMP,
    reference=(
        "EC of the saturated paste extract (ECe, dS/m): Richards (1954) USDA Handbook 60 "
        "classes as used by FAO Soils Bulletin 39 (Abrol et al. 1988)"
    ),
)

FAO2006_EC = ClassScheme(
    name="fao2006-ec",
    quantity="EC",
    unit="dS/m",
    thresholds=(0.75, 2.0, 4.0, 8.0, 15.0),
    labels=(
        "none",
        "slightly saline",
        "moderately saline",
        "strongly saline",
        "very strongly saline",
        "extremely saline",
    ),
    colours=ramp_colours(6),
    reference="FAO (2006) Guidelines for soil description, 4th ed.: salt content classes (ECse)",
)

SCHEMES: dict[str, ClassScheme] = {s.name: s for s in (STUDY, FAO_EC, FAO2006_EC)}
SCHEMES["usda-ec"] = FAO_EC


def get_scheme(name: str | ClassScheme) -> ClassScheme:
    """Return a built-in scheme by name (or pass a :class:`ClassScheme` through)."""
    if isinstance(name, ClassScheme):
        return name
    try:
        return SCHEMES[name.strip().lower()]
    except KeyError:
        raise ConfigError(
            f"unknown class scheme {name!r}; built-in schemes: {sorted(SCHEMES)}, or give "
            "thresholds (scheme_from_thresholds)"
        ) from None


def scheme_from_thresholds(
    thresholds: Sequence[float] | str,
    labels: Sequence[str] | None = None,
    unit: str = "g/kg",
    *,
    name: str = "user",
    colours: Sequence[str] | None = None,
) -> ClassScheme:
    """A class scheme from the user's thresholds.

    Parameters
    ----------
    thresholds : sequence of float, or str
        Strictly increasing inner bounds, or text such as ``"1,2,4,6"`` or ``"1 2 4 6"``.
    labels : sequence of str, optional
        One per class; default range labels such as ``"1–2 g/kg"``.
    unit : str, default "g/kg"
        Unit of the thresholds; the quantity follows from it.
    colours : sequence of str, optional
        Default: :func:`ramp_colours`.

    Examples
    --------
    >>> scheme_from_thresholds("1,2,4,6").labels[0]
    '< 1 g/kg'
    """
    if isinstance(thresholds, str):
        try:
            thresholds = [float(t) for t in re.split(r"[,;\s]+", thresholds.strip()) if t]
        except ValueError as err:
            raise ConfigError(
                f"thresholds {thresholds!r} are not numbers; write them like '1,2,4,6'"
            ) from err
    unit = normalise_unit(unit)
    k = len(thresholds) + 1
    return ClassScheme(
        name=name,
        quantity=quantity_of(unit),
        unit=unit,
        thresholds=tuple(thresholds),
        labels=tuple(labels) if labels is not None else _range_labels(thresholds, unit),
        colours=tuple(colours) if colours is not None else ramp_colours(k),
        reference="user thresholds",
    )


def classify(
    values: Any,
    scheme: ClassScheme | str,
    *,
    unit: str | None = None,
    nodata: float | None = None,
) -> np.ndarray:
    """Class codes of ``values`` under ``scheme``: 1..k, 0 for no data.

    Lower bounds are inclusive: with thresholds (1, 2, 4, 6) a value of exactly 2
    is class 3 (2–4), 1.999 is class 2. NaN, ±inf and ``nodata`` give 0.

    Parameters
    ----------
    values : array-like of any shape
        Salinity values (e.g. a (row, col) map).
    scheme : ClassScheme or str
        A scheme or a built-in name.
    unit : str, optional
        Unit of ``values`` when it differs from the scheme's; EC units are converted,
        EC against a salt content scheme (or back) is a UnitError.
    nodata : float, optional
        A value meaning no data, besides NaN.

    Returns
    -------
    ndarray of uint8, shaped like ``values``.
    """
    scheme = get_scheme(scheme)
    data = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(data)
    if nodata is not None:
        missing |= data == nodata
    if unit is not None:
        data = convert_ec(data, unit, scheme.unit)
    codes = np.searchsorted(np.asarray(scheme.thresholds), data, side="right") + 1
    codes[missing] = 0
    return codes.astype(np.uint8)

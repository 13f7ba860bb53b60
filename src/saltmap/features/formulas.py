"""Candidate index formulas as data: band transforms, templates and candidates.

A candidate is a template (a formula shape with band slots) filled with band
roles, a transform applied to every band and, for weighted templates, a weight.
It becomes a :class:`~saltmap.features.indices.SpectralIndex` whose computation
is the template function — no formula string is ever evaluated. Index discovery
(:mod:`saltmap.features.discovery`) searches over them; discovered indices travel
as their plain-data definitions (:mod:`saltmap.features.discovered`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from saltmap.bands import ROLES
from saltmap.errors import ConfigError
from saltmap.features.indices import SpectralIndex, safe_divide, safe_sqrt, undefined_to_nan

# --- band transforms ---------------------------------------------------------------------------


def safe_log(values: Any) -> Any:
    """Natural log with NaN, not -inf or a warning, where the value is not positive."""
    return np.log(undefined_to_nan(values, values > 0))


@dataclass(frozen=True)
class Transform:
    """A transform applied to every band of a candidate before the template."""

    name: str
    term: str  # how a transformed band reads in a formula; {x} is the band role
    func: Callable[[Any], Any] = field(repr=False, compare=False)


TRANSFORMS: dict[str, Transform] = {
    t.name: t
    for t in (
        Transform("identity", "{x}", lambda x: x),
        Transform("reciprocal", "(1/{x})", lambda x: safe_divide(1.0, x)),
        Transform("square", "({x}²)", lambda x: x**2),
        Transform("sqrt", "(√{x})", safe_sqrt),
        Transform("log", "(ln {x})", safe_log),
    )
}


# --- templates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A formula shape with band slots ``a``, ``b`` (and ``c``).

    ``swap`` names two slots whose exchange leaves ``|index|`` unchanged (the
    index is the same, or its negative), so only one order is searched.
    ``weighted`` templates also take a weight ``w`` in (0, 1).
    """

    name: str
    pattern: str
    arity: int
    func: Callable[..., Any] = field(repr=False, compare=False)
    swap: tuple[int, int] | None = None
    weighted: bool = False
    like: str = ""  # the catalogue index of this shape, for people


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in (
        Template("band", "{a}", 1, lambda a, w=None: a),
        Template("normalised_difference", "({a}−{b})/({a}+{b})", 2,
                 lambda a, b, w=None: safe_divide(a - b, a + b), swap=(0, 1), like="NDSI"),
        Template("ratio", "{a}/{b}", 2, lambda a, b, w=None: safe_divide(a, b), like="SI4"),
        Template("difference", "{a}−{b}", 2, lambda a, b, w=None: a - b, swap=(0, 1),
                 like="SSSI-1"),
        Template("product", "{a}·{b}", 2, lambda a, b, w=None: a * b, swap=(0, 1), like="SI"),
        Template("product_ratio", "{a}·{b}/{c}", 3,
                 lambda a, b, c, w=None: safe_divide(a * b, c), swap=(0, 1), like="S3"),
        Template("three_band_ratio", "({a}−{b}+{c})/({a}+{b}−{c})", 3,
                 lambda a, b, c, w=None: safe_divide(a - b + c, a + b - c), like="TRSI"),
        Template("salinity_adjusted", "({a}²−{b}²+{c}²)/({a}·{b}·{c})", 3,
                 lambda a, b, c, w=None: safe_divide(a**2 - b**2 + c**2, a * b * c),
                 swap=(0, 2), like="SAI"),
        Template("brightness_contrast", "{a}/√({b}²+{c}²)", 3,
                 lambda a, b, c, w=None: safe_divide(a, safe_sqrt(b**2 + c**2)), swap=(1, 2),
                 like="SBCI"),
        # w and 1-w are both on the grid, so swapping b and c adds nothing.
        Template("weighted_offset", "{a} − {w}·{b} − {v}·{c}", 3,
                 lambda a, b, c, w: a - w * b - (1 - w) * c, swap=(1, 2), weighted=True,
                 like="GOSI"),
    )
}  # fmt: skip


# --- candidates --------------------------------------------------------------------------------


def _fmt_weight(w: float) -> str:
    return f"{round(w, 6):g}"


@dataclass(frozen=True)
class Candidate:
    """One candidate index: a template filled with band roles, a transform and a weight.

    Parameters
    ----------
    template : str
        A key of :data:`TEMPLATES`.
    bands : tuple of str
        Band roles in slot order (``a``, ``b``, ``c``).
    transform : str, default="identity"
        A key of :data:`TRANSFORMS`, applied to every band.
    weight : float or None
        The weight ``w`` of weighted templates, else None.
    """

    template: str
    bands: tuple[str, ...]
    transform: str = "identity"
    weight: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "bands", tuple(self.bands))
        tmpl = TEMPLATES.get(self.template)
        if tmpl is None:
            raise ConfigError(
                f"unknown discovery template {self.template!r}; use one of {', '.join(TEMPLATES)}"
            )
        if self.transform not in TRANSFORMS:
            raise ConfigError(
                f"unknown band transform {self.transform!r}; use one of {', '.join(TRANSFORMS)}"
            )
        if len(self.bands) != tmpl.arity or len(set(self.bands)) != len(self.bands):
            raise ConfigError(
                f"template {self.template!r} needs {tmpl.arity} distinct band roles, "
                f"got {list(self.bands)}"
            )
        bad = [b for b in self.bands if b not in ROLES]
        if bad:
            raise ConfigError(f"unknown band role(s) {bad}; band roles are {', '.join(ROLES)}")
        if tmpl.weighted != (self.weight is not None):
            need = "needs a weight in (0, 1)" if tmpl.weighted else "takes no weight"
            raise ConfigError(f"template {self.template!r} {need}; got weight={self.weight!r}")
        if self.weight is not None:
            object.__setattr__(self, "weight", float(self.weight))

    @cached_property  # searches reuse candidates; text is built once per candidate
    def formula(self) -> str:
        """The formula in band roles, as the catalogue writes formulas."""
        term = TRANSFORMS[self.transform].term
        slots = {k: term.format(x=b) for k, b in zip("abc", self.bands, strict=False)}
        if self.weight is not None:
            slots |= {"w": _fmt_weight(self.weight), "v": _fmt_weight(1 - self.weight)}
        return TEMPLATES[self.template].pattern.format(**slots)

    def compute(self, bands: Mapping[str, Any]) -> Any:
        """The index from reflectance by role (numpy, pandas, xarray or dask arrays)."""
        tf = TRANSFORMS[self.transform].func
        return TEMPLATES[self.template].func(*(tf(bands[r]) for r in self.bands), w=self.weight)

    def to_dict(self) -> dict[str, Any]:
        """The candidate as plain data (for files and model metadata)."""
        out: dict[str, Any] = {
            "template": self.template,
            "bands": list(self.bands),
            "transform": self.transform,
        }
        if self.weight is not None:
            out["weight"] = self.weight
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Candidate:
        """Rebuild a candidate from :meth:`to_dict` output (or a ranked-table row)."""
        bands = data["bands"]
        if isinstance(bands, str):
            bands = bands.split()
        weight = data.get("weight")
        if weight is not None and not (isinstance(weight, float) and np.isnan(weight)):
            weight = float(weight)
        else:
            weight = None
        return cls(str(data["template"]), tuple(bands), str(data.get("transform", "identity")),
                   weight)  # fmt: skip

    def to_index(self, name: str, *, reference: str = "saltmap index discovery") -> SpectralIndex:
        """A :class:`~saltmap.features.indices.SpectralIndex` (group ``"discovered"``)."""
        tmpl = TEMPLATES[self.template]
        return SpectralIndex(
            name=name,
            long_name=f"discovered {tmpl.name.replace('_', ' ')} index ({self.transform} bands)",
            formula=self.formula,
            bands=tuple(r for r in ROLES if r in self.bands),
            reference=reference,
            group="discovered",
            undefined="where a denominator is 0, a radicand < 0 or a log argument ≤ 0",
            compute=self.compute,
            definition={"name": name, **self.to_dict()},
        )

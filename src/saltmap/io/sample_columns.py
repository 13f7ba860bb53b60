"""Sample columns: which column of a sample file holds what.

The options of :func:`~saltmap.io.samples.read_samples` (:class:`ColumnOptions`) are
merged once with the TOML columns file (:func:`load_columns_file`): an option given
wins over the file, which wins over detection by name. :func:`resolve_columns` then
finds the target, id, coordinate and band columns (:class:`SampleColumns`), or says
which option names a column it could not find.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from saltmap.bands import ROLES, Scaling, role_of, scaling_from_name
from saltmap.errors import ConfigError, MissingColumnError

_X_NAMES = ("lon", "longitude", "long", "lng", "x", "easting")
_Y_NAMES = ("lat", "latitude", "y", "northing")
_ID_NAMES = ("id", "sample_id", "sampleid", "sample", "name", "site", "point")


@dataclass(frozen=True)
class ColumnOptions:
    """The column settings of :func:`~saltmap.io.samples.read_samples`, built once.

    Each field means what the keyword of the same name means there, and has its
    default; ``None`` (or an empty ``bands``) is an option not given, so the columns
    file or detection by name decides it.
    """

    target: str | None = "EC"
    target_unit: str | None = None
    to_unit: str | None = None
    id: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    bands: dict[str, str] = field(default_factory=dict)
    scaling: str | Scaling = "reflectance"
    baseline: str | None = None
    layer: str | None = None

    def __post_init__(self) -> None:
        # read_samples took bands=None for "none given"; the merge below needs a dict.
        if self.bands is None:
            object.__setattr__(self, "bands", {})

    def over(self, config: dict[str, Any]) -> ColumnOptions:
        """These options where given (not None or empty), the columns file's elsewhere."""
        plain = ("target", "target_unit", "to_unit", "id", "x", "y", "crs", "baseline", "layer")
        merged = {k: getattr(self, k) or config.get(k) for k in plain}
        # "reflectance" is read_samples' default: the columns file's scaling wins over it.
        scaling = self.scaling
        if isinstance(scaling, str) and scaling == "reflectance":
            scaling = config.get("scaling", scaling)
        return ColumnOptions(
            **merged, bands={**config.get("bands", {}), **self.bands}, scaling=scaling
        )

    def reflectance_scaling(self) -> Scaling:
        """How the band columns become reflectance (a name is read with the baseline)."""
        if isinstance(self.scaling, Scaling):
            return self.scaling
        return scaling_from_name(self.scaling, self.baseline)


@dataclass(frozen=True)
class SampleColumns:
    """The columns a sample file's meanings were found in, and the CRS of x/y."""

    target: str | None
    id: str | None
    x: str | None
    y: str | None
    crs: str | None
    bands: dict[str, str]


def resolve_columns(
    raw: pd.DataFrame,
    options: ColumnOptions,
    vector_crs: str | None,
    path: Path,
    require_bands: bool,
) -> SampleColumns:
    """Find every column by the options or by its name; refuse what cannot be found."""
    target = require_column(raw, options.target, "target", path) if options.target else None
    id_col = _resolve_id(raw, options.id, path)
    x, y, crs = _resolve_coords(raw, options.x, options.y, options.crs or vector_crs, path)
    bands = _resolve_bands(raw, options.bands, path)
    if not require_bands:
        bands = {}
    elif not bands:
        raise MissingColumnError(
            f"{path.name} has no band columns that saltmap recognises; map them, for example "
            "--band B=Blue --band G=Green --band R=Red --band N=NIR --band S1=SWIR1 --band S2=SWIR2"
        )
    return SampleColumns(target, id_col, x, y, crs, bands)


def load_columns_file(path: str | Path | None) -> dict[str, Any]:
    """The TOML columns file as a dict ({} without one); an unknown key is refused."""
    if path is None:
        return {}
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"cannot read column mapping {path}: {err}") from err
    known = {
        "id",
        "target",
        "target_unit",
        "to_unit",
        "x",
        "y",
        "crs",
        "scaling",
        "baseline",
        "layer",
        "bands",
    }
    unknown = set(config) - known
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {sorted(unknown)}; allowed keys are {sorted(known)}"
        )
    return config


def _find_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def require_column(frame: pd.DataFrame, name: str, what: str, path: Path) -> str:
    """``name`` if the file has that column, else a MissingColumnError listing its columns."""
    if name in frame.columns:
        return name
    raise MissingColumnError(
        f"{path.name} has no column {name!r} for the {what}; its columns are "
        f"{', '.join(map(str, frame.columns))}. "
        f"Name the right column with the option for the {what}."
    )


def detect_band_columns(columns: list[str]) -> dict[str, str]:
    """Map band roles to columns whose names make the role obvious.

    Raises :class:`ConfigError` when two columns claim the same role.
    """
    found: dict[str, str] = {}
    for col in columns:
        role = role_of(str(col))
        if role is None:
            continue
        if role in found:
            raise ConfigError(
                f"columns {found[role]!r} and {col!r} both look like band {role}; "
                f"say which one to use, for example --band {role}={col}"
            )
        found[role] = col
    return found


def _resolve_id(raw: pd.DataFrame, id_col: str | None, path: Path) -> str | None:
    if id_col:
        return require_column(raw, id_col, "sample id", path)
    return _find_column(list(raw.columns), _ID_NAMES)


def _resolve_coords(
    raw: pd.DataFrame, x: str | None, y: str | None, crs: str | None, path: Path
) -> tuple[str | None, str | None, str | None]:
    if "__x" in raw.columns and not (x or y):
        return "__x", "__y", crs
    if x or y:
        if not (x and y):
            raise ConfigError("give both coordinate columns, x and y (or neither, to detect them)")
        x, y = (
            require_column(raw, x, "x coordinate", path),
            require_column(raw, y, "y coordinate", path),
        )
    else:
        columns = list(raw.columns)
        lon, lat = _find_column(columns, _X_NAMES[:4]), _find_column(columns, _Y_NAMES[:2])
        if lon and lat:
            return lon, lat, crs or "EPSG:4326"
        x, y = _find_column(columns, _X_NAMES[4:]), _find_column(columns, _Y_NAMES[2:])
        if not (x and y):
            return None, None, crs
    if crs is None:
        raise ConfigError(
            f"{path.name}: coordinates {x!r}/{y!r} have no CRS; "
            "give it, for example --crs EPSG:32644"
        )
    return x, y, crs


def _resolve_bands(raw: pd.DataFrame, given: dict[str, str], path: Path) -> dict[str, str]:
    unknown = set(given) - set(ROLES)
    if unknown:
        raise ConfigError(f"unknown band role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    for role, col in given.items():
        require_column(raw, col, f"band {role}", path)
    detected = detect_band_columns([c for c in raw.columns if c not in given.values()])
    merged = {**detected, **given}
    return {r: merged[r] for r in ROLES if r in merged}

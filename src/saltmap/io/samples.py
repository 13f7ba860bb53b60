"""Field samples: read a user's table of soil samples into band reflectance and a target.

A sample file holds one row per soil sample: an id, a measured salinity (EC or
salt content), coordinates, and — for the tabular workflow — surface
reflectance or digital numbers of the six bands. saltmap reads CSV, XLSX,
GeoPackage, GeoJSON and Shapefile. Columns are mapped to their meaning by
options or a small TOML file, and detected automatically where the names are
obvious (``Blue``, ``SR_B2``, ``B02``; ``lon``/``lat``; ``id``/``name``).

Rows that cannot be used are never dropped silently: each one is listed in
:attr:`Samples.rejected` with its row number in the file and the reason.
"""

from __future__ import annotations

import csv
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saltmap.atomic import atomic_to_csv
from saltmap.bands import ROLES, Scaling, check_reflectance, role_of, scaling_from_name
from saltmap.datasets import odisha_samples
from saltmap.errors import (
    ConfigError,
    InputFileError,
    MissingColumnError,
    SampleDataError,
    UnitError,
)
from saltmap.salinity.units import (
    convert_ec,
    normalise_unit,
    parse_numbers,
    quantity_of,
    unit_in_header,
)

TABLE_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls"}
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb"}
_X_NAMES = ("lon", "longitude", "long", "lng", "x", "easting")
_Y_NAMES = ("lat", "latitude", "y", "northing")
_ID_NAMES = ("id", "sample_id", "sampleid", "sample", "name", "site", "point")
# Where the file's first data row sits: spreadsheets and CSV have one header line.
_FIRST_DATA_ROW = 2


@dataclass
class Samples:
    """Field samples ready for indices, screening and models.

    Attributes
    ----------
    table : DataFrame
        Index: sample id. Columns: the band roles present (reflectance),
        ``target``, ``x`` and ``y`` (when coordinates are known), then every
        other column of the file under its own name.
    target_name, target_unit : str
        What ``target`` holds (``"EC"``, ``"uS/cm"``).
    crs : str or None
        CRS of ``x``/``y``.
    scaling : Scaling
        How band values were turned into reflectance.
    source : Path
        The file read.
    rejected : DataFrame
        Rows that could not be used: ``row`` (line in the file, header = 1),
        ``id`` and ``reason``.
    """

    table: pd.DataFrame
    target_name: str
    target_unit: str | None
    crs: str | None
    scaling: Scaling
    source: Path
    rejected: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "id", "reason"])
    )

    @property
    def roles(self) -> tuple[str, ...]:
        """Band roles present, in :data:`~saltmap.bands.ROLES` order."""
        return tuple(r for r in ROLES if r in self.table.columns)

    @property
    def reflectance(self) -> pd.DataFrame:
        """Reflectance by band role, one row per sample."""
        return self.table[list(self.roles)]

    @property
    def target(self) -> pd.Series:
        """The measured salinity, named after the target column."""
        if "target" not in self.table:
            raise SampleDataError(
                f"{self.source.name} was read without a target column; name the column of "
                "measured salinity (for example --target EC) to screen, evaluate or train"
            )
        return self.table["target"].rename(self.target_name)

    @property
    def coords(self) -> np.ndarray | None:
        """Sample coordinates as an (n, 2) array of x, y in :attr:`crs`, or None."""
        if "x" not in self.table or "y" not in self.table:
            return None
        return self.table[["x", "y"]].to_numpy(dtype=float)

    def __len__(self) -> int:
        return len(self.table)

    def summary(self) -> str:
        """One line saying what was read and what was set aside."""
        unit = f" [{self.target_unit}]" if self.target_unit else ""
        return (
            f"{self.source.name}: {len(self)} usable samples, {len(self.rejected)} rejected; "
            f"target {self.target_name or 'none'}{unit}; bands {' '.join(self.roles) or 'none'}; "
            f"{self.scaling.describe()}"
        )

    def save_rejected(self, path: str | Path) -> Path:
        """Write the rejected-row report as CSV and return its path."""
        path = Path(path)
        atomic_to_csv(self.rejected, path, index=False)
        return path


# -- parsing cells -----------------------------------------------------------------------------


def parse_numeric_column(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse a column into floats (decimal commas read, see ``parse_numbers`` in salinity.units).

    Returns the numbers and, per cell, why it is unusable (None when usable or blank).
    """
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype(float), pd.Series(None, index=values.index, dtype=object)
    parsed = parse_numbers(values)
    reasons = parsed["reason"].where(parsed["reason"] != "blank", None)
    return parsed["value"], reasons


# -- reading files -----------------------------------------------------------------------------


def _read_raw(path: Path, layer: str | None) -> tuple[pd.DataFrame, str | None]:
    """Read a file into a frame of raw cells (text kept as text) and the CRS of its geometry."""
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputFileError(f"sample file {path} does not exist; check the path")
    try:
        if suffix in {".csv", ".txt", ".tsv"}:
            # Everything as text: decimal commas and junk cells are parsed per column below.
            # Only empty cells are missing: "n/a" or "NA" in a band column is reported as text.
            # Blank lines are kept (and reported) so that row numbers match the file's lines;
            # index_col=False with the warning as an error: a first row with more fields than
            # the header must not silently shift every column onto the wrong name.
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    dtype=str,
                    sep=None,
                    engine="python",
                    keep_default_na=False,
                    na_values=[""],
                    encoding_errors="replace",
                    index_col=False,
                    skip_blank_lines=False,
                )
            return frame, None
        if suffix in {".xlsx", ".xlsm", ".xls"}:
            return pd.read_excel(path, dtype=object, sheet_name=layer or 0), None
        if suffix in VECTOR_SUFFIXES:
            return _read_vector(path, layer)
    except pd.errors.ParserWarning as err:
        raise InputFileError(
            f"cannot read sample file {path}: a row has more fields than the header ({err}); "
            "check the delimiter and the quotes, or add the missing column names"
        ) from err
    except (ValueError, OSError, UnicodeError, OverflowError, csv.Error) as err:
        # OverflowError: pandas' Excel reader on a number beyond float range;
        # csv.Error: the delimiter sniffer on an empty file or one that is not a table.
        raise InputFileError(f"cannot read sample file {path}: {err}") from err
    raise InputFileError(
        f"sample file {path} has an unknown format {suffix!r}; use CSV, XLSX, GeoPackage, "
        "GeoJSON or Shapefile"
    )


def _read_vector(path: Path, layer: str | None) -> tuple[pd.DataFrame, str | None]:
    import geopandas as gpd

    gdf = gpd.read_file(path, layer=layer)
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    geom = gdf.geometry
    if not geom.is_empty.all():
        if not (geom.geom_type.dropna() == "Point").all():
            geom = geom.representative_point()
        frame["__x"] = geom.x.to_numpy()
        frame["__y"] = geom.y.to_numpy()
    crs = gdf.crs.to_string() if gdf.crs is not None else None
    return frame, crs


def _find_column(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lowered = {c.lower().strip(): c for c in columns}
    for name in candidates:
        if name in lowered:
            return lowered[name]
    return None


def _require_column(frame: pd.DataFrame, name: str, what: str, path: Path) -> str:
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


def _load_columns_file(path: str | Path | None) -> dict[str, Any]:
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


# -- the reader --------------------------------------------------------------------------------


def read_samples(
    path: str | Path,
    *,
    target: str | None = "EC",
    target_unit: str | None = None,
    to_unit: str | None = None,
    id: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: str | None = None,
    bands: dict[str, str] | None = None,
    scaling: str | Scaling = "reflectance",
    baseline: str | None = None,
    columns_file: str | Path | None = None,
    layer: str | None = None,
    conversion: Any = None,
    require_bands: bool = True,
) -> Samples:
    """Read field samples from CSV, XLSX, GeoPackage, GeoJSON or Shapefile.

    Options given here win over the TOML ``columns_file``, which wins over
    auto-detection.

    Parameters
    ----------
    path : path
        The sample file.
    target : str or None
        Column of measured salinity (EC or salt content); None (and none in
        ``columns_file``) reads samples without a target, for prediction.
    target_unit, to_unit : str, optional
        Unit of the target column (µS/cm, mS/cm, dS/m or g/kg; read from the
        column name, such as ``EC(ms cm-1)``, when not given) and the unit to
        convert it to (an EC unit; a salt content unit only with ``conversion``).
        Either may come from ``columns_file``; a value given here wins.
    id, x, y : str, optional
        Columns of the sample id and coordinates. Detected when obvious; the
        geometry of a vector file gives x and y.
    crs : str, optional
        CRS of x/y, such as ``"EPSG:4326"``; taken from a vector file, assumed
        EPSG:4326 for ``lon``/``lat`` columns.
    bands : dict, optional
        Band role → column, such as ``{"N": "B8_nir"}``; roles not given are
        detected from the column names.
    scaling : str or Scaling
        How the band columns become reflectance: ``"reflectance"`` (already),
        ``"landsat-c2l2"``, ``"sentinel2"`` with ``baseline``, or ``"SCALE,OFFSET"``.
    columns_file : path, optional
        TOML file with any of the keys above (``[bands]`` as a table).
    conversion : SaltConversion, optional
        EC → salt content conversion; the target becomes salt content in g/kg.
    require_bands : bool
        Read the band columns and reject rows without every band (True), or
        leave band columns unread, as other columns, because reflectance will
        come from a scene (False, for extraction).

    Returns
    -------
    Samples
    """
    path = Path(path)
    config = _load_columns_file(columns_file)
    layer = layer or config.get("layer")
    raw, vector_crs = _read_raw(path, layer)
    raw.columns = [str(c) for c in raw.columns]
    if raw.empty:
        raise InputFileError(f"sample file {path} has no rows")

    target = target or config.get("target")
    target_col = _require_column(raw, target, "target", path) if target else None
    id_col = _resolve_id(raw, id or config.get("id"), path)
    x_col, y_col, crs = _resolve_coords(
        raw,
        x or config.get("x"),
        y or config.get("y"),
        crs or config.get("crs") or vector_crs,
        path,
    )
    band_cols = _resolve_bands(raw, {**config.get("bands", {}), **(bands or {})}, path)
    if not require_bands:
        band_cols = {}
    elif not band_cols:
        raise MissingColumnError(
            f"{path.name} has no band columns that saltmap recognises; map them, for example "
            "--band B=Blue --band G=Green --band R=Red --band N=NIR --band S1=SWIR1 --band S2=SWIR2"
        )
    if isinstance(scaling, str):
        scaling = scaling_from_name(
            config.get("scaling", scaling) if scaling == "reflectance" else scaling,
            baseline or config.get("baseline"),
        )

    reasons: dict[int, list[str]] = {i: [] for i in range(len(raw))}
    ids = _sample_ids(raw, id_col, reasons)
    table = pd.DataFrame(index=raw.index)
    for role, col in band_cols.items():
        dn, why = parse_numeric_column(raw[col])
        _note(reasons, why.notna(), lambda i, c=col, w=why: f"band {c} value {w.iat[i]}")
        _note(reasons, dn.isna() & why.isna(), lambda i, c=col: f"band {c} is empty")
        table[role] = scaling.apply(dn.to_numpy())
        check_reflectance(table[role], f"{path.name} column {col}", scaling)

    target_name, unit = "", None
    if target_col is not None:
        values, why = parse_numeric_column(raw[target_col])
        _note(reasons, why.notna(), lambda i: f"target {target_col} value {why.iat[i]}")
        _note(reasons, values.isna() & why.isna(), lambda i: f"target {target_col} is empty")
        unit = target_unit or config.get("target_unit") or unit_in_header(target_col)
        table["target"], target_name, unit = _convert_target(
            values, target_col, unit, to_unit or config.get("to_unit"), conversion, path
        )

    if x_col and y_col:
        table["x"], _ = parse_numeric_column(raw[x_col])
        table["y"], _ = parse_numeric_column(raw[y_col])
        _note(
            reasons,
            table["x"].isna() | table["y"].isna(),
            lambda i: "coordinates missing or not numbers",
        )
        _check_bounds(table, crs, reasons)

    extra = [c for c in raw.columns if c not in {*band_cols.values(), target_col, x_col, y_col}]
    extra = [c for c in extra if not c.startswith("__")]
    for col in extra:
        name = col if col not in table.columns else f"{col}_original"
        table[name] = raw[col]
    table.index = pd.Index(ids, name="id")

    bad = [i for i, why in reasons.items() if why]
    rejected = pd.DataFrame(
        {
            "row": [i + _FIRST_DATA_ROW for i in bad],
            "id": [ids[i] for i in bad],
            "reason": ["; ".join(reasons[i]) for i in bad],
        }
    )
    keep = np.ones(len(raw), dtype=bool)
    keep[bad] = False
    return Samples(
        table=table[keep],
        target_name=target_name,
        target_unit=unit,
        crs=crs,
        scaling=scaling,
        source=path,
        rejected=rejected,
    )


def _note(reasons: dict[int, list[str]], mask: pd.Series, why: Any) -> None:
    for i in np.flatnonzero(mask.to_numpy()):
        reasons[int(i)].append(why(int(i)))


def _resolve_id(raw: pd.DataFrame, id_col: str | None, path: Path) -> str | None:
    if id_col:
        return _require_column(raw, id_col, "sample id", path)
    return _find_column(list(raw.columns), _ID_NAMES)


def _sample_ids(raw: pd.DataFrame, id_col: str | None, reasons: dict[int, list[str]]) -> list[str]:
    if id_col is None:
        return [f"row{i + _FIRST_DATA_ROW}" for i in range(len(raw))]
    ids = [str(v).strip() if pd.notna(v) else "" for v in raw[id_col]]
    first: dict[str, int] = {}
    for i, sid in enumerate(ids):
        if not sid:
            reasons[i].append(f"id {id_col} is empty")
            ids[i] = f"row{i + _FIRST_DATA_ROW}"
        elif sid in first:
            reasons[i].append(f"duplicate id {sid!r} (first at row {first[sid] + _FIRST_DATA_ROW})")
            ids[i] = f"{sid}#row{i + _FIRST_DATA_ROW}"
        else:
            first[sid] = i
    return ids


def _resolve_coords(
    raw: pd.DataFrame, x: str | None, y: str | None, crs: str | None, path: Path
) -> tuple[str | None, str | None, str | None]:
    if "__x" in raw.columns and not (x or y):
        return "__x", "__y", crs
    if x or y:
        if not (x and y):
            raise ConfigError("give both coordinate columns, x and y (or neither, to detect them)")
        x, y = (
            _require_column(raw, x, "x coordinate", path),
            _require_column(raw, y, "y coordinate", path),
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
        _require_column(raw, col, f"band {role}", path)
    detected = detect_band_columns([c for c in raw.columns if c not in given.values()])
    merged = {**detected, **given}
    return {r: merged[r] for r in ROLES if r in merged}


def _convert_target(
    values: pd.Series,
    name: str,
    unit: str | None,
    to_unit: str | None,
    conversion: Any,
    path: Path,
) -> tuple[pd.Series, str, str | None]:
    unit = normalise_unit(unit) if unit else None
    to_unit = normalise_unit(to_unit) if to_unit else None
    if conversion is not None:
        if to_unit and quantity_of(to_unit) != "salt content":
            raise UnitError(
                f"{path.name}: a salt conversion makes the target salt content (g/kg), but the "
                f"unit to convert to is {to_unit}; drop the conversion or ask for g/kg"
            )
        ec = convert_ec(values.to_numpy(), unit, conversion.ec_unit) if unit else values.to_numpy()
        salt = conversion.to_salt(ec)
        if to_unit and to_unit != "g/kg":
            salt = convert_ec(salt, "g/kg", to_unit)
        return pd.Series(salt, index=values.index), "salt content", to_unit or "g/kg"
    if to_unit and unit is None:
        # Converting from an unknown unit would label the numbers wrongly.
        raise UnitError(
            f"{path.name}: the unit of target column {name!r} is unknown, so it cannot be "
            f"converted to {to_unit}; give its unit (--target-unit, or target_unit in the "
            "columns file)"
        )
    if to_unit and to_unit != unit:
        converted = convert_ec(values.to_numpy(), unit, to_unit)
        return pd.Series(converted, index=values.index), name, to_unit
    return values, name, unit


def _check_bounds(table: pd.DataFrame, crs: str | None, reasons: dict[int, list[str]]) -> None:
    if crs is None:
        return
    from pyproj import CRS, Transformer

    try:
        crs_obj = CRS.from_user_input(crs)
    except Exception as err:  # pyproj raises its own CRSError
        raise ConfigError(
            f"CRS {crs!r} is not understood ({err}); give an EPSG code such as EPSG:4326"
        ) from err
    area = crs_obj.area_of_use
    if area is None:
        return
    lon, lat = table["x"].to_numpy(), table["y"].to_numpy()
    if not crs_obj.is_geographic:
        to_geo = Transformer.from_crs(crs_obj, "EPSG:4326", always_xy=True)
        lon, lat = to_geo.transform(lon, lat)
    # Half a degree of slack: points on a zone edge are common and harmless.
    outside = (
        ~(
            (lon >= area.west - 0.5)
            & (lon <= area.east + 0.5)
            & (lat >= area.south - 0.5)
            & (lat <= area.north + 0.5)
        )
        & np.isfinite(lon)
        & np.isfinite(lat)
    )
    outside |= ~np.isfinite(lon) & table["x"].notna().to_numpy()
    _note(
        reasons,
        pd.Series(outside),
        lambda i: (
            f"coordinates ({table['x'].iat[i]}, "
            f"{table['y'].iat[i]}) are outside the bounds of {crs}"
        ),
    )


def missing_by_sample(bad: pd.DataFrame, limit: int = 5) -> tuple[int, str]:
    """How many samples have a True in ``bad`` (samples × columns) and which columns,
    as ``"id: col, col; id: col ..."`` for the first ``limit`` of them."""
    rows = bad.any(axis=1)
    where = "; ".join(
        f"{sid}: {', '.join(bad.columns[bad.loc[sid]])}" for sid in bad.index[rows][:limit]
    )
    n = int(rows.sum())
    return n, where + (" ..." if n > limit else "")


def odisha() -> Samples:
    """The real Odisha coastal samples: EC in µS/cm, Landsat Collection 2 Level-2 bands.

    References
    ----------
    Jain, G. et al. (2024). CoSal-SA: coastal salinity around aquaculture in South
    Asia. Field data from Jagatsinghpur district, Odisha, India (CC0-1.0).
    """
    return read_samples(
        odisha_samples(), target="EC", target_unit="uS/cm", id="Name", scaling="landsat-c2l2"
    )

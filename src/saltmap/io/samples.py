"""Field samples: read a user's table of soil samples into band reflectance and a target.

A sample file holds one row per soil sample: an id, a measured salinity (EC or
salt content), coordinates, and — for the tabular workflow — surface
reflectance or digital numbers of the six bands. saltmap reads CSV, XLSX,
GeoPackage, GeoJSON and Shapefile. Columns are mapped to their meaning by
options or a small TOML file, and detected automatically where the names are
obvious (``Blue``, ``SR_B2``, ``B02``; ``lon``/``lat``; ``id``/``name``).

Rows that cannot be used are never dropped silently: each one is listed in
:attr:`Samples.rejected` with its row number in the file and the reason.

:func:`read_samples` reads the file (:mod:`saltmap.io.sample_files`), finds what
each column means (:mod:`saltmap.io.sample_columns`), then parses the cells here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saltmap.atomic import atomic_to_csv
from saltmap.bands import ROLES, Scaling, check_reflectance
from saltmap.datasets import odisha_samples
from saltmap.errors import (
    ConfigError,
    InputFileError,
    SampleDataError,
    UnitError,
)
from saltmap.io.sample_columns import (
    ColumnOptions,
    SampleColumns,
    detect_band_columns,
    load_columns_file,
    resolve_columns,
)
from saltmap.io.sample_files import TABLE_SUFFIXES, VECTOR_SUFFIXES, read_sample_file
from saltmap.salinity.units import (
    convert_ec,
    normalise_unit,
    parse_numbers,
    quantity_of,
    unit_in_header,
)

# The public names of this module before issue 12, three of which now live in
# sample_files and sample_columns (kept importable from here for the old path).
__all__ = [
    "TABLE_SUFFIXES",
    "VECTOR_SUFFIXES",
    "Samples",
    "detect_band_columns",
    "missing_by_sample",
    "odisha",
    "parse_numeric_column",
    "read_samples",
]

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


# -- the reader --------------------------------------------------------------------------------


def read_samples(
    path: str | Path,
    settings: ColumnOptions | None = None,
    *,
    columns_file: str | Path | None = None,
    conversion: Any = None,
    require_bands: bool = True,
    **options: Any,
) -> Samples:
    """Read field samples from CSV, XLSX, GeoPackage, GeoJSON or Shapefile.

    Options given here win over the TOML ``columns_file``, which wins over
    auto-detection.

    Parameters
    ----------
    path : path
        The sample file.
    settings : ColumnOptions, optional
        The column settings below as one object, built once (the CLI and the
        study build it); keywords given beside it win over its fields.
    columns_file : path, optional
        TOML file with any of the column settings below (``[bands]`` as a table).
    conversion : SaltConversion, optional
        EC → salt content conversion; the target becomes salt content in g/kg.
    require_bands : bool
        Read the band columns and reject rows without every band (True), or
        leave band columns unread, as other columns, because reflectance will
        come from a scene (False, for extraction).
    **options
        Any field of :class:`~saltmap.io.sample_columns.ColumnOptions`, as a
        keyword (an unknown one is a TypeError naming it):

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
            ``"landsat-c2l2"``, ``"sentinel2"`` with ``baseline``, or
            ``"SCALE,OFFSET"``.
        layer : str, optional
            Layer of a GeoPackage.

    Returns
    -------
    Samples
    """
    path = Path(path)
    given = replace(settings or ColumnOptions(), **options)
    merged = given.over(load_columns_file(columns_file))
    raw, columns = _read_columns(path, merged, require_bands)
    scaling = merged.reflectance_scaling()
    reasons: dict[int, list[str]] = {i: [] for i in range(len(raw))}
    ids = _sample_ids(raw, columns.id, reasons)
    table = pd.DataFrame(index=raw.index)
    _add_bands(table, raw, columns.bands, scaling, reasons, path)
    target_name, unit = "", None
    if columns.target is not None:
        target_name, unit = _add_target(
            table, raw, columns.target, merged, conversion, reasons, path
        )
    if columns.x and columns.y:
        _add_coords(table, raw, columns, reasons)
    _add_other_columns(table, raw, columns)
    table.index = pd.Index(ids, name="id")
    rejected, keep = _rejected_rows(reasons, ids)
    return Samples(table[keep], target_name, unit, columns.crs, scaling, path, rejected)


def _read_columns(
    path: Path, options: ColumnOptions, require_bands: bool
) -> tuple[pd.DataFrame, SampleColumns]:
    """The file's rows (column names as text) and what each column means."""
    raw, vector_crs = read_sample_file(path, options.layer)
    raw.columns = [str(c) for c in raw.columns]
    if raw.empty:
        raise InputFileError(f"sample file {path} has no rows")
    return raw, resolve_columns(raw, options, vector_crs, path, require_bands)


def _add_bands(
    table: pd.DataFrame,
    raw: pd.DataFrame,
    bands: dict[str, str],
    scaling: Scaling,
    reasons: dict[int, list[str]],
    path: Path,
) -> None:
    """Reflectance of each band role into ``table``; unusable cells noted in ``reasons``."""
    for role, col in bands.items():
        dn, why = parse_numeric_column(raw[col])
        _note(reasons, why.notna(), lambda i, c=col, w=why: f"band {c} value {w.iat[i]}")
        _note(reasons, dn.isna() & why.isna(), lambda i, c=col: f"band {c} is empty")
        table[role] = scaling.apply(dn.to_numpy())
        check_reflectance(table[role], f"{path.name} column {col}", scaling)


def _add_target(
    table: pd.DataFrame,
    raw: pd.DataFrame,
    column: str,
    options: ColumnOptions,
    conversion: Any,
    reasons: dict[int, list[str]],
    path: Path,
) -> tuple[str, str | None]:
    """The target into ``table`` in the unit asked for; returns its name and unit."""
    values, why = parse_numeric_column(raw[column])
    _note(reasons, why.notna(), lambda i: f"target {column} value {why.iat[i]}")
    _note(reasons, values.isna() & why.isna(), lambda i: f"target {column} is empty")
    unit = options.target_unit or unit_in_header(column)
    table["target"], name, unit = _convert_target(
        values, column, unit, options.to_unit, conversion, path
    )
    return name, unit


def _add_coords(
    table: pd.DataFrame, raw: pd.DataFrame, columns: SampleColumns, reasons: dict[int, list[str]]
) -> None:
    """x and y into ``table``; missing ones and ones outside the CRS's area noted."""
    table["x"], _ = parse_numeric_column(raw[columns.x])
    table["y"], _ = parse_numeric_column(raw[columns.y])
    _note(
        reasons,
        table["x"].isna() | table["y"].isna(),
        lambda i: "coordinates missing or not numbers",
    )
    _check_bounds(table, columns.crs, reasons)


def _add_other_columns(table: pd.DataFrame, raw: pd.DataFrame, columns: SampleColumns) -> None:
    """Every other column of the file under its own name (``_original`` if taken)."""
    used = {*columns.bands.values(), columns.target, columns.x, columns.y}
    for col in raw.columns:
        if col in used or col.startswith("__"):  # "__x"/"__y": a vector file's geometry
            continue
        name = col if col not in table.columns else f"{col}_original"
        table[name] = raw[col]


def _rejected_rows(
    reasons: dict[int, list[str]], ids: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rejected-row report (row in the file, id, reasons) and the mask of rows kept."""
    bad = [i for i, why in reasons.items() if why]
    rejected = pd.DataFrame(
        {
            "row": [i + _FIRST_DATA_ROW for i in bad],
            "id": [ids[i] for i in bad],
            "reason": ["; ".join(reasons[i]) for i in bad],
        }
    )
    keep = np.ones(len(reasons), dtype=bool)
    keep[bad] = False
    return rejected, keep


def _note(reasons: dict[int, list[str]], mask: pd.Series, why: Any) -> None:
    for i in np.flatnonzero(mask.to_numpy()):
        reasons[int(i)].append(why(int(i)))


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

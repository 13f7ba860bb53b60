"""Sample files: a CSV, XLSX or vector file read into raw cells, text kept as text.

:func:`read_sample_file` reads the file; :mod:`saltmap.io.samples` then finds the
columns' meanings and parses the cells, so a junk cell is reported, never guessed.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import pandas as pd

from saltmap.errors import InputFileError

TABLE_SUFFIXES = {".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".xls"}
VECTOR_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".fgb"}


def read_sample_file(path: Path, layer: str | None) -> tuple[pd.DataFrame, str | None]:
    """Read a file into a frame of raw cells (text kept as text) and the CRS of its geometry.

    A vector file's point geometry (or a representative point of other shapes) comes
    as the columns ``__x`` and ``__y``.
    """
    suffix = path.suffix.lower()
    if not path.exists():
        raise InputFileError(f"sample file {path} does not exist; check the path")
    try:
        if suffix in {".csv", ".txt", ".tsv"}:
            return _read_delimited(path), None
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


def _read_delimited(path: Path) -> pd.DataFrame:
    """A CSV or delimited text file as text cells; a row wider than the header is refused."""
    # Everything as text: decimal commas and junk cells are parsed per column later.
    # Only empty cells are missing: "n/a" or "NA" in a band column is reported as text.
    # Blank lines are kept (and reported) so that row numbers match the file's lines;
    # index_col=False with the warning as an error: a first row with more fields than
    # the header must not silently shift every column onto the wrong name.
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)
        return pd.read_csv(
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

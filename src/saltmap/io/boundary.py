"""The study area: the polygons of a boundary file, checked, in any CRS.

:func:`read_area` reads a polygon file that GDAL reads (GeoPackage, shapefile,
GeoJSON, ...) with geopandas and keeps its polygons; the map clips to them
(:func:`saltmap.mapping.plan.read_boundary`) and a mosaic takes its grid's CRS and
extent from them (:func:`saltmap.io.mosaic.open_mosaic`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saltmap.errors import BoundaryError


def read_area(path: str | Path) -> Any:
    """The polygons of a boundary file as a GeoDataFrame with its CRS.

    Raises
    ------
    BoundaryError
        If the file cannot be read, holds no polygon or has no CRS.
    """
    import geopandas as gpd  # only when a boundary is given

    path = Path(path)
    try:
        frame = gpd.read_file(path)
    except Exception as err:
        raise BoundaryError(
            f"cannot read the boundary {path}: {err}. Give a polygon file that GDAL reads "
            "(GeoPackage, shapefile, GeoJSON, ...)"
        ) from err
    polygons = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    polygons = polygons[polygons.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        raise BoundaryError(
            f"the boundary {path} holds no polygon ({len(frame)} features of types "
            f"{sorted(set(frame.geom_type.dropna()))}); give the study area as polygons"
        )
    if polygons.crs is None:
        raise BoundaryError(
            f"the boundary {path} has no coordinate reference system; "
            "save it with its CRS (for example a GeoPackage or a .prj beside the shapefile)"
        )
    return polygons


def projected_crs_of(area: Any) -> Any:
    """The area's CRS when projected, else the UTM zone of its centre (class areas need metres)."""
    if area.crs.is_projected:
        return area.crs
    return area.estimate_utm_crs()

"""QGIS styles (``.qml``) and GDAL category names (``.aux.xml``) of the map's rasters.

QGIS loads a ``.qml`` of the raster's own name with it: a paletted style names each
class code, a pseudocolour style stretches a ramp over the map's 2–98 % (checked in
QGIS 3.22 by ``tests/qgis_styles.py``). GDAL keeps a GeoTIFF's category names and
attribute table in its PAM side file [1]_.

References
----------
.. [1] GDAL. Raster data model: raster attribute tables, category names (kept in
   the ``.aux.xml`` of a GeoTIFF). https://gdal.org/en/stable/user/raster_data_model.html
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

#: Share of values left below and above the default stretch (QGIS's own cumulative cut).
STRETCH_CUT = (0.02, 0.98)


def pam_categories(names: Mapping[int, str], colours: Mapping[int, str]) -> str:
    """A GDAL PAM ``.aux.xml``: category names and a thematic attribute table [1]_.

    GDAL keeps category names of a GeoTIFF in this side file; GIS software (QGIS,
    ArcGIS, GDAL tools) read the names and colours of each code from it. Codes
    without a name get an empty one in the list (it is indexed by code).
    """
    from matplotlib.colors import to_rgb

    def esc(text: str) -> str:
        return escape(text, {chr(34): "&quot;"})

    top = max(names)
    categories = "".join(
        f"      <Category>{esc(names.get(i, ''))}</Category>\n" for i in range(top + 1)
    )
    fields = [("Value", 0, 5), ("Class", 2, 2), ("Red", 0, 6), ("Green", 0, 7), ("Blue", 0, 8)]
    defs = "".join(
        f'      <FieldDefn index="{i}"><Name>{n}</Name><Type>{t}</Type><Usage>{u}</Usage>'
        "</FieldDefn>\n"
        for i, (n, t, u) in enumerate(fields)
    )
    rows = ""
    for i, code in enumerate(sorted(names)):
        r, g, b = (round(255 * c) for c in to_rgb(colours.get(code, "#000000")))
        cells = "".join(f"<F>{v}</F>" for v in (code, esc(names[code]), r, g, b))
        rows += f'      <Row index="{i}">{cells}</Row>\n'
    return (
        '<PAMDataset>\n  <PAMRasterBand band="1">\n    <CategoryNames>\n'
        f"{categories}    </CategoryNames>\n"
        '    <GDALRasterAttributeTable tableType="thematic">\n'
        f"{defs}{rows}    </GDALRasterAttributeTable>\n  </PAMRasterBand>\n</PAMDataset>\n"
    )


def qml_style(
    labels: Sequence[str], colours: Sequence[str], codes: Sequence[int] | None = None
) -> str:
    """A QGIS paletted-raster style (``.qml``): one named entry per code (default 1, 2, …)."""
    from matplotlib.colors import to_hex

    codes = list(codes) if codes is not None else list(range(1, len(labels) + 1))
    entries = "\n".join(
        f'        <paletteEntry value="{code}" label="{escape(label, {chr(34): "&quot;"})}" '
        f'color="{to_hex(colour)}" alpha="255"/>'
        for code, label, colour in zip(codes, labels, colours, strict=True)
    )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28">\n  <pipe>\n'
        '    <rasterrenderer type="paletted" band="1" opacity="1" nodataColor="">\n'
        f"      <colorPalette>\n{entries}\n      </colorPalette>\n"
        "    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    )


def salinity_stretch(
    path: str | Path, cut: tuple[float, float] = STRETCH_CUT, max_pixels: int = 2048
) -> tuple[float, float]:
    """The 2nd and 98th percentiles of the valid values of a salinity COG.

    Read decimated to at most ``max_pixels`` on the longer side (from the COG's
    overviews, so cheap and bounded in memory whatever the scene size). Returns
    ``(nan, nan)`` when the map has no valid pixel. A map being written takes the same
    figures from its blocks instead (:class:`StretchSample`).
    """
    with rasterio.open(path) as src:
        factor = max(1, math.ceil(max(src.width, src.height) / max_pixels))
        shape = (max(1, src.height // factor), max(1, src.width // factor))
        values = src.read(1, out_shape=shape, resampling=Resampling.nearest, masked=True)
    return _percentiles(values.compressed(), cut)


class StretchSample:
    """Every ``stride``-th pixel of a raster's rows and columns, gathered block by block.

    The sample a ramp style's 2–98 % come from while the map is written, so that no
    COG is read back for it: at most ``max_pixels`` on the longer side (about 16 MB),
    the whole raster when it is no larger. Blocks may come in any order.
    """

    def __init__(self, width: int, height: int, max_pixels: int = 2048) -> None:
        self.stride = max(1, math.ceil(max(width, height) / max_pixels))
        self._parts: list[np.ndarray] = []

    def add(self, window: Window, values: np.ndarray) -> None:
        """Keep the block's pixels on the sample's grid (those with a value)."""
        first_row = -int(window.row_off) % self.stride
        first_col = -int(window.col_off) % self.stride
        part = values[first_row :: self.stride, first_col :: self.stride]
        self._parts.append(part[np.isfinite(part)])

    def stretch(self, cut: tuple[float, float] = STRETCH_CUT) -> tuple[float, float]:
        """The ``cut`` percentiles of the sample (``(nan, nan)`` without any value)."""
        return _percentiles(np.concatenate(self._parts) if self._parts else np.empty(0), cut)


def _percentiles(values: np.ndarray, cut: tuple[float, float]) -> tuple[float, float]:
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(valid, cut)
    return float(low), float(high)


def qml_stretch_style(
    low: float, high: float, unit: str | None = None, cmap: str = "YlOrBr", stops: int = 9
) -> str:
    """A QGIS pseudocolour style (``.qml``) stretching ``cmap`` from ``low`` to ``high``.

    The limits are recorded as QGIS's own 2–98 % cumulative cut, so QGIS shows the
    map as saltmap measured it and can recompute the same stretch for a new extent.
    A map without valid pixels gets the range 0–1.
    """
    import matplotlib
    from matplotlib.colors import to_hex

    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        low, high = (0.0, 1.0) if not np.isfinite(low) else (low, low + 1.0)
    ramp = matplotlib.colormaps[cmap]
    suffix = f" {escape(unit, {chr(34): '&quot;'})}" if unit else ""
    items = "\n".join(
        f'          <item value="{v:.6g}" label="{v:.4g}{suffix}" '
        f'color="{to_hex(ramp(t))}" alpha="255"/>'
        for t, v in zip(np.linspace(0, 1, stops), np.linspace(low, high, stops), strict=True)
    )
    lo, hi = STRETCH_CUT
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28">\n  <pipe>\n'
        '    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" '
        f'nodataColor="" classificationMin="{low:.6g}" classificationMax="{high:.6g}">\n'
        "      <minMaxOrigin><limits>CumulativeCut</limits><extent>WholeRaster</extent>"
        f"<statAccuracy>Estimated</statAccuracy><cumulativeCutLower>{lo}</cumulativeCutLower>"
        f"<cumulativeCutUpper>{hi}</cumulativeCutUpper></minMaxOrigin>\n"
        "      <rastershader>\n"
        '        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" '
        f'clip="0" minimumValue="{low:.6g}" maximumValue="{high:.6g}">\n'
        f"{items}\n        </colorrampshader>\n      </rastershader>\n"
        "    </rasterrenderer>\n  </pipe>\n</qgis>\n"
    )

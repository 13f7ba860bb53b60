"""Map figures: the class map (the study's figure 6) and the trust panels, from arrays.

Like :mod:`saltmap.plots`, each function takes arrays and their extent, draws one
figure with matplotlib's object API and returns it; nothing here reads a raster.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib

matplotlib.use("Agg")  # saltmap draws files, never windows

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator


def _nice_length(span: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k) near a fifth of ``span``."""
    target = span / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def class_map_figure(
    codes,
    extent: tuple[float, float, float, float],
    *,
    labels: list[str],
    colours: list[str],
    crs=None,
    title: str | None = None,
    percent: list[float] | None = None,
    outside_aoa=None,
) -> Figure:
    """Salinity class map like the study's figure 6.

    Parameters
    ----------
    codes : 2-D array of int
        Class codes, 1 = first class, 0 = no data (drawn transparent).
    extent : (left, right, bottom, top)
        Bounds of the array in the map's CRS (projected, metres).
    labels, colours : list of str
        Name and colour of each class, in code order.
    crs : rasterio or pyproj CRS, optional
        Used to label the frame with longitude and latitude (top and right) beside
        eastings and northings (bottom and left).
    percent : list of float, optional
        Share of the mapped area per class, shown in the legend.
    outside_aoa : 2-D array of bool, optional
        True where a pixel lies outside the area of applicability (same shape as
        ``codes``); drawn dark grey and hatched over the classes.

    Notes
    -----
    The axes show the whole ``extent``: crop the arrays to the area to show
    (:func:`saltmap.mapping.figure.class_map_of` frames the mapped pixels or the boundary).
    """
    left, right, bottom, top = extent
    aspect = (top - bottom) / (right - left) if right - left else 1.0
    fig, ax = plt.subplots(figsize=(8.0, max(3.5, min(10.0, 6.2 * aspect + 1.2))))
    _draw_classes(ax, codes, extent, colours, outside_aoa)
    _metre_axes(ax, crs, extent)
    _scale_bar_and_north(ax, extent)
    _class_legend(ax, labels, colours, percent, outside_aoa is not None)
    ax.set_title(textwrap.fill(title or "Soil salinity classes", 70), fontsize=10, pad=18)
    fig.tight_layout()
    return fig


def valid_frame(valid, extent: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The ``(left, right, bottom, top)`` bounds of the True pixels of ``valid``.

    ``extent`` is the bounds of the whole array (north up); without a True pixel the
    whole extent is returned.
    """
    valid = np.asarray(valid, dtype=bool)
    rows, cols = np.flatnonzero(valid.any(axis=1)), np.flatnonzero(valid.any(axis=0))
    if rows.size == 0:
        return tuple(extent)
    left, right, bottom, top = extent
    dx, dy = (right - left) / valid.shape[1], (top - bottom) / valid.shape[0]
    return (
        left + cols[0] * dx,
        left + (cols[-1] + 1) * dx,
        top - (rows[-1] + 1) * dy,
        top - rows[0] * dy,
    )


def _draw_classes(ax: Axes, codes, extent, colours: list[str], outside_aoa) -> None:
    """The class codes (0 transparent), and pixels outside the AOA greyed and hatched."""
    outside = None if outside_aoa is None else np.asarray(outside_aoa, dtype=bool)
    # One image of bytes, coloured here: a masked array through a colormap and a second
    # one for the grey made drawing a full tile's 1568 px map with the AOA take 419 MiB
    # more than the process held, against 274 MiB this way (most of the rest: hatching).
    ax.imshow(class_rgba(codes, colours, outside), extent=extent, interpolation="nearest")
    if outside is not None:
        ax.contourf(outside.astype(float), levels=[0.5, 1.5], colors="none", hatches=["////"],
                    extent=extent, origin="upper")  # fmt: skip


#: Colour and opacity of the veil over pixels outside the area of applicability.
AOA_VEIL = ("#6e6e6e", 0.65)


def class_rgba(codes, colours: list[str], outside=None) -> np.ndarray:
    """Class codes as an RGBA image of bytes: code ``i`` in ``colours[i - 1]``, code 0 (and
    any code without a colour) transparent, and where ``outside`` is True the
    :data:`AOA_VEIL` laid over the class colour (alpha compositing, "over")."""
    lut = np.zeros((256, 4), np.uint8)
    lut[1 : len(colours) + 1] = np.round(matplotlib.colors.to_rgba_array(colours) * 255)
    rgba = lut[np.asarray(codes, dtype=np.uint8)]
    if outside is not None and outside.any():
        grey, alpha = AOA_VEIL
        below = rgba[outside] / 255.0
        under = below[:, 3:] * (1 - alpha)
        out_alpha = alpha + under
        below[:, :3] = (np.asarray(matplotlib.colors.to_rgb(grey)) * alpha
                        + below[:, :3] * under) / out_alpha  # fmt: skip
        below[:, 3:] = out_alpha
        rgba[outside] = np.round(below * 255)
    return rgba


def _metre_axes(ax: Axes, crs, extent) -> None:
    """Eastings and northings in metres (bottom, left); longitude and latitude (top, right)."""
    left, right, bottom, top = extent
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_facecolor("#f2f2f2")  # no data shows as light grey
    metres = FuncFormatter(lambda v, _: f"{v:,.0f}")
    ax.xaxis.set_major_formatter(metres)
    ax.yaxis.set_major_formatter(metres)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    ax.tick_params(axis="x", labelsize=7)
    ax.tick_params(axis="y", labelsize=7, labelrotation=90)
    name = getattr(crs, "to_string", lambda: "")() if crs is not None else ""
    ax.set_xlabel(f"easting (m){', ' + name if name else ''}", fontsize=8)
    ax.set_ylabel("northing (m)", fontsize=8)
    _lonlat_frame(ax, crs, extent)


def _scale_bar_and_north(ax: Axes, extent) -> None:
    """A scale bar in the lower left and a north arrow in the upper right."""
    left, right, bottom, top = extent
    width, height = right - left, top - bottom
    length = _nice_length(width)
    x0, y0 = left + 0.04 * width, bottom + 0.05 * height
    ax.plot([x0, x0 + length], [y0, y0], color="black", lw=3, solid_capstyle="butt")
    ax.plot([x0, x0 + length / 2], [y0, y0], color="white", lw=1.5, solid_capstyle="butt")
    text = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.text(x0 + length / 2, y0 + 0.02 * height, text, ha="center", va="bottom", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})  # fmt: skip
    ax.annotate("N", xy=(0.95, 0.93), xytext=(0.95, 0.80), xycoords="axes fraction",
                ha="center", va="center", fontsize=10, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})  # fmt: skip


def _class_legend(ax: Axes, labels: list[str], colours: list[str], percent, with_aoa: bool) -> None:
    """The classes (with their share of the area) and, if drawn, the outside-AOA hatch."""
    names = [
        f"{label} ({p:.1f} %)" if percent is not None else label
        for label, p in zip(labels, percent if percent is not None else labels, strict=True)
    ]
    handles = [Patch(facecolor=c, edgecolor="#555555", lw=0.5) for c in colours]
    if with_aoa:
        grey, alpha = AOA_VEIL
        handles.append(Patch(facecolor=grey, alpha=alpha, hatch="////", edgecolor="#333333"))
        names.append("outside the area of applicability")
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False,
              fontsize=8, title="salinity class", title_fontsize=9)  # fmt: skip


def _lonlat_frame(ax, crs, extent) -> None:
    """Longitude (top) and latitude (right) labels at the frame's own ticks."""
    if crs is None or not getattr(crs, "is_projected", False):
        return
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    right, top = extent[1], extent[3]

    def lon(x, _):
        return f"{to_lonlat.transform(x, top)[0]:.3f}°"

    def lat(y, _):
        return f"{to_lonlat.transform(right, y)[1]:.3f}°"

    top_ax = ax.secondary_xaxis("top")
    top_ax.xaxis.set_major_locator(MaxNLocator(5))
    top_ax.xaxis.set_major_formatter(FuncFormatter(lon))
    top_ax.tick_params(labelsize=7)
    right_ax = ax.secondary_yaxis("right")
    right_ax.yaxis.set_major_locator(MaxNLocator(4))
    right_ax.yaxis.set_major_formatter(FuncFormatter(lat))
    right_ax.tick_params(labelsize=7, labelrotation=90)


def trust_map_figure(
    di,
    aoa,
    width,
    extent: tuple[float, float, float, float],
    *,
    threshold: float,
    width_label: str = "interval width",
    title: str | None = None,
    frame: tuple[float, float, float, float] | None = None,
    class_confidence=None,
) -> Figure:
    """Dissimilarity index, area of applicability, interval width (and class confidence).

    Parameters
    ----------
    di, width : 2-D float arrays
        DI and prediction-interval width per pixel (NaN = no data).
    aoa : 2-D uint8 array
        1 inside the area of applicability, 0 outside, anything else no data.
    extent : (left, right, bottom, top)
        Bounds of the arrays in the map's CRS.
    threshold : float
        The AOA's DI threshold, drawn as a contour on the DI panel.
    width_label : str
        Colour-bar label of the width panel, with its unit.
    frame : (left, right, bottom, top), optional
        The area the panels show; by default the bounds of the pixels with an AOA
        value (:func:`valid_frame`).
    class_confidence : 2-D uint8 array, optional
        Salinity classes each pixel's interval spans (1-4, 4 = 4 or more; other
        values no data): a fourth panel.

    Notes
    -----
    On the width panel, pixels outside the AOA are greyed and hatched: their
    interval is reported but the model is not applicable there.
    """
    di, width, aoa = np.asarray(di, float), np.asarray(width, float), np.asarray(aoa)
    n = 3 if class_confidence is None else 4
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 4.4), sharex=True, sharey=True)
    _di_panel(fig, axes[0], di, extent, threshold)
    _aoa_panel(axes[1], aoa, extent)
    _width_panel(fig, axes[2], width, aoa, extent, width_label)
    if class_confidence is not None:
        _spans_panel(axes[3], np.asarray(class_confidence), extent)
    frame = frame or valid_frame((aoa == 0) | (aoa == 1), extent)
    # The panels share their axes: limits set once frame all three.
    axes[0].set_xlim(frame[0], frame[1])
    axes[0].set_ylim(frame[2], frame[3])
    for ax in axes:
        ax.set_facecolor("#f7f7f7")
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(useOffset=False, style="plain")
    fig.suptitle(title or "How far to trust the map", fontsize=11)
    fig.tight_layout()
    return fig


def _di_panel(fig: Figure, ax: Axes, di: np.ndarray, extent, threshold: float) -> None:
    """The dissimilarity index, with the AOA threshold marked on its colour bar.

    Not as a contour on the map: over speckled 30 m land cover the contour draws
    thousands of small white rings that read as holes in the data.
    """
    top = np.nanpercentile(di, 99) if np.isfinite(di).any() else 1.0
    im = ax.imshow(di, extent=extent, cmap="viridis", vmin=0, vmax=max(top, threshold))
    bar = fig.colorbar(im, ax=ax, shrink=0.8, label=f"DI (AOA threshold {threshold:.2f})")
    bar.ax.axhline(threshold, color="white", linewidth=2)
    bar.ax.axhline(threshold, color="black", linewidth=0.8)
    ax.set_title("dissimilarity index", fontsize=10)


def _aoa_panel(ax: Axes, aoa: np.ndarray, extent) -> None:
    """Inside and outside the area of applicability, with the share inside."""
    mask = np.ma.masked_where((aoa != 0) & (aoa != 1), aoa)
    ax.imshow(mask, extent=extent, cmap=ListedColormap(["#bdbdbd", "#1b9e77"]),
              vmin=0, vmax=1, interpolation="nearest")  # fmt: skip
    inside = np.mean(aoa[(aoa == 0) | (aoa == 1)] == 1) if np.any(aoa <= 1) else float("nan")
    ax.legend([Patch(color="#1b9e77"), Patch(color="#bdbdbd")],
              [f"inside AOA ({inside:.1%})", "outside AOA"], loc="lower right",
              fontsize=8, framealpha=0.85)  # fmt: skip
    ax.set_title("area of applicability", fontsize=10)


def _width_panel(
    fig: Figure, ax: Axes, width: np.ndarray, aoa: np.ndarray, extent, label: str
) -> None:
    """The interval width, greyed and hatched outside the AOA."""
    im = ax.imshow(width, extent=extent, cmap="magma_r")
    outside = np.ma.masked_where(aoa != 0, np.ones_like(width))
    ax.imshow(outside, extent=extent, cmap=ListedColormap(["#d9d9d9"]), alpha=0.45)
    ax.contourf(np.linspace(extent[0], extent[1], aoa.shape[1]),
                np.linspace(extent[3], extent[2], aoa.shape[0]), (aoa == 0).astype(float),
                levels=[0.5, 1.5], colors="none", hatches=["////"])  # fmt: skip
    fig.colorbar(im, ax=ax, shrink=0.8, label=label)
    ax.set_title("interval width (outside AOA hatched)", fontsize=10)


#: Colours and names of the class-confidence codes (as the layer's QGIS style).
_SPANS = {1: ("#1a9641", "inside its class"), 2: ("#fdae61", "spans 2 classes"),
          3: ("#d7191c", "spans 3 classes"), 4: ("#7b3294", "spans 4+ classes")}  # fmt: skip


def _spans_panel(ax: Axes, spans: np.ndarray, extent) -> None:
    """How many salinity classes each pixel's interval spans, with the share of each."""
    known = (spans >= 1) & (spans <= 4)
    mask = np.ma.masked_where(~known, spans)
    colours = [c for c, _ in _SPANS.values()]
    ax.imshow(mask, extent=extent, cmap=ListedColormap(colours), vmin=0.5, vmax=4.5,
              interpolation="nearest")  # fmt: skip
    total = max(int(known.sum()), 1)
    shown = [k for k in _SPANS if np.any(spans == k)]
    ax.legend([Patch(color=_SPANS[k][0]) for k in shown],
              [f"{_SPANS[k][1]} ({np.sum(spans == k) / total:.0%})" for k in shown],
              loc="lower right", fontsize=7.5, framealpha=0.85)  # fmt: skip
    ax.set_title("class confidence: classes the interval spans", fontsize=10)


def provenance_figure(
    source: np.ndarray,
    observations: np.ndarray,
    extent: tuple[float, float, float, float],
    scenes: list[str],
    *,
    crs=None,
    title: str = "Where the mosaic's pixels come from",
) -> Figure:
    """Two panels of a mosaic map: the scene that gave each pixel, and how many valid
    observations it had (:mod:`saltmap.mapping.provenance`)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5.2), layout="constrained")
    n = len(scenes)
    colours = [matplotlib.colormaps["tab20"](i % 20) for i in range(n)]
    cmap = ListedColormap(colours)
    shown = np.ma.masked_equal(source, 0)
    left.imshow(shown, extent=extent, cmap=cmap, norm=BoundaryNorm(np.arange(0.5, n + 1), n),
                interpolation="nearest")  # fmt: skip
    numbered = enumerate(zip(colours, scenes, strict=True), start=1)
    handles = [Patch(color=c, label=f"{i}: {name}") for i, (c, name) in numbered]
    left.legend(handles=handles, loc="upper left", bbox_to_anchor=(0, -0.08),
                fontsize="small", frameon=False)  # fmt: skip
    left.set_title("scene that gave the value")
    top = max(1, int(observations.max()))
    counts = ListedColormap(matplotlib.colormaps["viridis"](np.linspace(0, 1, top + 1)))
    image = right.imshow(observations, extent=extent, cmap=counts, interpolation="nearest",
                         norm=BoundaryNorm(np.arange(-0.5, top + 1), top + 1))  # fmt: skip
    fig.colorbar(image, ax=right, ticks=range(top + 1), label="valid observations", shrink=0.8)
    right.set_title("valid observations per pixel")
    for ax in (left, right):
        _metre_axes(ax, crs, extent)
    fig.suptitle(title)
    return fig

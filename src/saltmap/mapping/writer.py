"""The files of a map: first-stage GeoTIFFs written block by block, then COGs and side files.

:class:`MapWriter` writes each block into private tiled GeoTIFFs and tallies the
class counts, valid pixels and trust figures as it goes; :meth:`MapWriter.finish`
tags them and converts each into a Cloud-Optimized GeoTIFF [1]_ under its final
name, atomically. :func:`write_side_files` adds the class areas CSV and the QGIS
styles (``.qml``) that QGIS loads beside a raster of the same name.

References
----------
.. [1] GDAL. COG -- Cloud Optimized GeoTIFF generator.
   https://gdal.org/en/stable/drivers/raster/cog.html
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from saltmap.atomic import atomic_output, atomic_to_csv, atomic_write_text, temp_path_for
from saltmap.mapping.blocks import (
    CLASS_NODATA,
    SALINITY_NODATA,
    ClassPlan,
    empty_salinity,
    empty_trust,
)
from saltmap.mapping.provenance import (
    PROVENANCE_FILES,
    SourceTally,
    describe_layers,
    empty_provenance,
    provenance_paths,
    side_paths,
)
from saltmap.mapping.provenance import layer_profile as provenance_profile
from saltmap.trust.maps import TRUST_LAYERS, TrustSummary

if TYPE_CHECKING:
    from saltmap.io.scene import Scene
    from saltmap.trust.maps import TrustModel

#: File of each trust layer (keys of :data:`saltmap.trust.intervals.TRUST_LAYERS`).
TRUST_FILES: dict[str, str] = {
    "lower": "salinity_lower.tif",
    "upper": "salinity_upper.tif",
    "width": "salinity_width.tif",
    "di": "dissimilarity.tif",
    "aoa": "aoa.tif",
}
#: Share of values left below and above the default stretch (QGIS's own cumulative cut).
STRETCH_CUT = (0.02, 0.98)


@dataclass(frozen=True)
class MapOutputs:
    """Files written by :func:`saltmap.mapping.engine.map_scene` in its output folder.

    ``trust`` maps each trust layer to its COG; it is empty when the map is made
    without a trust model.
    """

    salinity: Path
    classes: Path
    style: Path
    areas: Path
    figure: Path
    trust: dict[str, Path] = field(default_factory=dict)
    #: The provenance COGs of a mosaic (:mod:`saltmap.mapping.provenance`); else empty.
    provenance: dict[str, Path] = field(default_factory=dict)

    @property
    def salinity_style(self) -> Path:
        """QGIS default style of the salinity COG (a colour ramp over its 2–98 %): QGIS
        loads a .qml of the raster's own name with it."""
        return self.salinity.with_suffix(".qml")

    @classmethod
    def in_folder(
        cls, out_dir: str | Path, *, trust: bool = False, provenance: bool = False
    ) -> MapOutputs:
        out = Path(out_dir)
        return cls(
            salinity=out / "salinity.tif",
            classes=out / "salinity_classes.tif",
            style=out / "salinity_classes.qml",
            areas=out / "class_areas.csv",
            figure=out / "salinity_map.png",
            trust={name: out / file for name, file in TRUST_FILES.items()} if trust else {},
            provenance=provenance_paths(out) if provenance else {},
        )

    def all(self) -> list[Path]:
        sides = side_paths(self.salinity.parent) if self.provenance else []
        return [self.salinity, self.classes, *self.trust.values(), self.style,
                self.salinity_style, self.areas, self.figure,
                *self.provenance.values(), *sides]  # fmt: skip


# ------------------------------------------------------------ first-stage rasters


class MapWriter:
    """The map's private tiled GeoTIFFs, open for writing block by block.

    Used as a context: entering opens one GeoTIFF per output raster (salinity,
    classes and each trust layer of ``outputs``); leaving closes and removes them,
    whether :meth:`finish` turned them into COGs or an error stopped the map.

    Attributes
    ----------
    counts : ndarray of shape (256,), int64
        Pixels written per class code (0 = no class).
    n_valid : int
        Pixels written with a salinity value.
    summary : TrustSummary or None
        Trust figures of the blocks written (None without trust layers).
    """

    def __init__(self, outputs: MapOutputs, scene: Scene) -> None:
        self.outputs = outputs
        self._temp = {
            "salinity": temp_path_for(outputs.salinity),
            "classes": temp_path_for(outputs.classes),
            **{name: temp_path_for(path) for name, path in outputs.trust.items()},
            **{name: temp_path_for(path) for name, path in outputs.provenance.items()},
        }
        self._grid = {
            "driver": "GTiff", "width": scene.width, "height": scene.height, "count": 1,
            "crs": scene.crs, "transform": scene.transform,
            "tiled": True, "blockxsize": 256, "blockysize": 256,
        }  # fmt: skip
        self._stack = contextlib.ExitStack()
        self._open: dict[str, Any] = {}
        self.counts = np.zeros(256, dtype=np.int64)
        self.n_valid = 0
        self.summary = TrustSummary() if outputs.trust else None
        self.sources = SourceTally()

    def __enter__(self) -> MapWriter:
        try:
            self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=128))
            for name, tmp in self._temp.items():
                dataset = rasterio.open(tmp, "w", **self._grid, **_layer_profile(name))
                self._open[name] = self._stack.enter_context(dataset)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._stack.close()
        finally:
            for tmp in self._temp.values():
                tmp.unlink(missing_ok=True)

    def write(
        self,
        window: Window,
        salinity: np.ndarray,
        classes: np.ndarray,
        layers: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Write one block and add it to the tallies."""
        self._open["salinity"].write(salinity, 1, window=window)
        self._open["classes"].write(classes, 1, window=window)
        if layers:
            for name in self.outputs.trust:
                self._open[name].write(layers[name], 1, window=window)
            if self.summary is not None:
                self.summary.add(layers)
            for name in self.outputs.provenance:
                self._open[name].write(layers[name], 1, window=window)
            if self.outputs.provenance:
                self.sources.add(layers, salinity)
        self.counts += np.bincount(classes.ravel(), minlength=256)
        self.n_valid += int(np.isfinite(salinity).sum())

    def write_empty(self, window: Window) -> None:
        """Write a block without data (outside the boundary); the tallies are unchanged."""
        shape = (int(window.height), int(window.width))
        self._open["salinity"].write(empty_salinity(shape), 1, window=window)
        self._open["classes"].write(np.zeros(shape, np.uint8), 1, window=window)
        for name, layer in empty_trust(shape).items() if self.outputs.trust else ():
            self._open[name].write(layer, 1, window=window)
        for name, layer in empty_provenance(shape).items() if self.outputs.provenance else ():
            self._open[name].write(layer, 1, window=window)

    def finish(self, tags: Mapping[str, str], plan: ClassPlan, trust: TrustModel | None) -> None:
        """Tag the rasters, close them and convert each into its COG."""
        _describe(self._open["salinity"], self._open["classes"], tags, plan)
        layers = {name: self._open[name] for name in self.outputs.trust}
        if layers:
            _describe_trust(layers, tags, trust)
        describe_layers({name: self._open[name] for name in self.outputs.provenance}, tags)
        self._stack.close()
        _to_cog(self._temp["salinity"], self.outputs.salinity, resampling="average", predictor=3)
        _to_cog(self._temp["classes"], self.outputs.classes, resampling="nearest", predictor=1)
        for name, final in self.outputs.trust.items():
            categorical = name == "aoa"
            _to_cog(self._temp[name], final, resampling="nearest" if categorical else "average",
                    predictor=1 if categorical else 3)  # fmt: skip
        for name, final in self.outputs.provenance.items():
            _to_cog(self._temp[name], final, resampling="nearest", predictor=1)


def _layer_profile(name: str) -> dict[str, Any]:
    if name == "salinity":
        return {"dtype": "float32", "nodata": SALINITY_NODATA}
    if name == "classes":
        return {"dtype": "uint8", "nodata": CLASS_NODATA}
    if name in PROVENANCE_FILES:
        return provenance_profile(name)
    dtype, nodata, _ = TRUST_LAYERS[name]
    return {"dtype": dtype, "nodata": nodata}


def _describe(sal: Any, cls: Any, tags: Mapping[str, str], plan: ClassPlan) -> None:
    unit = tags["unit"]
    sal.update_tags(**tags)
    sal.set_band_description(1, f"{tags['target']} ({unit})")
    sal.update_tags(1, units=unit)
    cls.update_tags(**tags, scheme=plan.description)
    cls.update_tags(1, **{f"class_{i}": label for i, label in enumerate(plan.labels, start=1)})
    cls.update_tags(1, class_names="|".join(plan.labels), nodata_code=str(CLASS_NODATA))
    cls.set_band_description(1, f"salinity class ({plan.description})")
    cls.write_colormap(1, plan.scheme.colour_table())


def _describe_trust(layers: Mapping[str, Any], tags: Mapping[str, str], trust: TrustModel) -> None:
    info = {f"trust_{k}": str(v) for k, v in getattr(trust, "info", {}).items()}
    info["aoa_threshold"] = repr(float(trust.aoa.threshold_))
    for name, dst in layers.items():
        _, _, description = TRUST_LAYERS[name]
        dst.update_tags(**tags, **info)
        dst.set_band_description(1, description.format(unit=tags["unit"]))
        if name in ("lower", "upper", "width"):
            dst.update_tags(1, units=tags["unit"])


def _to_cog(tmp: Path, final: Path, *, resampling: str, predictor: int) -> None:
    """Convert a tiled GeoTIFF into a COG under ``final``, atomically [1]_."""
    with (
        atomic_output(final) as staged,
        rasterio.Env(GDAL_CACHEMAX=256, GDAL_NUM_THREADS="ALL_CPUS"),
    ):
        rasterio.shutil.copy(
            tmp,
            staged,
            driver="COG",
            compress="DEFLATE",
            predictor=predictor,
            blocksize=512,
            overview_resampling=resampling,
            num_threads="ALL_CPUS",
            bigtiff="IF_SAFER",
        )


# -------------------------------------------------------------------- side files


def class_area_table(counts: np.ndarray, labels: Sequence[str], pixel_km2: float) -> pd.DataFrame:
    """Area in km² and share in % of each class from pixel counts (index 0 = no data)."""
    counts = np.asarray(counts, dtype=np.int64)[1 : len(labels) + 1]
    total = counts.sum()
    return pd.DataFrame(
        {
            "code": np.arange(1, len(labels) + 1),
            "class": list(labels),
            "pixels": counts,
            "area_km2": counts * pixel_km2,
            "percent": 100.0 * counts / total if total else np.zeros(len(labels)),
        }
    )


def write_side_files(
    outputs: MapOutputs, areas: pd.DataFrame, plan: ClassPlan, unit: str | None
) -> None:
    """Write the class areas CSV, the class style and the salinity COG's stretched style."""
    atomic_to_csv(areas, outputs.areas, index=False, float_format="%.6g")
    atomic_write_text(outputs.style, qml_style(plan.labels, plan.colours))
    low, high = salinity_stretch(outputs.salinity)
    atomic_write_text(outputs.salinity_style, qml_stretch_style(low, high, unit))


def qml_style(labels: Sequence[str], colours: Sequence[str]) -> str:
    """A QGIS paletted-raster style (``.qml``) for the class COG."""
    from matplotlib.colors import to_hex

    entries = "\n".join(
        f'        <paletteEntry value="{code}" label="{escape(label, {chr(34): "&quot;"})}" '
        f'color="{to_hex(colour)}" alpha="255"/>'
        for code, (label, colour) in enumerate(zip(labels, colours, strict=True), start=1)
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
    ``(nan, nan)`` when the map has no valid pixel.
    """
    with rasterio.open(path) as src:
        factor = max(1, math.ceil(max(src.width, src.height) / max_pixels))
        shape = (max(1, src.height // factor), max(1, src.width // factor))
        values = src.read(1, out_shape=shape, resampling=Resampling.nearest, masked=True)
    valid = values.compressed()
    valid = valid[np.isfinite(valid)]
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

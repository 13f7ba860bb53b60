"""The files of a map: first-stage GeoTIFFs written block by block, then COGs and side files.

:class:`MapWriter` writes each block into private tiled GeoTIFFs and tallies the
class counts, valid pixels and trust figures as it goes; :meth:`MapWriter.finish`
tags them and converts each into a Cloud-Optimized GeoTIFF [1]_ under its final
name, atomically. :func:`write_side_files` adds the class areas CSV, the QGIS
styles (``.qml``) that QGIS loads beside a raster of the same name (every raster
has one: a colour ramp over its 2–98 % or named categories), and for the
categorical rasters the category names GDAL keeps for a GeoTIFF: a PAM
``.aux.xml`` with ``CategoryNames`` and a thematic raster attribute table [2]_ (both
written by :mod:`saltmap.mapping.styles`).

:data:`LAYERS` is the one table of the rasters a map may write: file, data type,
no-data, style and resampling of each. A new layer is a new row.

References
----------
.. [1] GDAL. COG -- Cloud Optimized GeoTIFF generator.
   https://gdal.org/en/stable/drivers/raster/cog.html
.. [2] GDAL. Raster data model: raster attribute tables, category names (kept in
   the ``.aux.xml`` of a GeoTIFF). https://gdal.org/en/stable/user/raster_data_model.html
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import rasterio
import rasterio.shutil
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
from saltmap.mapping.styles import (
    StretchSample,
    pam_categories,
    qml_stretch_style,
    qml_style,
)
from saltmap.models.physical import count_at_bounds
from saltmap.trust.maps import TRUST_CATEGORIES, TRUST_LAYERS, TrustSummary

if TYPE_CHECKING:
    from saltmap.io.scene import Scene
    from saltmap.trust.maps import TrustModel


@dataclass(frozen=True)
class Layer:
    """How one raster of a map is written and styled.

    ``style`` is ``"ramp"`` (a QGIS pseudocolour ramp of ``cmap`` over the layer's
    2–98 %), ``"categories"`` (named categories, :data:`CATEGORY_COLOURS`) or
    ``"classes"`` (the class scheme's colours and labels). Categorical layers
    are resampled by nearest neighbour and compressed without a float predictor.
    """

    file: str
    dtype: str
    nodata: float
    style: str
    cmap: str = "YlOrBr"

    @property
    def categorical(self) -> bool:
        return self.style != "ramp"


def _trust_layer(file: str, name: str, style: str, cmap: str = "YlOrBr") -> Layer:
    dtype, nodata, _ = TRUST_LAYERS[name]
    return Layer(file, dtype, nodata, style, cmap)


#: Every raster a map may write (the trust layers only with a trust model).
LAYERS: dict[str, Layer] = {
    "salinity": Layer("salinity.tif", "float32", SALINITY_NODATA, "ramp"),
    "classes": Layer("salinity_classes.tif", "uint8", CLASS_NODATA, "classes"),
    "lower": _trust_layer("salinity_lower.tif", "lower", "ramp"),
    "upper": _trust_layer("salinity_upper.tif", "upper", "ramp"),
    "width": _trust_layer("salinity_width.tif", "width", "ramp", "magma_r"),
    "di": _trust_layer("dissimilarity.tif", "di", "ramp", "viridis"),
    "aoa": _trust_layer("aoa.tif", "aoa", "categories"),
    "class_confidence": _trust_layer("class_confidence.tif", "class_confidence", "categories"),
}
#: File of each trust layer (keys of :data:`saltmap.trust.maps.TRUST_LAYERS`).
TRUST_FILES: dict[str, str] = {name: LAYERS[name].file for name in TRUST_LAYERS}
#: Colours of the named categories of the categorical trust layers.
CATEGORY_COLOURS: dict[str, dict[int, str]] = {
    "aoa": {0: "#bdbdbd", 1: "#1b9e77"},
    "class_confidence": {1: "#1a9641", 2: "#fdae61", 3: "#d7191c", 4: "#7b3294"},
}


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

    @property
    def trust_styles(self) -> dict[str, Path]:
        """QGIS default style of each trust COG (a ramp, or named categories)."""
        return {name: path.with_suffix(".qml") for name, path in self.trust.items()}

    @property
    def category_files(self) -> dict[str, Path]:
        """The GDAL ``.aux.xml`` (category names, attribute table) of each categorical COG."""
        rasters = {"classes": self.classes, **self.trust}
        return {
            name: path.with_name(path.name + ".aux.xml")
            for name, path in rasters.items()
            if LAYERS[name].categorical
        }

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
                self.salinity_style, *self.trust_styles.values(),
                *self.category_files.values(), self.areas, self.figure,
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
    n_clipped : int
        Of them, predictions held at the model's physical ``bounds`` (below zero set to
        zero, or a log target's widened training range; :mod:`saltmap.models.physical`).
    summary : TrustSummary or None
        Trust figures of the blocks written (None without trust layers).
    samples : dict of str to StretchSample
        Of each raster styled as a ramp (salinity and the float trust layers): the
        pixels its style's 2–98 % come from.
    """

    def __init__(
        self, outputs: MapOutputs, scene: Scene, bounds: tuple[float, float] | None = None
    ) -> None:
        self.outputs = outputs
        self._bounds = bounds
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
        self.n_clipped = 0
        self.summary = TrustSummary() if outputs.trust else None
        self.sources = SourceTally()
        self.samples = {
            name: StretchSample(scene.width, scene.height)
            for name in ("salinity", *outputs.trust)
            if not LAYERS[name].categorical
        }

    def __enter__(self) -> MapWriter:
        try:
            # Blocks are whole 256 px tiles (bar the edges), written once each: the
            # cache only holds tiles on their way to disk, and 32 MB takes a 1024 px
            # block of every layer; a larger one would fill with written tiles.
            self._stack.enter_context(rasterio.Env(GDAL_CACHEMAX=32))
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
        for name, sample in self.samples.items():
            sample.add(window, salinity if name == "salinity" else layers[name])
        self.counts += np.bincount(classes.ravel(), minlength=256)
        self.n_valid += int(np.isfinite(salinity).sum())
        self.n_clipped += sum(count_at_bounds(salinity, self._bounds, rtol=1e-6).values())

    def stretches(self) -> dict[str, tuple[float, float]]:
        """The 2–98 % of each ramp-styled raster, from its :attr:`samples`."""
        return {name: sample.stretch() for name, sample in self.samples.items()}

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
        # Two at a time: a COG's overviews are computed on one core (GDAL's threads only
        # compress), so a second conversion fills the other.
        with cf.ThreadPoolExecutor(max_workers=2) as pool:
            converting = [
                pool.submit(_to_cog, tmp, final, **options)
                for tmp, final, options in self._conversions(plan)
            ]
            for future in converting:
                future.result()

    def _conversions(self, plan: ClassPlan) -> list[tuple[Path, Path, dict[str, Any]]]:
        """Each first-stage GeoTIFF, its COG and how :func:`_to_cog` writes it."""
        finals = {"salinity": self.outputs.salinity, "classes": self.outputs.classes,
                  **self.outputs.trust}  # fmt: skip
        conversions = []
        for name, final in finals.items():
            # The class COG holds as few bits as its codes need, so that its colour
            # table has 2**bits entries (8 for up to 7 classes), not 256.
            bits = _class_bits(len(plan.labels)) if name == "classes" else None
            options = {"categorical": LAYERS[name].categorical, "nbits": bits}
            conversions.append((self._temp[name], final, options))
        for name, final in self.outputs.provenance.items():
            conversions.append((self._temp[name], final, {"categorical": True}))
        return conversions


def _layer_profile(name: str) -> dict[str, Any]:
    if name in PROVENANCE_FILES:
        return provenance_profile(name)
    layer = LAYERS[name]
    return {"dtype": layer.dtype, "nodata": layer.nodata}


def _class_bits(n_classes: int) -> int | None:
    """Bits per pixel of a class COG of ``n_classes`` classes plus code 0 (None: 8)."""
    bits = max(1, math.ceil(math.log2(n_classes + 1)))
    return bits if bits < 8 else None


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


def _to_cog(tmp: Path, final: Path, *, categorical: bool, nbits: int | None = None) -> None:
    """Convert a tiled GeoTIFF into a COG under ``final``, atomically [1]_."""
    extra = {"nbits": nbits} if nbits else {}
    if not categorical:
        # DEFLATE's fastest level: float predictions barely compress at any level (a real
        # Unnao map came out 1.6 % larger at level 1 than at 6, in half the time), and the
        # salinity COG is most of a fast model's writing. DEFLATE, not ZSTD: every GIS
        # reads it.
        extra["level"] = 1
        # Not COG_TMP_COMPRESSION=NONE (the driver's temporary overviews uncompressed):
        # 0.4 s faster on a 6144² map, but with GDAL 3.10.3 it changed the overviews
        # from an odd-sized level on (a 10980² tile's 1372² level and below).
    with (
        atomic_output(final) as staged,
        rasterio.Env(GDAL_CACHEMAX=256, GDAL_NUM_THREADS="ALL_CPUS"),
    ):
        rasterio.shutil.copy(
            tmp,
            staged,
            driver="COG",
            compress="DEFLATE",
            # The COG driver's names: no predictor for codes, the float one for values.
            predictor="NO" if categorical else "FLOATING_POINT",
            blocksize=512,
            overview_resampling="nearest" if categorical else "average",
            num_threads="ALL_CPUS",
            bigtiff="IF_SAFER",
            **extra,
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
    outputs: MapOutputs,
    areas: pd.DataFrame,
    plan: ClassPlan,
    unit: str | None,
    stretches: Mapping[str, tuple[float, float]],
) -> None:
    """Write the class areas CSV, a QGIS style beside every raster and the category
    names of the categorical ones; ``stretches`` holds the 2–98 % of each ramp-styled
    raster (:meth:`MapWriter.stretches`)."""
    atomic_to_csv(areas, outputs.areas, index=False, float_format="%.6g")
    atomic_write_text(outputs.style, qml_style(plan.labels, plan.colours))
    low, high = stretches["salinity"]
    atomic_write_text(outputs.salinity_style, qml_stretch_style(low, high, unit))
    for name, style in outputs.trust_styles.items():
        atomic_write_text(style, _trust_style(name, stretches.get(name), unit))
    for name, aux in outputs.category_files.items():
        if name == "classes":
            names = dict(enumerate(["no data", *plan.labels]))
            colours = {k: _hex(rgba) for k, rgba in plan.scheme.colour_table().items()}
        else:
            names, colours = TRUST_CATEGORIES[name], CATEGORY_COLOURS[name]
        atomic_write_text(aux, pam_categories(names, colours))


def _hex(rgba: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _trust_style(name: str, stretch: tuple[float, float] | None, unit: str | None) -> str:
    """The QGIS style of one trust COG: its ramp over ``stretch`` (its 2–98 %), or its
    named categories."""
    layer = LAYERS[name]
    if layer.categorical:
        names, colours = TRUST_CATEGORIES[name], CATEGORY_COLOURS[name]
        codes = sorted(names)
        return qml_style([names[c] for c in codes], [colours[c] for c in codes], codes)
    low, high = stretch
    return qml_stretch_style(low, high, None if name == "di" else unit, cmap=layer.cmap)

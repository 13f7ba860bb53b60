"""Where each pixel of a mosaic map came from: the provenance layers and their legend.

A map of a :class:`~saltmap.io.mosaic.Mosaic` writes two more COGs: ``observations.tif``
(how many valid observations the pixel had) and ``source_scene.tif`` (the number of the
scene that gave its value, 0 for none), with ``scenes.csv`` as the legend (number,
source, date, sensor and the pixels each scene gave) and a QGIS style that names each
scene in the legend of ``source_scene.tif``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saltmap.atomic import atomic_to_csv, atomic_write_text
from saltmap.io.mosaic import PROVENANCE_LAYERS, Mosaic
from saltmap.mapping.styles import qml_style

#: File of each provenance layer (keys of :data:`saltmap.io.mosaic.PROVENANCE_LAYERS`).
PROVENANCE_FILES: dict[str, str] = {
    "observations": "observations.tif",
    "source": "source_scene.tif",
}
#: The legend of the source layer, and the figure of both layers.
SCENES_FILE = "scenes.csv"
FIGURE_FILE = "provenance.png"


def provenance_paths(out_dir: str | Path) -> dict[str, Path]:
    """The provenance COG of each layer in ``out_dir``."""
    return {name: Path(out_dir) / file for name, file in PROVENANCE_FILES.items()}


def side_paths(out_dir: str | Path) -> list[Path]:
    """The legend and the QGIS style of the source layer, and the provenance figure."""
    source = Path(out_dir) / PROVENANCE_FILES["source"]
    return [Path(out_dir) / SCENES_FILE, source.with_suffix(".qml"), Path(out_dir) / FIGURE_FILE]


def has_provenance(scene: Any) -> bool:
    """Whether a scene reads provenance layers with its reflectance (a mosaic does)."""
    return isinstance(scene, Mosaic)


def empty_provenance(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Provenance of a block without data: no observation, no source."""
    return {name: np.zeros(shape, dtype) for name, (dtype, _, _) in PROVENANCE_LAYERS.items()}


def layer_profile(name: str) -> dict[str, Any]:
    dtype, nodata, _ = PROVENANCE_LAYERS[name]
    return {"dtype": dtype, "nodata": nodata}


class SourceTally:
    """Pixels with a salinity value given by each scene of a mosaic, block by block."""

    def __init__(self) -> None:
        self.counts = np.zeros(256, dtype=np.int64)

    def add(self, layers: Mapping[str, np.ndarray], salinity: np.ndarray) -> None:
        source = layers["source"][np.isfinite(salinity)]
        self.counts += np.bincount(source.ravel(), minlength=256)


def describe_layers(datasets: Mapping[str, Any], tags: Mapping[str, str]) -> None:
    """Tag the provenance rasters and describe their band."""
    for name, dst in datasets.items():
        dst.update_tags(**tags)
        dst.set_band_description(1, PROVENANCE_LAYERS[name][2])


def write_legend(out_dir: str | Path, mosaic: Mosaic, tally: SourceTally) -> pd.DataFrame:
    """Write ``scenes.csv`` and the QGIS style of the source layer; return the legend."""
    legend = pd.DataFrame(mosaic.scene_table())
    legend["pixels_mapped"] = tally.counts[1 : len(legend) + 1]
    paths = side_paths(out_dir)
    atomic_to_csv(legend, paths[0], index=False)
    atomic_write_text(paths[1], qml_sources(list(legend["source"])))
    return legend


def qml_sources(sources: list[str]) -> str:
    """A QGIS paletted style naming each scene number of the source layer."""
    import matplotlib

    colours = matplotlib.colormaps["tab20"]
    labels = [f"{i}: {Path(s).name}" for i, s in enumerate(sources, start=1)]
    return qml_style(labels, [colours(i % 20) for i in range(len(sources))])

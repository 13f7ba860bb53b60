"""Open a saltmap map folder in QGIS, headless, and report how each raster is styled.

Run with the Python that has QGIS's bindings (Debian's ``python3-qgis``: ``/usr/bin/python3``),
not saltmap's virtual environment::

    /usr/bin/python3 tests/qgis_styles.py MAP_FOLDER [--render DIR]

Every raster is opened the way QGIS opens a dropped file (``QgsRasterLayer`` with its
default style, the ``.qml`` of the raster's own name beside it), and so is a copy of the
class COG without its ``.qml`` (with GDAL's ``.aux.xml``, as ``gdal_translate`` copies
it). Prints one JSON object: per raster, whether the layer is valid, whether a style file
was beside it, the renderer and its entries (value, label, colour, alpha). With
``--render``, each layer is drawn to a PNG there, to look at.
``tests/test_trust_layers.py`` runs this where QGIS is installed and checks the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# QGIS reads the platform as it is imported: set above, before it.
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRasterLayer,
)
from qgis.PyQt.QtCore import QSize


def entries(layer: QgsRasterLayer) -> list[dict]:
    """The renderer's legend: paletted classes, or the colour ramp's items."""
    renderer = layer.renderer()
    if hasattr(renderer, "classes"):
        return [
            {"value": c.value, "label": c.label, "colour": c.color.name(), "alpha": c.color.alpha()}
            for c in renderer.classes()
        ]
    shader = getattr(renderer, "shader", lambda: None)()
    if shader is None:
        return []
    ramp = shader.rasterShaderFunction().colorRampItemList()
    return [{"value": i.value, "label": i.label, "colour": i.color.name()} for i in ramp]


def describe(path: Path) -> dict:
    layer = QgsRasterLayer(str(path), path.stem)
    if not layer.isValid():
        return {"valid": False}
    return {
        "valid": True,
        "style_file": path.with_suffix(".qml").exists(),
        "renderer": layer.renderer().type(),
        "entries": entries(layer),
        "_layer": layer,
    }


def render(layer: QgsRasterLayer, png: Path) -> None:
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(600, int(600 * layer.height() / max(layer.width(), 1))))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(str(png))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--render", type=Path, default=None)
    args = parser.parse_args()
    app = QgsApplication([], False)
    app.initQgis()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Copied as GDAL copies a raster (with its .aux.xml), but without the QGIS style.
        bare = Path(tmp) / "classes_without_qml.tif"
        for suffix in ("", ".aux.xml"):
            source = args.folder / f"salinity_classes.tif{suffix}"
            if source.exists():
                shutil.copy(source, f"{bare}{suffix}")
        paths = [*sorted(args.folder.glob("*.tif")), bare]
        for path in paths:
            info = describe(path)
            layer = info.pop("_layer", None)
            if layer is not None and args.render is not None:
                args.render.mkdir(parents=True, exist_ok=True)
                render(layer, args.render / f"{path.stem}.png")
            report[path.name] = info
    json.dump({"qgis": Qgis.QGIS_VERSION, "layers": report}, sys.stdout, indent=1)
    sys.stdout.flush()
    # QGIS 3.22 can crash while tearing down a headless application: leave without it.
    os._exit(0)


if __name__ == "__main__":
    main()

"""The trust layers of a real map (Odisha RF model on the Patagonia Sentinel-2 cut):
class confidence, QGIS styles, category names and the class COG's colour table."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio

from saltmap import mapping
from saltmap.datasets import patagonia_scene
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.models.building import make_model
from saltmap.trust.maps import AOA_NODATA, TRUST_CATEGORIES, classes_spanned, fit_trust


@pytest.fixture(scope="module")
def trust_map(tmp_path_factory):
    samples = odisha()
    model = make_model("RF", params={"n_estimators": 20}, random_state=0)
    trust = fit_trust(model, samples.reflectance, samples.target.to_numpy(float), random_state=0)
    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    out = tmp_path_factory.mktemp("trust-layers")
    result = mapping.map_scene(
        trust.intervals.estimator_, scene, out, block_size=128, scheme="fao-ec", trust=trust,
        progress=None, target_unit="µS/cm",
    )  # fmt: skip
    return result, trust


def read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_class_confidence_cog_counts_the_classes_between_the_bounds(trust_map):
    from functools import partial

    from saltmap.mapping.blocks import ToSchemeUnit, classify_block
    from saltmap.salinity.classes import get_scheme

    result, _ = trust_map
    layers = {name: read(path) for name, path in result.outputs.trust.items()}
    spans = layers["class_confidence"]
    classify = partial(classify_block, scheme=get_scheme("fao-ec"),
                       to_scheme_unit=ToSchemeUnit("µS/cm", "dS/m"))  # fmt: skip
    np.testing.assert_array_equal(
        spans, classes_spanned(layers["lower"], layers["upper"], classify)
    )
    valid = np.isfinite(layers["width"])
    assert set(np.unique(spans[valid])) <= {1, 2, 3, 4}
    assert (spans[~valid] == AOA_NODATA).all()
    assert result.trust.class_spans() == {
        int(k): int(n) for k, n in zip(*np.unique(spans[valid], return_counts=True), strict=True)
    }
    # Bounds stay physical and the width is the map's own percentiles.
    assert np.nanmin(layers["lower"]) >= 0
    row = result.trust.as_dict()
    assert row["width_p05"] <= row["median_interval_width"] <= row["width_p95"]


def test_every_trust_layer_has_a_qgis_style_ramp_or_named_categories(trust_map):
    result, _ = trust_map
    for name, style in result.outputs.trust_styles.items():
        assert style == result.outputs.trust[name].with_suffix(".qml")
        renderer = ET.parse(style).getroot().find("pipe/rasterrenderer")
        if name in TRUST_CATEGORIES:
            assert renderer.get("type") == "paletted", name
            entries = {int(e.get("value")): e.get("label") for e in renderer.iter("paletteEntry")}
            assert entries == TRUST_CATEGORIES[name], name
        else:
            assert renderer.get("type") == "singlebandpseudocolor", name
            values = read(result.outputs.trust[name])
            low, high = np.nanquantile(values, [0.02, 0.98])
            assert float(renderer.get("classificationMin")) == pytest.approx(low, rel=1e-4)
            assert float(renderer.get("classificationMax")) == pytest.approx(high, rel=1e-4)


def test_categorical_cogs_carry_their_names_and_the_class_cog_few_colours(trust_map):
    result, _ = trust_map
    files = result.outputs.category_files
    assert set(files) == {"classes", "aoa", "class_confidence"}
    for name, aux in files.items():
        root = ET.parse(aux).getroot()
        names = [c.text or "" for c in root.iter("Category")]
        rows = root.findall(".//GDALRasterAttributeTable/Row")
        assert rows and len(names) == max(int(r[0].text) for r in rows) + 1, name
        if name != "classes":
            assert {int(r[0].text): r[1].text for r in rows} == TRUST_CATEGORIES[name]
    labels = [r[1].text for r in ET.parse(files["classes"]).getroot().iter("Row")]
    with rasterio.open(result.outputs.classes) as src:
        colours = src.colormap(1)
        codes = src.read(1)
    # 5 FAO classes + code 0: 3 bits, a colour table of 8 entries (not 256).
    assert len(labels) == 6 and labels[0] == "no data"
    assert len(colours) == 8
    assert codes.max() <= 5
    # The files are part of the map's outputs (overwrite checks, listing).
    assert set(files.values()) | set(result.outputs.trust_styles.values()) <= set(
        result.outputs.all()
    )


def _qgis_python():
    """Debian's Python with QGIS's bindings (``apt install python3-qgis``), if present."""
    import shutil
    import subprocess

    python = shutil.which("python3", path="/usr/bin")
    if python is None:
        return None
    found = subprocess.run([python, "-c", "import qgis.core"], capture_output=True)
    return python if found.returncode == 0 else None


def test_qgis_opens_every_layer_styled_by_itself(trust_map):
    # Where QGIS is installed, the map folder is opened in QGIS as a user drops files in
    # (tests/qgis_styles.py); elsewhere (CI) this is skipped.
    import json
    import subprocess
    from pathlib import Path

    python = _qgis_python()
    if python is None:
        pytest.skip("QGIS's Python bindings are not installed (apt install python3-qgis)")
    result, _ = trust_map
    folder = result.outputs.salinity.parent
    script = Path(__file__).with_name("qgis_styles.py")
    run = subprocess.run([python, str(script), str(folder)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    layers = json.loads(run.stdout)["layers"]
    assert all(layer["valid"] and layer["entries"] for layer in layers.values()), layers
    paletted = {"salinity_classes.tif", "aoa.tif", "class_confidence.tif"}
    for name, layer in layers.items():
        if name in paletted:
            assert layer["renderer"] == "paletted", name
        elif name != "classes_without_qml.tif":
            assert layer["renderer"] == "singlebandpseudocolor", name
    for name in ("aoa", "class_confidence"):
        entries = layers[f"{name}.tif"]["entries"]
        assert {e["value"]: e["label"] for e in entries} == TRUST_CATEGORIES[name], name
    # The class COG copied without its .qml (with GDAL's .aux.xml): QGIS's legend names the
    # classes; a TIFF palette has 2**bits entries, so codes 6 and 7 (unused) follow them.
    alone = layers["classes_without_qml.tif"]
    shown = [e["label"] for e in alone["entries"] if e["alpha"] > 0]
    styled = [e["label"] for e in layers["salinity_classes.tif"]["entries"]]
    assert alone["renderer"] == "paletted" and len(alone["entries"]) == 8
    assert shown == [*styled, "6", "7"]

"""Mosaics on real scenes: does a scene cut into pieces map back to itself, at what cost?

The real Unnao Landsat 8/9 cut (605 × 558 px at 30 m, UTM 44N) is cut into a west piece
(columns 0–349) and an east piece (columns 300–604, 50 columns of overlap); the east
piece is reprojected to the neighbouring zone, UTM 45N (bilinear), as a tile of the next
zone would come. A random forest trained on the real Odisha samples (same sensor) maps

- ``whole``: the original cut, as one scene;
- ``pieces``: the mosaic of the two pieces (first valid observation), on the grid of the
  zone most pieces share and aligned to the west piece's pixels;
- ``pieces-median``: the same with the median composite;

``--runs`` times each, in this process (jobs=1), and prints the medians side by side with
their ratio to ``whole``, then how the pieces' map agrees with the whole's: pixels of the
west piece (read unresampled) must be equal; pixels of the east piece went to UTM 45N and
back (two bilinear resamplings), so the share of equal classes and the relative
difference of salinity measure the resampling, not the mosaic.

Run::

    .venv/bin/python benchmarks/mosaic.py            # 3 runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.warp import Resampling, calculate_default_transform, reproject
from rasterio.windows import Window, from_bounds

from saltmap import mapping
from saltmap.datasets import unnao_landsat_scene
from saltmap.io.mosaic import open_mosaic
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.models.building import make_model

EC = {"scheme": "fao-ec", "target_name": "EC", "target_unit": "µS/cm", "figure": False}


def cut(src: Path, window: Window, out: Path) -> Path:
    out.mkdir(parents=True)
    for path in src.glob("*.tif"):
        with rasterio.open(path) as ds:
            profile = ds.profile | {
                "width": window.width,
                "height": window.height,
                "transform": rasterio.windows.transform(window, ds.transform),
            }
            with rasterio.open(out / path.name, "w", **profile) as dst:
                dst.write(ds.read(1, window=window), 1)
    return out


def warp(src: Path, out: Path, crs: str) -> Path:
    out.mkdir(parents=True)
    for path in src.glob("*.tif"):
        with rasterio.open(path) as ds:
            transform, width, height = calculate_default_transform(
                ds.crs, crs, ds.width, ds.height, *ds.bounds, resolution=ds.res[0]
            )
            data = np.full((height, width), ds.nodata, ds.dtypes[0])
            reproject(
                ds.read(1), data, src_transform=ds.transform, src_crs=ds.crs,
                dst_transform=transform, dst_crs=crs, resampling=Resampling.bilinear,
                src_nodata=ds.nodata, dst_nodata=ds.nodata,
            )  # fmt: skip
            profile = ds.profile | {
                "crs": crs, "transform": transform, "width": width, "height": height,
            }  # fmt: skip
            with rasterio.open(out / path.name, "w", **profile) as dst:
                dst.write(data, 1)
    return out


def timed(model, scene, out: Path, runs: int):
    seconds, result = [], None
    for i in range(runs):
        started = time.perf_counter()
        result = mapping.map_scene(model, scene, out / str(i), block_size=256, **EC)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def agreement(whole, pieces, original) -> dict[str, float]:
    with rasterio.open(pieces.outputs.salinity) as ds:
        inside = from_bounds(*original.bounds, ds.transform)
        mosaicked = ds.read(1, window=inside)
    with rasterio.open(pieces.outputs.classes) as ds:
        classes = ds.read(1, window=inside)
    with rasterio.open(pieces.outputs.provenance["source"]) as ds:
        source = ds.read(1, window=inside)
    with rasterio.open(whole.outputs.salinity) as ds:
        direct = ds.read(1)
    with rasterio.open(whole.outputs.classes) as ds:
        direct_classes = ds.read(1)
    valid = np.isfinite(direct)
    west, east = valid & (source == 1), valid & (source == 2)
    relative = np.abs(mosaicked[east] - direct[east]) / np.abs(direct[east])
    return {
        "west pixels": int(west.sum()),
        "west equal": float(np.mean(mosaicked[west] == direct[west])),
        "east pixels": int(east.sum()),
        "east classes equal": float(np.mean(classes[east] == direct_classes[east])),
        "east median relative difference": float(np.median(relative)),
        "east 95th percentile relative difference": float(np.percentile(relative, 95)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    samples = odisha()
    model = make_model("RF", params={"n_estimators": 100}, random_state=0)
    model.fit(samples.reflectance, samples.target)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = Path(tmp)
        west = cut(unnao_landsat_scene(), Window(0, 0, 350, 558), root / "west")
        east = cut(unnao_landsat_scene(), Window(300, 0, 305, 558), root / "east44")
        east = warp(east, root / "east45", "EPSG:32645")
        original = open_scene(unnao_landsat_scene(), scaling="landsat-c2l2")
        first = open_mosaic([west, east], scaling="landsat-c2l2")
        median = open_mosaic([west, east], scaling="landsat-c2l2", composite="median")
        base, whole = timed(model, original, root / "whole", args.runs)
        t_first, pieces = timed(model, first, root / "first", args.runs)
        t_median, _ = timed(model, median, root / "median", args.runs)
        print(f"Unnao, RF 100 trees, jobs=1, median of {args.runs} runs")
        print(f"{'map':<16}{'pixels':>10}{'seconds':>10}{'kpx/s':>10}{'ratio':>8}")
        for name, seconds, n in [
            ("whole", base, original.width * original.height),
            ("pieces", t_first, first.width * first.height),
            ("pieces-median", t_median, median.width * median.height),
        ]:
            print(f"{name:<16}{n:>10,}{seconds:>10.2f}{n / seconds / 1000:>10.0f}"
                  f"{seconds / base:>8.2f}")  # fmt: skip
        for key, value in agreement(whole, pieces, original).items():
            print(f"{key:<42}{value:>12.4g}")


if __name__ == "__main__":
    main()

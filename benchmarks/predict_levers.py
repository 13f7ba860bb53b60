"""Levers of CPU per pixel in the prediction path, measured in CPU seconds on one thread.

On two 1024 x 1024 blocks of the SYNTHETIC benchmark tile (``synthetic_tile.py``) with
the untuned and the tuned (``--budget``) Odisha stacking models: ``predict_block`` with
plain ``regressor.predict`` against prediction by cell (:mod:`saltmap.models.inference`),
for several chunk sizes, and that the values are equal. CPU time, not wall time, so that
other load on the machine distorts little; each figure is the median of ``--repeat`` runs.

Usage: ``.venv/bin/python benchmarks/predict_levers.py [--quick] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import pandas as pd
from measure import load
from rasterio.windows import Window
from synthetic_tile import FULL_SIZE, build_tile
from threadpoolctl import threadpool_limits


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunks", default="16384,65536,262144,1048576")
    args = parser.parse_args()

    from saltmap.io.samples import odisha
    from saltmap.io.scene import open_scene
    from saltmap.mapping import blocks, inference
    from saltmap.models.building import make_model
    from saltmap.models.training import train_model

    size = 2048 if args.quick else FULL_SIZE
    scene = open_scene(build_tile(size), scaling="sentinel2-l2a-offset")
    samples = odisha()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        models = {
            "untuned": make_model("Stacking", random_state=0).fit(
                samples.reflectance, samples.target
            ),
            "tuned": train_model(samples, budget="quick" if args.quick else "default")[0],
        }
    side = 512 if args.quick else 1024
    far = size - 2 * side
    windows = [Window(far, far, side, side), Window(far + side, far, side, side)]
    rows = []
    plain = inference.predict_rows
    for name, model in models.items():
        blocks.single_threaded(model)
        bands = blocks.model_bands(model)
        cubes = [scene.read(window=w, roles=bands) for w in windows]
        n = sum(c[0].size for c in cubes)
        for chunk in map(int, args.chunks.split(",")):
            for how in ("regressor.predict", "by cell"):
                blocks.predict_rows = plain if how == "by cell" else _plain
                times, outs = [], []
                for _ in range(args.repeat):
                    with threadpool_limits(1):
                        t0 = time.process_time()
                        outs = [
                            blocks.predict_block(model, c, bands, chunk_rows=chunk) for c in cubes
                        ]
                        times.append(time.process_time() - t0)
                cpu = statistics.median(times)
                rows.append({"model": name, "chunk_rows": chunk, "predict": how, "cpu_s": cpu,
                             "kpx_per_cpu_s": n / cpu / 1000,
                             "digest": hash(b"".join(o.tobytes() for o in outs))})  # fmt: skip
        blocks.predict_rows = plain
    table = pd.DataFrame(rows)
    base = table[(table.chunk_rows == 65536) & (table.predict == "regressor.predict")]
    table["x_today"] = table.kpx_per_cpu_s / table.model.map(base.set_index("model").kpx_per_cpu_s)
    table["equal"] = table.groupby("model").digest.transform(lambda d: d.nunique() == 1)
    print(f"{load()}; {n} px per model and run, one thread")
    print(table.drop(columns="digest").round(3).to_string(index=False))


def _plain(regressor, X):
    return regressor.predict(X)


if __name__ == "__main__":
    main()

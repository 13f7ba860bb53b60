"""Benchmark: one map block under glibc's and Dask's allocator settings, and saltmap's.

Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536``; under glibc this
fixes the mmap threshold at 128 KiB, so each block-sized array is mapped and faulted in
anew. This script maps the same six 1024² blocks of the SYNTHETIC benchmark tile
(``synthetic_tile.py``) with the untuned Odisha stacking model, in a fresh process per
run on one thread in a worker thread (as a Dask worker runs its tasks), under four
settings: glibc's defaults, Dask's variable, and each of them followed by
:func:`saltmap.mapping.heap.set_heap_thresholds`. Prints the seconds per block,
the median of ``--repeat`` runs each, with the load average before each run, and the
ratios.

Usage::

    .venv/bin/python benchmarks/worker_heap.py [--repeat 3] [--size 10980]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings

from measure import load, median
from synthetic_tile import FULL_SIZE, build_tile

SETTINGS = {
    "glibc defaults": ({}, False),
    "Dask's MALLOC_TRIM_THRESHOLD_": ({"MALLOC_TRIM_THRESHOLD_": "65536"}, False),
    "Dask's, then set_heap_thresholds()": ({"MALLOC_TRIM_THRESHOLD_": "65536"}, True),
    "glibc defaults, then set_heap_thresholds()": ({}, True),
}


def one_run(folder: str, set_thresholds: bool) -> float:
    """Seconds per block of the job on six blocks spread over the tile (after one warm-up)."""
    from threadpoolctl import threadpool_limits

    from saltmap.io.samples import odisha
    from saltmap.io.scene import open_scene
    from saltmap.mapping.heap import set_heap_thresholds
    from saltmap.mapping.plan import MapSettings, plan_map
    from saltmap.models.building import make_model

    if set_thresholds:
        assert set_heap_thresholds()
    warnings.simplefilter("ignore")
    samples = odisha()
    model = make_model("Stacking", random_state=0).fit(samples.reflectance, samples.target)
    scene = open_scene(folder, scaling="sentinel2-l2a-offset")
    settings = MapSettings(block_size=1024, target_name="EC", target_unit="µS/cm",
                           scheme="fao-ec")  # fmt: skip
    plan = plan_map(model, scene, tempfile.mkdtemp(), settings)
    n = len(plan.windows)
    windows = [plan.windows[i * (n - 1) // 5] for i in range(6)]
    took: list[float] = []

    def run() -> None:
        with threadpool_limits(1):
            plan.job(windows[0])
            start = time.perf_counter()
            for window in windows:
                plan.job(window)
            took.append((time.perf_counter() - start) / len(windows))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    return took[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=FULL_SIZE)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(one_run(args.child[0], args.child[1] == "1"))
        return
    folder = str(build_tile(args.size))
    medians = {}
    # glibc's defaults only without the variable, even if this shell has it set.
    inherited = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    for label, (env, set_thresholds) in SETTINGS.items():
        runs = []
        for i in range(args.repeat):
            print(f"  {label} run {i + 1}: {load()}", flush=True)
            child = [sys.executable, __file__, "--child", folder, "1" if set_thresholds else "0"]
            out = subprocess.run(child, env=inherited | env, check=True,
                                 capture_output=True, text=True).stdout  # fmt: skip
            runs.append(float(out.split()[-1]))
            print(f"      {runs[-1]:.3f} s per block", flush=True)
        medians[label] = median(runs)
    base = medians["glibc defaults"]
    for label, seconds in medians.items():
        print(f"{label:38s} {seconds:6.3f} s per block (median of {args.repeat}), "
              f"{seconds / base:4.2f}x glibc defaults")  # fmt: skip


if __name__ == "__main__":
    main()

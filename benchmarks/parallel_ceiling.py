"""Benchmark: how much faster two processes can map than one on this machine, before any engine.

The Dask goal of issue 16 (2 workers >= 1.7x 1 worker) assumes that two single-threaded
processes on two cores each run as fast as one alone. This measures that assumption on
the mapping's own work: the same ``--blocks`` blocks of the SYNTHETIC benchmark tile
(``synthetic_tile.py``), predicted with the untuned Odisha stacking model (or the
pickled model of ``--model-file``) by
:func:`saltmap.mapping.blocks.predict_block`, in one process alone and then in two
processes at once (each predicting all the blocks, started together at a barrier), for
several chunk sizes. Two controls tell what kind of sharing slows them: a pure-Python
loop (compute in registers and L1; slows only if the two vCPUs share a physical core)
and random gathers from a 400 MB array (memory-bound; slows if the cores share memory
bandwidth or L3).

``ceiling`` = 2 x (seconds alone) / (seconds of each of two at once): the speed-up two
workers can reach at best on this work, whatever schedules them. Every figure is the
median of ``--repeat`` runs, each preceded by the load average.

Usage: ``.venv/bin/python benchmarks/parallel_ceiling.py [--quick] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from measure import load, median
from rasterio.windows import Window
from synthetic_tile import FULL_SIZE, build_tile


def _python_loop(_: object) -> None:
    total = 0
    for i in range(20_000_000):
        total += i * i % 7


def _random_gathers(_: object) -> None:
    rng = np.random.default_rng(0)
    values, where = rng.random(50_000_000), rng.integers(0, 50_000_000, 10_000_000)
    for _ in range(5):
        values[where].sum()


def _predict_blocks(work: tuple) -> None:
    from saltmap.mapping import blocks

    model, cubes, bands, chunk = work
    for cube in cubes:
        blocks.predict_block(model, cube, bands, chunk_rows=chunk)


def _child(task, work, barrier, results) -> None:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        barrier.wait()
        t0, c0 = time.perf_counter(), time.process_time()
        task(work)
        results.put((time.perf_counter() - t0, time.process_time() - c0))


def timed(task, work, n_processes: int) -> tuple[float, float]:
    """Mean wall and CPU seconds of ``task(work)`` in each of ``n_processes`` at once."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(n_processes), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(task, work, barrier, results))
             for _ in range(n_processes)]  # fmt: skip
    for p in procs:
        p.start()
    times = [results.get() for _ in procs]
    for p in procs:
        p.join()
    return float(np.mean([t for t, _ in times])), float(np.mean([c for _, c in times]))


def measure(name: str, task, work, repeat: int) -> dict:
    runs = {1: [], 2: []}
    for i in range(repeat):
        for n in (1, 2):
            print(f"  {name}, {n} process(es), run {i + 1}: {load()}", flush=True)
            runs[n].append(timed(task, work, n))
    alone, both = median([w for w, _ in runs[1]]), median([w for w, _ in runs[2]])
    return {"work": name, "alone_s": alone, "two_at_once_s": both,
            "cpu_alone_s": median([c for _, c in runs[1]]),
            "cpu_two_at_once_s": median([c for _, c in runs[2]]),
            "slowdown": both / alone, "ceiling": 2 * alone / both}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small tile, 2 blocks, one run.")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--blocks", type=int, default=None, help="Blocks of 1024 x 1024.")
    parser.add_argument("--chunks", default="16384,65536,262144")
    parser.add_argument(
        "--model-file",
        default=None,
        help="A pickled fitted model (map_tile.py leaves the crop's in "
        ".cache/crop_runs/NAME/model.pkl) instead of the untuned stacking.",
    )
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    n_blocks = args.blocks or (2 if args.quick else 6)

    from saltmap.io.samples import odisha
    from saltmap.io.scene import open_scene
    from saltmap.mapping import blocks
    from saltmap.models.building import make_model

    size = 2048 if args.quick else FULL_SIZE
    scene = open_scene(build_tile(size), scaling="sentinel2-l2a-offset")
    samples = odisha()
    if args.model_file:
        model = pickle.loads(Path(args.model_file).read_bytes())
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = make_model("Stacking", random_state=0).fit(samples.reflectance, samples.target)
    blocks.single_threaded(model)
    bands = blocks.model_bands(model)
    side = 1024 if not args.quick else 512
    windows = [Window(size - (i % 4 + 1) * side, size - (i // 4 + 1) * side, side, side)
               for i in range(n_blocks)]  # fmt: skip
    cubes = [scene.read(window=w, roles=bands) for w in windows]
    rows = [measure("python loop (control)", _python_loop, None, repeat),
            measure("random gathers (control)", _random_gathers, None, repeat)]  # fmt: skip
    for chunk in map(int, args.chunks.split(",")):
        work = (model, cubes, bands, chunk)
        rows.append(measure(f"predict_block, chunk_rows {chunk}", _predict_blocks, work, repeat))
    what = args.model_file or "untuned stacking"
    print(f"\n{n_blocks} blocks of {side} x {side}, {what}, medians of {repeat}:")
    print(pd.DataFrame(rows).round(2).to_string(index=False))


if __name__ == "__main__":
    main()

"""Dask's own CPU on a busy 2-core ``LocalCluster``: its default monitoring against quieter.

A distributed cluster watches itself: every process ticks its event loop every 20 ms
and samples its system use every 0.5 s, every worker samples its task's stack every
10 ms for the dashboard's profile and checks its memory every 0.1 s. On a machine whose
cores all run workers, that CPU is taken from the blocks. :data:`QUIET_DASK` turns
these intervals down (README, "Maps on a Dask cluster"); ``map_tile.py`` maps with it
unless given ``--dask-config default``.

The work is SYNTHETIC and fixed: ``--tasks`` tasks of matrix products and sorts on 2
single-threaded worker processes. Dask's own CPU is the CPU time of all the cluster's
processes (this one, which holds the client, the scheduler and the nannies, and the
workers) less the CPU time of the tasks' own thread. Default and quiet alternate, each
on a fresh cluster; medians of ``--repeat`` runs, with the load average before each.

Usage::

    .venv/bin/python benchmarks/dask_overhead.py [--repeat 3] [--tasks 12]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import psutil
from measure import load, median

# What each value costs: the dashboard's profile page stays empty; a blocked event loop
# is noticed within 1 s rather than 20 ms; the dashboard's system plots are updated
# every 5 s; a worker over its memory limit is paused or restarted within 1 s rather
# than 0.1 s (a map's blocks are bounded).
QUIET_DASK: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
}


def dask_config(name: str) -> dict[str, Any]:
    """The Dask settings a benchmark maps with: ``"quiet"`` or ``"default"``."""
    return {"quiet": QUIET_DASK, "default": {}}[name]


def _work(steps: int) -> float:
    """A fixed task; returns the CPU seconds of its own thread."""
    import numpy as np

    a = np.random.default_rng(0).random((200, 200))
    start = time.thread_time()
    for _ in range(steps):
        a @ a
        np.sort(a, axis=0)
    return time.thread_time() - start


def _cpu(processes: list[psutil.Process]) -> float:
    return sum(p.cpu_times().user + p.cpu_times().system for p in processes)


def one_run(config: str, tasks: int, steps: int) -> dict[str, float]:
    """One fresh 2-worker cluster under ``config``: wall, task and Dask CPU seconds."""
    import dask
    import distributed

    with dask.config.set(dask_config(config)):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster:  # fmt: skip
            with distributed.Client(cluster) as client:
                me = psutil.Process()
                processes = [me, *me.children(recursive=True)]
                cpu0, start = _cpu(processes), time.perf_counter()
                futures = [client.submit(_work, steps, pure=False) for _ in range(tasks)]
                task_cpu = sum(client.gather(futures))
                wall = time.perf_counter() - start
                all_cpu = _cpu(processes) - cpu0
    return {"wall": wall, "tasks": task_cpu, "dask": all_cpu - task_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=12)
    parser.add_argument("--steps", type=int, default=6000, help="Work per task.")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"default": [], "quiet": []}
    for i in range(args.repeat):
        for config in runs:
            print(f"{config} run {i + 1}: {load()}", flush=True)
            run = one_run(config, args.tasks, args.steps)
            runs[config].append(run)
            cores = run["dask"] / run["wall"]
            print(f"  wall {run['wall']:.1f} s, tasks' CPU {run['tasks']:.1f} s, Dask's own "
                  f"CPU {run['dask']:.2f} s ({cores:.3f} cores)", flush=True)  # fmt: skip
    print("medians:")
    for config, done in runs.items():
        share = median([r["dask"] / r["wall"] for r in done])
        print(f"  {config:7s}: Dask's own CPU {median([r['dask'] for r in done]):.2f} s, "
              f"{share:.3f} cores = {share / 2:.1%} of the 2 cores")  # fmt: skip
    print(f"{load()}")


if __name__ == "__main__":
    main()

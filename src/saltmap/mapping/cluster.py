"""Mapping on a Dask distributed cluster: each block a task, the job sent once.

:func:`run_dask` is the engine :func:`saltmap.mapping.engine.run_blocks` uses when a
scheduler is given. The job (model, scene, plan) travels as the result of one task,
not as scattered data, so that the scheduler can compute it again if every worker
holding it dies, and then re-run the blocks lost with them.

Each block's task first undoes, on the worker that runs it, an allocator setting that
Dask gives its workers, which made every block a third slower
(:mod:`saltmap.mapping.heap`).

References
----------
.. [1] Dask Development Team (2016–). Dask: library for dynamic task scheduling.
   https://distributed.dask.org
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from rasterio.windows import Window

from saltmap.mapping.blocks import BlockJob, BlockResult
from saltmap.mapping.heap import set_heap_thresholds


def load_job(payload: bytes) -> BlockJob:
    """The job, unpickled and prepared on a worker (the task every block depends on)."""
    job = pickle.loads(payload)
    job.prepare()
    return job


def run_block_with(job: BlockJob, window: Window) -> BlockResult:
    """One block's task.

    The job is loaded on one worker and copied to the others as data, so the heap
    thresholds are set here, by every worker that runs a block (a few microseconds),
    not in :func:`load_job`.
    """
    set_heap_thresholds()
    return job(window)


def run_dask(
    job: BlockJob, windows: Sequence[Window], scheduler: Any, in_flight: int | None
) -> Iterator[BlockResult]:
    """Map ``windows`` on the Dask cluster of ``scheduler`` (an address or a
    ``distributed.Client``), at most ``in_flight`` blocks pending (two per worker by
    default), yielding each result as it arrives."""
    from distributed import Client, as_completed

    own = not isinstance(scheduler, Client)
    client = Client(scheduler, set_as_default=False) if own else scheduler
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
        job_future = client.submit(load_job, payload, pure=False)
        todo = iter(windows)
        first = [
            client.submit(run_block_with, job_future, w, pure=False)
            for w in islice(todo, in_flight or 2 * n_workers)
        ]
        running = as_completed(first, loop=client.loop)
        for fut in running:
            result = fut.result()
            fut.release()
            yield result
            for w in islice(todo, 1):
                running.add(client.submit(run_block_with, job_future, w, pure=False))
    finally:
        if own:
            client.close()

"""Mapping on a Dask distributed cluster: each block a task, the job sent once.

:func:`run_dask` is the engine :func:`saltmap.mapping.engine.run_blocks` uses when a
scheduler is given. The job (model, scene, plan) travels as the result of one task,
not as scattered data, so that the scheduler can compute it again if every worker
holding it dies, and then re-run the blocks lost with them.

On the worker the job first undoes an allocator setting that Dask gives its workers
(:func:`restore_dynamic_heap`), which made every block half as slow again.

References
----------
.. [1] Dask Development Team (2016–). Dask: library for dynamic task scheduling.
   https://distributed.dask.org
.. [2] The GNU C Library, mallopt(3): ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from rasterio.windows import Window

from saltmap.mapping.blocks import BlockJob, BlockResult

# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: Arrays up to this size come from the heap: glibc's own ceiling for its dynamic
#: mmap threshold on 64-bit systems (a 1024² block of six float32 bands is 24 MiB).
HEAP_ARRAYS_UP_TO = 32 * 2**20


def restore_dynamic_heap() -> bool:
    """Let this process reuse freed array memory, as glibc does unless told otherwise.

    Dask's nannies start workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (its setting
    ``distributed.nanny.pre-spawn-environ``) so that freed memory goes back to the
    system. glibc takes any such setting as fixing its thresholds: every array over
    128 KiB is then a fresh ``mmap`` whose pages fault in anew, and mapping a 1024²
    block took 3.35 s instead of 2.24 s (``benchmarks/worker_heap.py``). Setting the
    mmap threshold to 32 MiB and the trim threshold to twice that, where glibc's
    dynamic thresholds would go, gives the speed back; the worker then keeps up to
    ~64 MiB of freed heap.

    Returns
    -------
    bool
        Whether the thresholds were set: only under glibc, and only when
        ``MALLOC_TRIM_THRESHOLD_`` is in the environment (otherwise they are dynamic).
    """
    if not sys.platform.startswith("linux") or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mmap_set = mallopt(_M_MMAP_THRESHOLD, HEAP_ARRAYS_UP_TO)
    return bool(mmap_set and mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_ARRAYS_UP_TO))


def load_job(payload: bytes) -> BlockJob:
    """The job, unpickled and prepared on a worker (the task every block depends on)."""
    restore_dynamic_heap()
    job = pickle.loads(payload)
    job.prepare()
    return job


def run_block_with(job: BlockJob, window: Window) -> BlockResult:
    """One block's task."""
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

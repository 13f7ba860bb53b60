"""The local process pool of a map: ``jobs - 1`` spawned workers beside the map's process.

:func:`run_pool` is the engine :func:`saltmap.mapping.engine.run_blocks` uses when
``jobs > 1``, ``workers="processes"`` and no scheduler is given (threads,
:mod:`saltmap.mapping.threads`, are the default). The workers are started with the ``spawn``
method, a fresh interpreter each, safe whatever threads the map's process runs; each
receives the job once, through a queue, and ends when the map's process dies
(:func:`_die_with_parent`). The map's process computes blocks too
(:data:`PARENT_COMPUTES`), and a map that ends before its workers have started does not
wait for them.

References
----------
.. [1] Python Software Foundation. concurrent.futures.ProcessPoolExecutor.
   https://docs.python.org/3/library/concurrent.futures.html
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import pickle
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import Any

from rasterio.windows import Window
from threadpoolctl import threadpool_limits

from saltmap.mapping.blocks import BlockJob, BlockResult

__all__ = ["PARENT_COMPUTES", "run_pool"]


# Worker side of the process pool: the job arrives once, through a queue the
# initializer reads.
_WORKER_JOB: BlockJob | None = None
# Set by the map's process once it has computed, itself, every block a worker still holds.
_ABANDONED: Any = None


def _init_worker(payloads: Any, parent: int, abandoned: Any) -> None:
    global _WORKER_JOB, _ABANDONED
    _die_with_parent(parent)
    _ABANDONED = abandoned
    payload = payloads.get()  # read even when abandoned: the parent's queue flushes
    if abandoned.is_set():
        return  # the map finished without this worker: skip unpickling the job
    # One BLAS/OpenMP thread per worker process: the workers already fill the cores.
    threadpool_limits(1)
    _WORKER_JOB = pickle.loads(payload)
    _WORKER_JOB.prepare()


def _die_with_parent(parent: int) -> None:
    """End this worker when the map's process dies, however it dies (Linux).

    A pool's workers wait on a queue whose writing end they hold themselves, so a
    parent killed by SIGKILL (or the OOM killer) would leave them waiting forever. The
    kernel's parent-death signal ends them instead.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _run_block(window: Window) -> BlockResult | None:
    if _ABANDONED.is_set():
        return None  # the map's process computed this block itself
    assert _WORKER_JOB is not None, "worker was not initialised"
    return _WORKER_JOB(window)


#: With ``jobs = n``, the map's own process computes blocks too, beside ``n - 1`` pool
#: workers, instead of only writing what ``n`` workers send. It saves a worker's start
#: (a fresh interpreter importing scikit-learn and unpickling the job, ~1.5 s of CPU)
#: and computes from the first second, while the workers are still starting; its
#: writing fits in between. ``benchmarks/map_tile.py`` measured it (the lever table).
PARENT_COMPUTES = True


def run_pool(
    job: BlockJob, windows: Sequence[Window], jobs: int, in_flight: int | None
) -> Iterator[BlockResult]:
    workers = jobs - 1 if PARENT_COMPUTES else jobs
    # spawn: a fresh interpreter per worker, safe whatever threads the parent runs.
    context = multiprocessing.get_context("spawn")
    # The job goes through a queue, not the initializer's arguments: those are written
    # to each new worker's pipe, and the write blocks (a job is megabytes, the pipe
    # 64 KiB) until the worker has imported the main script, seconds in which this
    # process could compute. The queue's own thread writes instead.
    payloads = context.Queue()
    payloads.cancel_join_thread()  # at exit, never wait for a worker that died
    payload = pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL)
    for _ in range(workers):
        payloads.put(payload)
    abandoned = context.Event()
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker,
        initargs=(payloads, os.getpid(), abandoned),
    )  # fmt: skip
    finished = False
    try:
        with threadpool_limits(1):
            if PARENT_COMPUTES:
                job.prepare()
            yield from _share_blocks(pool, job, iter(windows), workers, in_flight, abandoned)
        finished = True
    finally:
        if abandoned.is_set():
            # The map ended before its workers started: they see ``abandoned`` and exit
            # in the background, the queue and event kept alive until they have.
            threading.Thread(target=_close_pool, args=(pool, payloads, abandoned)).start()
        else:  # on an error, the blocks not yet started are dropped
            _close_pool(pool, payloads, cancel=not finished)


def _close_pool(
    pool: cf.ProcessPoolExecutor, payloads: Any, *keep_alive: Any, cancel: bool = False
) -> None:
    """Wait for the pool's workers to exit, then close the job's queue.

    ``keep_alive`` holds what the workers still use (the ``abandoned`` event) while this
    runs in its own thread after the map has returned.
    """
    pool.shutdown(wait=True, cancel_futures=cancel)
    payloads.close()


def _share_blocks(
    pool: cf.ProcessPoolExecutor,
    job: BlockJob,
    todo: Iterator[Window],
    workers: int,
    in_flight: int | None,
    abandoned: Any,
) -> Iterator[BlockResult]:
    """Hand blocks to the pool and, with :data:`PARENT_COMPUTES`, compute them here too.

    Until a worker has sent its first result, the pool holds one block per worker: a
    small map may end before the workers have started (importing scikit-learn and
    unpickling the job take seconds), and then this process computes those blocks too,
    rather than wait for the workers, and sets ``abandoned``.
    """
    in_flight = in_flight or 2 * workers
    pending = {pool.submit(_run_block, w): w for w in islice(todo, min(workers, in_flight))}
    started = False
    while pending:
        done = [fut for fut in pending if fut.done()]
        if not done and PARENT_COMPUTES:
            window = next(todo, None)
            if window is not None:  # nothing to write yet: compute a block here
                yield job(window)
                continue
            if not started:
                abandoned.set()
                yield from (job(w) for w in pending.values())
                return
        if not done:
            done, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            del pending[fut]
            yield fut.result()
        started = True
        room = in_flight - len(pending)
        pending |= {pool.submit(_run_block, w): w for w in islice(todo, room)}

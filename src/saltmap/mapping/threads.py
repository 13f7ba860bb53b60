"""The thread engine of a map: ``jobs`` threads of the map's process compute blocks.

:func:`run_threads` is what :func:`saltmap.mapping.engine.run_blocks` uses when
``jobs > 1``, no scheduler is given and ``workers="threads"`` (the default). A block's
work is numpy, BLAS, scikit-learn's and XGBoost's compiled predictors and GDAL reads,
which release the GIL, so threads fill the cores without a worker's start (a fresh
interpreter importing scikit-learn, seconds), without sending the model to anyone and
without sending blocks back through pipes. The scene and covariate rasters keep one
dataset handle per thread (:class:`saltmap.io.rasters.ThreadLocalDatasets`).

``benchmarks/map_tile.py`` measures it beside the process pool
(:mod:`saltmap.mapping.pool`), which stays for work that holds the GIL: on a machine
with many cores the Python part of each block, small beside a two-core machine's
blocks, limits threads sooner than processes.

References
----------
.. [1] Python Software Foundation. concurrent.futures.ThreadPoolExecutor.
   https://docs.python.org/3/library/concurrent.futures.html
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Iterator, Sequence
from itertools import islice

from rasterio.windows import Window
from threadpoolctl import threadpool_limits

from saltmap.mapping.blocks import BlockJob, BlockResult

__all__ = ["run_threads"]


def run_threads(
    job: BlockJob, windows: Sequence[Window], jobs: int, in_flight: int | None
) -> Iterator[BlockResult]:
    """Compute ``windows`` in ``jobs`` threads, yielding each block as it finishes.

    At most ``in_flight`` blocks (default two per thread) are computing or waiting to
    be yielded, which bounds memory. This process's thread that consumes the blocks
    (the map's writer) runs beside them: GDAL's compression releases the GIL too.
    """
    job.prepare()
    in_flight = max(in_flight or 2 * jobs, 1)
    todo = iter(windows)
    # One BLAS/OpenMP thread per block: the blocks already fill the cores.
    with threadpool_limits(1):
        pool = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="saltmap-block")
        try:
            pending = {pool.submit(job, window) for window in islice(todo, in_flight)}
            while pending:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                room = in_flight - len(pending)
                pending |= {pool.submit(job, window) for window in islice(todo, room)}
        finally:
            # On an error or an interrupted map, blocks not yet started are dropped;
            # those computing finish (a block's work cannot be stopped from outside).
            pool.shutdown(wait=True, cancel_futures=True)

"""The C heap of a process that maps: block-sized arrays reuse freed memory.

Each block allocates and frees arrays of a few MiB (a 1024² block of six float32
bands is 24 MiB). glibc serves an allocation above its *mmap threshold* with a
fresh ``mmap`` whose pages fault in anew on first touch, and gives the top of its
heap back to the system above its *trim threshold*. Both thresholds start at 128 KiB
and rise as large blocks are freed, unless anything sets them: Dask's nannies start
every worker with ``MALLOC_TRIM_THRESHOLD_=65536`` (its setting
``distributed.nanny.pre-spawn-environ``), which pins them. :func:`set_heap_thresholds`
sets them where the dynamic thresholds end up.

References
----------
.. [1] The GNU C Library, mallopt(3): ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD``.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3

#: Arrays up to this size come from the heap: glibc's own ceiling for its dynamic
#: mmap threshold on 64-bit systems. Freed heap up to twice this is kept.
HEAP_ARRAYS_UP_TO = 32 * 2**20


def set_heap_thresholds() -> bool:
    """Serve block-sized arrays from the heap and keep up to 64 MiB of it when freed.

    Measured by ``benchmarks/worker_heap.py`` (six 1024² blocks of the synthetic tile,
    untuned stacking model, one thread; medians of 3 in each of two runs): under Dask's
    ``MALLOC_TRIM_THRESHOLD_`` 2.90 and 2.85 s per block, with these thresholds set
    after it 1.98 and 1.99 s, with glibc's defaults 2.18 and 1.92 s (and 1.97 s with
    the thresholds set over the defaults: no gain there). So only Dask's workers set
    them (:func:`saltmap.mapping.cluster.run_block_with`); the cost is at most ~64 MiB of
    freed memory kept by the worker.

    Returns
    -------
    bool
        Whether the thresholds were set (only under glibc; musl has no ``mallopt``).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mmap_set = mallopt(_M_MMAP_THRESHOLD, HEAP_ARRAYS_UP_TO)
    return bool(mmap_set and mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_ARRAYS_UP_TO))

"""Measuring helpers of the mapping benchmarks: peak memory of a process tree, CPU, load."""

from __future__ import annotations

import os
import statistics
import threading

import psutil


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class PeakRSS:
    """Peak memory of this process and all its children, sampled; and CPU time.

    ``peak`` sums their RSS, which counts the pages they share (libraries, the parent's
    memory a forked worker still shares) once per process; ``peak_pss`` sums their PSS,
    which splits each shared page among its sharers, so that it is the memory the tree
    really holds; ``peak_process`` is the largest single process (a cluster's worker).
    """

    def __init__(self, every: float = 0.2):
        self.every = every
        self.peak = 0
        self.peak_pss = 0
        self.peak_process = 0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        rss, pss = [], []
        for p in [me, *me.children(recursive=True)]:
            try:
                full = p.memory_full_info()
            except psutil.Error:
                continue
            rss.append(full.rss)
            pss.append(getattr(full, "pss", full.rss))
        self.peak = max(self.peak, sum(rss))
        self.peak_pss = max(self.peak_pss, sum(pss))
        self.peak_process = max([self.peak_process, *rss])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self._sample()
        self._cpu0 = cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.cpu = cpu_seconds() - self._cpu0


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def load() -> str:
    """The load average now, as printed before every timed run."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def median(values: list[float]) -> float:
    return float(statistics.median(values))

"""Measuring helpers of the mapping benchmarks: peak memory of a process tree, CPU, load."""

from __future__ import annotations

import os
import statistics
import threading
import time

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

    def __init__(self, every: float = 0.2, pss_every: float = 1.0):
        self.every = every
        self.pss_every = pss_every
        self.peak = 0
        self.peak_pss = 0
        self.peak_process = 0
        self.cpu = 0.0
        self._last_pss = -float("inf")
        self._sampler_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        # RSS is cheap (statm). PSS walks every mapping of a process (about 5 ms for a
        # worker): read it at most every ``pss_every`` s, or when the RSS sets a new
        # peak, so that the sampler does not take the CPU the mapping is measured on.
        me = psutil.Process()
        rss = {p: r for p in [me, *me.children(recursive=True)] if (r := _rss(p)) is not None}
        total = sum(rss.values())
        now = time.monotonic()
        if total > self.peak or now - self._last_pss >= self.pss_every:
            self._last_pss = now
            self.peak_pss = max(self.peak_pss, sum(_pss(p, r) for p, r in rss.items()))
        self.peak = max(self.peak, total)
        self.peak_process = max([self.peak_process, *rss.values()])

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)
        self._sampler_cpu = time.thread_time()

    def __enter__(self) -> PeakRSS:
        self._sample()
        self._cpu0 = cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        # the sampler's own CPU is not the mapping's
        self.cpu = cpu_seconds() - self._cpu0 - self._sampler_cpu


def _rss(p: psutil.Process) -> int | None:
    try:
        return p.memory_info().rss
    except psutil.Error:
        return None


def _pss(p: psutil.Process, rss: int) -> int:
    try:
        return getattr(p.memory_full_info(), "pss", rss)
    except psutil.Error:
        return rss


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def load() -> str:
    """The load average now, as printed before every timed run."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def median(values: list[float]) -> float:
    return float(statistics.median(values))

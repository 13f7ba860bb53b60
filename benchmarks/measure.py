"""Measuring helpers of the benchmarks: peak memory of a process tree, CPU, load, and
the machine's own speed."""

from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Iterator

import numpy as np
import psutil


class PeakRSS:
    """Peak memory of this process and all its children, sampled; and CPU time.

    ``cpu`` is the CPU time, during the run, of this process and of every child seen by
    a sample (each child's CPU as last sampled, so a child ending between samples loses
    at most ``every`` seconds). The finished children's total the system keeps
    (``os.times().children_user``) would also take in children of earlier work that
    ended during the run, such as an evaluation's idle loky workers reaped after 300 s.

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
        self._cpu_start: dict[tuple[int, float], float] = {}
        self._cpu_last: dict[tuple[int, float], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        # RSS is cheap (statm). PSS walks every mapping of a process (about 5 ms for a
        # worker): read it at most every ``pss_every`` s, or when the RSS sets a new
        # peak, so that the sampler does not take the CPU the mapping is measured on.
        me = psutil.Process()
        rss = {p: r for p in [me, *me.children(recursive=True)] if (r := _rss(p)) is not None}
        for p in rss:
            self._cpu_last.update(_cpu(p))
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
        self._cpu_start = dict(self._cpu_last)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        # the sampler's own CPU is not the mapping's
        used = sum(v - self._cpu_start.get(k, 0.0) for k, v in self._cpu_last.items())
        self.cpu = used - self._sampler_cpu


def _rss(p: psutil.Process) -> int | None:
    try:
        return p.memory_info().rss
    except psutil.Error:
        return None


def _cpu(p: psutil.Process) -> dict[tuple[int, float], float]:
    """``{(pid, start): CPU seconds}`` of ``p`` (empty if it has ended); the start tells
    a new process from an old one of the same pid."""
    try:
        with p.oneshot():
            t = p.cpu_times()
            return {(p.pid, _started(p)): t.user + t.system}
    except (psutil.Error, OSError):
        return {}


def _started(p: psutil.Process) -> float:
    """When ``p`` started, in a unit that stays fixed for its life.

    On Linux, psutil's ``create_time()`` is the boot time read now plus the start's
    clock ticks, and the boot time moves when the clock is corrected: a worker whose
    key changed between two samples would be counted twice, with all the CPU of its
    life (the likely cause of a 1-worker map reporting 643 CPU-s in 314 s of wall on
    2 cores). The clock ticks since boot (field 22 of /proc/<pid>/stat) do not move.
    """
    try:
        with open(f"/proc/{p.pid}/stat") as f:
            # the command name (field 2) may hold spaces: split after its ")"
            return float(f.read().rsplit(")", 1)[1].split()[19])
    except FileNotFoundError:
        if os.path.isdir("/proc/self"):
            raise  # Linux, and the process has ended
        return round(p.create_time())


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


@contextlib.contextmanager
def wall_and_cpu() -> Iterator[dict[str, float]]:
    """Time the block: fills ``wall`` and ``cpu`` (user seconds of this process and of
    its joblib workers) in the dict it yields, once the block ends."""
    from joblib.externals.loky import get_reusable_executor

    timing: dict[str, float] = {}
    start, cpu0 = time.perf_counter(), os.times()
    yield timing
    timing["wall"] = time.perf_counter() - start
    # Stop the reusable worker processes so their CPU time is counted as children's.
    get_reusable_executor().shutdown(wait=True)
    cpu = os.times()
    timing["cpu"] = cpu.user - cpu0.user + cpu.children_user - cpu0.children_user


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def machine_speed(runs: int = 5) -> str:
    """Seconds of two fixed one-thread workloads, median of ``runs``: how fast this
    machine is now, printed beside a benchmark's figures.

    The same code's figures move with the machine: the full evaluation of
    ``evaluation_timing.py`` took 227 and 234 s on one machine of this kind (2026-12-02)
    and 365-499 s on another (2026-12-03), and one machine's speed drifts by 10-25 %
    within minutes. Time on a fixed workload, printed before and after, tells a slower
    machine from slower code. The workloads are SYNTHETIC, of the two kinds the
    benchmarks spend their CPU on: fitting 100 trees of a random forest on 100 rows
    (Python overhead, as in tuning) and float64 matrix products (BLAS, as in an MLP's
    prediction).
    """
    from sklearn.ensemble import RandomForestRegressor
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    X, y = rng.random((100, 6)), rng.random(100)
    a, b = rng.random((4096, 256)), rng.random((256, 256))
    forest = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1)
    times: dict[str, list[float]] = {"forest fit": [], "matrix products": []}
    with threadpool_limits(1):
        for _ in range(runs):
            t0 = time.perf_counter()
            forest.fit(X, y)
            t1 = time.perf_counter()
            for _ in range(20):
                a @ b
            t2 = time.perf_counter()
            times["forest fit"].append(t1 - t0)
            times["matrix products"].append(t2 - t1)
    each = ", ".join(f"{k} {median(v):.3f} s" for k, v in times.items())
    return f"machine speed probe (one thread, median of {runs}): {each}"

"""Benchmark: vectorised index discovery against a per-formula Python loop.

Run: ``.venv/bin/python benchmarks/discovery.py [--repeats 5]``

Both search the same candidates on the real Odisha samples (106 rows, six
bands) and rank them by |Pearson r|. The baseline computes each formula on its
own and calls :func:`scipy.stats.pearsonr` on its defined rows, the way a
hand-written search would. Wall times are medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import stats

from saltmap.features.discovery import discover_cv, enumerate_candidates, search_indices
from saltmap.io.samples import odisha


def timed(func, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def naive_search(reflectance, target, candidates):
    """One formula at a time: compute, drop undefined rows, scipy.stats.pearsonr."""
    bands = {r: reflectance[r].to_numpy(dtype=float) for r in reflectance.columns}
    y = np.asarray(target, dtype=float)
    scores = []
    for cand in candidates:
        values = np.asarray(cand.compute(bands), dtype=float)
        ok = np.isfinite(values)
        if ok.sum() < 3 or np.ptp(values[ok]) == 0:
            scores.append(np.nan)
            continue
        scores.append(stats.pearsonr(values[ok], y[ok]).statistic)
    return np.asarray(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    samples = odisha()
    reflectance, target = samples.reflectance, samples.target
    candidates = enumerate_candidates()
    print(f"samples: {len(samples)} rows, bands {' '.join(samples.roles)}")
    print(f"candidates: {len(candidates)}")

    fast, result = timed(lambda: search_indices(reflectance, target), args.repeats)
    slow, scores = timed(
        lambda: naive_search(reflectance, target, candidates), max(1, args.repeats // 2)
    )
    cv, report = timed(lambda: discover_cv(reflectance, target, n_splits=5), 1)

    best_naive = candidates[int(np.nanargmax(np.abs(scores)))].formula
    print(
        f"vectorised search (saltmap.search_indices):                  {fast * 1e3:8.1f} ms median"
    )
    print(f"naive loop (per formula + scipy.stats.pearsonr):      {slow * 1e3:8.1f} ms median")
    print(f"speed-up: {slow / fast:.1f}x")
    print(f"per candidate: vectorised {fast / len(candidates) * 1e6:.2f} µs, "
          f"naive {slow / len(candidates) * 1e6:.2f} µs")  # fmt: skip
    print(f"same winner: {result.table['formula'].iloc[0] == best_naive} ({best_naive})")
    print(f"5-fold honest search (discover_cv, 6 searches): {cv:.2f} s; "
          f"in-sample best |r| {report.best_abs_r:.3f}, out-of-fold r {report.out_of_fold_r:.3f}, "
          f"optimism {report.optimism:+.3f}")  # fmt: skip


if __name__ == "__main__":
    main()

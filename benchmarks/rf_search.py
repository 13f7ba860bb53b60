"""Compare the random forest's two tuning searches on the real Odisha samples (target EC).

Run: ``.venv/bin/python benchmarks/rf_search.py [--jobs 2] [--budget default|quick]``.
The forest is tuned inside every training fold either by ``cv`` inner folds per trial
(the search before issue 16) or by its out-of-bag error (one fit per trial, the
default since). Both are scored on the same outer folds as the evaluation's:
5x5 repeated CV and 5-fold spatial block CV, on the novel (N-SI) and classic (SI)
indices. Prints pooled R² and RMSE of each search, the paired difference with its
bootstrap CI, and the seconds of tuning, fit and predict summed over the folds
(each fold on one core).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from dataclasses import replace

from sklearn.model_selection import RepeatedKFold

from saltmap.io.samples import odisha
from saltmap.models.budgets import BUDGETS
from saltmap.models.tuning import TunedModel
from saltmap.validation.metrics import bootstrap_draws, paired_difference
from saltmap.validation.protocols import cross_validate_models
from saltmap.validation.splits import SpatialBlockKFold, materialise_splits

SEARCHES = {"inner CV": False, "out-of-bag": True}


def _splits(samples, X, y) -> dict[str, list]:
    repeated = RepeatedKFold(n_splits=5, n_repeats=5, random_state=0)
    blocks = SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs, random_state=0)
    return {
        "repeated": materialise_splits(repeated, X, y),
        "spatial": materialise_splits(blocks, X, y),
    }


def _print_row(protocol, indices, label, result, diff) -> None:
    cells = [protocol, indices, label, f"{result.pooled_r2():.3f}",
             f"{result.pooled_rmse():.0f}", f"{result.folds['seconds'].sum():.0f}"]  # fmt: skip
    if diff is not None:
        low, high = diff["dR2_pooled_ci_low"], diff["dR2_pooled_ci_high"]
        cells.append(f"{diff['dR2_pooled']:+.3f} [{low:+.3f}, {high:+.3f}]")
    print("| " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--budget", default="default")
    args = parser.parse_args()
    samples = odisha()
    X, y = samples.reflectance, samples.target.to_numpy(float)
    print(f"{len(y)} samples, budget={args.budget}, jobs={args.jobs}, "
          f"load average at start {os.getloadavg()}", flush=True)  # fmt: skip
    header = ("protocol", "indices", "search", "R2 pooled", "RMSE pooled", "fold s")
    print("| " + " | ".join(header) + " | dR2 pooled, out-of-bag - inner CV [95% CI] |")
    for protocol, splits in _splits(samples, X, y).items():
        draws = bootstrap_draws(len(y), 2000, 0)
        for indices in ("novel", "classic"):
            models = {
                label: TunedModel("RF", indices=indices,
                                  budget=replace(BUDGETS[args.budget], rf_out_of_bag=oob))
                for label, oob in SEARCHES.items()
            }  # fmt: skip
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                results = cross_validate_models(models, X, y, splits, n_jobs=args.jobs)
            diff = paired_difference(results["out-of-bag"], results["inner CV"], draws)
            for label, result in results.items():
                shown = diff if label == "out-of-bag" else None
                _print_row(protocol, indices, label, result, shown)
            print(f"  ({time.perf_counter() - t0:.0f} s wall)", flush=True)


if __name__ == "__main__":
    main()

"""Empirical coverage of saltmap's conformal intervals on the real Odisha samples.

Nominal 90 % intervals (``ConformalIntervals``, 5 inner folds) are fitted on the
training rows of each outer split and scored on its held-out rows, under

- repeated random k-fold (default 5 × 5), where train and test rows are
  exchangeable, so coverage should be close to 90 %;
- spatial block k-fold (``saltmap.validation.protocols.SpatialBlockKFold``, 5 folds × the
  same repeats with different block shuffles), where held-out rows are far from
  the training rows: coverage is reported as it is.

Run::

    .venv/bin/python benchmarks/trust_coverage.py --models RF XGBoost PLSR

It prints one line per model, conformity score, method and protocol.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.model_selection import RepeatedKFold

from saltmap.io.samples import odisha
from saltmap.models.building import make_model
from saltmap.trust.intervals import coverage_summary, evaluate_coverage
from saltmap.validation.splits import SpatialBlockKFold, materialise_splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["RF", "XGBoost", "PLSR"])
    parser.add_argument("--scores", nargs="+", default=["absolute", "gamma"])
    parser.add_argument("--methods", nargs="+", default=["base"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--log-target", action="store_true")
    args = parser.parse_args()

    s = odisha()
    X, y = s.reflectance, s.target.to_numpy(float)
    random = materialise_splits(
        RepeatedKFold(n_splits=args.folds, n_repeats=args.repeats, random_state=0), X, y
    )
    spatial = []
    for r in range(args.repeats):
        cv = SpatialBlockKFold(args.folds, coords=s.coords, crs=s.crs, random_state=r)
        spatial += materialise_splits(cv, X, y)
    print(
        f"Odisha: {len(y)} samples, target {s.target_name} [{s.target_unit}], "
        f"nominal {args.confidence:.0%}, {args.repeats}x{args.folds} outer folds"
    )
    for name in args.models:
        params = {"Stacking": None}.get(name, None)
        model = make_model(name, params=params, log_target=args.log_target)
        for score in args.scores:
            for method in args.methods:
                for label, splits in (("random", random), ("spatial", spatial)):
                    t = time.perf_counter()
                    folds = evaluate_coverage(
                        model,
                        X,
                        y,
                        splits,
                        confidence=args.confidence,
                        method=method,
                        conformity_score=score,
                        n_splits_per_repeat=args.folds,
                    )
                    summ = coverage_summary(folds)
                    spread = f"{summ['coverage_min_repeat']:.3f}-{summ['coverage_max_repeat']:.3f}"
                    print(
                        f"{name:8s} log={args.log_target!s:5s} {score:8s} {method:6s} {label:7s} "
                        f"coverage {summ['coverage']:.3f} "
                        f"(repeats {spread}) "
                        f"mean width {summ['mean_width']:.0f} median {summ['median_width']:.0f} "
                        f"n={summ['n_predictions']} [{time.perf_counter() - t:.0f} s]",
                        flush=True,
                    )


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

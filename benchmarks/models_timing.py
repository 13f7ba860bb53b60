"""Time one fit and one tuned fit of each model on the real Odisha samples.

Run: ``.venv/bin/python benchmarks/models_timing.py [--budget default|quick] [--indices novel]``.
Prints seconds per untuned fit and per tuned fit (tuning + final fit) of each
model on a 70 % training subset (the study split's calibration size), and a
projection of the issue's full evaluation: 5 models x 2 feature sets x
(1 study split + 25 repeated-CV folds + SPATIAL_FOLDS spatial folds) tuned fits.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from saltmap.models import MODEL_NAMES, TunedModel, clear_tuning_cache, make_model
from saltmap.samples import odisha

SPATIAL_FOLDS = 5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", default="default")
    parser.add_argument("--indices", default="novel")
    parser.add_argument("--models", default=",".join(MODEL_NAMES))
    args = parser.parse_args()
    samples = odisha()
    X, y = samples.reflectance, samples.target.to_numpy()
    rows = np.random.default_rng(0).permutation(len(y))[: int(0.7 * len(y))]
    X, y = X.iloc[rows], y[rows]
    print(f"{len(y)} training rows, indices={args.indices}, budget={args.budget}")
    fit_s, cold_s, seq_s = {}, {}, {}
    names = args.models.split(",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            t0 = time.perf_counter()
            make_model(name, indices=args.indices).fit(X, y)
            fit_s[name] = time.perf_counter() - t0
            clear_tuning_cache()
            t0 = time.perf_counter()
            TunedModel(name, indices=args.indices, budget=args.budget).fit(X, y)
            cold_s[name] = time.perf_counter() - t0
        # As an evaluation runs them: the five models on the same training rows,
        # where Stacking's base tuning is reused by MLP, RF and XGBoost.
        clear_tuning_cache()
        for name in names:
            t0 = time.perf_counter()
            TunedModel(name, indices=args.indices, budget=args.budget).fit(X, y)
            seq_s[name] = time.perf_counter() - t0
    for name in names:
        print(
            f"{name:9s} untuned fit {fit_s[name]:6.2f} s   tuned fit {cold_s[name]:6.2f} s "
            f"(alone)  {seq_s[name]:6.2f} s (after the models before it)"
        )
    total = sum(seq_s.values())
    fits = 2 * (1 + 25 + SPATIAL_FOLDS)
    print(
        f"all {len(names)} tuned fits on one training set: {total:.1f} s. Full evaluation "
        f"projection ({fits} training sets over both feature sets): {fits * total:.0f} s "
        f"on one worker, {fits * total / 2:.0f} s on two"
    )


if __name__ == "__main__":
    main()

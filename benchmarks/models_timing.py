"""Time one fit and one tuned fit of each model on the real Odisha samples.

Run: ``.venv/bin/python benchmarks/models_timing.py [--budget default|quick] [--indices novel]``.
Prints seconds per untuned fit and per tuned fit (tuning + final fit) of each
model on a 70 % training subset (the study split's calibration size), and a
projection of the issue's full evaluation: 5 models x 2 feature sets x
(1 study split + 25 repeated-CV folds + SPATIAL_FOLDS spatial folds) tuned fits.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from saltmap.io.samples import odisha
from saltmap.models.building import MODEL_NAMES, make_model
from saltmap.models.tuning import TunedModel
from saltmap.models.tuning_cache import clear_tuning_cache

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
    # Wall time (perf_counter) suffers when others load the machine; CPU time of
    # this process (process_time) is what an idle core would take, since every
    # model here runs on one thread.
    fit_s, cold_s, seq_s = {}, {}, {}
    names = args.models.split(",")

    def timed(fn):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        return time.perf_counter() - w0, time.process_time() - c0

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            fit_s[name] = timed(lambda n=name: make_model(n, indices=args.indices).fit(X, y))
            clear_tuning_cache()
            cold_s[name] = timed(
                lambda n=name: TunedModel(n, indices=args.indices, budget=args.budget).fit(X, y)
            )
        # As an evaluation runs them: the five models on the same training rows,
        # where Stacking's base tuning is reused by MLP, RF and XGBoost.
        clear_tuning_cache()
        for name in names:
            seq_s[name] = timed(
                lambda n=name: TunedModel(n, indices=args.indices, budget=args.budget).fit(X, y)
            )
    print("seconds as wall / CPU")
    for name in names:
        print(
            f"{name:9s} untuned fit {fit_s[name][0]:6.2f} / {fit_s[name][1]:6.2f}   "
            f"tuned fit alone {cold_s[name][0]:6.2f} / {cold_s[name][1]:6.2f}   "
            f"after the models before it {seq_s[name][0]:6.2f} / {seq_s[name][1]:6.2f}"
        )
    wall = sum(v[0] for v in seq_s.values())
    cpu = sum(v[1] for v in seq_s.values())
    fits = 2 * (1 + 25 + SPATIAL_FOLDS)
    print(
        f"all {len(names)} tuned fits on one training set: {wall:.1f} s wall, {cpu:.1f} s CPU. "
        f"Full evaluation projection ({fits} training sets over both feature sets), from CPU "
        f"time: {fits * cpu:.0f} s on one idle core, {fits * cpu / 2:.0f} s on two; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()

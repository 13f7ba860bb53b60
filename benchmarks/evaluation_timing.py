"""Time the issue's full evaluation on the real Odisha samples (target EC).

Run: ``.venv/bin/python benchmarks/evaluation_timing.py [--quick] [--jobs 2] [--out DIR]``.
Runs what ``saltmap evaluate`` runs — 5 models x 2 feature sets; study split, 5x5
repeated CV and spatial block CV, each model tuned with the default budget inside
every training set; the plain-RF baseline — prints the progress with elapsed time
and a projection of the total, then the wall time, CPU time and load average, and
writes the outputs like the CLI does when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator

from measure import machine_speed, wall_and_cpu

from saltmap.io.samples import odisha
from saltmap.progress import Tick
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.results import write_evaluation
from saltmap.validation.settings import EvaluationSettings


class PrintedProgress:
    """A :class:`saltmap.progress.Progress` that prints every fifth training set done,
    with the elapsed time and a projection of the total."""

    def __init__(self, start: float) -> None:
        self.start = start

    @contextlib.contextmanager
    def task(self, what: str, total: int | None = None) -> Iterator[Tick]:
        def tick(done: int, total: int | None) -> None:
            if total and (done % 5 == 0 or done == total):
                elapsed = time.perf_counter() - self.start
                print(f"  {done}/{total} training sets, {elapsed:6.0f} s, "
                      f"projected {elapsed * total / done:6.0f} s", flush=True)  # fmt: skip

        yield tick


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    samples = odisha()
    print(machine_speed(), flush=True)
    print(f"{len(samples)} samples, quick={args.quick}, jobs={args.jobs}, "
          f"load average at start {os.getloadavg()}", flush=True)  # fmt: skip
    settings = EvaluationSettings(quick=args.quick, n_jobs=args.jobs, random_state=args.seed)
    with wall_and_cpu() as timing:
        progress = PrintedProgress(time.perf_counter())
        result = evaluate_study(samples, settings, progress=progress)
    print(f"wall {timing['wall']:.0f} s; CPU time of this process and its workers "
          f"{timing['cpu']:.0f} s (on 2 idle cores about {timing['cpu'] / 2:.0f} s of wall); "
          f"load average at end {os.getloadavg()}")  # fmt: skip
    print(machine_speed(), flush=True)
    folds = result.folds
    per_model = folds.groupby("model")["seconds"].sum().sort_values(ascending=False)
    print("fit+predict seconds summed over CV folds, by model:")
    print(per_model.round(0).to_string())
    print("the same by protocol and feature set (columns: models):")
    table = folds.pivot_table(index=["protocol", "feature_set"], columns="model",
                              values="seconds", aggfunc="sum", margins=True)  # fmt: skip
    print(table.round(0).to_string())
    if args.out:
        written = write_evaluation(result, args.out)
        print(f"wrote {len(written)} files to {args.out}")


if __name__ == "__main__":
    main()

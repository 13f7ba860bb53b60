"""Does the evaluation's honest skill depend on the tuning's trial count? Real Odisha samples.

Run: ``.venv/bin/python benchmarks/tuning_trials.py [--trials 20,10] [--seeds 0,1]``.
Runs the full evaluation of ``evaluation_timing.py`` once per trial count and seed of
the models and their tuning, the splits and bootstrap held at seed 0, so that runs
differ only in their tuning. Prints each run's wall and CPU time, the final model's
choice and its nested score; then, for every pair of runs, the change of pooled R²
over the cross-validated (protocol, feature set, model) cells. Reseeding the same
trial count shows how far tuning alone moves the scores: a cheaper trial count whose
changes are no larger is within the tuning's own noise. Takes 4-6 min per run.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
from typing import Any

import pandas as pd
from measure import machine_speed, wall_and_cpu

from saltmap.io.samples import odisha
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.results import EvaluationResult
from saltmap.validation.settings import EvaluationSettings

CELL = ["protocol", "feature_set", "model"]
REFERENCES = ("null (mean)", "plain RF")  # untuned: the same in every run


@dataclasses.dataclass(frozen=True)
class TuningSeeded(EvaluationSettings):
    """Evaluation settings whose models and tuning take their own seed."""

    tuning_seed: int = 0

    def model(self, name: str, indices: Any, **kwargs: Any):
        # Only the models see the tuning seed; splits and bootstrap keep random_state.
        tuning = dataclasses.replace(self, random_state=self.tuning_seed)
        return EvaluationSettings.model(tuning, name, indices, **kwargs)


def _run(n_trials: int, seed: int) -> EvaluationResult:
    print(f"\n{n_trials} trials, seed {seed}; {machine_speed()}; "
          f"load average {os.getloadavg()}", flush=True)  # fmt: skip
    settings = TuningSeeded(n_trials=n_trials, tuning_seed=seed, n_jobs=2)
    with wall_and_cpu() as timing:
        result = evaluate_study(odisha(), settings)
    sel = result.selection
    nested = sel.nested_score["R2_pooled"]
    print(f"  wall {timing['wall']:.0f} s, CPU {timing['cpu']:.0f} s; chosen {sel.winner}, "
          f"runner-up {sel.runner_up}; nested R² {nested:.3f}", flush=True)  # fmt: skip
    return result


def _pooled_r2(result: EvaluationResult) -> pd.Series:
    h = result.honest
    h = h[(h["protocol"] != "study") & ~h["model"].isin(REFERENCES)]
    return h.set_index(CELL)["R2_pooled"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", default="20,10")
    parser.add_argument("--seeds", default="0,1")
    args = parser.parse_args()
    runs = itertools.product(map(int, args.trials.split(",")), map(int, args.seeds.split(",")))
    r2 = {run: _pooled_r2(_run(*run)) for run in runs}
    print("\npooled R² change, b - a, over the cross-validated cells:")
    for a, b in itertools.combinations(r2, 2):
        d = (r2[b] - r2[a]).dropna()
        print(f"  {a[0]:>3} trials seed {a[1]} -> {b[0]:>3} trials seed {b[1]}: "
              f"mean {d.mean():+.3f}, sd {d.std():.3f}, mean |change| {d.abs().mean():.3f}, "
              f"largest |change| {d.abs().max():.3f} over {len(d)} cells")  # fmt: skip
    print("\npooled R² per cell (columns: trials, seed):")
    print(pd.concat(r2, axis=1).round(3).to_string())


if __name__ == "__main__":
    main()

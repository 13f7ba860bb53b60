"""Issue 14's acceptance table: the final model's choice on the real Odisha samples (EC).

For the choice made under spatial block CV and under repeated k-fold, each without and
with the covariates ``Dist_Sea`` (numeric) and ``Land_cover`` (categorical), prints: the
auto choice and its own pooled R², the nested score of "choose, then fit" (the number to
quote), how often the same winner came out across outer folds, the plain random forest
(21 indices, untuned) and the study's Stacking on N-SI on the same folds, and the gap of
the nested score to the plain forest (goal with covariates: at least +0.10).

Run: ``.venv/bin/python benchmarks/choice_acceptance.py [--quick] [--jobs 2]
[--protocols spatial,repeated] [--repeats N] [--covariates none,with]``. ``--quick`` is the
quick tuning budget; ``--repeats`` the repeats of the repeated k-fold (5 by default, as the
study's); ``--covariates`` which cells to run (without them, with them, or both).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import pandas as pd

from saltmap.features.covariates import Covariates
from saltmap.io.samples import odisha
from saltmap.tables import markdown_table
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.scoring import BASELINE
from saltmap.validation.settings import EvaluationSettings

COVARIATES = Covariates(numeric=("Dist_Sea",), categorical=("Land_cover",))


def one_cell(samples, protocol: str, covariates: Covariates | None, args) -> dict:
    settings = EvaluationSettings(
        protocols=(protocol,), quick=args.quick, n_jobs=args.jobs, covariates=covariates,
        random_state=args.seed, n_repeats=args.repeats if protocol == "repeated" else None,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate_study(samples, settings)
    sel = result.selection
    honest = result.honest.set_index(["protocol", "feature_set", "model"])
    forest = float(honest.loc[(protocol, BASELINE, BASELINE), "R2_pooled"])
    nested = sel.nested_score["R2_pooled"]
    return {
        "protocol": protocol,
        "covariates": "Dist_Sea + Land_cover" if covariates else "none",
        "auto choice": f"{sel.winner[1]} on {sel.winner[0]}",
        "its own R2": float(sel.row(sel.winner)["R2_pooled"]),
        "nested R2": nested,
        "nested R2 95% CI": "[{:.2f}, {:.2f}]".format(
            sel.nested_score["R2_pooled_ci_low"], sel.nested_score["R2_pooled_ci_high"]
        ),
        "same winner in outer folds": sel.stability,
        "plain RF R2": forest,
        "Stacking N-SI R2": float(honest.loc[(protocol, "N-SI", "Stacking"), "R2_pooled"]),
        "nested - plain RF": nested - forest,
        "skill": "yes" if sel.skill["evidence"] else "no evidence",
        "seconds": round(time.perf_counter() - start),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--protocols", default="spatial,repeated")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--covariates", default="none,with", help="Cells: none, with or both.")
    args = parser.parse_args()
    cells = {"none": None, "with": COVARIATES}
    samples = odisha()
    rows = []
    for protocol in args.protocols.split(","):
        for covariates in (cells[c] for c in args.covariates.split(",")):
            print(f"{protocol}, covariates {covariates}: load average {os.getloadavg()}",
                  flush=True)  # fmt: skip
            rows.append(one_cell(samples, protocol, covariates, args))
            print(pd.Series(rows[-1]).to_string(), flush=True)
    table = pd.DataFrame(rows)
    print(markdown_table(table, digits=3))
    for row in rows:
        if row["covariates"] != "none":
            met = row["nested - plain RF"] >= 0.10
            print(f"{row['protocol']}: auto with covariates, nested R2 "
                  f"{row['nested R2']:.3f} vs plain RF {row['plain RF R2']:.3f}: "
                  f"{row['nested - plain RF']:+.3f} (goal >= +0.10): "
                  f"{'MET' if met else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()

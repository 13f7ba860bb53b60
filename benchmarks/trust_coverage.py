"""Calibration of saltmap's intervals on the real Odisha samples: adaptive against constant.

The map's trust model (:func:`saltmap.trust.maps.fit_trust`: intervals with 5 inner
folds, and the AOA) is fitted on the training rows of each outer split and scored on
its held-out rows (:func:`saltmap.trust.calibration.held_out_intervals`), under

- repeated random k-fold (default 5 × 5), where train and test rows are
  exchangeable, so coverage should be close to nominal;
- spatial block k-fold (``saltmap.validation.splits.SpatialBlockKFold``, 5 folds × the
  same repeats with different block shuffles), where held-out rows are far from
  the training rows: coverage is reported as it is.

Both interval methods come from the same fits (the same out-of-fold residuals):
``normalized`` (locally adaptive, the default) and ``base`` (one constant width).

Run::

    .venv/bin/python benchmarks/trust_coverage.py --models Stacking RF --jobs 2

For each model and protocol it prints the summary (marginal coverage and its
spread over repeats, coverage by tercile of the prediction and of the DI, widths)
and the calibration curve (empirical coverage at nominal 50–95 %); ``--figure``
writes the curves as a PNG.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.model_selection import RepeatedKFold

from saltmap.io.samples import odisha
from saltmap.models.building import make_model
from saltmap.tables import markdown_table
from saltmap.trust.calibration import calibration_curve, calibration_summary, held_out_intervals
from saltmap.trust.settings import TrustSettings
from saltmap.validation.splits import SpatialBlockKFold, materialise_splits


def held_out(model, X, y, splits, settings, folds: int, jobs: int) -> pd.DataFrame:
    """The held-out table of all splits, computed ``jobs`` splits at a time."""

    def one(i, split):
        warnings.simplefilter("ignore")
        part = held_out_intervals(model, X, y, [split], settings)
        part["split"], part["repeat"] = i, i // folds
        return part

    parts = Parallel(n_jobs=jobs)(delayed(one)(i, sp) for i, sp in enumerate(splits))
    return pd.concat(parts, ignore_index=True)


def readable(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary, one column per method, each figure with the digits it deserves."""

    def cell(key: str, value: float) -> str:
        if "coverage" in key or key == "nominal":
            return f"{value:.3f}"
        if key in ("worst_gap", "width_iqr_share"):
            return f"{value:.2f}"
        return f"{value:.0f}"

    wide = summary.set_index("method").T
    return wide.apply(lambda col: [cell(k, v) for k, v in col.items()]).reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["Stacking", "RF"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--confidence", type=float, default=0.9)
    parser.add_argument("--log-target", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--figure", default=None, help="PNG of the calibration curves")
    parser.add_argument("--save", default=None, help="prefix of CSVs of the held-out tables")
    parser.add_argument("--protocols", nargs="+", default=["random", "spatial"])
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
    settings = TrustSettings(confidence=args.confidence)
    curves = {}
    for name in args.models:
        model = make_model(name, log_target=args.log_target)
        for label, splits in (("random", random), ("spatial", spatial)):
            if label not in args.protocols:
                continue
            t = time.perf_counter()
            table = held_out(model, X, y, splits, settings, args.folds, args.jobs)
            summary = calibration_summary(table, args.confidence)
            curve = calibration_curve(table)
            curves[f"{name}, {label} CV"] = curve
            print(f"\n## {name} (log target {args.log_target}), {label} CV "
                  f"[{time.perf_counter() - t:.0f} s]\n")  # fmt: skip
            print(markdown_table(readable(summary)))
            wide = curve.pivot(index="nominal", columns="method", values="coverage")
            print()
            print(markdown_table(wide.map(lambda v: f"{v:.3f}").reset_index()), flush=True)
            if args.save:
                table.to_csv(f"{args.save}_{name}_{label}.csv", index=False)
    if args.figure:
        from saltmap.plots import calibration_figure

        calibration_figure(curves).savefig(args.figure, dpi=120)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

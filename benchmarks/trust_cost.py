"""Cost of the trust layers (intervals, DI/AOA) beside the prediction itself.

The model (default: the study's Stacking, untuned defaults, EC target) is trained
on the real Odisha samples and its :class:`saltmap.trust.intervals.TrustModel` fitted.
Then

1. on the real Patagonia Sentinel-2 cut (300 × 200 px, DN / 10000) it prints the
   share of valid pixels inside the area of applicability and the median
   interval width — the Odisha model applied far from home;
2. on ``--pixels`` synthetic-but-realistic pixels (a square block made of real
   reflectance: half the Patagonia pixels, half the Odisha samples' reflectance,
   each repeated with ±5 % multiplicative noise per band) it times, ``--runs``
   times on one process:

   - ``predict``: :func:`saltmap.mapping.engine.predict_block` (the map's salinity);
   - ``intervals``: the bounds from that prediction, by the trust model's method
     (``--method``, default ``normalized``: index features + the spread forest), and
     the constant-width ``"base"`` bounds beside them;
   - ``DI+AOA``: index features + nearest-neighbour search + threshold;
   - ``trust_block``: all trust layers as mapping calls it (prediction given, with the
     class-confidence layer of the FAO EC classes);
   - ``plus``: CV+ intervals (K fold models) on a 1/20 subset, scaled up;

Before each timed step it prints the load average (``os.getloadavg``) and the
process's peak memory.

   and prints the medians side by side with their ratio to ``predict``.

Run::

    .venv/bin/python benchmarks/trust_cost.py                 # 4 Mpx, 3 runs
    .venv/bin/python benchmarks/trust_cost.py --pixels 1000000 --model RF
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
import warnings
from functools import partial

import numpy as np

from saltmap.bands import ROLES
from saltmap.datasets import patagonia_scene
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.mapping.blocks import ToSchemeUnit, classify_block, predict_block
from saltmap.models.building import make_model
from saltmap.salinity.classes import get_scheme
from saltmap.trust.intervals import ConformalIntervals
from saltmap.trust.maps import TrustSummary, fit_trust, trust_block


def realistic_block(n_pixels: int, scene_pixels: np.ndarray, sample_pixels: np.ndarray):
    """(6, side, side) float32 reflectance from real pixels with ±5 % noise (synthetic)."""
    side = int(np.sqrt(n_pixels))
    n = side * side
    rng = np.random.default_rng(0)
    half = n // 2
    take = np.concatenate(
        [
            scene_pixels[rng.integers(0, len(scene_pixels), half)],
            sample_pixels[rng.integers(0, len(sample_pixels), n - half)],
        ]
    )
    rng.shuffle(take)
    take *= rng.uniform(0.95, 1.05, size=take.shape).astype(np.float32)
    return np.ascontiguousarray(take.T.reshape(len(ROLES), side, side), dtype=np.float32)


def timed(fn, runs: int) -> tuple[float, object]:
    times, out = [], None
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  [load average {load}; peak memory so far {peak:.0f} MB]", flush=True)
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Stacking")
    parser.add_argument("--pixels", type=int, default=4_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--log-target", action="store_true")
    parser.add_argument("--score", default="absolute", choices=["absolute", "gamma"])
    parser.add_argument("--method", default="normalized", choices=["normalized", "base"])
    parser.add_argument("--no-plus", action="store_true", help="skip the CV+ comparison")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    s = odisha()
    X, y = s.reflectance, s.target.to_numpy(float)
    model = make_model(args.model, log_target=args.log_target)
    t = time.perf_counter()
    trust = fit_trust(model, X, y, conformity_score=args.score, method=args.method)
    fit_s = time.perf_counter() - t
    full = trust.intervals.estimator_
    print(
        f"model {args.model} (log target: {args.log_target}, score: {args.score}) on "
        f"{len(y)} Odisha samples; fit_trust {fit_s:.1f} s (full + {trust.info['n_folds']} "
        f"fold models, permutation importance, CV-DI)"
    )
    print(f"  bands {','.join(trust.bands)}; DI predictors {','.join(trust.feature_names)}")
    weights = ", ".join(f"{k} {v:.3f}" for k, v in trust.weights.items())
    print(f"  weights {weights}; AOA threshold {trust.aoa.threshold_:.3f}")
    print(f"  interval method {args.method}; constant-width quantiles {trust.intervals.quantiles_}")
    classify = partial(
        classify_block,
        scheme=get_scheme("fao-ec"),
        to_scheme_unit=ToSchemeUnit(s.target_unit, "dS/m"),
    )

    # 1. The real Patagonia scene.
    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    refl = scene.read()
    pred = predict_block(full, refl, scene.roles)
    summary = TrustSummary()
    patagonia = trust_block(trust, refl, scene.roles, prediction=pred, classify=classify)
    summary.add(patagonia)
    di = patagonia["di"]
    print(
        f"Patagonia {scene.width}x{scene.height}: {summary.n_valid} valid px, "
        f"inside AOA {summary.share_inside_aoa:.2%} ({summary.n_inside} px); "
        f"median interval width {summary.median_width:.0f} {s.target_unit}; "
        f"DI median {np.nanmedian(di):.2f} (threshold {trust.aoa.threshold_:.3f}); "
        f"median prediction {np.nanmedian(pred):.0f}"
    )

    print(
        f"  width 5th/50th/95th percentile {summary.width_quantile(0.05):.0f} / "
        f"{summary.median_width:.0f} / {summary.width_quantile(0.95):.0f} {s.target_unit}; "
        f"class confidence (pixels per classes spanned) {summary.class_spans()}"
    )
    print(summary.width_by_di().to_string(index=False, float_format="%.4g"))

    # 2. Cost on many realistic pixels.
    scene_px = refl.reshape(len(scene.roles), -1).T
    scene_px = scene_px[np.isfinite(scene_px).all(axis=1)]
    sample_px = X[list(ROLES)].to_numpy(np.float32)
    sample_px = sample_px[np.isfinite(sample_px).all(axis=1)]
    block = realistic_block(args.pixels, scene_px, sample_px)
    n = block.shape[1] * block.shape[2]
    roles = ROLES
    print(f"timing on {n} px ({block.shape[1]}x{block.shape[2]}), median of {args.runs} runs")

    t_pred, salinity = timed(lambda: predict_block(full, block, roles), args.runs)
    valid = np.isfinite(salinity).ravel()
    pixels = np.ascontiguousarray(block[[roles.index(b) for b in trust.bands]].reshape(
        len(trust.bands), -1).T)  # fmt: skip
    given, inside_px = salinity.ravel()[valid], pixels[valid]

    def own_intervals():
        features = trust.features(inside_px) if args.method == "normalized" else None
        return trust.intervals.bounds_from_prediction(given, features)

    t_int, _ = timed(own_intervals, args.runs)
    t_base, _ = timed(
        lambda: trust.intervals.bounds_from_prediction(given, method="base"), args.runs
    )

    def di_aoa():
        d = trust.aoa.dissimilarity(trust.features(pixels))
        return d <= trust.aoa.threshold_

    t_di, inside = timed(di_aoa, args.runs)
    t_block, layers = timed(
        lambda: trust_block(trust, block, roles, prediction=salinity, classify=classify), args.runs
    )

    rows = [
        ("predict (mapping.predict_block)", t_pred),
        (f"intervals, {args.method}, from prediction", t_int),
        ("intervals, base (constant), from prediction", t_base),
        ("DI + AOA", t_di),
        ("trust_block (all trust layers)", t_block),
    ]
    if not args.no_plus:
        # CV+ for comparison: K fold models predict every pixel (on a subset, scaled).
        plus = ConformalIntervals(model, method="plus", conformity_score=args.score).fit(X, y)
        sub = pixels[::20]
        t_plus, _ = timed(lambda: plus.predict_interval(sub), 1)
        rows.append(("intervals, CV+ (plus), scaled from 1/20", t_plus * len(pixels) / len(sub)))
    print(f"{'step':42s} {'seconds':>9s} {'kpx/s':>9s} {'x predict':>10s}")
    for name, sec in rows:
        print(f"{name:42s} {sec:9.2f} {n / sec / 1e3:9.0f} {sec / t_pred:10.3f}")
    print(f"share of the synthetic pixels inside the AOA: {np.mean(inside):.2%}")
    w = layers["width"][np.isfinite(layers["width"])]
    p5, p50, p95 = np.percentile(w, [5, 50, 95])
    print(f"width 5th/50th/95th percentile: {p5:.0f} / {p50:.0f} / {p95:.0f} {s.target_unit}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of the process: {peak:.0f} MB")


if __name__ == "__main__":
    main()

"""Benchmark: map a full SYNTHETIC Sentinel-2 tile with the stacking model trained on Odisha.

Builds, once, a synthetic L2A tile (10980 x 10980 px at 10 m for B02 B03 B04 B08,
5490 x 5490 px at 20 m for B11 B12; uint16 DN with the BOA offset of baseline
04.00+, tiled deflate GeoTIFFs) in ``benchmarks/.cache/`` (git-ignored). The tile
is synthetic, NOT real data: fields as jittered parcels of six land covers with
their own spectra and brightness, smooth regional gradients, pixel noise and a
no-data corner like a swath edge. It is built strip by strip, so building is
bounded in memory too.

Then, in one run, it prints

* a naive run on a 2048 x 2048 crop: read all bands, flatten to a table, one
  ``model.predict``;
* the full tile through :func:`saltmap.mapping.engine.map_scene` (blocks over ``--jobs``
  processes, COG outputs);
* pixels/s, wall time and peak RSS (summed over the process and its children,
  sampled every 0.2 s) of both;
* that the mapped values over the crop equal the naive predictions (float32);
* where the time goes on a few blocks: read of the 10 m bands, read + bilinear
  resampling of the 20 m band, indices, each base model and the meta-learner.

Usage::

    .venv/bin/python benchmarks/map_tile.py [--jobs 2] [--block-size 1024] [--skip-full] [--trust]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

CACHE = Path(__file__).resolve().parent / ".cache" / "s2_tile_synthetic"
SIZE_10M = 10980
SIZE_20M = 5490
ORIGIN = (499980.0, 5300020.0)  # like a Sentinel-2 MGRS tile corner
CRS = "EPSG:32719"
BANDS = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B11": 20, "B12": 20}
ROLE_INDEX = {"B02": 0, "B03": 1, "B04": 2, "B08": 3, "B11": 4, "B12": 5}

# Reflectance of the six land covers in B02 B03 B04 B08 B11 B12, and how common each is.
COVERS = np.array(
    [
        [0.25, 0.28, 0.31, 0.34, 0.38, 0.33],  # salt crust
        [0.10, 0.14, 0.18, 0.24, 0.32, 0.28],  # bare soil
        [0.03, 0.06, 0.04, 0.35, 0.20, 0.10],  # irrigated crop
        [0.06, 0.09, 0.10, 0.22, 0.25, 0.18],  # sparse vegetation
        [0.05, 0.06, 0.04, 0.02, 0.01, 0.005],  # water
        [0.12, 0.13, 0.14, 0.18, 0.22, 0.20],  # built-up
    ],
    dtype=np.float32,
)
COVER_SHARE = np.array([0.12, 0.30, 0.25, 0.23, 0.04, 0.06])


# ------------------------------------------------------------------ the synthetic tile


def _hash(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) per integer pair: a cheap deterministic hash of parcel ids."""
    h = (a.astype(np.uint64) * np.uint64(73856093)) ^ (b.astype(np.uint64) * np.uint64(19349663))
    h = (h ^ np.uint64(salt * 83492791)) * np.uint64(2654435761)
    h ^= h >> np.uint64(13)
    return (h % np.uint64(1_000_003)).astype(np.float64) / 1_000_003.0


def reflectance_at(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Synthetic reflectance (6, ...) at positions x, y given in 10 m pixels."""
    # Field edges are not straight lines: warp the coordinates smoothly.
    xw = x + 14 * np.sin(y / 173.0) + 6 * np.sin((x + y) / 61.0)
    yw = y + 11 * np.sin(x / 211.0) + 5 * np.cos((x - y) / 47.0)
    px, py = np.floor(xw / 85.0), np.floor(yw / 55.0)
    u = _hash(px, py, 1)
    cover = np.searchsorted(np.cumsum(COVER_SHARE), u, side="right").clip(0, len(COVERS) - 1)
    bright = 0.8 + 0.4 * _hash(px, py, 2)
    regional = (
        1.0
        + 0.10 * np.sin(x / 820.0 + 0.3) * np.cos(y / 640.0)
        + 0.05 * np.sin((x + 2 * y) / 2300.0)
    )
    base = COVERS[cover].transpose(-1, *range(cover.ndim))  # (6, ...)
    noise = 1.0 + 0.03 * rng.standard_normal(base.shape).astype(np.float32)
    return (base * (bright * regional).astype(np.float32) * noise).astype(np.float32)


def _nodata_corner(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # A swath edge: the upper-left corner of the tile has no data.
    return (x + y) < 0.3 * SIZE_10M


def build_tile(folder: Path = CACHE, strip: int = 512) -> Path:
    """Write the synthetic tile into ``folder`` strip by strip (skipped if complete)."""
    done = folder / "complete.json"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for res in (10, 20):
        size = SIZE_10M if res == 10 else SIZE_20M
        names = [b for b, r in BANDS.items() if r == res]
        profile = {
            "driver": "GTiff",
            "width": size,
            "height": size,
            "count": 1,
            "dtype": "uint16",
            "nodata": 0,
            "crs": CRS,
            "transform": from_origin(*ORIGIN, res, res),
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "predictor": 2,
        }
        outs = {b: rasterio.open(folder / f"SYNTH_{b}_{res}m.tif", "w", **profile) for b in names}
        try:
            for row in range(0, size, strip):
                rows = min(strip, size - row)
                rng = np.random.default_rng([res, row])
                # pixel centres in 10 m pixel units
                yy, xx = np.mgrid[row : row + rows, 0:size].astype(np.float64)
                scale = res / 10
                x, y = (xx + 0.5) * scale, (yy + 0.5) * scale
                refl = reflectance_at(x, y, rng)
                # DN of processing baseline >= 04.00: reflectance * 10000 + 1000
                dn = np.clip(np.round(refl * 10000 + 1000), 1, 65535).astype(np.uint16)
                dn[:, _nodata_corner(x, y)] = 0
                for b in names:
                    outs[b].write(dn[ROLE_INDEX[b]], 1, window=Window(0, row, size, rows))
        finally:
            for ds in outs.values():
                ds.close()
    done.write_text(json.dumps({"built_seconds": time.perf_counter() - started}))
    return folder


# ----------------------------------------------------------------------- measuring


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class PeakRSS:
    """Peak of the summed RSS of this process and all its children, sampled; and CPU time."""

    def __init__(self, every: float = 0.2):
        self.every = every
        self.peak = 0
        self.cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self.peak = self._sample()
        self._cpu0 = cpu_seconds()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())
        self.cpu = cpu_seconds() - self._cpu0


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def train_model():
    from saltmap.io.samples import odisha
    from saltmap.models.building import make_model

    samples = odisha()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model("Stacking", random_state=0)
        model.fit(samples.reflectance, samples.target)
    return model, samples


def _naive_in_child(model, scene, crop: Window) -> tuple[np.ndarray, float, float, int]:
    import resource

    t0, c0 = time.perf_counter(), time.process_time()
    cube = scene.read(window=crop)
    table = pd.DataFrame(cube.reshape(cube.shape[0], -1).T, columns=list(scene.roles))
    valid = table.notna().all(axis=1)
    pred = np.full(len(table), np.nan)
    pred[valid.to_numpy()] = model.predict(table[valid])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    return pred.reshape(int(crop.height), int(crop.width)), seconds, cpu, peak


def naive_run(model, scene, crop: Window) -> tuple[np.ndarray, float, float, int]:
    """Read everything, flatten to a table, one predict; in a fresh process so that its
    memory neither counts towards nor lingers in the mapped run. Returns predictions,
    wall seconds, CPU seconds and the child's peak RSS (exact, from getrusage)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_naive_in_child, model, scene, crop).result()


def breakdown(model, scene, windows: list[Window]) -> pd.DataFrame:
    """CPU seconds per stage on the given blocks, one process, one thread.

    CPU time (not wall time) so that other load on the machine does not distort the shares.
    """
    from saltmap.mapping import blocks

    job = blocks.BlockJob(model=model, scene=scene, plan=None)
    job.prepare()  # n_jobs=1 and one BLAS thread, as in the workers
    bands = blocks.model_bands(model)
    ten = [b for b in bands if b in ("B", "G", "R", "N")]
    twenty = [b for b in bands if b not in ten]
    times: dict[str, float] = {}

    def add(key: str, t0: float) -> None:
        times[key] = times.get(key, 0.0) + time.process_time() - t0

    indices, regressor = model[0], model[-1]
    for w in windows:
        t0 = time.process_time()
        a = scene.read(window=w, roles=ten)
        add("read 10 m bands", t0)
        t0 = time.process_time()
        b = scene.read(window=w, roles=twenty)
        add("read + resample 20 m band(s)", t0)
        # The same area read straight from the 20 m files, without resampling, so that
        # the share of bilinear resampling is known on its own.
        t0 = time.process_time()
        native = Window(w.col_off // 2, w.row_off // 2, w.width // 2, w.height // 2)
        for role in twenty:
            with rasterio.open(_band_file(role)) as src:
                src.read(1, window=native)
        add("  of which: read 20 m at 20 m (no resampling)", t0)
        cube = np.concatenate([a, b])
        pixels = cube.reshape(len(bands), -1).T
        pixels = pixels[np.isfinite(pixels).all(axis=1)]
        for start in range(0, len(pixels), blocks.CHUNK_ROWS):
            chunk = pixels[start : start + blocks.CHUNK_ROWS]
            t0 = time.process_time()
            feats = indices.transform(chunk)
            add("indices", t0)
            if hasattr(regressor, "estimators_") and hasattr(regressor, "final_estimator_"):
                outs = []
                for name, est in zip(
                    regressor.named_estimators_, regressor.estimators_, strict=True
                ):
                    t0 = time.process_time()
                    outs.append(est.predict(feats))
                    add(f"model {name}", t0)
                t0 = time.process_time()
                regressor.final_estimator_.predict(np.column_stack(outs))
                add("meta-learner", t0)
            else:
                t0 = time.process_time()
                regressor.predict(feats)
                add("model", t0)
    raw = times.pop("  of which: read 20 m at 20 m (no resampling)")
    total = sum(times.values())
    resample = times["read + resample 20 m band(s)"] - raw
    n = sum(int(w.width * w.height) for w in windows)
    rows = {**times, "  of which read at 20 m": raw, "  of which resampling": resample}
    return pd.DataFrame(
        {
            "cpu_seconds": rows,
            "share_%": {k: 100 * v / total for k, v in rows.items()},
            "kpx_per_cpu_s_alone": {k: n / v / 1000 for k, v in rows.items()},
        }
    ).round(3)


def _band_file(role: str) -> Path:
    band = {"S1": "B11", "S2": "B12"}[role]
    return CACHE / f"SYNTH_{band}_20m.tif"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=1024)
    parser.add_argument("--crop", type=int, default=2048)
    parser.add_argument("--skip-full", action="store_true", help="Only the crop and breakdown.")
    parser.add_argument("--out", type=Path, default=CACHE.parent / "map_tile_out")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="Map with intervals, DI and AOA too (saltmap.fit_trust on the Odisha samples).",
    )
    args = parser.parse_args()

    from saltmap.cli._progress import RichProgress
    from saltmap.io.scene import open_scene
    from saltmap.mapping import MapSettings, map_scene

    t0 = time.perf_counter()
    folder = build_tile()
    print(f"synthetic tile: {folder} (ready in {time.perf_counter() - t0:.1f} s)")
    scene = open_scene(folder, scaling="sentinel2-l2a-offset")
    print(scene)
    model, samples = train_model()
    print(f"load average before: {os.getloadavg()} on {os.cpu_count()} CPUs")
    print(f"model: Stacking on {len(samples.table)} Odisha samples, bands {model[0].bands_}")

    c0 = (SIZE_10M - args.crop) // 2
    crop = Window(c0, c0, args.crop, args.crop)
    naive, naive_s, naive_cpu, naive_peak = naive_run(model, scene, crop)
    naive_px = args.crop**2
    print(
        f"naive  {args.crop}x{args.crop} crop: {naive_s:8.1f} s  "
        f"{naive_px / naive_s / 1000:7.1f} kpx/s  peak RSS {gib(naive_peak)}  "
        f"CPU {naive_cpu:.1f} s ({naive_px / naive_cpu / 1000:.1f} kpx per CPU-s)"
    )

    # Blocks away from the crop, so that GDAL's cache of the naive read does not help.
    far = SIZE_10M - 2 * 1024
    blocks = [Window(far, far, 1024, 1024), Window(far + 1024, far, 1024, 1024)]
    print("\nwhere the time goes (2 blocks of 1024x1024, one process):")
    print(breakdown(model, scene, blocks).to_string())

    if args.skip_full:
        return
    trust = None
    if args.trust:
        from saltmap.trust.maps import fit_trust

        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trust = fit_trust(model, samples.reflectance, samples.target)
        print(f"\ntrust model (intervals + AOA) fitted in {time.perf_counter() - t0:.1f} s")
    with PeakRSS() as rss:
        settings = MapSettings(
            block_size=args.block_size,
            jobs=args.jobs,
            target_name=samples.target_name,
            target_unit=samples.target_unit,
            scheme="fao-ec",
            model_name="Stacking (N-SI, Odisha)",
            overwrite=True,
        )
        result = map_scene(
            model, scene, args.out, settings, progress=RichProgress(transient=False), trust=trust
        )
    full_px = SIZE_10M**2
    speedup = (full_px / result.seconds) / (naive_px / naive_s)
    with rasterio.open(result.outputs.salinity) as src:
        mapped = src.read(1, window=crop)
    both = np.isfinite(naive)
    same_nan = np.array_equal(np.isnan(mapped), np.isnan(naive))
    rel = np.max(np.abs(mapped[both] - naive[both]) / np.maximum(np.abs(naive[both]), 1e-12))
    print(
        f"\nmapped full tile {SIZE_10M}x{SIZE_10M} ({result.n_valid:,} valid px), "
        f"jobs={args.jobs}, block {args.block_size}:"
        f"\n  wall {result.seconds:8.1f} s  {full_px / result.seconds / 1000:7.1f} kpx/s "
        f"(all pixels), {result.n_valid / result.seconds / 1000:7.1f} kpx/s (valid pixels)"
        f"\n  peak RSS (all processes) {gib(rss.peak)}"
        f"\n  CPU {rss.cpu:.1f} s ({full_px / rss.cpu / 1000:.1f} kpx per CPU-s; "
        f"{rss.cpu / args.jobs:.0f} s of wall on {args.jobs} dedicated cores)"
        f"\n  speed-up over naive: {speedup:.2f}x in wall time, "
        f"{(full_px / rss.cpu) / (naive_px / naive_cpu):.2f}x in pixels per CPU-second, "
        f"so {args.jobs * (full_px / rss.cpu) / (naive_px / naive_cpu):.2f}x projected on "
        f"{args.jobs} dedicated cores"
        f"\n  crop equals naive predict: NaN pattern {'same' if same_nan else 'DIFFERENT'}, "
        f"max relative difference {rel:.2e} (float32 rounding ~6e-8)"
    )
    if result.trust is not None:
        print(f"  with trust layers: {result.trust.as_dict()}")
    print(f"load average after: {os.getloadavg()}")
    print(
        f"targets: < 600 s: {result.seconds < 600}; < 1.5 GiB: {rss.peak < 1.5 * 2**30}; "
        f">= 2x naive: {speedup >= 2}; equal: {same_nan and rel < 1e-6}"
    )


if __name__ == "__main__":
    main()

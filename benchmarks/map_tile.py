"""Benchmark: map a SYNTHETIC Sentinel-2 tile with the Odisha models, beside pyspatialml and Dask.

One command, three parts (``--parts``, all by default), every timed run preceded by the
load average and repeated ``--repeat`` times (the median is printed):

crop
    A ``--crop`` x ``--crop`` crop of the tile (2048 by default) written as a float32
    GeoTIFF (the model's bands, tiled 512 x 512). On it, for the untuned stacking model
    and for the model as a study makes it (``train_model``: tuned with the study's
    budget): the naive way (read, flatten, one ``model.predict``); pyspatialml's
    ``Raster.predict`` serial and with the model's ``n_jobs=2`` (in its own virtual
    environment under ``benchmarks/.cache/``, installed by pip on first use, because its
    pins - numpy < 2, pandas < 3, geopandas < 0.15 - clash with ours); and
    :func:`saltmap.mapping.map_scene` with ``jobs=1`` and ``jobs=2``. Prints pixels/s,
    the ratio to pyspatialml's best and that every prediction equals ``model.predict``.
full
    The full tile (120.6 Mpx) with the untuned model (as before), the tuned model, and
    the tuned model with trust layers (intervals, DI, AOA): wall time, pixels/s, peak RSS
    of all processes, CPU time, what the trust layers add; and where the CPU goes on two
    blocks.
dask
    The full tile through ``--scheduler`` on a ``distributed.LocalCluster`` with 1 and 2
    single-threaded worker processes: speed-up, and that the outputs are byte-identical
    to the local run of the same model. Each run's client is a fresh process that loads
    the saved model (``dask_map.py``), as ``saltmap map --scheduler`` is; with
    ``--dask-client here`` it is this process, whose memory holds the training too.
    The cluster's monitoring is turned down as README advises for nodes whose cores
    all run workers (``dask_overhead.py``); ``--dask-config default`` keeps Dask's.

Goals (issue 16): crop >= 1.3x pyspatialml's best; full tile with trust <= 240 s;
peak memory <= 1.5 GiB; predictions equal to ``model.predict`` within float32
rounding; Dask 2 workers >= 1.7x 1 worker. Build and check with ``--quick`` (a
2048 px tile, 512 px crop, quick tuning budget, one run each).

Usage::

    .venv/bin/python benchmarks/map_tile.py [--quick] [--parts crop,full,dask] [--repeat 3]
        [--model Stacking|auto|MLP|...]

``--model`` is the tuned model: the study's Stacking on N-SI by default, or ``auto``,
the model ``saltmap train --model auto`` maps with (the evaluation's choice under
spatial CV, found first by running that evaluation).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from dask_overhead import dask_config
from measure import PeakRSS, gib, load, machine_speed, median
from rasterio.windows import Window
from synthetic_tile import CACHE, FULL_SIZE, build_tile

HERE = Path(__file__).resolve().parent
VENV = CACHE / "pyspatialml-venv"
PYSPATIALML = "pyspatialml==0.22.1"
NAMES = {"B": "B02", "G": "B03", "R": "B04", "N": "B08", "S1": "B11", "S2": "B12"}


# ------------------------------------------------------------------------ models


def study_choice(samples, quick: bool) -> dict:
    """What ``saltmap train --model auto`` maps with: the evaluation's choice under spatial CV."""
    from saltmap.validation.choice import winner_spec
    from saltmap.validation.evaluation import evaluate_study
    from saltmap.validation.settings import EvaluationSettings

    t0 = time.perf_counter()
    settings = EvaluationSettings(protocols=("spatial",), quick=quick, baseline=False)
    selection = evaluate_study(samples, settings).selection
    print(f"auto choice in {time.perf_counter() - t0:.0f} s: {selection.words('µS/cm')}")
    return winner_spec(selection)


def train_models(quick: bool, with_trust: bool, model: str = "Stacking"):
    """The untuned stacking model, the study's tuned ``model`` (``auto``: the evaluation's
    choice) and the tuned one's trust model."""
    from saltmap.io.samples import odisha
    from saltmap.models.building import make_model
    from saltmap.models.training import train_model

    samples = odisha()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        untuned = make_model("Stacking", random_state=0)
        untuned.fit(samples.reflectance, samples.target)
        spec = {"name": model, "label": model, "indices": "novel", "fixed": None, "untuned": False}
        if model == "auto":
            spec = study_choice(samples, quick)
        t0 = time.perf_counter()
        tuned, meta = train_model(samples, model=spec["name"], indices=spec["indices"],
                                  budget="quick" if quick else "default", fixed=spec["fixed"],
                                  n_trials=0 if spec["untuned"] else None)  # fmt: skip
        print(f"tuned {spec['label']} in {time.perf_counter() - t0:.0f} s: {meta['params']}")
        trust = None
        if with_trust:
            from saltmap.trust.maps import fit_trust

            t0 = time.perf_counter()
            trust = fit_trust(tuned, samples.reflectance, samples.target)
            print(f"trust model (intervals + DI/AOA) fitted in {time.perf_counter() - t0:.0f} s")
    return {"untuned": untuned, "tuned": tuned}, trust, samples


# ----------------------------------------------------------------- the crop: naive


def _naive_in_child(model, scene, crop: Window) -> tuple[np.ndarray, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    cube = scene.read(window=crop)
    table = pd.DataFrame(cube.reshape(cube.shape[0], -1).T, columns=list(scene.roles))
    valid = table.notna().all(axis=1)
    pred = np.full(len(table), np.nan)
    pred[valid.to_numpy()] = model.predict(table[valid])
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return pred.reshape(int(crop.height), int(crop.width)), seconds, cpu


def naive_run(model, scene, crop: Window) -> tuple[np.ndarray, float, float]:
    """Read everything, flatten to a table, one predict; in a fresh process (its memory
    neither counts towards nor lingers in the mapped runs), model threads as fitted."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_naive_in_child, model, scene, crop).result()


# ----------------------------------------------------------- the crop: pyspatialml


def pyspatialml_python() -> Path:
    """pyspatialml's own venv (created and filled by pip on first use)."""
    python = VENV / "bin" / "python"
    ready = VENV / "ready.json"
    # The same scikit-learn and XGBoost as ours, so that the pickled model loads as fitted.
    pins = [PYSPATIALML, f"scikit-learn=={importlib.metadata.version('scikit-learn')}"]
    for dist in ("xgboost", "xgboost-cpu"):
        try:
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    if ready.exists() and json.loads(ready.read_text()) == pins:
        return python
    print(f"installing {' '.join(pins)} into {VENV} (pip, once) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *pins], check=True)
    ready.write_text(json.dumps(pins))
    return python


def pyspatialml_run(python: Path, model_file: Path, crop_tif: Path, n_jobs: int, out: Path):
    """pyspatialml's ``Raster.predict`` in its venv: (predictions, seconds, info)."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent / "src")}
    done = subprocess.run(
        [str(python), str(HERE / "_pyspatialml_predict.py"), str(model_file), str(crop_tif),
         str(n_jobs), str(out)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"pyspatialml failed:\n{done.stderr[-3000:]}")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    with rasterio.open(out) as src:
        return src.read(1), info["seconds"], info


def pickle_for_numpy1(model) -> bytes:
    """The model pickled so that numpy 1.26 (pyspatialml's pin) loads it.

    numpy 2 pickles the random generators (the MLP's training state) in a form numpy
    1.26 cannot read; they play no part in ``predict``, so they travel as fresh ones.
    The predictions are checked equal to ours.
    """
    import io

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if isinstance(obj, np.random.RandomState):
                return np.random.RandomState, ()
            if isinstance(obj, np.random.Generator):
                return np.random.default_rng, ()
            return NotImplemented

    buffer = io.BytesIO()
    Pickler(buffer, protocol=4).dump(model)
    return buffer.getvalue()


# -------------------------------------------------------------- the crop: saltmap


def write_crop(scene, crop: Window, bands: tuple[str, ...], path: Path) -> Path:
    """The crop as a float32 GeoTIFF of the model's bands (reflectance, NaN = no data)."""
    cube = scene.read(window=crop, roles=list(bands))
    profile = {
        "driver": "GTiff", "width": int(crop.width), "height": int(crop.height),
        "count": len(bands), "dtype": "float32", "nodata": float("nan"), "crs": scene.crs,
        "transform": rasterio.windows.transform(crop, scene.transform),
        "tiled": True, "blockxsize": 512, "blockysize": 512,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(cube.astype(np.float32))
        dst.descriptions = tuple(NAMES[b] for b in bands)
    return path


def saltmap_run(model, crop_tif: Path, bands, jobs: int, out: Path, block_size: int,
                workers: str = "threads"):  # fmt: skip
    from saltmap.io.scene import open_scene
    from saltmap.mapping import MapSettings, map_scene

    scene = open_scene(
        crop_tif, bands=[NAMES[b] for b in bands], scaling="reflectance", roles=list(bands)
    )
    settings = MapSettings(
        block_size=block_size, jobs=jobs, workers=workers, target_name="EC",
        target_unit="µS/cm", scheme="fao-ec", overwrite=True, figure=False,
    )  # fmt: skip
    result = map_scene(model, scene, out, settings)
    with rasterio.open(result.outputs.salinity) as src:
        return src.read(1), result.seconds


def _compare(a: np.ndarray, b: np.ndarray) -> str:
    """Same NaN pattern and the largest relative difference of two prediction rasters."""
    ok = np.isfinite(a) & np.isfinite(b)
    same = np.array_equal(np.isfinite(a), np.isfinite(b))
    rel = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-12)))
    return f"{'same NaN' if same else 'NaN DIFFER'}, max rel diff {rel:.1e}"


def _crop_ways(model, scene, crop: Window, work: Path, python: Path, block_size: int) -> dict:
    """Each way of predicting the crop: a function returning (predictions, wall seconds)."""
    from saltmap.mapping.blocks import model_bands

    bands, crop_tif, model_file = model_bands(model), work / "crop.tif", work / "model.pkl"

    def naive():
        return naive_run(model, scene, crop)[:2]

    def psml(n_jobs: int):
        return lambda: pyspatialml_run(python, model_file, crop_tif, n_jobs,
                                       work / f"psml{n_jobs}.tif")[:2]  # fmt: skip

    def ours(jobs: int, workers: str = "threads"):
        return lambda: saltmap_run(model, crop_tif, bands, jobs, work / f"saltmap{jobs}",
                                   block_size, workers)  # fmt: skip

    def before(jobs: int):
        """Today's saltmap without one lever: jobs=1 without prediction by cell, jobs=2
        in processes, the map's process only writing what two workers send."""
        from saltmap.mapping import blocks, pool

        def run():
            saved = blocks.predict_rows, pool.PARENT_COMPUTES
            if jobs == 1:
                blocks.predict_rows = lambda regressor, X: regressor.predict(X)
            pool.PARENT_COMPUTES = False
            try:
                return ours(jobs, "processes")()
            finally:
                blocks.predict_rows, pool.PARENT_COMPUTES = saved

        return run

    return {"naive (one model.predict)": naive, "pyspatialml n_jobs=1": psml(1),
            "pyspatialml n_jobs=2": psml(2),
            "saltmap jobs=1 without prediction by cell": before(1),
            "saltmap jobs=2 with 2 workers, parent writing": before(2),
            "saltmap jobs=2 processes": ours(2, "processes"),
            "saltmap jobs=1": ours(1), "saltmap jobs=2": ours(2)}  # fmt: skip


def crop_part(models, scene, args) -> pd.DataFrame:
    """The crop table: each way of predicting, median wall time, pixels/s, equality."""
    c0 = (scene.width - args.crop) // 2
    crop = Window(c0, c0, args.crop, args.crop)
    px = args.crop**2
    from saltmap.mapping.blocks import model_bands

    python = pyspatialml_python()
    rows = []
    for name in args.crop_models.split(","):
        model = models[name]
        bands = model_bands(model)
        work = CACHE / "crop_runs" / name
        write_crop(scene, crop, bands, work / "crop.tif")
        model_file = work / "model.pkl"
        model_file.write_bytes(pickle_for_numpy1(model))
        reference, _, _ = naive_run(model, scene, crop)
        reference = reference.astype(np.float32)  # what a float32 output holds
        ways = _crop_ways(model, scene, crop, work, python, args.crop_block_size)
        for way, run in ways.items():
            times = []
            for i in range(args.repeat):
                print(f"  [{name}] {way} run {i + 1}: {load()}", flush=True)
                values, seconds = run()
                times.append(seconds)
            rows.append({"model": name, "way": way, "median_s": median(times),
                         "runs_s": " ".join(f"{t:.2f}" for t in times),
                         "kpx_per_s": px / median(times) / 1000,
                         "equals model.predict": _compare(values, reference)})  # fmt: skip
    table = pd.DataFrame(rows)
    best = table[table.way.str.startswith("pyspatialml")].groupby("model").kpx_per_s.max()
    table["x_pyspatialml_best"] = table.kpx_per_s / table.model.map(best)
    return table


# ------------------------------------------------------------------ the full tile


def map_settings(block_size: int, **more):
    """The full tile's map settings (``more``: jobs or scheduler)."""
    from saltmap.mapping import MapSettings

    return MapSettings(block_size=block_size, target_name="EC", target_unit="µS/cm",
                       scheme="fao-ec", overwrite=True, model_name="Odisha model",
                       **more)  # fmt: skip


def full_run(model, scene, out: Path, args, *, trust=None, scheduler=None, label: str):
    """Map the whole scene once; the MapResult and peak RSS / CPU of the process tree."""
    from saltmap.mapping import map_scene

    settings = map_settings(args.block_size, jobs=args.jobs, scheduler=scheduler)
    print(f"  {label}: {load()}", flush=True)
    with PeakRSS() as rss:
        result = map_scene(model, scene, out, settings, trust=trust)
    px = scene.width * scene.height
    print(f"    {result.seconds:7.1f} s  {px / result.seconds / 1000:7.1f} kpx/s  peak RSS "
          f"{gib(rss.peak)} (PSS {gib(rss.peak_pss)}, largest process {gib(rss.peak_process)})"
          f"  CPU {rss.cpu:.0f} s (local processes)", flush=True)  # fmt: skip
    return result, rss


def crop_equality(result, model, scene, size: int) -> str:
    """The mapped values of a central crop against ``model.predict`` on its pixels."""
    c0 = (scene.width - size) // 2
    crop = Window(c0, c0, size, size)
    with rasterio.open(result.outputs.salinity) as src:
        mapped = src.read(1, window=crop)
    reference = naive_run(model, scene, crop)[0].astype(np.float32)
    return _compare(mapped, reference)


def _mapped(out: Path, scene) -> bool:
    """Whether ``out`` holds a map of this scene (a ``--quick`` run maps a smaller tile)."""
    if not (out / "salinity.tif").exists():
        return False
    with rasterio.open(out / "salinity.tif") as src:
        return (src.width, src.height) == (scene.width, scene.height)


def file_digest(path: Path) -> tuple[str, str]:
    """SHA-256 of the raster's pixels and of the whole file."""
    h = hashlib.sha256()
    with rasterio.open(path) as src:
        for _, window in src.block_windows(1):
            h.update(src.read(window=window).tobytes())
    return h.hexdigest(), hashlib.sha256(path.read_bytes()).hexdigest()


def full_part(models, trust, scene, args) -> dict:
    print(f"\nfull tile {scene.width} x {scene.height}, jobs={args.jobs}, block {args.block_size}")
    out = {}
    runs = {"untuned": (models["untuned"], None), "tuned": (models["tuned"], None),
            "tuned + trust": (models["tuned"], trust)}  # fmt: skip
    runs = {k: v for k, v in runs.items() if k.replace(" ", "") in args.full_runs.split(",")}
    for label, (model, tr) in runs.items():
        out_dir = CACHE / "full" / label.replace(" + ", "_")
        results = [full_run(model, scene, out_dir, args, trust=tr, label=f"{label} run {i + 1}")
                   for i in range(args.full_repeat)]  # fmt: skip
        seconds = median([r.seconds for r, _ in results])
        peak = max(rss.peak for _, rss in results)
        result, rss = results[-1]
        out[label] = {
            "median_s": seconds,
            "runs_s": " ".join(f"{r.seconds:.1f}" for r, _ in results),
            "kpx_per_s": scene.width * scene.height / seconds / 1000,
            "peak_RSS_GiB": peak / 2**30,
            "peak_PSS_GiB": max(rss.peak_pss for _, rss in results) / 2**30,
            "kpx_per_cpu_s": scene.width * scene.height / rss.cpu / 1000,
            "equals model.predict (crop)": crop_equality(result, model, scene, args.crop),
        }
        if result.trust is not None:
            out[label]["trust"] = str(result.trust.as_dict())
    return out


def dask_part(model, scene, args, local_dir: Path) -> pd.DataFrame:
    """The tile on a LocalCluster of 1 and 2 single-threaded workers, under each of
    ``--dask-config``'s settings; equal to the local run."""
    rows = []
    local = {p.name: file_digest(p) for p in local_dir.glob("*.tif")}
    model_file = _model_file(model)
    # 1 and 2 workers (and the settings) alternate: this machine's speed drifts by
    # 10-25 % within minutes, so runs of one kind in a row would put the drift into
    # the speed-up.
    for i in range(args.full_repeat):
        for config in args.dask_config.split(","):
            for n in (1, 2):
                out = CACHE / "full" / f"dask{n}"
                label = (f"Dask {n} worker(s) run {i + 1}, client {args.dask_client}, "
                         f"{config} Dask settings")  # fmt: skip
                if args.dask_client == "fresh":
                    run = _dask_in_fresh_process(model_file, scene, out, n, args, label, config)
                else:
                    run = _dask_here(model, scene, out, n, args, label, config)
                theirs = {name: file_digest(out / name) for name in local}
                run["pixels"] = all(theirs[k][0] == v[0] for k, v in local.items())
                run["files"] = all(theirs[k][1] == v[1] for k, v in local.items())
                rows.append({"settings": config, "workers": n, **run})
    return pd.concat([_dask_table(part, scene) for _, part in pd.DataFrame(rows).groupby(
        "settings", sort=False)])  # fmt: skip


def _dask_table(runs: pd.DataFrame, scene) -> pd.DataFrame:
    """Medians, memory, identity and speed-up of one setting's runs, by workers."""
    table = runs.groupby(["settings", "workers"]).agg(
        median_s=("seconds", "median"), peak_RSS_GiB=("peak_RSS_GiB", "max"),
        peak_PSS_GiB=("peak_PSS_GiB", "max"), largest_process_GiB=("largest_process_GiB", "max"),
        pixels_identical=("pixels", "all"), files_identical=("files", "all"))  # fmt: skip
    table["kpx_per_s"] = scene.width * scene.height / table.median_s / 1000
    table["speed_up"] = table.median_s.iloc[0] / table.median_s
    one, two = (runs.seconds[runs.workers == n].tolist() for n in (1, 2))
    each = " ".join(f"{a / b:.2f}" for a, b in zip(one, two, strict=True))
    table["speed_up_of_each_pair"] = ["", each]
    return table


def _model_file(model) -> Path:
    """The model saved as ``saltmap train`` saves it, for a fresh process to load."""
    from saltmap.models.persistence import save_model

    meta = {"target": "EC", "target_unit": "µS/cm", "scaling": "reflectance"}
    return save_model(CACHE / "full" / "dask_model.skops", model, metadata=meta, overwrite=True)


def _dask_in_fresh_process(
    model_file: Path, scene, out: Path, n: int, args, label: str, config: str
) -> dict:
    """``dask_map.py`` in a fresh process: a user's ``saltmap map --scheduler`` process."""
    print(f"  {label}: {load()}", flush=True)
    cmd = [sys.executable, str(HERE / "dask_map.py"), str(model_file), str(args.tile),
           str(out), str(n), str(args.block_size), config]  # fmt: skip
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    run = json.loads(done.stdout.strip().splitlines()[-1])
    px = scene.width * scene.height
    print(f"    {run['seconds']:7.1f} s  {px / run['seconds'] / 1000:7.1f} kpx/s  peak RSS "
          f"{gib(run['peak'])} (PSS {gib(run['peak_pss'])}, largest process "
          f"{gib(run['peak_process'])})  CPU {run['cpu']:.0f} s", flush=True)  # fmt: skip
    return {"seconds": run["seconds"], "peak_RSS_GiB": run["peak"] / 2**30,
            "peak_PSS_GiB": run["peak_pss"] / 2**30,
            "largest_process_GiB": run["peak_process"] / 2**30}  # fmt: skip


def _dask_here(model, scene, out: Path, n: int, args, label: str, config: str) -> dict:
    """The map with this process as the Dask client (which also trained the models)."""
    import dask
    import distributed

    with dask.config.set(dask_config(config)):
        with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                      dashboard_address=":0") as cluster:  # fmt: skip
            result, rss = full_run(model, scene, out, args, label=label,
                                   scheduler=cluster.scheduler_address)  # fmt: skip
    return {
        "seconds": result.seconds,
        "peak_RSS_GiB": rss.peak / 2**30,
        "peak_PSS_GiB": rss.peak_pss / 2**30,
        "largest_process_GiB": rss.peak_process / 2**30,
    }


# ------------------------------------------------------------------ where the CPU goes


def breakdown(model, scene, windows: list[Window]) -> pd.DataFrame:
    """CPU seconds per stage on the given blocks, one process, one thread (CPU time, not
    wall time, so that other load on the machine does not distort the shares)."""
    from threadpoolctl import threadpool_limits

    from saltmap.mapping import blocks
    from saltmap.models.inference import predict_rows

    job = blocks.BlockJob(model=model, scene=scene, plan=None)
    job.prepare()
    bands = blocks.model_bands(model)
    times: dict[str, float] = {}

    def add(key: str, t0: float) -> None:
        times[key] = times.get(key, 0.0) + time.process_time() - t0

    features, regressor = model[:-1], model[-1]
    # Every model sits in its PhysicalTarget wrapper (a TransformedTargetRegressor).
    regressor = getattr(regressor, "regressor_", regressor)
    if hasattr(regressor, "named_estimators_"):  # Stacking: each base learner
        learners = list(zip(regressor.named_estimators_, regressor.estimators_, strict=True))
    else:
        learners = [(type(regressor).__name__, regressor)]
    with threadpool_limits(1):
        for w in windows:
            t0 = time.process_time()
            cube = scene.read(window=w, roles=bands)
            add("read (10 m + resampled 20 m)", t0)
            pixels = cube.reshape(len(bands), -1).T
            pixels = pixels[np.isfinite(pixels).all(axis=1)]
            for start in range(0, len(pixels), blocks.CHUNK_ROWS):
                t0 = time.process_time()
                feats = features.transform(pixels[start : start + blocks.CHUNK_ROWS])
                add("indices", t0)
                for name, est in learners:
                    t0 = time.process_time()
                    est.predict(feats)
                    add(f"{name}.predict", t0)
                    t0 = time.process_time()
                    predict_rows(est, feats)
                    add(f"{name} as mapped (by cell for trees)", t0)
    n = sum(int(w.width * w.height) for w in windows)
    return pd.DataFrame(
        {"cpu_seconds": times, "kpx_per_cpu_s": {k: n / v / 1000 for k, v in times.items()}}
    ).round(3)


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Small tile and crop, one run.")
    parser.add_argument("--parts", default="crop,full,dask")
    parser.add_argument("--size", type=int, default=None, help="Tile side in 10 m pixels.")
    parser.add_argument("--crop", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="Runs per crop timing.")
    parser.add_argument("--full-repeat", type=int, default=1, help="Runs per full-tile map.")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--block-size", type=int, default=1024, help="Full tile's blocks.")
    parser.add_argument("--crop-models", default="untuned,tuned", help="Models on the crop.")
    parser.add_argument("--crop-block-size", type=int, default=512, help="saltmap's default.")
    parser.add_argument("--model", default="Stacking", help="Tuned model: a name, or auto.")
    parser.add_argument("--full-runs", default="untuned,tuned,tuned+trust")
    parser.add_argument(
        "--dask-client",
        choices=("fresh", "here"),
        default="fresh",
        help="The Dask client: a fresh process that loads the model file, "
        "as saltmap map is, or this process, which trained the models.",
    )
    parser.add_argument(
        "--dask-config",
        default="quiet",
        help="Dask's monitoring, one or more of quiet (turned down as README advises, "
        "dask_overhead.py) and default (Dask's own), comma-separated.",
    )
    args = parser.parse_args()
    args.size = args.size or (2048 if args.quick else FULL_SIZE)
    args.crop = args.crop or (512 if args.quick else 2048)
    args.repeat = args.repeat or (1 if args.quick else 3)
    parts = set(args.parts.split(","))

    from saltmap.io.scene import open_scene

    folder = args.tile = build_tile(args.size)
    scene = open_scene(folder, scaling="sentinel2-l2a-offset")
    print(f"SYNTHETIC tile {folder} ({scene.width} x {scene.height}); {load()}")
    print(machine_speed(), flush=True)
    models, trust, _ = train_models(args.quick, with_trust="full" in parts, model=args.model)
    if "crop" in parts:
        print(f"\ncrop {args.crop} x {args.crop}, saltmap block {args.crop_block_size}:")
        table = crop_part(models, scene, args)
        print(table.round(2).to_string(index=False))
    full, dask = None, None
    if "full" in parts:
        full = full_part(models, trust, scene, args)
        print(pd.DataFrame(full).T.round(2).to_string())
        far = scene.width - 2 * 1024
        windows = [Window(far, far, 1024, 1024), Window(far + 1024, far, 1024, 1024)]
        for name, model in models.items():
            print(f"\nwhere the CPU goes, {name} model, 2 blocks of 1024 x 1024, one thread:")
            print(breakdown(model, scene, windows).to_string())
    if "dask" in parts:
        local = CACHE / "full" / "untuned"
        if not _mapped(local, scene):
            full_run(models["untuned"], scene, local, args, label="local untuned (reference)")
        print("\nDask LocalCluster, untuned model:")
        dask = dask_part(models["untuned"], scene, args, local)
        print(dask.round(2).to_string())
    print(f"\n{load()}")
    print(machine_speed())
    _goals(table if "crop" in parts else None, full, dask)


def _goals(crop: pd.DataFrame | None, full: dict | None, dask: pd.DataFrame | None) -> None:
    print("goals:")
    if crop is not None:
        for name, part in crop.groupby("model"):
            ratio = part.loc[part.way == "saltmap jobs=2", "x_pyspatialml_best"].iloc[0]
            print(f"  crop, {name}: saltmap jobs=2 is {ratio:.2f}x pyspatialml's best "
                  f"(goal >= 1.3): {'MET' if ratio >= 1.3 else 'MISSED'}")  # fmt: skip
    if full is not None and {"tuned", "tuned + trust"} <= set(full):
        t = full["tuned + trust"]
        print(f"  full tile, tuned + trust: {t['median_s']:.0f} s (goal <= 240): "
              f"{'MET' if t['median_s'] <= 240 else 'MISSED'}")  # fmt: skip
        plain = full["tuned"]["median_s"]
        extra = t["median_s"] / plain - 1
        print(f"  trust layers add {extra:+.0%} to the tuned model's {plain:.0f} s "
              f"(issue 15: no more than the prediction itself, +100 %): "
              f"{'MET' if extra <= 1 else 'MISSED'}")  # fmt: skip
    if full:
        peak = max(v["peak_RSS_GiB"] for v in full.values())
        print(f"  peak RSS {peak:.2f} GiB (goal <= 1.5): {'MET' if peak <= 1.5 else 'MISSED'}")
    if dask is not None:
        for config, part in dask.groupby(level="settings", sort=False):
            s, pixels, files = part.speed_up.iloc[-1], part.pixels_identical, part.files_identical
            print(f"  Dask 2 workers {s:.2f}x 1 worker, {config} settings (goal >= 1.7): "
                  f"{'MET' if s >= 1.7 else 'MISSED'}; identical to the local run: pixels "
                  f"{bool(pixels.all())}, files {bool(files.all())}")  # fmt: skip
        rss, pss = dask.peak_RSS_GiB.max(), dask.peak_PSS_GiB.max()
        print(f"  Dask peak memory of all processes: RSS {rss:.2f} GiB, PSS {pss:.2f} GiB "
              f"(goal <= 1.5): {'MET' if pss <= 1.5 else 'MISSED'} by PSS, "
              f"{'MET' if rss <= 1.5 else 'MISSED'} by RSS")  # fmt: skip


if __name__ == "__main__":
    main()

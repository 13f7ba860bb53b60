"""Mechanics of the map engines under faults, on a small SYNTHETIC scene.

A worker process of a Dask cluster killed in the middle of a map, and a ``--jobs 2``
map whose own process is killed: no block may be lost or corrupted, and no worker
process may be left behind. The scene is synthetic (a smooth random field per band,
NOT real data) because only the mechanics are tested; the model is a small random
forest fitted on the real Odisha samples.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

import numpy as np
import psutil
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from saltmap import mapping
from saltmap.io.samples import odisha
from saltmap.io.scene import open_scene
from saltmap.models.building import make_model

EC = {"target_name": "EC", "target_unit": "µS/cm", "scheme": "fao-ec", "figure": False}
BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
SIDE, BLOCK = 256, 32  # 64 blocks


@pytest.fixture(scope="module")
def synthetic_scene_file(tmp_path_factory):
    """A synthetic 6-band reflectance GeoTIFF: smooth fields plus noise, NaN in a corner."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    base = np.array([0.08, 0.11, 0.13, 0.25, 0.28, 0.22], dtype=np.float32)[:, None, None]
    field = 1 + 0.4 * np.sin(6 * xx + 3 * yy) * np.cos(5 * yy)
    cube = (base * field * (1 + 0.05 * rng.standard_normal((6, SIDE, SIDE)))).astype(np.float32)
    cube[:, :20, :20] = np.nan
    path = tmp_path_factory.mktemp("synthetic") / "synthetic_scene.tif"
    profile = {"driver": "GTiff", "width": SIDE, "height": SIDE, "count": 6, "dtype": "float32",
               "nodata": float("nan"), "crs": "EPSG:32644",
               "transform": from_origin(500000, 2300000, 30, 30)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(cube)
        dst.descriptions = BANDS
    return path


@pytest.fixture(scope="module")
def synthetic_scene(synthetic_scene_file):
    return open_scene(synthetic_scene_file, scaling="reflectance")


@pytest.fixture(scope="module")
def small_model():
    samples = odisha()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_model("RF", params={"n_estimators": 10}, random_state=0).fit(
            samples.reflectance, samples.target
        )


@pytest.fixture(scope="module")
def reference(small_model, synthetic_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    return mapping.map_scene(small_model, synthetic_scene, out, block_size=BLOCK, **EC)


def read(path):
    with rasterio.open(path) as src:
        return src.read(1)


class KillAfter:
    """A progress (saltmap.progress protocol) that calls ``kill`` once ``n`` blocks are done."""

    def __init__(self, n, kill):
        self.n, self.kill, self.killed = n, kill, None

    @contextmanager
    def task(self, what, total=None):
        def tick(done, total):
            if done >= self.n and self.killed is None:
                self.killed = self.kill()

        yield tick


@pytest.mark.parametrize("n_workers", [1, 2])
def test_dask_worker_killed_mid_map_loses_no_block(
    n_workers, small_model, synthetic_scene, reference, tmp_path
):
    """The scheduler re-runs the blocks lost with the worker (and, with one worker, the
    job the lost worker held): the map completes, equal to a local run."""
    import distributed

    with (
        distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        pids = client.run(os.getpid)
        # Dask's workers carry MALLOC_TRIM_THRESHOLD_, whose effect the job undoes.
        assert all(v == "65536" for v in client.run(os.getenv, "MALLOC_TRIM_THRESHOLD_").values())

        def kill():
            victim = sorted(pids.values())[0]
            os.kill(victim, signal.SIGKILL)
            return victim

        progress = KillAfter(3, kill)
        result = mapping.map_scene(
            small_model, synthetic_scene, tmp_path, block_size=BLOCK, scheduler=client,
            progress=progress, **EC,
        )  # fmt: skip
    assert progress.killed is not None and not psutil.pid_exists(progress.killed)
    assert result.n_computed == 64
    for ours, theirs in ((result.outputs.salinity, reference.outputs.salinity),
                         (result.outputs.classes, reference.outputs.classes)):  # fmt: skip
        np.testing.assert_array_equal(read(ours), read(theirs), err_msg=ours.name)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_every_dask_worker_that_runs_a_block_sets_the_heap_thresholds(
    small_model, synthetic_scene, tmp_path
):
    """The job is loaded on one worker and reaches the others as data, so each block's
    task sets the thresholds: a worker that never loaded the job must not fault in its
    block-sized arrays anew (it did, and made a 2-worker map ~10 % slower)."""
    import distributed

    from saltmap.mapping.cluster import load_job, run_block_with
    from saltmap.mapping.plan import MapSettings, plan_map

    def faults_of_arrays():
        import resource

        np.ones(2**20)  # the first 8 MiB array: its pages fault in either way
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(40):
            np.ones(2**20)
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    settings = MapSettings(block_size=BLOCK, **EC)
    job = plan_map(small_model, synthetic_scene, tmp_path, settings).job
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):  # fmt: skip
        first, second = sorted(client.scheduler_info()["workers"])
        loaded = client.submit(load_job, pickle.dumps(job), workers=[first])
        for worker in (first, second):
            block = client.submit(run_block_with, loaded, Window(0, 0, BLOCK, BLOCK),
                                  workers=[worker], pure=False)  # fmt: skip
            assert block.result()[1].shape == (BLOCK, BLOCK)
        faults = client.run(faults_of_arrays)
    assert all(n < 40 for n in faults.values()), faults


FAULTS_OF_ARRAYS = """
import resource, sys
import numpy as np
from saltmap.mapping.heap import set_heap_thresholds
if sys.argv[1] == "set":
    assert set_heap_thresholds()
np.ones(2**20)  # the first 8 MiB array: its pages fault in either way
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(40):
    np.ones(2**20)  # made and freed as a block's arrays are
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_block_sized_arrays_reuse_the_heap_under_dask_malloc_setting():
    """Under Dask's MALLOC_TRIM_THRESHOLD_ every 8 MiB array is a fresh mapping whose
    pages fault in anew (at least its four 2 MiB pages, with transparent huge pages);
    with the thresholds set, the freed memory is reused without faulting."""
    env = os.environ | {"MALLOC_TRIM_THRESHOLD_": "65536"}
    faults = {}
    for how in ("as-dask-leaves-it", "set"):
        out = subprocess.run([sys.executable, "-c", FAULTS_OF_ARRAYS, how], env=env, check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        faults[how] = int(out)
    assert faults["as-dask-leaves-it"] >= 40 * 4, faults
    assert faults["set"] < 40, faults


def _pool_workers(parent):
    try:
        children = parent.children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "spawn_main" in " ".join(_cmdline(p))]


def _cmdline(p):
    try:
        return p.cmdline()
    except psutil.Error:
        return []


MAP_IN_CHILD = """
import pickle, sys
from saltmap.io.scene import open_scene
from saltmap.mapping import map_scene
with open(sys.argv[1], "rb") as f:
    model = pickle.load(f)
scene = open_scene(sys.argv[2], scaling="reflectance")
map_scene(model, scene, sys.argv[3], block_size=16, jobs=2, workers="processes",
          scheme="fao-ec", figure=False, target_name="EC", target_unit="µS/cm")
"""


def test_killed_two_job_map_leaves_no_worker_behind(synthetic_scene_file, small_model, tmp_path):
    """SIGKILL of the map's process ends its pool's workers too (parent-death signal)."""
    import pickle

    model_file = tmp_path / "rf.pkl"
    model_file.write_bytes(pickle.dumps(small_model))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-c", MAP_IN_CHILD, str(model_file), str(synthetic_scene_file), str(out)]
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = psutil.Process(child.pid)
    try:
        deadline = time.monotonic() + 30
        # Killed once the pool's worker is up and blocks are being stored.
        while not _pool_workers(parent) or not any(out.glob(".map.work-*/[!.]*.npz")):
            assert child.poll() is None, (
                f"the run ended before it was killed: {child.stderr.read()}"
            )
            assert time.monotonic() < deadline, "no worker stored a block within 30 s"
            time.sleep(0.01)
        workers = parent.children(recursive=True)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stderr.close()
    _, alive = psutil.wait_procs(workers, timeout=10)
    for p in alive:  # do not leave them running after a failure
        p.kill()
    assert not alive, f"orphaned worker processes: {[p.pid for p in alive]}"


class WorkersStartLate:
    """A SYNTHETIC block job: each block is its column offset; a pool worker's
    ``prepare`` waits (at most a minute) until the file ``release`` exists."""

    def __init__(self, release, parent):
        self.release, self.parent = release, parent

    def prepare(self):
        deadline = time.monotonic() + 60
        while os.getpid() != self.parent and not os.path.exists(self.release):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)

    def __call__(self, window):
        values = np.full((window.height, window.width), window.col_off, np.float32)
        return window, values, values.astype(np.uint8), None


def test_two_job_map_does_not_wait_for_workers_still_starting(tmp_path):
    """A map shorter than a worker's start is computed by the map's own process, every
    block once, without waiting; the worker then exits on its own."""
    release = tmp_path / "release"
    windows = [Window(col, 0, 4, 4) for col in range(0, 40, 4)]
    started = time.monotonic()
    results = list(mapping.run_blocks(WorkersStartLate(str(release), os.getpid()), windows,
                                      jobs=2, workers="processes"))  # fmt: skip
    waited = time.monotonic() - started
    workers = _pool_workers(psutil.Process())
    release.touch()
    # Without the take-back, the map waits until its worker has prepared: a minute.
    assert waited < 30, f"the map waited {waited:.0f} s for a worker still starting"
    assert sorted(w.col_off for w, *_ in results) == list(range(0, 40, 4))
    assert all((values == w.col_off).all() for w, values, *_ in results)
    _, alive = psutil.wait_procs(workers, timeout=30)
    for p in alive:
        p.kill()
    assert not alive, f"workers left running: {[p.pid for p in alive]}"


# ------------------------------------------------------------------ thread engine


class CountingJob:
    """A SYNTHETIC block job: each block is its column offset; it counts the blocks
    started and, with ``barrier``, waits until that many blocks compute at once."""

    def __init__(self, fail_at=None, barrier=None):
        self.started, self.fail_at, self.barrier = 0, fail_at, barrier
        self._lock = __import__("threading").Lock()

    def prepare(self):
        pass

    def __call__(self, window):
        with self._lock:
            self.started += 1
        if self.barrier is not None:
            self.barrier.wait(timeout=30)  # BrokenBarrierError unless blocks run together
        if window.col_off == self.fail_at:
            raise ValueError(f"block at column {window.col_off} failed")
        time.sleep(0.002)
        values = np.full((window.height, window.width), window.col_off, np.float32)
        return window, values, values.astype(np.uint8), None


WINDOWS = [Window(col, 0, 4, 4) for col in range(0, 160, 4)]


def test_thread_engine_runs_blocks_together_and_bounds_those_in_flight():
    import threading

    job = CountingJob(barrier=threading.Barrier(2))
    seen, most = [], 0
    for window, values, *_ in mapping.run_blocks(job, WINDOWS, jobs=2, in_flight=3):
        most = max(most, job.started - len(seen))  # started, not yet handed over
        seen.append(window.col_off)
        assert (values == window.col_off).all()
        time.sleep(0.005)  # a slow writer: blocks pile up unless bounded
    assert sorted(seen) == list(range(0, 160, 4))
    assert most <= 3, f"{most} blocks in flight, asked for at most 3"


def test_thread_engine_stops_at_a_failing_block_and_leaves_no_thread():
    import threading

    job = CountingJob(fail_at=20)
    with pytest.raises(ValueError, match="column 20 failed"):
        list(mapping.run_blocks(job, WINDOWS, jobs=2, in_flight=2))
    assert job.started < len(WINDOWS) // 2, f"{job.started} blocks started after the failure"
    assert not [t for t in threading.enumerate() if t.name.startswith("saltmap-block")]

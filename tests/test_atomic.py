"""Atomic outputs: complete files under their final name, or nothing that looks complete.

Mechanics tests on synthetic files in tmp folders. Disk-full and read-only folders are
real tmpfs mounts when the tests run as root (CI does), else a monkeypatched write error
or a chmod-ed folder.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saltmap.atomic import (
    atomic_directory,
    atomic_output,
    atomic_savefig,
    atomic_to_csv,
    atomic_write_bytes,
    atomic_write_text,
    check_output_folder,
    clean_stale_partials,
    is_partial,
    temp_path_for,
)
from saltmap.errors import OutputExistsError, OutputWriteError, SaltmapError


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a small tmpfs at ``where``; False when this user may not mount."""
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 256 KiB file system (real tmpfs), or skip when mounting is not allowed."""
    where = tmp_path / "tiny"
    if not _mount_tmpfs(where, "size=256k"):
        pytest.skip("cannot mount a tmpfs here (not root); the monkeypatched test covers ENOSPC")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def readonly_folder(tmp_path):
    """A folder nobody can write in: a read-only tmpfs as root, else a chmod-ed folder."""
    where = tmp_path / "readonly"
    if _mount_tmpfs(where, "ro,size=64k"):
        yield where
        subprocess.run(["umount", "-l", str(where)], check=False)
        return
    if os.geteuid() == 0:
        pytest.skip("root ignores permissions and cannot mount here")
    where.mkdir()
    where.chmod(0o555)
    yield where
    where.chmod(0o755)


# ---------------------------------------------------------------------------- names


def test_temp_name_is_hidden_sibling_with_same_suffix(tmp_path):
    final = tmp_path / "salinity.map.tif"
    tmp = temp_path_for(final)
    assert tmp.parent == final.parent
    assert tmp.name.startswith(".salinity.map.partial-")
    assert tmp.suffix == ".tif"
    assert str(os.getpid()) in tmp.name
    assert is_partial(tmp) and not is_partial(final)
    assert temp_path_for(final) != tmp  # two writers of one file never share a name


# ---------------------------------------------------------------------------- success and failure


def test_success_renames_onto_final_name_and_leaves_nothing_else(tmp_path):
    final = tmp_path / "areas.csv"
    with atomic_output(final) as tmp:
        tmp.write_text("class,km2\n1,2.5\n")
        assert not final.exists()  # nothing under the final name until complete
    assert final.read_text() == "class,km2\n1,2.5\n"
    assert _listing(tmp_path) == ["areas.csv"]


def test_failure_removes_temp_and_keeps_previous_file(tmp_path):
    final = tmp_path / "areas.csv"
    final.write_text("old complete content\n")
    with pytest.raises(ZeroDivisionError), atomic_output(final) as tmp:
        tmp.write_text("half of the new")
        1 / 0  # noqa: B018 - the computation fails mid-write
    assert final.read_text() == "old complete content\n"
    assert _listing(tmp_path) == ["areas.csv"]


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    final = tmp_path / "x.txt"
    with pytest.raises(KeyboardInterrupt), atomic_output(final) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert _listing(tmp_path) == []


def test_overwrite_false_refuses_before_the_body_runs(tmp_path):
    final = tmp_path / "model.skops"
    final.write_bytes(b"keep")
    ran = []
    with (
        pytest.raises(OutputExistsError, match="--overwrite"),
        atomic_output(final, overwrite=False),
    ):
        ran.append(True)
    assert not ran and final.read_bytes() == b"keep"


def test_writer_that_writes_nothing_is_an_error(tmp_path):
    with pytest.raises(OutputWriteError, match="produced no file"), atomic_output(tmp_path / "a"):
        pass


def test_text_bytes_csv_and_figure_helpers(tmp_path):
    atomic_write_text(tmp_path / "a.qml", "<qgis/>\n")
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    frame = pd.DataFrame({"class": ["normal", "mild"], "km2": [1.5, 0.25]})
    atomic_to_csv(frame, tmp_path / "c.csv", index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    atomic_savefig(fig, tmp_path / "d.png", dpi=50)
    atomic_savefig(fig, tmp_path / "d.svg")
    plt.close(fig)
    assert (tmp_path / "a.qml").read_text() == "<qgis/>\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c.csv"), frame)
    assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "d.svg").read_bytes()[:500]
    assert _listing(tmp_path) == ["a.qml", "b.bin", "c.csv", "d.png", "d.svg"]


def test_geotiff_written_through_temp_name_is_a_geotiff(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    final = tmp_path / "salinity.tif"
    values = np.arange(64, dtype="float32").reshape(8, 8)
    with atomic_output(final) as tmp:
        # No driver given: GDAL picks it from the temporary name's suffix.
        with rasterio.open(
            tmp, "w", width=8, height=8, count=1, dtype="float32", crs="EPSG:32644",
            transform=from_origin(500000, 2200000, 10, 10),
        ) as dst:  # fmt: skip
            dst.write(values, 1)
    with rasterio.open(final) as src:
        assert src.driver == "GTiff"
        np.testing.assert_array_equal(src.read(1), values)
    assert _listing(tmp_path) == ["salinity.tif"]


def test_sidecars_of_a_shapefile_are_renamed_with_it(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    gdf = gpd.GeoDataFrame({"EC": [1.0, 2.0]}, geometry=[Point(0, 0), Point(1, 1)], crs=4326)
    final = tmp_path / "points.shp"
    with atomic_output(final) as tmp:
        gdf.to_file(tmp)
    names = _listing(tmp_path)
    assert {"points.shp", "points.dbf", "points.shx", "points.prj"} <= set(names)
    assert not any(is_partial(n) for n in names)
    assert gpd.read_file(final)["EC"].tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------- killed writers

_CHILD = textwrap.dedent(
    """
    import sys, time
    from saltmap.atomic import atomic_output
    with atomic_output(sys.argv[1]) as tmp:
        with open(tmp, "wb") as f:
            chunk = b"x" * (1 << 20)
            f.write(chunk); f.flush()
            print(tmp, flush=True)
            for _ in range(600):  # a big slow file: ~60 s unless killed
                f.write(chunk); f.flush(); time.sleep(0.1)
    """
)


def _start_writer(final: Path) -> tuple[subprocess.Popen, Path]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(final)], stdout=subprocess.PIPE, text=True
    )
    tmp = Path(child.stdout.readline().strip())
    return child, tmp


def test_killed_writer_leaves_no_final_file_and_next_write_cleans_up(tmp_path):
    final = tmp_path / "salinity.tif"
    child, tmp = _start_writer(final)
    try:
        assert tmp.exists() and tmp.stat().st_size >= 1 << 20
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # The run died mid-write: only a hidden partial file, nothing under the final name.
    assert not final.exists()
    assert _listing(tmp_path) == [tmp.name] and is_partial(tmp)
    # Rerun: the leftover of the dead process is removed, the complete file appears.
    atomic_write_text(final, "complete\n")
    assert _listing(tmp_path) == ["salinity.tif"]
    assert final.read_text() == "complete\n"


def test_partials_of_live_writers_are_kept(tmp_path):
    final = tmp_path / "classes.tif"
    child, tmp = _start_writer(final)
    try:
        assert clean_stale_partials(tmp_path) == []
        atomic_write_text(tmp_path / "classes.tif", "other writer")
        assert tmp.exists()  # a concurrent writer's file is not ours to delete
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert clean_stale_partials(tmp_path) == [tmp]
    assert _listing(tmp_path) == ["classes.tif"]


def test_stale_partial_of_another_output_is_left_to_its_own_rerun(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    leftover = tmp_path / f".other.partial-{dead.stdout.strip()}-{uuid.uuid4().hex[:8]}.tif"
    leftover.write_bytes(b"half")
    atomic_write_text(tmp_path / "mine.csv", "a\n")
    assert leftover.exists()
    assert clean_stale_partials(tmp_path, "other") == [leftover]


# ---------------------------------------------------------------------------- disks and folders


def test_disk_full_while_writing_is_a_clear_error_and_leaves_nothing(tmp_path):
    """Synthetic ENOSPC raised by the writer after a partial write."""
    final = tmp_path / "salinity.tif"
    with pytest.raises(OutputWriteError, match="disk is full") as caught:
        with atomic_output(final) as tmp:
            tmp.write_bytes(b"x" * 1000)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(final) in str(caught.value)
    assert caught.value.errno == errno.ENOSPC
    assert isinstance(caught.value, OSError) and isinstance(caught.value, SaltmapError)
    assert _listing(tmp_path) == []


def test_real_full_disk_with_pandas_and_rasterio(full_disk):
    import rasterio
    from rasterio.transform import from_origin

    big = pd.DataFrame(np.random.default_rng(0).random((50_000, 4)))
    with pytest.raises(OutputWriteError, match="disk is full"):
        atomic_to_csv(big, full_disk / "table.csv")
    assert _listing(full_disk) == []
    with pytest.raises(OutputWriteError, match="disk is full"):
        with atomic_output(full_disk / "salinity.tif") as tmp:
            with rasterio.open(
                tmp, "w", width=1000, height=1000, count=1, dtype="float32",
                crs="EPSG:32644", transform=from_origin(0, 0, 10, 10),
            ) as dst:  # fmt: skip
                dst.write(np.random.default_rng(1).random((1000, 1000), dtype="float32"), 1)
    assert _listing(full_disk) == []


def test_readonly_folder_is_a_clear_error(readonly_folder):
    with pytest.raises(OutputWriteError, match=r"read-only|not writable") as caught:
        atomic_write_text(readonly_folder / "areas.csv", "a\n")
    assert "choose" in str(caught.value)
    with pytest.raises(OutputWriteError, match=r"read-only|not writable"):
        check_output_folder(readonly_folder)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(OutputWriteError, match="does not exist"):
        atomic_write_text(tmp_path / "nope" / "areas.csv", "a\n")
    with pytest.raises(OutputWriteError, match="does not exist"):
        check_output_folder(tmp_path / "nope", create=False)


def test_check_output_folder_creates_and_probes(tmp_path):
    out = check_output_folder(tmp_path / "run" / "maps")
    assert out.is_dir() and _listing(out) == []
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputWriteError, match=r"a_file"):
        check_output_folder(tmp_path / "a_file" / "maps")


def test_errors_of_the_computation_are_not_relabelled(tmp_path):
    with pytest.raises(FileNotFoundError) as caught, atomic_output(tmp_path / "a.csv") as tmp:
        tmp.write_text("x")
        open(tmp_path / "missing-input.csv")  # an input error, not an output one
    assert not isinstance(caught.value, SaltmapError)
    assert _listing(tmp_path) == []


# ---------------------------------------------------------------------------- folders


def test_atomic_directory(tmp_path):
    final = tmp_path / "run-1"
    with atomic_directory(final) as tmp:
        (tmp / "report.html").write_text("<html/>")
        assert not final.exists()
    assert _listing(final) == ["report.html"]
    with pytest.raises(OutputExistsError):
        with atomic_directory(final):
            pass
    with pytest.raises(RuntimeError), atomic_directory(final, overwrite=True) as tmp:
        (tmp / "half.csv").write_text("x")
        raise RuntimeError("killed step")
    assert _listing(tmp_path) == ["run-1"] and _listing(final) == ["report.html"]
    with atomic_directory(final, overwrite=True) as tmp:
        (tmp / "new.csv").write_text("x")
    assert _listing(tmp_path) == ["run-1"] and _listing(final) == ["new.csv"]


# ---------------------------------------------------------------------------- resumable runs

_BLOCKS = 12
_RUN = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from saltmap.atomic import BlockStore

    def block_values(i):
        # Synthetic "prediction" of block i: deterministic, a few MB to write.
        return np.random.default_rng(i).random((256, 256)).astype("float32")

    def run(folder, key, delay):
        store = BlockStore(folder, "salinity", key)
        computed = 0
        for i in range(N_BLOCKS):
            if f"b{i:02d}" in store.done():
                continue
            store.save(f"b{i:02d}", salinity=block_values(i), classes=np.full((4, 4), i, "uint8"))
            computed += 1
            print(i, flush=True)
            time.sleep(delay)
        return store, computed

    if __name__ == "__main__":
        run(sys.argv[1], sys.argv[2], float(sys.argv[3]))
    """
).replace("N_BLOCKS", str(_BLOCKS))


def _load_run_module(tmp_path):
    """The run as a script for a child process, and its functions for this one."""
    import runpy

    script = tmp_path / "blockrun.py"
    script.write_text(_RUN)
    return script, runpy.run_path(str(script))  # not __main__: defines, does not run


def test_killed_blockwise_run_resumes_from_finished_blocks_with_the_same_values(tmp_path):
    from saltmap.atomic import BlockStore, fingerprint

    script, run = _load_run_module(tmp_path)
    key = fingerprint(b"model bytes", "scene", {"block_size": 256})
    out = tmp_path / "killed"
    child = subprocess.Popen(
        [sys.executable, str(script), str(out), key, "0.3"], stdout=subprocess.PIPE, text=True
    )
    try:
        finished = [child.stdout.readline() for _ in range(4)]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
    assert all(line.strip() for line in finished) and child.returncode == -signal.SIGKILL
    stored = BlockStore(out, "salinity", key, keep_others=True).done()
    assert 4 <= len(stored) < _BLOCKS  # killed mid-way

    # Started again with the same arguments: only the missing blocks are computed.
    store, computed = run["run"](out, key, 0.0)
    assert computed == _BLOCKS - len(stored)
    resumed = {b: store.load(b) for b in sorted(store.done())}
    # An uninterrupted run elsewhere gives the same values, block for block.
    fresh, all_computed = run["run"](tmp_path / "fresh", key, 0.0)
    assert all_computed == _BLOCKS and len(resumed) == _BLOCKS
    for name, arrays in resumed.items():
        again = fresh.load(name)
        assert arrays.keys() == again.keys()
        for k in arrays:
            np.testing.assert_array_equal(arrays[k], again[k])
    store.clear()
    assert _listing(out) == []


def test_other_arguments_start_afresh_and_remove_the_old_work(tmp_path):
    from saltmap.atomic import BlockStore, fingerprint

    first = BlockStore(tmp_path, "salinity", fingerprint("model-a"))
    first.save("b00", salinity=np.zeros(3))
    (first.path / ".b01.partial-99999-deadbeef.npz").write_bytes(b"half a block")
    assert first.done() == {"b00"}  # a half-written block is never taken as finished
    second = BlockStore(tmp_path, "salinity", fingerprint("model-b"))
    assert second.done() == set()
    assert not first.path.exists()
    assert fingerprint("model-a") == fingerprint("model-a") != fingerprint("model-b")


def test_fingerprint_sees_a_file_edited_in_place(tmp_path):
    from saltmap.atomic import fingerprint

    model = tmp_path / "model.skops"
    model.write_bytes(b"one")
    before = fingerprint(model, {"jobs": 2, "block": 512})
    os.utime(model, ns=(1, 1))
    assert fingerprint(model, {"block": 512, "jobs": 2}) != before  # mtime changed
    with pytest.raises(TypeError, match="fingerprint"):
        fingerprint(object())


# ---------------------------------------------------------------------------- adoption

_DIRECT_WRITE = re.compile(
    r"\.to_csv\(|\.to_excel\(|\.to_file\(|\.savefig\(|\.write_text\(|\.write_bytes\("
    r"|\bopen\([^)]*[\"'][wa]b?[\"']|rasterio\.open\([^)]*[\"']w[\"']"
)


def _direct_writes() -> list[str]:
    """Lines of saltmap that write a file under its final name.

    A line is fine when it writes to a temporary name (``tmp``/``staged``) or carries
    a comment ``# atomic: <why>`` (for example: inside an atomic_directory).
    """
    src = Path(__file__).resolve().parents[1] / "src" / "saltmap"
    found = []
    for path in sorted(src.rglob("*.py")):
        if path.name == "atomic.py":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            code = line.split("#", 1)[0]
            previous = lines[number - 2] if number > 1 else ""
            if not _DIRECT_WRITE.search(code) or "tmp" in code or "staged" in code:
                continue
            if "# atomic:" in line or previous.strip().startswith("# atomic:"):
                continue
            found.append(f"{path.relative_to(src.parent)}:{number}: {line.strip()}")
    return found


def test_direct_write_finder_sees_a_raw_write_and_accepts_an_atomic_one(tmp_path):
    assert _DIRECT_WRITE.search("table.to_csv(outputs[0], index=False)")
    assert _DIRECT_WRITE.search('with open(path, "w") as f:')
    assert _DIRECT_WRITE.search('rasterio.open(path, "w", **profile)')
    assert not _DIRECT_WRITE.search("with open(path) as f:")
    assert not _DIRECT_WRITE.search("atomic_to_csv(table, path, index=False)")


def test_every_writer_goes_through_atomic():
    assert _direct_writes() == []

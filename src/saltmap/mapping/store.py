"""The resume store of a map: finished blocks kept until the map is written.

Each finished block is saved in a :class:`saltmap.atomic.BlockStore` inside the
output folder (a hidden ``.map.work-KEY`` folder) under :func:`block_name`. ``KEY``
is :func:`block_store_key`, a fingerprint of everything that decides a block's
values, so a run killed mid-way and started again with the same inputs continues
from its finished blocks, and a run with other inputs starts afresh.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from rasterio.windows import Window

from saltmap import __version__
from saltmap.atomic import BlockStore, atomic_write_text, fingerprint

if TYPE_CHECKING:
    from saltmap.mapping.blocks import BlockJob

#: Name of the work store of :func:`saltmap.mapping.engine.map_scene` (``.map.work-KEY``
#: in the output folder).
STORE_NAME = "map"
_STORE_VERSION = "saltmap map blocks 1"
# In a work store: the files a run could not read, with their stamps in its key.
UNREADABLE = "unreadable.json"


def block_name(window: Window) -> str:
    """Name of a block in the work store: its row and column offsets."""
    return f"r{int(window.row_off)}-c{int(window.col_off)}"


def store_path(out_dir: str | Path, key: str) -> Path:
    """Where ``BlockStore(out_dir, STORE_NAME, key)`` keeps its blocks (:mod:`saltmap.atomic`)."""
    return Path(out_dir) / f".{STORE_NAME}.work-{key}"


def open_store(out_dir: str | Path, key: str | None) -> BlockStore | None:
    """The work store of the map with ``key`` in ``out_dir`` (None when not resuming)."""
    return BlockStore(out_dir, STORE_NAME, key) if key is not None else None


def split_stored(
    store: BlockStore | None, windows: Sequence[Window]
) -> tuple[list[Window], list[Window]]:
    """``windows`` split into those found in ``store`` and those still to compute."""
    stored = store.done() if store is not None else set()
    resumed = [w for w in windows if block_name(w) in stored]
    compute = [w for w in windows if block_name(w) not in stored]
    return resumed, compute


def block_store_key(job: BlockJob, block_size: int, stamps: Mapping[str, str] | None = None) -> str:
    """Fingerprint of everything that decides the values of the blocks of a map.

    The pickled :class:`~saltmap.mapping.blocks.BlockJob` (the model, scene
    description, class plan, boundary, covariate rasters, trust model and AOA
    exclusion, exactly as the workers receive them), the block size, the saltmap
    version, and the size and modification time of every scene and covariate file
    (:func:`file_stamps`, or ``stamps``), so a file changed in place starts the map
    afresh. The number of workers and the scheduler are left out: they do not change
    a value.
    """
    stamps = file_stamps(job) if stamps is None else stamps
    return fingerprint(
        _STORE_VERSION, __version__, stable_digest(job), int(block_size), list(stamps.values())
    )


def file_stamps(job: BlockJob) -> dict[str, str]:
    """Name, size and modification time of each input file of a map, by its path."""
    # the cloud masks too: a mask replaced in place must not reuse blocks it would change
    files = job.scene.input_paths()
    if job.covariates is not None:
        files.extend(job.covariates.paths.values())
    return {str(f): _file_stamp(f) for f in files}


def mark_unreadable(store: BlockStore, path: str, job: BlockJob) -> None:
    """Record in the store that ``path`` could not be read, with its stamp in the key.

    A rerun after the file is replaced (:func:`repaired_key`) finds the store again
    under the old stamp and resumes from its finished blocks instead of starting afresh.
    """
    stamps = file_stamps(job)
    marker = store.path / UNREADABLE
    known = json.loads(marker.read_text()) if marker.is_file() else {}
    known[path] = stamps.get(path, "")
    atomic_write_text(marker, json.dumps(known))


def repaired_key(out_dir: str | Path, job: BlockJob, block_size: int) -> str | None:
    """The key of a store left by a run stopped on an unreadable file that has since
    been replaced (the same inputs but for that file's stamp), or None."""
    for folder in Path(out_dir).glob(f".{STORE_NAME}.work-*"):
        marker = folder / UNREADABLE
        if not marker.is_file():
            continue
        stamps = file_stamps(job)
        old = json.loads(marker.read_text())
        if not set(old) <= set(stamps):
            continue
        key = block_store_key(job, block_size, {**stamps, **old})
        if folder == store_path(out_dir, key):
            return key
    return None


def stable_digest(obj: Any) -> bytes:
    """SHA-256 of ``obj`` pickled, the same in every process for equal objects.

    Plain pickle bytes are not: a structured NumPy array (a decision tree's nodes)
    carries padding bytes of uninitialised memory, and skops does not restore the
    state of a random generator, so both differ between two loads of the same model
    file. Structured arrays are digested field by field, and random generators are
    left out: a fitted model does not draw from them to predict. An object with a
    ``digest_state()`` method is digested by what it returns.
    """
    buffer = io.BytesIO()
    _DigestPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return hashlib.sha256(buffer.getvalue()).digest()


def _digested(*parts: Any) -> None:  # pragma: no cover
    """Stand-in reconstructor named in digests; digests are never unpickled."""


class _DigestPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.ndarray) and obj.dtype.names:
            fields = tuple((name, np.ascontiguousarray(obj[name])) for name in obj.dtype.names)
            return _digested, (str(obj.dtype), obj.shape, fields)
        if isinstance(obj, np.random.RandomState | np.random.Generator):
            return _digested, ("random generator",)
        # An object that says what decides its values (an ArrayScene of dask arrays, whose
        # pickled graph differs on every open of the same files) is digested by that.
        digest_state = getattr(type(obj), "digest_state", None)
        if callable(digest_state):
            return _digested, (type(obj).__qualname__, obj.digest_state())
        return NotImplemented


def _file_stamp(path: str) -> str:
    """Name, size and time of the local file behind a raster path (a ``/vsizip/`` path:
    its zip), else the path itself (a URL)."""
    found = re.match(r"^(?:/vsizip/)?(.*?\.zip)(?:/|$)", str(path), flags=re.IGNORECASE)
    local = Path(found[1] if found else path)
    if not local.is_file():
        return str(path)
    stat = local.stat()
    return f"path:{local.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"

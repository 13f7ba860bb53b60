"""Atomic outputs: a file appears under its final name only once it is complete.

A soil scientist's laptop sleeps, a job is killed, a disk fills up. Whatever
happens, saltmap must never leave a file that looks finished but is not. Every
writer therefore writes under a temporary sibling name and renames the file onto
its final name when, and only when, writing succeeded. A rename within one
folder is atomic on POSIX and Windows file systems (:func:`os.replace`), so a
reader sees either the old file, no file, or the complete new file.

The temporary name sits in the same folder (the rename must not cross file
systems), is hidden (leading dot), says what it is, and keeps the suffix so
that GDAL, pandas and matplotlib pick the right format from it::

    salinity.tif  ->  .salinity.partial-4242-1a2b3c4d.tif

``4242`` is the writing process's id. A run killed with SIGKILL cannot clean up
after itself, so it leaves such a ``.partial-`` file behind; it never has the
final name, and the next write of the same output removes it once no live
process owns it (:func:`clean_stale_partials`). Sidecar files a writer creates
beside its output under the temporary stem (GDAL's ``.aux.xml`` and ``.ovr``,
a Shapefile's ``.dbf``/``.shx``/``.prj``) are renamed with it.

Disk full, read-only or missing folders surface as :class:`OutputWriteError`
naming the final file and the fix, with the temporary file already removed.

How other modules adopt it
--------------------------
Wrap the write, not the computation, and write to the yielded path::

    from saltmap.atomic import atomic_output, atomic_to_csv, atomic_write_text

    with atomic_output(out / "salinity.tif") as tmp:       # rasterio, GDAL
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(values, 1)

    atomic_to_csv(table, out / "areas.csv", index=False)      # pandas
    atomic_savefig(fig, out / "map.png", dpi=150)             # matplotlib
    atomic_write_text(out / "classes.qml", qml)               # text, JSON, TOML
    with atomic_output(path) as tmp:                          # anything else
        gdf.to_file(tmp, driver="GPKG")

A two-stage writer (tiled GeoTIFF, then COG) writes the first stage to any
private temporary name and only the last stage through :func:`atomic_output`.
To refuse clobbering, pass ``overwrite=False`` (raises
:class:`~saltmap.errors.OutputExistsError` before the body runs). To fail before
a long computation rather than after it, call :func:`check_output_folder` first.
Readers that list a folder should skip :func:`is_partial` names.

Resumable runs
--------------
A long blockwise run (``saltmap map``) keeps each finished block in a
:class:`BlockStore`: a hidden work folder beside the outputs whose name holds a
:func:`fingerprint` of everything that decides the values (model file bytes,
scene files, options). Killed and started again with the same arguments, the run
finds the same folder, skips the blocks in :meth:`BlockStore.done`, and builds
its outputs from the stored blocks; with other arguments it starts afresh::

    store = BlockStore(out, "salinity", fingerprint(model_bytes, scene_files, options))
    for window in windows:
        name = f"r{window.row_off}-c{window.col_off}"
        if name not in store.done():
            store.save(name, salinity=values, classes=codes)
    ...  # write the outputs from store.load(name) for each block, atomically
    store.clear()

References
----------
.. [1] POSIX.1-2017, ``rename()``: "If the link named by the new argument
   exists, it shall be removed and old renamed to new. [...] there shall be no
   point at which the link named by new does not exist."
.. [2] Python documentation, :func:`os.replace` and :func:`os.fsync`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from saltmap.errors import OutputExistsError, OutputWriteError, SaltmapError

PARTIAL = ".partial-"
_PARTIAL_RE = re.compile(r"^\.(?P<stem>.*)\.partial-(?P<pid>\d+)-(?P<token>[0-9a-f]{8})")

# Errors that mean "this output cannot be written here", as opposed to an error of the
# computation that happened to run inside the ``with`` block.
_WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full; free some space or choose another output folder",
    errno.EDQUOT: "the disk quota is exceeded; free some space or choose another output folder",
    errno.EFBIG: "the file is too large for this file system; choose another output folder",
    errno.EACCES: "the folder is not writable; choose a folder you can write to",
    errno.EPERM: "the folder is not writable; choose a folder you can write to",
    errno.EROFS: "the file system is read-only; choose a folder you can write to",
    errno.ENOTDIR: "a part of the output path is a file, not a folder; choose another path",
}
# Free space under which a write error without errno (GDAL's) is taken for a full disk.
_NEARLY_FULL = 1 << 20


# ---------------------------------------------------------------------------- names


def temp_path_for(path: str | Path, token: str | None = None) -> Path:
    """The temporary sibling name under which ``path`` is written.

    Examples
    --------
    >>> temp_path_for("out/salinity.tif", token="1a2b3c4d").name  # doctest: +ELLIPSIS
    '.salinity.partial-...-1a2b3c4d.tif'
    """
    path = Path(path)
    token = token or uuid.uuid4().hex[:8]
    return path.with_name(f".{path.stem}{PARTIAL}{os.getpid()}-{token}{path.suffix}")


def is_partial(path: str | Path) -> bool:
    """True for a temporary name made by :func:`temp_path_for` (or its sidecars)."""
    return bool(_PARTIAL_RE.match(Path(path).name))


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def clean_stale_partials(folder: str | Path, stem: str | None = None) -> list[Path]:
    """Remove temporary files left in ``folder`` by processes that no longer run.

    Parameters
    ----------
    folder : path
        Folder to clean. A missing folder has nothing to clean.
    stem : str, optional
        Only leftovers of outputs with this stem (``"salinity"`` for
        ``salinity.tif``); all leftovers when None.

    Returns
    -------
    list of Path
        What was removed. Leftovers of live processes (a concurrent writer) are kept.

    Notes
    -----
    Liveness is judged by process id on this machine; on a folder shared between
    machines a leftover of a dead process elsewhere may be kept, which is harmless
    because its name never looks complete.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        found = _PARTIAL_RE.match(entry.name)
        if not found or (stem is not None and found["stem"] != stem):
            continue
        if not _pid_alive(int(found["pid"])):
            _remove(entry)
            removed.append(entry)
    return removed


def _siblings(tmp: Path) -> list[Path]:
    """Files the writer made under the temporary stem: the file itself and its sidecars."""
    base = tmp.stem  # ".salinity.partial-4242-1a2b3c4d"
    try:
        return [p for p in tmp.parent.iterdir() if p.name.startswith(base)]
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------- errors


def _disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL
    except OSError:
        return False


def _hint(err: OSError, folder: Path) -> str | None:
    """How to fix an OSError that means "cannot write here", or None for other errors."""
    if err.errno == errno.ENOENT and not folder.is_dir():
        return f"the folder {folder} does not exist; create it or choose another path"
    if err.errno is None and _disk_full(folder):
        # GDAL reports a full disk as a bare "Write failed" without errno.
        return _WRITE_ERRNOS[errno.ENOSPC]
    return _WRITE_ERRNOS.get(err.errno)


def _write_error(final: Path, err: OSError) -> OutputWriteError | None:
    """A saltmap error for an OSError that means the output cannot be written, else None."""
    hint = _hint(err, final.parent)
    if hint is None:
        return None
    reason = err.strerror or ("no space left on device" if hint.startswith("the disk") else err)
    wrapped = OutputWriteError(f"cannot write {final}: {reason}; {hint}")
    wrapped.errno = err.errno
    return wrapped


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk; file systems that cannot (EINVAL) are skipped."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if path.is_dir() else os.O_RDONLY
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EBADF, errno.EROFS):
            raise
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- writing


@contextlib.contextmanager
def atomic_output(
    path: str | Path, *, overwrite: bool = True, fsync: bool = True
) -> Iterator[Path]:
    """Yield a temporary sibling path to write; rename it onto ``path`` on success.

    Parameters
    ----------
    path : path
        The final file name. Its folder must exist (see :func:`check_output_folder`).
    overwrite : bool, default=True
        Replace an existing ``path``. When False an existing file raises
        :class:`~saltmap.errors.OutputExistsError` before the body runs.
    fsync : bool, default=True
        Flush the file before the rename and the folder after it, so that a power
        cut cannot leave the final name pointing at empty blocks.

    Yields
    ------
    Path
        Where to write: same folder, hidden name, same suffix.

    Raises
    ------
    OutputWriteError
        When the disk is full or the folder is missing, read-only or not a folder.
        The temporary file is removed first; the final name is untouched.

    Notes
    -----
    If the body raises, the temporary file and its sidecars are removed and the
    exception propagates; ``path`` keeps its previous content, if any. A process
    killed inside the body leaves only the temporary file, which the next
    :func:`atomic_output` on the same ``path`` removes.
    """
    final = Path(path)
    if not overwrite and final.exists():
        raise OutputExistsError(
            f"{final} already exists; pass --overwrite to replace it, or choose another path"
        )
    clean_stale_partials(final.parent, final.stem)
    tmp = temp_path_for(final)
    try:
        yield tmp
        _commit(tmp, final, overwrite, fsync)
    except BaseException as err:
        # Judge the error before cleaning up: removing the temporary file frees the disk.
        wrapped = None
        if isinstance(err, OSError) and not isinstance(err, SaltmapError):
            wrapped = _write_error(final, err)
        for leftover in _siblings(tmp):
            with contextlib.suppress(OSError):
                _remove(leftover)
        if wrapped is not None:
            raise wrapped from err
        raise


def _commit(tmp: Path, final: Path, overwrite: bool, fsync: bool) -> None:
    """Rename the written temporary file (and its sidecars) onto ``final``."""
    if not tmp.exists():
        raise OutputWriteError(
            f"cannot write {final}: the writer produced no file at {tmp.name}; "
            "this is a bug in saltmap, please report it"
        )
    if not overwrite and final.exists():
        raise OutputExistsError(
            f"{final} appeared while it was being written; pass --overwrite to replace it"
        )
    if fsync:
        _fsync(tmp)
    # Sidecars first, the main file last: its final name is the "complete" signal.
    for extra in _siblings(tmp):
        if extra != tmp:
            os.replace(extra, final.with_name(final.stem + extra.name[len(tmp.stem) :]))
    os.replace(tmp, final)
    if fsync:
        _fsync(final.parent)


def atomic_write_bytes(path: str | Path, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(
    path: str | Path, text: str, *, encoding: str = "utf-8", overwrite: bool = True
) -> Path:
    """Write ``text`` to ``path`` atomically and return ``path``."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def atomic_to_csv(frame: Any, path: str | Path, *, overwrite: bool = True, **kwargs: Any) -> Path:
    """``frame.to_csv(path, **kwargs)`` atomically (pandas DataFrame or Series)."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        frame.to_csv(tmp, **kwargs)
    return Path(path)


def atomic_savefig(fig: Any, path: str | Path, *, overwrite: bool = True, **kwargs: Any) -> Path:
    """``fig.savefig(path, **kwargs)`` atomically; the format follows the suffix of ``path``."""
    kwargs.setdefault("format", Path(path).suffix.lstrip(".") or None)
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, **kwargs)
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder; rename it onto ``path`` when the body succeeds.

    For outputs that are a folder (a run folder): a killed run leaves a hidden
    ``.name.partial-PID-TOKEN`` folder, never a folder under the final name. With
    ``overwrite`` an existing folder is moved aside and deleted after the rename,
    so there is a moment without ``path`` but never a mixed one.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise OutputExistsError(
            f"{final} already exists; pass --overwrite to replace it, or choose another folder"
        )
    clean_stale_partials(final.parent, final.name)
    tmp = final.with_name(f".{final.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.mkdir(parents=False)
        yield tmp
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}{PARTIAL}{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
        os.replace(tmp, final)
        if old is not None:
            _remove(old)
        _fsync(final.parent)
    except BaseException as err:
        _remove(tmp)
        if isinstance(err, OSError) and not isinstance(err, SaltmapError):
            wrapped = _write_error(final, err)
            if wrapped is not None:
                raise wrapped from err
        raise


def check_output_folder(folder: str | Path, *, create: bool = True) -> Path:
    """Make sure outputs can be written in ``folder`` before any long computation.

    Creates the folder when ``create`` (with parents) and writes and removes a small
    probe file. Raises :class:`OutputWriteError` naming the folder and the fix when it
    cannot; a full disk may still be found only when the real output is written.
    """
    folder = Path(folder)
    if not create and not folder.is_dir():
        raise OutputWriteError(
            f"the output folder {folder} does not exist; create it or choose another folder"
        )
    probe = folder / "saltmap-probe"
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(probe, b"saltmap")
        probe.unlink()
    except OutputWriteError as err:
        cause = err.__cause__ if isinstance(err.__cause__, OSError) else err
        raise OutputWriteError(
            f"cannot write in the output folder {folder}: "
            f"{getattr(cause, 'strerror', None) or cause}; "
            f"{_hint(cause, folder) or 'choose another folder'}"
        ) from cause
    except OSError as err:
        raise OutputWriteError(
            f"cannot write in the output folder {folder}: {err.strerror or err}; "
            f"{_hint(err, folder) or 'choose another folder'}"
        ) from err
    return folder


# ---------------------------------------------------------------------------- resumable runs

_BLOCK_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def fingerprint(*parts: Any) -> str:
    """A short, stable hash of what decides a run's values.

    Parts may be bytes, strings, numbers, None, paths (hashed by resolved name, size and
    modification time: a file edited in place changes the fingerprint), or lists, tuples
    and dicts of these. Two runs with the same fingerprint compute the same blocks.
    """
    digest = hashlib.sha256()

    def feed(part: Any) -> None:
        if isinstance(part, bytes | bytearray | memoryview):
            digest.update(b"b%d:" % len(part))
            digest.update(part)
        elif isinstance(part, Path):
            stat = part.stat()
            feed(f"path:{part.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
        elif isinstance(part, dict):
            digest.update(b"d")
            for key in sorted(part, key=str):
                feed(str(key))
                feed(part[key])
        elif isinstance(part, list | tuple):
            digest.update(b"l%d:" % len(part))
            for item in part:
                feed(item)
        elif isinstance(part, str | int | float | bool) or part is None:
            feed(f"{type(part).__name__}:{part!r}".encode())
        else:
            raise TypeError(f"cannot fingerprint {type(part).__name__}; give bytes or plain values")

    for part in parts:
        feed(part)
    return digest.hexdigest()[:16]


class BlockStore:
    """Finished blocks of a long run, kept on disk so that a killed run can resume.

    Each block is one ``.npz`` file written through :func:`atomic_output` into the
    hidden folder ``.NAME.work-KEY`` inside ``folder``: a block file exists only when
    it is complete, so :meth:`done` never lists a half-written block.

    Parameters
    ----------
    folder : path
        The output folder (created if needed).
    name : str
        What the run makes (``"salinity"``); names the work folder.
    key : str
        :func:`fingerprint` of the run's inputs and options. Work folders of the same
        ``name`` with another key belong to runs with other arguments and are removed,
        unless ``keep_others``.
    keep_others : bool, default=False
        Keep other keys' work folders (for concurrent runs into one folder).
    """

    def __init__(self, folder: str | Path, name: str, key: str, *, keep_others: bool = False):
        if not (_BLOCK_NAME.match(name) and _BLOCK_NAME.match(key)):
            raise ValueError(f"name and key must be letters, digits, '-' or '_': {name!r} {key!r}")
        self.folder = check_output_folder(folder)
        self.path = self.folder / f".{name}.work-{key}"
        if not keep_others:
            for other in self.folder.glob(f".{name}.work-*"):
                if other != self.path:
                    _remove(other)
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as err:
            wrapped = _write_error(self.path, err)
            if wrapped is None:
                raise
            raise wrapped from err

    def done(self) -> set[str]:
        """Names of the blocks already stored (complete files only)."""
        return {p.stem for p in self.path.glob("*.npz") if not is_partial(p) and p.stem[:1] != "."}

    def save(self, block: str, **arrays: np.ndarray) -> None:
        """Store the arrays of a finished block, atomically."""
        if not _BLOCK_NAME.match(block):
            raise ValueError(f"block name {block!r} must be letters, digits, '-' or '_'")
        with atomic_output(self.path / f"{block}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)

    def load(self, block: str) -> dict[str, np.ndarray]:
        """The arrays of a stored block."""
        with np.load(self.path / f"{block}.npz") as data:
            return {k: data[k] for k in data.files}

    def clear(self) -> None:
        """Remove the work folder: call once the outputs are written."""
        _remove(self.path)

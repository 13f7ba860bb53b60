"""Sentinel-2 scenes as six band roles on one 10 m grid, read lazily by window.

A :class:`Scene` holds file paths and parameters only; it opens its files when
a window is read (once per process and thread), so it can be pickled to Dask
workers. Bands coarser than the grid (the 20 m SWIR bands of Sentinel-2) are
resampled on the fly with a GDAL warped VRT, bilinear for reflectance and
nearest for the scene classification (SCL), so reading a window of the 10 m
grid reads only the part of each 20 m file that window needs.

:func:`open_scene` reads

- a folder of per-band files with Sentinel-2 names (``T32TQM_..._B02_10m.jp2``,
  ``B11_20m.tif``, ...), GeoTIFF or JPEG 2000;
- a Sentinel-2 L2A ``.SAFE`` folder or its ``.zip``, with the reflectance scaling
  taken from its ``MTD_MSIL2A.xml`` (quantification value and BOA offsets);
- a multiband raster whose band descriptions name the bands, or with the band
  names given by the user;
- a STAC item (JSON file or URL) whose assets are found by Sentinel-2 band name
  or common name.

References
----------
.. [1] ESA (2022). Sentinel-2 Products Specification Document, issue 14.9:
   L2A product layout, ``BOA_QUANTIFICATION_VALUE`` and ``BOA_ADD_OFFSET``,
   scene classification classes.
.. [2] GDAL warper: https://gdal.org/en/stable/api/gdalwarp_cpp.html
"""

from __future__ import annotations

import json
import re
import threading
import warnings
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from saltmap.bands import (
    BANDS,
    REFLECTANCE,
    ROLES,
    Scaling,
    check_reflectance,
    check_roles,
    role_of,
    scaling_from_name,
    sentinel2_scaling,
)
from saltmap.errors import InputFileError, MissingBandError, ScalingError, SceneError

#: Scene classification (SCL) classes masked by default [1]_.
SCL_MASKED: dict[int, str] = {
    0: "no data",
    1: "saturated or defective",
    3: "cloud shadow",
    8: "cloud, medium probability",
    9: "cloud, high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
#: The SCL water class, masked only when asked (``mask_water=True``).
SCL_WATER = 6

RASTER_SUFFIXES = (".tif", ".tiff", ".jp2", ".vrt")
# Sentinel-2 band numbers in the order of the ``band_id`` attribute of MTD_MSIL2A.xml.
_S2_BAND_IDS = tuple("B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12".split())
_BAND_TOKEN = re.compile(r"^B(\d{1,2}|8A)$", re.IGNORECASE)
_RES_TOKEN = re.compile(r"^(\d+)m$", re.IGNORECASE)


@dataclass(frozen=True)
class BandFile:
    """Where one band lives: a rasterio-openable path and the band index in it.

    ``path`` may be a local file, a ``/vsizip/`` path into a zip or a URL.
    ``name`` is the band name as found (``B02``, ``blue``, ``SCL``), for messages.
    """

    path: str
    band: int = 1
    name: str = ""


@dataclass
class _Grid:
    crs: CRS | None
    transform: Affine
    width: int
    height: int


class ThreadLocalDatasets:
    """Open GDAL datasets held per thread, dropped on pickling and reopened on use.

    GDAL datasets must not be shared between threads, and cannot be pickled to a
    worker; a subclass sets ``self._local = threading.local()`` in ``__init__`` and
    keeps ``(dataset, warped VRT or None)`` pairs in :meth:`_handles`.
    """

    _local: threading.local

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_local", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _handles(self) -> dict[Any, tuple[Any, Any]]:
        handles = getattr(self._local, "handles", None)
        if handles is None:
            handles = self._local.handles = {}
        return handles

    def close(self) -> None:
        """Close the files this thread opened (they reopen on the next read)."""
        for src, vrt in self._handles().values():
            if vrt is not None:
                vrt.close()
            src.close()
        self._handles().clear()


class Scene(ThreadLocalDatasets):
    """The band roles of one image on one grid, read lazily by window.

    Build it with :func:`open_scene`. Reading returns surface reflectance as
    float32, NaN where a band has no data or the scene classification masks
    the pixel.

    Attributes
    ----------
    crs, transform, width, height
        The target grid (the grid of the finest band, 10 m for Sentinel-2).
    roles : tuple of str
        Band roles available, in :data:`saltmap.bands.ROLES` order.
    scaling : Scaling or dict of Scaling
        Digital numbers to reflectance; a dict by role when bands differ.
    source : str
        What the scene was read from, for messages and metadata.
    files : dict of BandFile
        The file of each role.
    scl : BandFile or None
        The scene classification layer, if any.
    mask_water : bool
        Whether SCL water (class 6) is masked too.
    """

    def __init__(
        self,
        files: dict[str, BandFile],
        *,
        grid: _Grid,
        scaling: Scaling | dict[str, Scaling],
        source: str,
        nodata: dict[str, float | None] | None = None,
        scl: BandFile | None = None,
        mask_water: bool = False,
        baseline: str | None = None,
    ) -> None:
        self.files = {r: files[r] for r in ROLES if r in files}
        self.roles: tuple[str, ...] = tuple(self.files)
        self.crs = grid.crs
        self.transform = grid.transform
        self.width = int(grid.width)
        self.height = int(grid.height)
        self.scaling = scaling
        self.source = source
        self.nodata = dict(nodata or {})
        self.scl = scl
        self.mask_water = mask_water
        self.baseline = baseline
        self._local = threading.local()

    def __repr__(self) -> str:
        return (
            f"Scene({self.source!r}, roles={self.roles}, {self.width}x{self.height} px, "
            f"crs={self.crs}, res={self.res}, scl={'yes' if self.scl else 'no'})"
        )

    # -- grid --------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the grid."""
        return self.height, self.width

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in CRS units."""
        return abs(self.transform.a), abs(self.transform.e)

    @property
    def bounds(self) -> rasterio.coords.BoundingBox:
        """Bounds of the grid in its CRS."""
        west, south, east, north = rasterio.transform.array_bounds(
            self.height, self.width, self.transform
        )
        return rasterio.coords.BoundingBox(west, south, east, north)

    @property
    def profile(self) -> dict[str, Any]:
        """A rasterio profile of the grid for a single-band float32 GeoTIFF writer."""
        return {
            "driver": "GTiff",
            "crs": self.crs,
            "transform": self.transform,
            "width": self.width,
            "height": self.height,
            "count": 1,
            "dtype": "float32",
            "nodata": float("nan"),
        }

    def describe(self) -> dict[str, str]:
        """What the scene is, as text: for output metadata and reports."""
        if isinstance(self.scaling, dict):
            scaling = "; ".join(f"{r}: {s.describe()}" for r, s in self.scaling.items())
        else:
            scaling = self.scaling.describe()
        return {
            "scene": self.source,
            "bands": " ".join(
                f"{r}={self.files[r].name or BANDS[r].sentinel2}" for r in self.roles
            ),
            "scaling": scaling,
            "processing_baseline": self.baseline or "unknown",
            "scl_mask": (
                "none"
                if self.scl is None
                else "SCL classes "
                + ",".join(str(c) for c in [*SCL_MASKED, *([SCL_WATER] if self.mask_water else [])])
            ),
            "resampling": "20 m bands bilinear, SCL nearest, onto the grid of the finest band",
        }

    def scaling_of(self, role: str) -> Scaling:
        """The scaling of one band role."""
        if isinstance(self.scaling, dict):
            return self.scaling[role]
        return self.scaling

    def block_windows(self, block_size: int = 512) -> list[Window]:
        """Windows of at most ``block_size`` × ``block_size`` pixels tiling the grid, row-major."""
        if block_size < 1:
            raise SceneError(f"block size must be a positive number of pixels, not {block_size}")
        return [
            Window(col, row, min(block_size, self.width - col), min(block_size, self.height - row))
            for row in range(0, self.height, block_size)
            for col in range(0, self.width, block_size)
        ]

    def window_transform(self, window: Window) -> Affine:
        """The affine transform of a window of the grid."""
        return rasterio.windows.transform(window, self.transform)

    # -- reading -----------------------------------------------------------------------
    def read(self, window: Window | None = None, roles: Sequence[str] | None = None) -> np.ndarray:
        """Read reflectance on the grid.

        Parameters
        ----------
        window : Window, optional
            Part of the grid to read; the whole grid by default. It must lie inside.
        roles : sequence of str, optional
            Band roles to read, in the order wanted; all roles by default.

        Returns
        -------
        ndarray of float32, shape (n_roles, rows, cols)
            Surface reflectance, NaN where a band has no data (0 DN or the file's
            nodata) or the scene classification masks the pixel.
        """
        roles = self.roles if roles is None else tuple(roles)
        check_roles(roles, self.roles, f"scene {self.source}")
        window = self._check_window(window)
        rows, cols = int(window.height), int(window.width)
        out = np.empty((len(roles), rows, cols), dtype=np.float32)
        for i, role in enumerate(roles):
            out[i] = self.scaling_of(role).apply(self._read_band(role, window))
        if self.scl is not None:
            out[:, self._scl_masked(window)] = np.nan
        return out

    def valid_mask(self, window: Window | None = None) -> np.ndarray:
        """True where every band has data and the scene classification keeps the pixel."""
        return np.all(np.isfinite(self.read(window)), axis=0)

    def read_scl(self, window: Window | None = None) -> np.ndarray:
        """The scene classification on the grid (uint8, nearest neighbour)."""
        if self.scl is None:
            raise MissingBandError(f"scene {self.source} has no scene classification (SCL) band")
        window = self._check_window(window)
        reader = self._reader("SCL", self.scl, Resampling.nearest, None, "uint8")
        return reader.read(self.scl.band, window=window)

    def _scl_masked(self, window: Window) -> np.ndarray:
        classes = list(SCL_MASKED) + ([SCL_WATER] if self.mask_water else [])
        return np.isin(self.read_scl(window), classes)

    def _check_window(self, window: Window | None) -> Window:
        if window is None:
            return Window(0, 0, self.width, self.height)
        window = Window(*(round(v) for v in window.flatten()))
        if (
            window.col_off < 0
            or window.row_off < 0
            or window.width < 1
            or window.height < 1
            or window.col_off + window.width > self.width
            or window.row_off + window.height > self.height
        ):
            raise SceneError(
                f"window {window} is not inside the scene grid of {self.width} x {self.height} "
                f"pixels ({self.source}); use Scene.block_windows() to tile it"
            )
        return window

    def _read_band(self, role: str, window: Window) -> np.ndarray:
        bf = self.files[role]
        nodata = self.nodata.get(role)
        reader = self._reader(role, bf, Resampling.bilinear, nodata, "float32")
        try:
            data = reader.read(bf.band, window=window, out_dtype="float32")
        except RasterioError as err:
            raise InputFileError(
                f"cannot read band {role} from {bf.path}: {err}. The file may be truncated or "
                "corrupt; download or export it again"
            ) from err
        if not self._is_warped(role) and nodata is not None:
            data[data == nodata] = np.nan
        return data

    def _is_warped(self, key: str) -> bool:
        return self._handles()[key][1] is not None

    def _reader(
        self, key: str, bf: BandFile, resampling: Resampling, nodata: float | None, dtype: str
    ) -> Any:
        # One open dataset (and warped VRT if the band is not on the grid) per thread:
        # GDAL datasets must not be shared between threads.
        handles = self._handles()
        if key not in handles:
            src = _open(bf.path)
            vrt = None
            if not _same_grid(src, self):
                # Band i of the warped VRT is band i of the source, so bf.band still applies.
                vrt = WarpedVRT(
                    src,
                    crs=self.crs,
                    transform=self.transform,
                    width=self.width,
                    height=self.height,
                    resampling=resampling,
                    src_nodata=nodata if nodata is not None else src.nodata,
                    nodata=np.nan if dtype == "float32" else 0,
                    dtype=dtype,
                )
            handles[key] = (src, vrt)
        src, vrt = handles[key]
        return vrt if vrt is not None else src


def _open(path: str) -> Any:
    try:
        return rasterio.open(path)
    except RasterioIOError as err:
        raise InputFileError(
            f"cannot open {path}: {err}. Check that the file exists, is a complete GeoTIFF or "
            "JPEG 2000 raster and is readable"
        ) from err


def _same_grid(src: Any, grid: Any) -> bool:
    return (
        src.crs == grid.crs
        and src.width == grid.width
        and src.height == grid.height
        and src.transform.almost_equals(grid.transform)
    )


# -- opening --------------------------------------------------------------------------


@dataclass
class _Found:
    """What a source reader found: files by role and scaling from the metadata."""

    files: dict[str, BandFile] = field(default_factory=dict)
    scl: BandFile | None = None
    scaling: Scaling | dict[str, Scaling] | None = None
    baseline: str | None = None
    # Why the metadata cannot give the scaling; raised unless the user gives one.
    scaling_problem: str | None = None
    kind: str = ""
    seen: list[str] = field(default_factory=list)


def open_scene(
    source: str | Path,
    *,
    bands: Sequence[str] | None = None,
    scaling: str | Scaling | None = None,
    baseline: str | None = None,
    mask_water: bool = False,
    roles: Sequence[str] | None = None,
    use_scl: bool = True,
) -> Scene:
    """Open a Sentinel-2 scene as band roles on its 10 m grid.

    Nothing but headers (and a small probe window) is read: pixels are read by
    :meth:`Scene.read`. Every check that can fail is made here, before any output
    is written by a caller.

    Parameters
    ----------
    source : str or Path
        A folder of per-band files with Sentinel-2 names (``*_B02_10m.jp2``,
        ``B11_20m.tif``), a ``.SAFE`` folder or its ``.zip``, a multiband raster, or
        a STAC item (``.json`` path or URL).
    bands : sequence of str, optional
        For a multiband raster, the name of each of its bands in file order
        (``B02``, ``blue``, ``SCL``; ``-`` to skip one), needed when the file
        has no band descriptions. For other sources, the bands to read, by
        role or name (same as ``roles``).
    scaling : str or Scaling, optional
        Digital numbers to reflectance: ``sentinel2-l2a`` (DN / 10000),
        ``sentinel2-l2a-offset`` ((DN - 1000) / 10000), ``sentinel2`` (decided
        from ``baseline``), ``reflectance``, ``SCALE,OFFSET`` or a
        :class:`~saltmap.bands.Scaling`. Overrides the metadata of a SAFE
        product or STAC item. Required for integer files without metadata.
    baseline : str, optional
        The Sentinel-2 processing baseline (``"05.09"``): decides the BOA offset
        when ``scaling`` is not given.
    mask_water : bool
        Also mask SCL water (class 6).
    roles : sequence of str, optional
        Band roles the scene must provide; all six by default.
    use_scl : bool
        Mask pixels by the scene classification when an SCL band is found.

    Returns
    -------
    Scene

    Raises
    ------
    MissingBandError
        A required band is not in the source (the message lists what was found).
    SceneError
        Bands cannot be brought onto one grid, or a band does not cover it.
    InputFileError
        A file is missing, unreadable or truncated.
    ScalingError
        The scaling cannot be decided, or gives implausible reflectance.
    """
    if roles is None and bands is not None and not _is_multiband_file(source):
        roles = [role_of(b) or b for b in bands]
        bands = None
    wanted = tuple(ROLES if roles is None else roles)
    unknown = [r for r in wanted if r not in ROLES]
    if unknown:
        raise SceneError(f"unknown band role(s) {unknown}; roles are {list(ROLES)}")
    src = str(source)
    found = _find(src, bands)
    missing = [r for r in wanted if r not in found.files]
    if missing:
        names = ", ".join(
            f"{r} ({BANDS[r].long_name}, Sentinel-2 {BANDS[r].sentinel2})" for r in missing
        )
        raise MissingBandError(
            f"{found.kind} {src} lacks band(s) {names}; found: "
            f"{', '.join(found.seen) or 'no band files'}. Add the missing band files "
            "(named like T32TQM_20230815T101559_B11_20m.jp2 or B11_20m.tif), or, for a "
            "multiband file, name its bands with bands=[...] / --bands"
        )
    files = {r: found.files[r] for r in ROLES if r in wanted}
    scl = found.scl if use_scl else None
    grid, nodata = _grid_and_nodata(files, scl, src)
    resolved = _resolve_scaling(scaling, baseline, found, files, src)
    scene = Scene(
        files,
        grid=grid,
        scaling=resolved,
        source=src,
        nodata=nodata,
        scl=scl,
        mask_water=mask_water,
        baseline=baseline or found.baseline,
    )
    _probe(scene)
    return scene


def _is_multiband_file(source: str | Path) -> bool:
    s = str(source)
    return Path(s).suffix.lower() in RASTER_SUFFIXES and not Path(s).is_dir()


def _find(src: str, bands: Sequence[str] | None) -> _Found:
    lower = src.lower().rstrip("/")
    path = Path(src)
    is_url = "://" in src
    if lower.endswith(".json") or lower.endswith(".geojson"):
        return _find_stac(src)
    if lower.endswith(".zip"):
        if not is_url and not path.is_file():
            raise InputFileError(f"{src} does not exist; give the path of a Sentinel-2 .SAFE zip")
        return _find_safe_zip(src)
    if not is_url and not path.exists():
        raise InputFileError(
            f"{src} does not exist; give a folder of band files, a .SAFE folder or zip, a "
            "multiband raster or a STAC item JSON"
        )
    if not is_url and path.is_dir():
        if lower.endswith(".safe") or any(
            (path / f"MTD_MSIL{level}.xml").exists() for level in ("2A", "1C")
        ):
            return _find_safe_dir(path)
        return _find_folder(path)
    if is_url and not lower.endswith(RASTER_SUFFIXES):
        return _find_stac(src)
    return _find_multiband(src, bands)


def _band_tokens(name: str) -> tuple[str | None, int | None]:
    """Band (``B02``, ``B8A``, ``SCL``) and resolution (metres) named by a file name."""
    stem = name.rsplit("/", 1)[-1]
    for suffix in RASTER_SUFFIXES:
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    band = res = None
    for token in re.split(r"[_\-.\s]+", stem):
        if _BAND_TOKEN.match(token):
            num = token[1:].upper()
            band = "B8A" if num == "8A" else f"B{int(num):02d}"
        elif token.upper() == "SCL":
            band = "SCL"
        elif (m := _RES_TOKEN.match(token)) is not None:
            res = int(m.group(1))
    return band, res


def _pick_by_name(
    names: Iterable[str], to_path: Any, kind: str, where: str, found: _Found | None = None
) -> _Found:
    """Assign file names to roles by their Sentinel-2 band token, finest resolution first."""
    found = found or _Found(kind=kind)
    candidates: dict[str, list[tuple[int, str]]] = {}
    for name in sorted(names):
        band, res = _band_tokens(name)
        if band is None:
            continue
        found.seen.append(name.rsplit("/", 1)[-1])
        key = "SCL" if band == "SCL" else role_of(band)
        if key is None:  # B01, B05, B8A...: not one of the six roles
            continue
        candidates.setdefault(key, []).append((res if res is not None else 0, name))
    for key, options in candidates.items():
        options.sort()
        if key == "SCL":
            # The SCL is classes, finer is not better: prefer 20 m, its native resolution.
            options.sort(key=lambda o: (o[0] != 20, o[0]))
        best = options[0][0]
        tied = [n for r, n in options if r == best]
        if len(tied) > 1:
            raise SceneError(
                f"{where} has several files for band {key}: {', '.join(tied)}; "
                "keep one, or open a single file"
            )
        bf = BandFile(to_path(tied[0]), 1, _band_tokens(tied[0])[0] or key)
        if key == "SCL":
            found.scl = bf
        else:
            found.files[key] = bf
    return found


def _find_folder(path: Path) -> _Found:
    names = [p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES]
    return _pick_by_name(names, lambda n: str(path / n), "folder", str(path))


_L1C_MESSAGE = (
    "{src} is a Sentinel-2 Level-1C product (top-of-atmosphere reflectance); saltmap needs "
    "Level-2A surface reflectance, as the field samples and models use. Download the L2A "
    "product of the same date, or process this one with ESA's Sen2Cor"
)


def _find_safe_dir(path: Path) -> _Found:
    mtd = path / "MTD_MSIL2A.xml"
    if (path / "MTD_MSIL1C.xml").is_file():
        raise InputFileError(_L1C_MESSAGE.format(src=path))
    if not mtd.is_file():
        raise InputFileError(
            f"{path} has no MTD_MSIL2A.xml: it is not a Sentinel-2 L2A product. Give the .SAFE "
            "folder as downloaded, or a plain folder of band files with --scaling"
        )
    names = [
        str(p.relative_to(path)).replace("\\", "/")
        for p in path.glob("GRANULE/*/IMG_DATA/R*m/*")
        if p.suffix.lower() in RASTER_SUFFIXES
    ]
    found = _safe_bands(names, lambda n: str(path / n), str(path))
    _safe_metadata(mtd.read_bytes(), str(mtd), found)
    return found


def _find_safe_zip(src: str) -> _Found:
    try:
        with zipfile.ZipFile(src) as zf:
            members = zf.namelist()
            mtd = [m for m in members if m.rsplit("/", 1)[-1] == "MTD_MSIL2A.xml"]
            if not mtd and any(m.endswith("MTD_MSIL1C.xml") for m in members):
                raise InputFileError(_L1C_MESSAGE.format(src=src))
            if not mtd:
                raise InputFileError(
                    f"{src} holds no MTD_MSIL2A.xml: it is not a zipped Sentinel-2 L2A .SAFE"
                )
            xml = zf.read(sorted(mtd, key=len)[0])
    except (zipfile.BadZipFile, OSError) as err:
        if isinstance(err, InputFileError):
            raise
        raise InputFileError(
            f"cannot read {src} as a zip: {err}. The download may be incomplete"
        ) from err
    names = [
        m
        for m in members
        if re.search(r"GRANULE/[^/]+/IMG_DATA/R\d+m/[^/]+$", m)
        and m.lower().endswith(RASTER_SUFFIXES)
    ]
    absolute = str(Path(src).resolve()) if "://" not in src else src
    found = _safe_bands(names, lambda n: f"/vsizip/{absolute}/{n}", src)
    _safe_metadata(xml, f"{src}!MTD_MSIL2A.xml", found)
    return found


def _safe_bands(names: list[str], to_path: Any, where: str) -> _Found:
    # Each band is taken at its native resolution: 10 m for B02-B08, 20 m for B11, B12, SCL.
    native = {"B": 10, "G": 10, "R": 10, "N": 10, "S1": 20, "S2": 20, "SCL": 20}
    chosen = []
    for name in names:
        band, res = _band_tokens(name)
        key = "SCL" if band == "SCL" else (role_of(band) if band else None)
        if key is not None and res == native[key]:
            chosen.append(name)
    found = _pick_by_name(chosen, to_path, "Sentinel-2 product", where)
    found.seen = sorted({n.rsplit("/", 1)[-1] for n in names})
    return found


def _safe_metadata(xml: bytes, where: str, found: _Found) -> None:
    """Scaling of each band from the product metadata: (DN + BOA_ADD_OFFSET) / quantification."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise InputFileError(f"{where} is not readable XML: {err}") from err
    quant = None
    offsets: dict[int, float] = {}
    physical: dict[int, str] = {}
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        if tag == "PROCESSING_BASELINE" and el.text:
            found.baseline = el.text.strip()
        elif tag.endswith("BOA_QUANTIFICATION_VALUE") and el.text:
            quant = float(el.text)
        elif tag == "BOA_ADD_OFFSET" and el.text:
            offsets[int(el.get("band_id", "-1"))] = float(el.text)
        elif tag == "Spectral_Information" and el.get("bandId") is not None:
            physical[int(el.get("bandId", "-1"))] = el.get("physicalBand", "")
    if quant is None:
        found.scaling_problem = (
            f"{where} has no BOA_QUANTIFICATION_VALUE, so digital numbers cannot be turned into "
            "reflectance; give --scaling (for example sentinel2-l2a-offset)"
        )
        return
    by_band: dict[str, float] = {}
    for band_id, offset in offsets.items():
        name = physical.get(band_id) or (
            _S2_BAND_IDS[band_id] if 0 <= band_id < len(_S2_BAND_IDS) else ""
        )
        token, _ = _band_tokens(name)
        if token:
            by_band[token] = offset
    if not offsets and found.baseline is not None:
        # Products from baseline 04.00 on must carry offsets; if they are absent the
        # baseline decides, never a silent zero.
        expected = sentinel2_scaling(found.baseline)
        if expected.offset != 0:
            found.scaling_problem = (
                f"{where} declares processing baseline {found.baseline} but no BOA_ADD_OFFSET; "
                "the metadata is incomplete. Give --scaling yourself"
            )
            return
    scalings = {}
    for role in found.files:
        offset = by_band.get(BANDS[role].sentinel2, 0.0)
        scalings[role] = Scaling(
            1.0 / quant,
            offset / quant,
            f"sentinel2-l2a (baseline {found.baseline or 'unknown'}, "
            f"quantification {quant:g}, offset {offset:g})",
        )
    found.scaling = _collapse(scalings)


def _collapse(scalings: dict[str, Scaling]) -> Scaling | dict[str, Scaling]:
    distinct = set(scalings.values())
    return distinct.pop() if len(distinct) == 1 else scalings


def _find_multiband(src: str, bands: Sequence[str] | None) -> _Found:
    with _open(src) as ds:
        count = ds.count
        descriptions = list(ds.descriptions)
    if bands is not None:
        if len(bands) != count:
            raise SceneError(
                f"{src} has {count} band(s) but {len(bands)} band name(s) were given "
                f"({', '.join(bands)}); give one name per band, '-' for a band to skip"
            )
        names = list(bands)
    else:
        names = [d or "" for d in descriptions]
    found = _Found(kind="multiband file")
    for index, name in enumerate(names, start=1):
        if not name or name == "-":
            continue
        found.seen.append(f"band {index} '{name}'")
        key = "SCL" if name.strip().upper() == "SCL" else role_of(name)
        if key is None:
            continue
        if key in found.files or (key == "SCL" and found.scl is not None):
            raise SceneError(f"{src}: two bands are named as {key}: check the band names")
        bf = BandFile(src, index, name)
        if key == "SCL":
            found.scl = bf
        else:
            found.files[key] = bf
    if not found.files and bands is None:
        found.seen = [f"{count} band(s) without recognised descriptions {descriptions}"]
    return found


def _find_stac(src: str) -> _Found:
    import pystac

    try:
        item = pystac.Item.from_file(src)
    except (OSError, json.JSONDecodeError, pystac.STACError, KeyError, ValueError) as err:
        raise InputFileError(
            f"cannot read {src} as a STAC item: {err}. Give the JSON of one item (a Feature)"
        ) from err
    found = _Found(kind="STAC item")
    ranked: dict[str, list[tuple[int, str, BandFile, Any]]] = {}
    for key, asset in item.assets.items():
        eo = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
        if len(eo) > 1:  # the true-colour preview and other composites
            continue
        info = eo[0] if eo else {}
        names = [
            key,
            info.get("name", ""),
            info.get("common_name", ""),
            info.get("eo:common_name", ""),
        ]
        target = None
        for name in names:
            band, _ = _band_tokens(name) if name else (None, None)
            if band == "SCL":
                target = "SCL"
                break
            candidate = role_of(band) if band else role_of(name) if name else None
            if candidate is not None:
                target = candidate
                break
        if target is None:
            continue
        found.seen.append(key)
        # Prefer the Cloud-Optimized GeoTIFF over a JPEG 2000 duplicate of the same band.
        rank = 0 if "tiff" in (asset.media_type or "").lower() else 1
        href = asset.get_absolute_href() or asset.href
        ranked.setdefault(target, []).append((rank, key, BandFile(href, 1, key), asset))
    scalings: dict[str, Scaling] = {}
    for target, options in ranked.items():
        _, key, bf, asset = sorted(options, key=lambda o: (o[0], o[1]))[0]
        if target == "SCL":
            found.scl = bf
            continue
        found.files[target] = bf
        raster = (asset.extra_fields.get("raster:bands") or [{}])[0]
        if "scale" in raster or "offset" in raster:
            scalings[target] = Scaling(
                float(raster.get("scale", 1.0)),
                float(raster.get("offset", 0.0)),
                "stac-raster-bands",
            )
    baseline = item.properties.get("s2:processing_baseline")
    found.baseline = str(baseline) if baseline is not None else None
    if scalings and set(scalings) == set(found.files):
        found.scaling = _collapse(scalings)
    elif found.baseline is not None:
        found.scaling = sentinel2_scaling(found.baseline)
    return found


def _grid_and_nodata(
    files: dict[str, BandFile], scl: BandFile | None, src: str
) -> tuple[_Grid, dict[str, float | None]]:
    """The grid of the finest band, after checking every band can be brought onto it."""
    info = {}
    for key, bf in [*files.items(), *([("SCL", scl)] if scl else [])]:
        with _open(bf.path) as ds:
            if bf.band > ds.count:
                raise SceneError(f"{bf.path} has {ds.count} band(s), not band {bf.band}")
            info[key] = (
                ds.crs,
                ds.transform,
                ds.width,
                ds.height,
                ds.nodatavals[bf.band - 1],
                ds.dtypes[bf.band - 1],
            )
    # The finest band sets the grid; among equals, the first in role order (blue).
    ref = min(files, key=lambda r: (abs(info[r][1].a), ROLES.index(r)))
    crs, transform, width, height, _, _ = info[ref]
    grid = _Grid(crs, transform, width, height)
    if transform.b != 0 or transform.d != 0:
        warnings.warn(
            f"{files[ref].path} has a rotated grid; bands are warped onto it", stacklevel=3
        )
    bounds = rasterio.transform.array_bounds(height, width, transform)
    tol = 0.01 * abs(transform.a)
    nodata: dict[str, float | None] = {}
    for key, (bcrs, btr, bw, bh, bnodata, dtype) in info.items():
        path = files[key].path if key != "SCL" else scl.path  # type: ignore[union-attr]
        if (bcrs is None) != (crs is None):
            raise SceneError(
                f"band {key} ({path}) has {'no' if bcrs is None else 'a'} CRS while band {ref} "
                f"({files[ref].path}) has {crs or 'none'}: the bands cannot be aligned. Give "
                "every band file its coordinate reference system (for example with gdal_edit.py "
                "-a_srs)"
            )
        own = rasterio.transform.array_bounds(bh, bw, btr)
        if bcrs is not None and bcrs != crs:
            try:
                own = transform_bounds(bcrs, crs, *own, densify_pts=21)
            except Exception as err:
                raise SceneError(
                    f"band {key} ({path}) is in {bcrs}, band {ref} in {crs}, and the two "
                    f"cannot be aligned: {err}"
                ) from err
            if not _covers(own, bounds, tol):
                raise SceneError(
                    f"band {key} ({path}) is in {bcrs} and band {ref} ({files[ref].path}) in "
                    f"{crs}; they cover different places and cannot be aligned. Use band files "
                    "of one product"
                )
            warnings.warn(
                f"band {key} ({path}) is in {bcrs}, not {crs}; it is reprojected onto the grid "
                f"of band {ref}",
                stacklevel=3,
            )
        if not _covers(own, bounds, tol):
            raise SceneError(
                f"band {key} ({path}) covers {_fmt(own)} but the {abs(transform.a):g} m grid of "
                f"band {ref} ({files[ref].path}) spans {_fmt(bounds)}: the band does not cover "
                "the grid. Use band files of the same tile and extent"
            )
        if bnodata is not None:
            nodata[key] = float(bnodata)
        elif np.dtype(dtype).kind in "ui":
            # Sentinel-2 L2A marks no data with 0 DN without always declaring it.
            nodata[key] = 0.0
        else:
            nodata[key] = None
    return grid, nodata


def _covers(outer: Sequence[float], inner: Sequence[float], tol: float) -> bool:
    return (
        outer[0] <= inner[0] + tol
        and outer[1] <= inner[1] + tol
        and outer[2] >= inner[2] - tol
        and outer[3] >= inner[3] - tol
    )


def _fmt(b: Sequence[float]) -> str:
    return "({:.1f}, {:.1f}, {:.1f}, {:.1f})".format(*b)


def _resolve_scaling(
    scaling: str | Scaling | None,
    baseline: str | None,
    found: _Found,
    files: dict[str, BandFile],
    src: str,
) -> Scaling | dict[str, Scaling]:
    if isinstance(scaling, Scaling):
        return scaling
    if scaling is not None:
        return scaling_from_name(scaling, baseline or found.baseline)
    if baseline is not None:
        return sentinel2_scaling(baseline)
    if found.scaling_problem is not None:
        raise ScalingError(found.scaling_problem)
    if found.scaling is not None:
        if isinstance(found.scaling, dict):
            return {r: found.scaling[r] for r in files}
        return found.scaling
    dtypes = set()
    for bf in files.values():
        with _open(bf.path) as ds:
            dtypes.add(np.dtype(ds.dtypes[bf.band - 1]).kind)
    if dtypes == {"f"}:
        return REFLECTANCE
    raise ScalingError(
        f"{found.kind} {src} holds digital numbers and says nothing of their scaling, so the "
        "Sentinel-2 BOA offset cannot be decided. Give the scaling: --scaling sentinel2-l2a "
        "(reflectance = DN / 10000, processing baselines before 04.00), --scaling "
        "sentinel2-l2a-offset ((DN - 1000) / 10000, baseline 04.00 and later) or "
        "--baseline 05.09 to decide from the processing baseline"
    )


def _probe(scene: Scene) -> None:
    """Read the last block of every file (truncated files fail there) and check the scaling."""
    for key, bf in [*scene.files.items(), *([("SCL", scene.scl)] if scene.scl else [])]:
        with _open(bf.path) as ds:
            bh, bw = ds.block_shapes[bf.band - 1]
            win = Window(
                max(0, ds.width - bw), max(0, ds.height - bh), min(bw, ds.width), min(bh, ds.height)
            )
            try:
                ds.read(bf.band, window=win)
            except RasterioError as err:
                raise InputFileError(
                    f"cannot read band {key} from {bf.path}: {err}. The file may be truncated or "
                    "corrupt; download or export it again"
                ) from err
    size = 256
    win = Window(
        max(0, scene.width // 2 - size // 2),
        max(0, scene.height // 2 - size // 2),
        min(size, scene.width),
        min(size, scene.height),
    )
    sample = scene.read(win)
    for i, role in enumerate(scene.roles):
        check_reflectance(sample[i], f"band {role} of {scene.source}", scene.scaling_of(role))

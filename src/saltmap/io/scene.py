"""Scenes as six band roles on one grid, read lazily by window.

A :class:`Scene` holds file paths and parameters only; it opens its files when
a window is read (once per process and thread), so it can be pickled to Dask
workers. Bands coarser than the grid (the 20 m SWIR bands of Sentinel-2) are
resampled on the fly with a GDAL warped VRT, bilinear for reflectance and
nearest for the scene classification (SCL), so reading a window of the 10 m
grid reads only the part of each 20 m file that window needs [1]_.

:func:`open_scene` reads

- a folder of per-band files with Sentinel-2 names (``T32TQM_..._B02_10m.jp2``,
  ``B11_20m.tif``, ...), GeoTIFF or JPEG 2000;
- a Sentinel-2 L2A ``.SAFE`` folder or its ``.zip``, with the reflectance scaling
  taken from its ``MTD_MSIL2A.xml`` (quantification value and BOA offsets);
- a multiband raster whose band descriptions name the bands, or with the band
  names given by the user;
- a STAC item (JSON file or URL) whose assets are found by Sentinel-2 band name
  or common name;
- a Landsat Collection 2 Level-2 product folder or its ``.tar``, with the scaling of
  its MTL and the ``QA_PIXEL`` cloud mask;
- single-band files named by the user (``bands={"B": "Blue.tif", ...}``) or whose
  names say their band (``Blue.tif``, ``nir.tif``, ``SWIR1.TIF``).

Each kind of source has its reader (:mod:`~saltmap.io.sentinel2`,
:mod:`~saltmap.io.landsat`, :mod:`~saltmap.io.named_bands`, :mod:`~saltmap.io.stac`,
:mod:`~saltmap.io.multiband`), chosen in
:mod:`~saltmap.io.products`; :mod:`~saltmap.io.rasters` brings the bands found onto
one grid; :mod:`~saltmap.io.scene_inputs` checks what was found and decides the
scaling. This module builds the scene and reads it.

References
----------
.. [1] GDAL warper: https://gdal.org/en/stable/api/gdalwarp_cpp.html
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from saltmap.bands import (
    BANDS,
    ROLES,
    Scaling,
    check_reflectance,
    check_roles,
)
from saltmap.errors import InputFileError, MissingBandError, UnreadableFileError
from saltmap.io.grid import GriddedScene
from saltmap.io.landsat import QA_PIXEL_MASKED, QA_PIXEL_WATER, qa_pixel_masked
from saltmap.io.products import find_bands
from saltmap.io.rasters import (
    RASTER_SUFFIXES,
    BandFile,
    FoundBands,
    Grid,
    ThreadLocalDatasets,
    date_in,
    grid_and_nodata,
    open_raster,
    parse_date,
    same_grid,
)
from saltmap.io.scene_inputs import required_files, resolve_scaling, wanted_roles
from saltmap.io.sentinel2 import SCL_MASKED, SCL_WATER
from saltmap.io.xarray_scene import ArrayScene, is_xarray, open_array_scene

# Names other modules import from here; they live in the modules above.
__all__ = [
    "RASTER_SUFFIXES",
    "SCL_MASKED",
    "SCL_WATER",
    "BandFile",
    "Scene",
    "ThreadLocalDatasets",
    "open_scene",
]


class Scene(GriddedScene, ThreadLocalDatasets):
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
    qa : BandFile or None
        The Landsat ``QA_PIXEL`` band, if any: masked by its bits.
    mask_water : bool
        Whether water (SCL class 6, QA_PIXEL bit 7) is masked too.
    """

    def __init__(
        self,
        files: dict[str, BandFile],
        *,
        grid: Grid,
        scaling: Scaling | dict[str, Scaling],
        source: str,
        nodata: dict[str, float | None] | None = None,
        scl: BandFile | None = None,
        mask_water: bool = False,
        baseline: str | None = None,
        qa: BandFile | None = None,
        date: dt.date | None = None,
        sensor: str | None = None,
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
        self.qa = qa
        self.mask_water = mask_water
        self.baseline = baseline
        self.date = date
        self.sensor = sensor
        self._local = threading.local()

    def __repr__(self) -> str:
        return (
            f"Scene({self.source!r}, roles={self.roles}, {self.width}x{self.height} px, "
            f"crs={self.crs}, res={self.res}, {self._mask_name()})"
        )

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
            "sensor": self.sensor or "unknown",
            "acquired": self.date.isoformat() if self.date else "unknown",
            "scl_mask": self._mask_text(),
            "resampling": "coarser bands bilinear, cloud mask nearest, onto the grid of the "
            "finest band",
        }

    def _mask_name(self) -> str:
        if self.qa is not None:
            return "cloud mask=QA_PIXEL"
        return f"scl={'yes' if self.scl else 'no'}"

    def _mask_text(self) -> str:
        water = self.mask_water
        if self.qa is not None:
            bits = [*QA_PIXEL_MASKED, *([QA_PIXEL_WATER] if water else [])]
            return "QA_PIXEL bits " + ",".join(str(b) for b in bits)
        if self.scl is None:
            return "none"
        return "SCL classes " + ",".join(
            str(c) for c in [*SCL_MASKED, *([SCL_WATER] if water else [])]
        )

    def input_paths(self) -> list[str]:
        """The band files and the cloud mask the pixels are read from."""
        masks = [m.path for m in (self.scl, self.qa) if m is not None]
        return [f.path for f in self.files.values()] + masks

    def on_grid(self, grid: Grid) -> Scene:
        """The same files read onto another grid (warped: another CRS, resolution or extent).

        Pixels of ``grid`` the files do not cover read as no data; a mosaic reads
        each of its scenes this way (:class:`~saltmap.io.mosaic.Mosaic`).
        """
        moved = copy.copy(self)
        moved.__setstate__(self.__getstate__())  # no open datasets of the old grid
        moved.crs, moved.transform = grid.crs, grid.transform
        moved.width, moved.height = int(grid.width), int(grid.height)
        return moved

    def scaling_of(self, role: str) -> Scaling:
        """The scaling of one band role."""
        if isinstance(self.scaling, dict):
            return self.scaling[role]
        return self.scaling

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
        window = self.check_window(window)
        rows, cols = int(window.height), int(window.width)
        out = np.empty((len(roles), rows, cols), dtype=np.float32)
        for i, role in enumerate(roles):
            out[i] = self.scaling_of(role).apply(self._read_band(role, window))
        if self.scl is not None:
            out[:, self._scl_masked(window)] = np.nan
        if self.qa is not None:
            out[:, qa_pixel_masked(self.read_qa(window), self.mask_water)] = np.nan
        return out

    def read_scl(self, window: Window | None = None) -> np.ndarray:
        """The scene classification on the grid (uint8, nearest neighbour)."""
        if self.scl is None:
            raise MissingBandError(f"scene {self.source} has no scene classification (SCL) band")
        window = self.check_window(window)
        reader = self._reader("SCL", self.scl, Resampling.nearest, None, "uint8")
        return _read_or_explain(reader, self.scl, "SCL", window)

    def read_qa(self, window: Window | None = None) -> np.ndarray:
        """The Landsat ``QA_PIXEL`` bits on the grid (uint16, nearest neighbour)."""
        if self.qa is None:
            raise MissingBandError(f"scene {self.source} has no QA_PIXEL band")
        window = self.check_window(window)
        reader = self._reader("QA", self.qa, Resampling.nearest, None, "uint16")
        return _read_or_explain(reader, self.qa, "QA_PIXEL", window)

    def _scl_masked(self, window: Window) -> np.ndarray:
        classes = list(SCL_MASKED) + ([SCL_WATER] if self.mask_water else [])
        return np.isin(self.read_scl(window), classes)

    def _read_band(self, role: str, window: Window) -> np.ndarray:
        bf = self.files[role]
        nodata = self.nodata.get(role)
        reader = self._reader(role, bf, Resampling.bilinear, nodata, "float32")
        data = _read_or_explain(reader, bf, role, window, out_dtype="float32")
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
            src = open_raster(bf.path)
            vrt = None
            if not same_grid(src, self):
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


def _read_or_explain(
    reader: Any, bf: BandFile, what: str, window: Window, **options: Any
) -> np.ndarray:
    """Read a window of a band; a GDAL error names the file and the window."""
    try:
        return reader.read(bf.band, window=window, **options)
    except RasterioError as err:
        raise UnreadableFileError(
            f"cannot read band {what} from {bf.path} in the window of rows "
            f"{window.row_off}-{window.row_off + window.height - 1}, columns "
            f"{window.col_off}-{window.col_off + window.width - 1} of the grid: {err}. The "
            "file may be truncated or corrupt; download or export it again",
            bf.path,
        ) from err


def open_scene(
    source: str | Path | Sequence[str | Path] | Any,
    *,
    bands: Sequence[str] | Mapping[str, Any] | None = None,
    scaling: str | Scaling | None = None,
    baseline: str | None = None,
    mask_water: bool = False,
    roles: Sequence[str] | None = None,
    use_scl: bool = True,
    date: str | dt.date | None = None,
) -> Scene | ArrayScene:
    """Open a scene as band roles on the grid of its finest band.

    Nothing but headers (and a small probe window) is read: pixels are read by
    :meth:`Scene.read`. Every check that can fail is made here, before any output
    is written by a caller.

    Parameters
    ----------
    source : str, Path or sequence of paths
        A folder of per-band files with Sentinel-2 names (``*_B02_10m.jp2``,
        ``B11_20m.tif``) or with names that say their band (``Blue.tif``, ``NIR.tif``),
        a ``.SAFE`` folder or its ``.zip``, a Landsat Collection 2 Level-2 folder or
        ``.tar``, a multiband raster, a STAC item (``.json`` path or URL), a list of
        single-band files whose names say their band, or an xarray DataArray or Dataset
        of the bands (opened by :func:`~saltmap.io.xarray_scene.open_array_scene`, which
        takes the same keywords).
    bands : sequence of str or mapping of str to str, optional
        A mapping gives the file of each band role, relative to the folder
        ``source`` or absolute: ``{"B": "Blue.tif", "N": "nir_band.tif"}``; roles it
        leaves out are found in the folder by their names. For a multiband
        raster, the name of each of its bands in file order (``B02``, ``blue``,
        ``SCL``; ``-`` to skip one), needed when the file
        has no band descriptions. For other sources, the bands to read, by
        role or name (same as ``roles``).
    scaling : str or Scaling, optional
        Digital numbers to reflectance: ``sentinel2-l2a`` (DN / 10000),
        ``sentinel2-l2a-offset`` ((DN - 1000) / 10000), ``sentinel2`` (decided
        from ``baseline``), ``reflectance``, ``SCALE,OFFSET`` or a
        :class:`~saltmap.bands.Scaling`. Overrides the metadata of a SAFE
        product, Landsat MTL or STAC item. Required for integer files without
        metadata (``landsat-c2l2`` for Landsat Collection 2 Level-2 digital numbers).
    baseline : str, optional
        The Sentinel-2 processing baseline (``"05.09"``): decides the BOA offset
        when ``scaling`` is not given.
    mask_water : bool
        Also mask water (SCL class 6, Landsat QA_PIXEL bit 7).
    roles : sequence of str, optional
        Band roles the scene must provide; all six by default.
    use_scl : bool
        Mask pixels by the cloud mask when one is found (SCL or QA_PIXEL).
    date : str or datetime.date, optional
        The acquisition date (``"2025-03-16"``), when the product does not say it: a
        mosaic of several dates orders its scenes by it. By default the product
        metadata's (Landsat MTL, STAC item) or the first date in the file names.

    Returns
    -------
    Scene
        An :class:`~saltmap.io.xarray_scene.ArrayScene` for an xarray object.

    Raises
    ------
    MissingBandError
        A required band is not in the source (the message lists what was found).
    SceneError
        Bands cannot be brought onto one grid, a band does not cover it, or two
        files claim one band role.
    InputFileError
        A file is missing, unreadable or truncated.
    ScalingError
        The scaling cannot be decided, or gives implausible reflectance.

    Warns
    -----
    UserWarning
        A Landsat product without ``QA_PIXEL``: no cloud mask.
    """
    if is_xarray(source):
        return open_array_scene(
            source, bands=bands, scaling=scaling, baseline=baseline, date=date, roles=roles,
            mask_water=mask_water, use_scl=use_scl,
        )  # fmt: skip
    named = dict(bands) if isinstance(bands, Mapping) else None
    if named is not None:
        bands = None
    if isinstance(source, (str, Path)):
        src = str(source)
        where: str | list[str] = src
    else:
        where = [str(p) for p in source]
        src = ", ".join(where)
    # For a list of files, ``bands`` (a sequence) can only mean the roles wanted.
    wanted, bands = wanted_roles(src if isinstance(where, str) else "", bands, roles)
    found = find_bands(where, bands, named)
    files = required_files(found, wanted, src)
    scl = found.scl if use_scl else None
    qa = found.qa if use_scl else None
    grid, nodata = grid_and_nodata(files, scl or qa, src)
    resolved = resolve_scaling(scaling, baseline, found, files, src)
    scene = Scene(
        files,
        grid=grid,
        scaling=resolved,
        source=src,
        nodata=nodata,
        scl=scl,
        mask_water=mask_water,
        baseline=baseline or found.baseline,
        qa=qa,
        date=_acquisition_date(date, found, [src, *(f.path for f in files.values())]),
        sensor=found.sensor,
    )
    _probe(scene)
    return scene


def _acquisition_date(
    given: str | dt.date | None, found: FoundBands, names: Sequence[str]
) -> dt.date | None:
    """The date the user gives, else the product's, else the first in the file names."""
    return parse_date(given) or found.date or date_in(*names)


def _probe(scene: Scene) -> None:
    """Read the last block of every file (truncated files fail there) and check the scaling."""
    masks = [("SCL", scene.scl)] if scene.scl else [("QA_PIXEL", scene.qa)] if scene.qa else []
    for key, bf in [*scene.files.items(), *masks]:
        with open_raster(bf.path) as ds:
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

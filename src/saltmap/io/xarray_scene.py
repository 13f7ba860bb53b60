"""xarray objects as scenes: the six bands of a DataArray or Dataset, read by window.

odc-stac, stackstac and rioxarray return satellite images as xarray objects, lazy
(backed by dask) or in memory. :func:`open_array_scene` takes one as it comes and
returns an :class:`ArrayScene`, which the map engine and the extraction read like a
:class:`~saltmap.io.scene.Scene`: a window of the grid at a time, so a lazy array is
computed one block at a time and memory stays bounded by the block, whatever the
size of the image.

What is read from the object:

- **bands**: a DataArray's ``band`` (or ``bands``, ``variable``) coordinate, or a
  Dataset's data variables, named as saltmap names bands anywhere (``blue``, ``B02``,
  ``SR_B2``, ``swir16``; :func:`saltmap.bands.role_of`,
  :func:`~saltmap.io.named_bands.role_of_file`), or given by the user
  (``bands={"N": "nir08"}``). ``nir08``, the Earth Search name of the narrow NIR
  (Sentinel-2 B8A, Landsat OLI band 5), is the NIR role when no band is ``nir``
  itself. A band named ``scl`` masks clouds as the Sentinel-2 scene classification
  does, one named ``qa_pixel`` as the Landsat ``QA_PIXEL`` bits do.
- **CRS**: rioxarray's ``obj.rio.crs``, else the ``spatial_ref`` coordinate's
  ``crs_wkt`` (CF, odc-stac), else ``attrs["crs"]`` (stackstac), else odc-geo's
  ``obj.odc.crs``.
- **grid**: the ``x``/``y`` (or ``longitude``/``latitude``) coordinates, pixel centres
  and evenly spaced; a stackstac ``attrs["transform"]`` says whether they are pixel
  corners instead. Rows run north to south: an array stored south up is flipped
  (lazily).
- **date**: a ``time`` coordinate, of one date: a longer time dimension is refused.

:mod:`~saltmap.io.xarray_layout` reads this layout; this module builds the scene and
reads it. xarray, dask and rioxarray are imported only when an xarray object is given,
so they stay optional.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from saltmap.bands import (
    REFLECTANCE,
    ROLES,
    Scaling,
    check_reflectance,
    check_roles,
    scaling_from_name,
)
from saltmap.errors import MissingBandError, ScalingError, SceneError
from saltmap.io.grid import GriddedScene
from saltmap.io.landsat import QA_PIXEL_MASKED, QA_PIXEL_WATER, qa_pixel_masked
from saltmap.io.rasters import parse_date
from saltmap.io.scene_inputs import wanted_roles
from saltmap.io.sentinel2 import SCL_MASKED, SCL_WATER
from saltmap.io.xarray_layout import (
    QA_KEY,
    SCL_KEY,
    assign_roles,
    bands_by_name,
    crs_of,
    north_up,
    one_date,
    spatial_dims,
    transform_of,
)

__all__ = ["ArrayScene", "is_xarray", "open_array_scene"]


def is_xarray(obj: Any) -> bool:
    """Whether ``obj`` is an xarray DataArray or Dataset (without importing xarray)."""
    return type(obj).__module__.startswith("xarray") and type(obj).__name__ in (
        "DataArray",
        "Dataset",
    )


class ArrayScene(GriddedScene):
    """The band roles of an xarray object on its own grid, read by window.

    Build it with :func:`open_array_scene` (or :func:`~saltmap.io.scene.open_scene`,
    which passes xarray objects on). It holds each band as a two-dimensional
    ``xarray.Variable`` (rows north to south): a window is sliced out and only that
    window computed, all bands in one synchronous dask computation, so a block reads
    only the chunks it covers: memory is bounded by the block and the array's chunks
    (chunk a large array in pieces about the block size, ``chunks={"x": 512, "y": 512}``).
    It pickles with its arrays (a dask array as its task graph, an in-memory array
    whole), for process-pool and Dask workers.

    Attributes
    ----------
    crs, transform, width, height
        The grid of the array.
    roles : tuple of str
        Band roles available, in :data:`saltmap.bands.ROLES` order.
    names : dict of str
        The name of each role (and of the cloud mask) in the xarray object.
    scaling : Scaling
        Digital numbers to reflectance.
    nodata : dict of float or None
        The value that means no data, by role.
    scl, qa : str or None
        The name of the band used as Sentinel-2 scene classification or Landsat
        ``QA_PIXEL`` cloud mask, if any.
    """

    def __init__(
        self,
        layers: Mapping[str, Any],
        names: Mapping[str, str],
        *,
        crs: CRS,
        transform: Affine,
        scaling: Scaling,
        source: str,
        nodata: Mapping[str, float | None] | None = None,
        mask_water: bool = False,
        date: dt.date | None = None,
        sensor: str | None = None,
    ) -> None:
        self.roles: tuple[str, ...] = tuple(r for r in ROLES if r in layers)
        self._layers = {k: layers[k] for k in [*self.roles, SCL_KEY, QA_KEY] if k in layers}
        self.names = {k: names[k] for k in self._layers}
        self.height, self.width = (int(n) for n in self._layers[self.roles[0]].shape)
        self.crs = crs
        self.transform = transform
        self.scaling = scaling
        self.source = source
        self.nodata = dict(nodata or {})
        self.scl = self.names.get(SCL_KEY)
        self.qa = self.names.get(QA_KEY)
        self.mask_water = mask_water
        self.date = date
        self.sensor = sensor

    def __repr__(self) -> str:
        return (
            f"ArrayScene({self.source!r}, roles={self.roles}, {self.width}x{self.height} px, "
            f"crs={self.crs}, res={self.res}, lazy={self.is_lazy})"
        )

    @property
    def is_lazy(self) -> bool:
        """Whether the bands are dask arrays, computed window by window."""
        return any(v.chunks is not None for v in self._layers.values())

    def scaling_of(self, role: str) -> Scaling:
        """The scaling of one band role (one for all bands of an array)."""
        return self.scaling

    def describe(self) -> dict[str, str]:
        """What the scene is, as text: for output metadata and reports."""
        return {
            "scene": self.source,
            "bands": " ".join(f"{r}={self.names[r]}" for r in self.roles),
            "scaling": self.scaling.describe(),
            "processing_baseline": "unknown",
            "sensor": self.sensor or "unknown",
            "acquired": self.date.isoformat() if self.date else "unknown",
            "scl_mask": self._mask_text(),
            "resampling": "none: the array's own grid",
        }

    def _mask_text(self) -> str:
        if self.qa is not None:
            bits = [*QA_PIXEL_MASKED, *([QA_PIXEL_WATER] if self.mask_water else [])]
            return f"QA_PIXEL ({self.qa}) bits " + ",".join(str(b) for b in bits)
        if self.scl is None:
            return "none"
        classes = [*SCL_MASKED, *([SCL_WATER] if self.mask_water else [])]
        return f"SCL ({self.scl}) classes " + ",".join(str(c) for c in classes)

    def digest_state(self) -> tuple[Any, ...]:
        """What decides the pixels read, for the resume key of a map.

        A dask array counts by its name, dask's deterministic token of its inputs and
        operations (rioxarray's includes each file's path and modification time):
        its pickled graph holds per-open identifiers, so two opens of the same files
        would never share a key. Other arrays count by their values.
        """
        layers = {k: ("dask", v.data.name) if v.chunks else v for k, v in self._layers.items()}
        return (
            self.crs.to_wkt(), tuple(self.transform), self.width, self.height, self.roles,
            self.scaling, sorted(self.nodata.items()), self.mask_water, layers,
        )  # fmt: skip

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
            Surface reflectance, NaN where a band has no data (NaN or its nodata
            value) or the cloud mask removes the pixel.
        """
        roles = self.roles if roles is None else tuple(roles)
        check_roles(roles, self.roles, f"scene {self.source}")
        window = self.check_window(window)
        masks = [k for k in (SCL_KEY, QA_KEY) if k in self._layers]
        values = self._compute([*roles, *masks], window)
        out = np.empty((len(roles), int(window.height), int(window.width)), dtype=np.float32)
        for i, role in enumerate(roles):
            # a copy: an in-memory array's window is a view of the user's array
            band = np.array(values[role], dtype=np.float32)
            nodata = self.nodata.get(role)
            if nodata is not None:
                band[band == nodata] = np.nan
            out[i] = self.scaling.apply(band)
        if SCL_KEY in values:
            classes = [*SCL_MASKED, *([SCL_WATER] if self.mask_water else [])]
            out[:, np.isin(_codes(values[SCL_KEY]), classes)] = np.nan
        if QA_KEY in values:
            out[:, qa_pixel_masked(_codes(values[QA_KEY]), self.mask_water)] = np.nan
        return out

    def read_scl(self, window: Window | None = None) -> np.ndarray:
        """The scene classification band on the grid (integer classes, 0 where NaN)."""
        if self.scl is None:
            raise MissingBandError(f"scene {self.source} has no scene classification (SCL) band")
        return _codes(self._compute([SCL_KEY], self.check_window(window))[SCL_KEY])

    def read_qa(self, window: Window | None = None) -> np.ndarray:
        """The Landsat ``QA_PIXEL`` bits on the grid (integers, 0 where NaN)."""
        if self.qa is None:
            raise MissingBandError(f"scene {self.source} has no QA_PIXEL band")
        return _codes(self._compute([QA_KEY], self.check_window(window))[QA_KEY])

    def _compute(self, keys: Sequence[str], window: Window) -> dict[str, np.ndarray]:
        rows = slice(int(window.row_off), int(window.row_off + window.height))
        cols = slice(int(window.col_off), int(window.col_off + window.width))
        pieces = [self._layers[k][rows, cols] for k in keys]
        if any(p.chunks is not None for p in pieces):
            import dask

            # Synchronous: the map engine already runs one block per core, and on a Dask
            # worker the block's chunks are read there rather than sent back to the cluster.
            arrays = dask.compute(*(p.data for p in pieces), scheduler="synchronous")
        else:
            arrays = [p.values for p in pieces]
        return dict(zip(keys, arrays, strict=True))


def _codes(values: np.ndarray) -> np.ndarray:
    """A cloud mask band as integers; NaN (a float band's no data) as 0."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        values = np.nan_to_num(values, nan=0.0)
    return values.astype(np.int64)


def open_array_scene(
    obj: Any,
    *,
    bands: Sequence[str] | Mapping[str, Any] | None = None,
    scaling: str | Scaling | None = None,
    baseline: str | None = None,
    date: str | dt.date | None = None,
    roles: Sequence[str] | None = None,
    nodata: float | None = None,
    mask_water: bool = False,
    use_scl: bool = True,
) -> ArrayScene:
    """Open an xarray DataArray or Dataset of band images as a scene.

    Nothing but a small probe window is computed; every check that can fail is made
    here, before a caller writes any output.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        A DataArray with a ``band`` (``bands``, ``variable``) dimension whose
        coordinate names the bands, as stackstac and ``Dataset.to_array()`` give, or a
        Dataset whose data variables are the bands, as odc-stac gives; dimensions
        ``y``/``x`` (or ``latitude``/``longitude``) and at most one ``time``. Lazy
        (dask) or in memory.
    bands : mapping or sequence of str, optional
        A mapping gives the band of each role by its name (or coordinate value) in
        ``obj``: ``{"N": "nir08", "S1": "B11"}``; roles it leaves out are found by
        their names. A sequence names the roles wanted (same as ``roles``).
    scaling : str or Scaling, optional
        Digital numbers to reflectance, as for :func:`~saltmap.io.scene.open_scene`:
        ``sentinel2-l2a``, ``sentinel2-l2a-offset``, ``sentinel2`` (with
        ``baseline``), ``landsat-c2l2``, ``reflectance``, ``SCALE,OFFSET``. Required
        for integer arrays; float arrays are taken as reflectance without it.
    baseline : str, optional
        The Sentinel-2 processing baseline, for ``scaling="sentinel2"``.
    date : str or datetime.date, optional
        The acquisition date; by default the ``time`` coordinate's.
    roles : sequence of str, optional
        Band roles the scene must provide; all six by default.
    nodata : float, optional
        The value that means no data in every band; by default each band's
        ``_FillValue`` or ``nodata`` attribute. NaN is always no data.
    mask_water : bool
        Also mask water (SCL class 6, QA_PIXEL bit 7).
    use_scl : bool
        Mask clouds with a band named ``scl`` or ``qa_pixel`` when there is one.

    Returns
    -------
    ArrayScene

    Raises
    ------
    SceneError
        No CRS, several dates, no band or spatial dimension, an uneven or rotated grid.
    MissingBandError
        A required band is not in ``obj`` (the message lists its bands).
    ScalingError
        Integer values without a scaling, or a scaling giving implausible reflectance.
    """
    if not is_xarray(obj):
        raise SceneError(f"expected an xarray DataArray or Dataset, not {type(obj).__name__}")
    source = _describe_source(obj)
    named = dict(bands) if isinstance(bands, Mapping) else None
    wanted, _ = wanted_roles("", None if named is not None else bands, roles)
    obj = one_date(obj, source)
    ydim, xdim = spatial_dims(obj, source)
    crs = crs_of(obj, source)
    transform = transform_of(obj, ydim, xdim, source)
    by_name = bands_by_name(obj, ydim, xdim, source)
    keys = assign_roles(list(by_name), named, wanted, use_scl, source)
    layers = {key: by_name[name] for key, name in keys.items()}
    layers, transform = north_up(layers, transform)
    scene = ArrayScene(
        layers,
        keys,
        crs=crs,
        transform=transform,
        scaling=_scaling(scaling, baseline, {r: layers[r] for r in wanted}, source),
        source=source,
        nodata={r: _nodata_of(layers[r], nodata) for r in wanted},
        mask_water=mask_water,
        date=_date_of(obj, date),
        sensor=_scalar_text(obj, "platform"),
    )
    _probe(scene)
    return scene


# -------------------------------------------------------------------- the object


def _describe_source(obj: Any) -> str:
    """``xarray.DataArray 'name' (band: 6, y: 558, x: 605)``, for messages and metadata."""
    sizes = ", ".join(f"{d}: {n}" for d, n in obj.sizes.items())
    name = f" {obj.name!r}" if getattr(obj, "name", None) is not None else ""
    return f"xarray.{type(obj).__name__}{name} ({sizes})"


# ------------------------------------------------------------- values and metadata


def _scaling(
    scaling: str | Scaling | None, baseline: str | None, bands: Mapping[str, Any], source: str
) -> Scaling:
    """The user's scaling, or reflectance for float bands; integers need one."""
    if isinstance(scaling, Scaling):
        return scaling
    if scaling is not None:
        return scaling_from_name(scaling, baseline)
    dtypes = sorted({str(v.dtype) for v in bands.values()})
    if all(np.dtype(d).kind == "f" for d in dtypes):
        return REFLECTANCE
    raise ScalingError(
        f"{source} holds digital numbers ({', '.join(dtypes)}) and says nothing of their "
        "scaling. Give it: scaling='sentinel2-l2a-offset' ((DN - 1000) / 10000, Sentinel-2 "
        "L2A processing baseline 04.00 and later), 'sentinel2-l2a' (DN / 10000, earlier "
        "baselines), 'landsat-c2l2' (Landsat Collection 2 Level-2, DN × 0.0000275 - 0.2) or "
        "'SCALE,OFFSET'; or convert the array to reflectance as floats"
    )


def _nodata_of(band: Any, given: float | None) -> float | None:
    """The no-data value of a band: the user's, else its ``_FillValue`` or ``nodata``."""
    value = given
    for key in ("_FillValue", "nodata"):
        if value is None:
            value = band.attrs.get(key)
    if value is None or np.isnan(float(value)):
        return None  # NaN is no data anyway
    return float(value)


def _date_of(obj: Any, given: str | dt.date | None) -> dt.date | None:
    if given is not None:
        return parse_date(given)
    time = obj.coords.get("time")
    if time is None or time.size != 1 or time.dtype.kind != "M":
        return None
    return np.datetime64(time.values.ravel()[0], "D").item()


def _scalar_text(obj: Any, name: str) -> str | None:
    """A scalar coordinate or attribute as text (stackstac's ``platform``), or None."""
    value = obj.coords.get(name)
    if value is not None:
        return str(value.values.ravel()[0]) if value.size == 1 else None
    value = obj.attrs.get(name)
    return str(value) if value is not None else None


def _probe(scene: ArrayScene) -> None:
    """Read a window at the centre and check the scaling gives plausible reflectance."""
    size = 256
    win = Window(
        max(0, scene.width // 2 - size // 2),
        max(0, scene.height // 2 - size // 2),
        min(size, scene.width),
        min(size, scene.height),
    )
    sample = scene.read(win)
    for i, role in enumerate(scene.roles):
        check_reflectance(sample[i], f"band {role} of {scene.source}", scene.scaling)

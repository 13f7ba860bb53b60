"""How an xarray object lays out a scene: its bands, its date and its grid.

:func:`bands_by_name` takes the bands of a DataArray's ``band`` (or ``bands``,
``variable``) dimension or of a Dataset's data variables, each as a 2-D
``xarray.Variable`` (y, x); :func:`assign_roles` names their roles as saltmap names
bands anywhere (:func:`saltmap.bands.role_of`,
:func:`~saltmap.io.named_bands.role_of_file`) or as the user says. :func:`crs_of` and
:func:`transform_of` place the grid (rioxarray, the CF ``spatial_ref`` coordinate,
stackstac's attributes, odc-geo), :func:`north_up` turns an array stored south up, and
:func:`one_date` drops a time dimension of one date. Used by
:func:`~saltmap.io.xarray_scene.open_array_scene`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from saltmap.bands import BANDS, ROLES, role_of
from saltmap.errors import MissingBandError, SceneError
from saltmap.io.named_bands import role_of_file

__all__ = [
    "QA_KEY",
    "SCL_KEY",
    "assign_roles",
    "bands_by_name",
    "crs_of",
    "north_up",
    "one_date",
    "spatial_dims",
    "transform_of",
]

_BAND_DIMS = ("band", "bands", "variable")
_Y_DIMS = ("y", "latitude", "lat")
_X_DIMS = ("x", "longitude", "lon")
# Earth Search's narrow NIR (Sentinel-2 B8A, Landsat OLI band 5): the NIR role only
# when no band is the NIR by its own name.
_NARROW_NIR = "nir08"
#: The keys of the cloud masks beside the band roles: Sentinel-2 SCL, Landsat QA_PIXEL.
SCL_KEY, QA_KEY = "SCL", "QA"


def one_date(obj: Any, source: str) -> Any:
    """``obj`` without its time dimension; more than one date is refused."""
    if "time" not in obj.dims:
        return obj
    n = obj.sizes["time"]
    if n == 1:
        return obj.isel(time=0)
    raise SceneError(
        f"{source} holds {n} dates along 'time'; a scene is one acquisition. Select one "
        "date with obj.isel(time=i) or obj.sel(time='YYYY-MM-DD'), or give the dates as "
        "separate scenes of a mosaic ([obj.isel(time=i) for i in range(n)])"
    )


def spatial_dims(obj: Any, source: str) -> tuple[str, str]:
    ydim = next((d for d in _Y_DIMS if d in obj.dims), None)
    xdim = next((d for d in _X_DIMS if d in obj.dims), None)
    if ydim is None or xdim is None:
        raise SceneError(
            f"{source} has no spatial dimensions y and x (dimensions: {list(obj.dims)}); "
            "rename them, for example obj.rename({'rows': 'y', 'cols': 'x'})"
        )
    return ydim, xdim


def bands_by_name(obj: Any, ydim: str, xdim: str, source: str) -> dict[str, Any]:
    """Each band of ``obj`` by its name, as a 2-D ``xarray.Variable`` with dims (y, x)."""
    if type(obj).__name__ == "Dataset":
        found = {str(k): v for k, v in obj.data_vars.items() if {ydim, xdim} <= set(v.dims)}
    else:
        bdim = next((d for d in _BAND_DIMS if d in obj.dims), None)
        if bdim is None:
            raise SceneError(
                f"{source} has no band dimension (dimensions: {list(obj.dims)}); give the "
                "bands along a dimension 'band' whose coordinate names them "
                "(obj.assign_coords(band=['blue', 'green', ...])), or as a Dataset"
            )
        found = {}
        for i, name in enumerate(_band_names(obj, bdim)):
            if name in found:
                raise SceneError(f"{source}: two bands are named {name!r}; rename one")
            found[name] = obj.isel({bdim: i})
    return {name: _plane(v, ydim, xdim, source) for name, v in found.items()}


def _band_names(obj: Any, bdim: str) -> list[str]:
    """The coordinate values of the band dimension; rioxarray's band descriptions
    (``long_name``) when the coordinate only numbers the bands."""
    n = obj.sizes[bdim]
    values = [str(v) for v in obj[bdim].values] if bdim in obj.coords else []
    described = obj.attrs.get("long_name")
    numbered = all(v.isdigit() for v in values)
    if numbered and isinstance(described, list | tuple) and len(described) == n:
        return [str(d) for d in described]
    return values or [str(i + 1) for i in range(n)]


def _plane(band: Any, ydim: str, xdim: str, source: str) -> Any:
    """One band as a 2-D variable (y, x): other dimensions of length 1 are dropped."""
    extra = {d: n for d, n in band.sizes.items() if d not in (ydim, xdim)}
    wide = {d: n for d, n in extra.items() if n > 1}
    if wide:
        raise SceneError(
            f"{source}: band {band.name!r} has dimension(s) {wide} besides {ydim}, {xdim} and "
            "the bands; select one value of each (obj.isel(dim=i))"
        )
    return band.isel({d: 0 for d in extra}).variable.transpose(ydim, xdim)


def assign_roles(
    names: list[str],
    given: Mapping[str, Any] | None,
    wanted: tuple[str, ...],
    use_scl: bool,
    source: str,
) -> dict[str, str]:
    """The band name of each wanted role (and of the cloud mask): the user's, then
    whole names (``blue``, ``B02``), then words of names (``unnao_red``), then ``nir08``."""
    keys = _given_roles(names, given or {}, source)
    taken = set(keys.values())
    for find in (_key_of_whole_name, role_of_file, _narrow_nir):
        found: dict[str, str] = {}
        for name in names:
            key = find(name) if name not in taken else None
            if key is None or key in keys:
                continue
            if key in found:
                raise SceneError(
                    f"{source}: two bands claim band {key}: {found[key]!r} and {name!r}; say "
                    f"which with bands={{'{key}': {found[key]!r}}}"
                )
            found[key] = name
        keys.update(found)
        taken |= set(found.values())
    missing = [r for r in wanted if r not in keys]
    if missing:
        what = ", ".join(f"{r} ({BANDS[r].long_name}, {BANDS[r].common_name})" for r in missing)
        raise MissingBandError(
            f"{source} lacks band(s) {what}; its bands are {names}. Give the band of each "
            f"missing role by its name there: bands={{'{missing[0]}': 'NAME', ...}}"
        )
    masks = [k for k in (SCL_KEY, QA_KEY) if k in keys and use_scl][:1]
    return {k: keys[k] for k in [*wanted, *masks]}


def _given_roles(names: list[str], given: Mapping[str, Any], source: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for key, name in given.items():
        role = key if key in ROLES else role_of(key)
        if role is None:
            raise SceneError(
                f"bands={{{key!r}: {name!r}}}: {key!r} is not a band role; roles are "
                f"{list(ROLES)} (or their names: blue, green, red, nir, swir1, swir2)"
            )
        if str(name) not in names:
            raise MissingBandError(
                f"{source} has no band {name!r} (given for {role}); its bands are {names}"
            )
        keys[role] = str(name)
    return keys


def _key_of_whole_name(name: str) -> str | None:
    """The role (or cloud mask) a band's whole name says: ``blue``, ``B02``, ``scl``."""
    return role_of(name) or {"scl": SCL_KEY, "qapixel": QA_KEY}.get(_squash(name))


def _narrow_nir(name: str) -> str | None:
    return "N" if _squash(name) == _NARROW_NIR else None


def _squash(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


# ---------------------------------------------------------------------- the grid


def crs_of(obj: Any, source: str) -> CRS:
    """The CRS: rioxarray's, the CF grid mapping's, stackstac's attribute or odc-geo's."""
    found = _rio(obj, lambda rio: rio.crs)
    ref = obj.coords.get("spatial_ref")
    if found is None and ref is not None:
        found = ref.attrs.get("crs_wkt") or ref.attrs.get("spatial_ref")
    if found is None:
        found = obj.attrs.get("crs")
    if found is None:
        odc = getattr(obj, "odc", None)
        found = getattr(odc, "crs", None)
    if found is None:
        raise SceneError(
            f"{source} has no CRS (no rioxarray CRS, spatial_ref coordinate or 'crs' "
            "attribute); give it, for example obj.rio.write_crs('EPSG:32633') with rioxarray "
            "or obj.attrs['crs'] = 'EPSG:32633'"
        )
    try:
        return CRS.from_user_input(found.to_wkt() if hasattr(found, "to_wkt") else found)
    except CRSError as err:
        raise SceneError(
            f"{source}: its CRS {found!r} is not understood ({err}); set one such as "
            "obj.rio.write_crs('EPSG:32633')"
        ) from err


def _rio(obj: Any, get: Any) -> Any:
    """``get(obj.rio)`` when rioxarray is installed and gives an answer, else None."""
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
    except ImportError:
        return None
    try:
        return get(obj.rio)
    except Exception:  # rioxarray refuses objects it cannot place; other ways follow
        return None


def transform_of(obj: Any, ydim: str, xdim: str, source: str) -> Affine:
    """The affine transform from the coordinates (pixel centres, or corners as stackstac's
    ``attrs["transform"]`` says), else from rioxarray (a grid of one row or column)."""
    given = obj.attrs.get("transform")
    given = Affine(*list(given)[:6]) if given is not None else None
    xs, ys = (
        np.asarray(obj[d].values, dtype=float) if d in obj.coords else None for d in (xdim, ydim)
    )
    if xs is not None and ys is not None and xs.size > 1 and ys.size > 1:
        a, e = _step(xs, xdim, source), _step(ys, ydim, source)
        # Coordinates are pixel centres unless they fall on the pixel corners of a given grid.
        shift = 0.0 if given is not None and _on_corners(xs[0], given.c, a) else 0.5
        transform = Affine(a, 0.0, xs[0] - shift * a, 0.0, e, ys[0] - shift * e)
    else:
        transform = given or _rio(obj, lambda rio: rio.transform())
    if transform is None:
        raise SceneError(
            f"{source}: its grid cannot be placed: no {xdim}/{ydim} coordinates and no "
            "transform; give them, for example obj.rio.write_transform(transform)"
        )
    if transform.b or transform.d:
        raise SceneError(f"{source}: its grid is rotated ({transform}); reproject it north up")
    return transform


def _step(coords: np.ndarray, dim: str, source: str) -> float:
    """The spacing of evenly spaced coordinates; uneven ones are refused."""
    step = (coords[-1] - coords[0]) / (coords.size - 1)
    if step == 0 or np.max(np.abs(np.diff(coords) - step)) > 1e-3 * abs(step):
        raise SceneError(
            f"{source}: the {dim} coordinates are not evenly spaced, so they are no raster "
            "grid; reproject or resample the array onto a regular grid (obj.rio.reproject)"
        )
    return float(step)


def _on_corners(first: float, origin: float, step: float) -> bool:
    offset = ((first - origin) / step) % 1.0
    return min(offset, 1.0 - offset) < 0.25


def north_up(layers: dict[str, Any], transform: Affine) -> tuple[dict[str, Any], Affine]:
    """Layers and transform with rows north to south and columns west to east
    (a lazy reversed view of an array stored south up)."""
    height, width = next(iter(layers.values())).shape
    if transform.e > 0:
        layers = {k: v[::-1, :] for k, v in layers.items()}
        transform = transform @ Affine.translation(0, height) @ Affine.scale(1, -1)
    if transform.a < 0:
        layers = {k: v[:, ::-1] for k, v in layers.items()}
        transform = transform @ Affine.translation(width, 0) @ Affine.scale(-1, 1)
    return layers, transform

"""Landsat Collection 2 Level-2 products: a folder or its ``.tar`` as downloaded.

:func:`find_landsat_dir` and :func:`find_landsat_tar` return the
:class:`~saltmap.io.rasters.FoundBands` of a product (``*_SR_B*.TIF``, ``*_QA_PIXEL.TIF``,
``*_MTL.txt`` or ``*_MTL.json``); a ``.tar`` is read in place through GDAL's
``/vsitar/`` (nothing is extracted).

- The band numbering of the sensor decides the roles (:data:`~saltmap.bands.LANDSAT_SR_BANDS`):
  OLI (Landsat 8/9) SR_B2..SR_B7, TM (Landsat 4/5) and ETM+ (Landsat 7) SR_B1..SR_B5 and
  SR_B7. The sensor comes from the MTL (``SENSOR_ID``, ``SPACECRAFT_ID``), else from the
  product id that starts the file names (``LC08``, ``LC09``, ``LE07``, ``LT05``), else from
  the bands present (SR_B6 is reflective only on OLI).
- The scaling comes from the MTL group ``LEVEL2_SURFACE_REFLECTANCE_PARAMETERS``
  (``REFLECTANCE_MULT_BAND_n``, ``REFLECTANCE_ADD_BAND_n``), else the Collection 2 constants
  DN × 2.75e-5 − 0.2 [1]_. The ``LEVEL1_RADIOMETRIC_RESCALING`` group carries keys of the same
  name for top-of-atmosphere reflectance; they are never used.
- ``QA_PIXEL`` masks like the Sentinel-2 SCL: the bits of :data:`QA_PIXEL_MASKED` always,
  :data:`QA_PIXEL_WATER` when water is masked [1]_. A product without it opens with a
  warning that there is no cloud mask.

References
----------
.. [1] USGS (2022). Landsat 8-9 Collection 2 Level-2 Science Product Guide, LSDS-1619,
   version 4: surface reflectance scaling (section 4.2) and the Pixel Quality Assessment
   band QA_PIXEL bit flags (table 6-3). The Landsat 4-7 guide (LSDS-1618) gives the same
   QA_PIXEL bits for TM and ETM+ (bit 2, cirrus, is unused there).
"""

from __future__ import annotations

import json
import re
import tarfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from saltmap.bands import LANDSAT_C2L2, LANDSAT_SR_BANDS, Scaling
from saltmap.errors import InputFileError
from saltmap.io.rasters import (
    RASTER_SUFFIXES,
    BandFile,
    FoundBands,
    collapse_scalings,
    date_in,
)

#: QA_PIXEL bits whose pixels are masked: bit number -> meaning (USGS LSDS-1619, table 6-3).
QA_PIXEL_MASKED: dict[int, str] = {
    0: "fill",
    1: "dilated cloud",
    2: "cirrus",
    3: "cloud",
    4: "cloud shadow",
    5: "snow",
}
#: The QA_PIXEL water bit, masked only when asked (``mask_water=True``).
QA_PIXEL_WATER = 7

_SR_BAND = re.compile(r"(?:^|[_\-.])SR_B(\d{1,2})\.(?:tif|tiff)$", re.IGNORECASE)
_QA_PIXEL = re.compile(r"(?:^|[_\-.])QA_PIXEL\.(?:tif|tiff)$", re.IGNORECASE)
_MTL = re.compile(r"(?:^|_)MTL\.(txt|json)$", re.IGNORECASE)
# Product ids start LXSS: X the sensor (C OLI/TIRS, O OLI, E ETM+, T TM), SS the satellite.
_PRODUCT_ID = re.compile(r"^L([COET])(0[4-9])_", re.IGNORECASE)
_SENSOR_OF_LETTER = {"C": "OLI", "O": "OLI", "E": "ETM+", "T": "TM"}
_SENSOR_OF_SPACECRAFT = {4: "TM", 5: "TM", 7: "ETM+", 8: "OLI", 9: "OLI"}


def qa_pixel_masked(qa: np.ndarray, mask_water: bool = False) -> np.ndarray:
    """True where QA_PIXEL flags a pixel to mask (fill, clouds, shadow, snow; water if asked)."""
    bits = [*QA_PIXEL_MASKED, *([QA_PIXEL_WATER] if mask_water else [])]
    flags = sum(1 << b for b in bits)
    return (np.asarray(qa).astype(np.uint32) & flags) != 0


def is_landsat_names(names: list[str]) -> bool:
    """Whether file names are those of a Landsat Collection 2 Level-2 product (``*_SR_B*``)."""
    return any(_SR_BAND.search(n.rsplit("/", 1)[-1]) for n in names)


def find_landsat_dir(path: Path) -> FoundBands:
    """The bands, QA_PIXEL and scaling of a Landsat Collection 2 Level-2 product folder."""
    names = sorted(p.name for p in path.iterdir() if p.is_file())
    mtl = _pick_mtl(names)
    text = (path / mtl).read_text(errors="replace") if mtl else None
    return _landsat_found(names, lambda n: str(path / n), str(path), mtl, text)


def find_landsat_tar(src: str) -> FoundBands:
    """The same of a product ``.tar`` as downloaded, read through ``/vsitar/``."""
    try:
        with tarfile.open(src) as tf:
            # A member cut short raises here ("unexpected end of data").
            names = sorted(m.name for m in tf.getmembers() if m.isfile())
            mtl = _pick_mtl(names)
            member = tf.extractfile(mtl) if mtl else None
            text = member.read().decode("utf-8", "replace") if member else None
    except (tarfile.TarError, OSError) as err:
        raise InputFileError(
            f"cannot read {src} as a tar archive: {err}. The download may be incomplete"
        ) from err
    if not is_landsat_names(names):
        raise InputFileError(
            f"{src} holds no *_SR_B*.TIF files: it is not a Landsat Collection 2 Level-2 "
            f"product (members: {', '.join(n.rsplit('/', 1)[-1] for n in names[:12]) or 'none'})"
        )
    absolute = str(Path(src).resolve())
    return _landsat_found(names, lambda n: f"/vsitar/{absolute}/{n}", src, mtl, text)


def _pick_mtl(names: list[str]) -> str | None:
    # The text MTL is the reference; the JSON carries the same keys.
    mtls = sorted((n for n in names if _MTL.search(n)), key=lambda n: not n.lower().endswith("txt"))
    return mtls[0] if mtls else None


def _landsat_found(
    names: list[str],
    to_path: Callable[[str], str],
    where: str,
    mtl_name: str | None,
    mtl_text: str | None,
) -> FoundBands:
    mtl = parse_mtl(mtl_text, mtl_name or "") if mtl_text is not None else {}
    by_number = {}
    qa = None
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if (m := _SR_BAND.search(base)) is not None:
            by_number[int(m.group(1))] = name
        elif _QA_PIXEL.search(base):
            qa = name
    sensor, spacecraft = _sensor(mtl, names, set(by_number))
    numbers = LANDSAT_SR_BANDS[sensor]
    found = FoundBands(kind=f"{spacecraft} {sensor} Collection 2 Level-2 product")
    found.seen = [n.rsplit("/", 1)[-1] for n in names if n.lower().endswith(RASTER_SUFFIXES)]
    found.band_names = {role: f"SR_B{n}" for role, n in numbers.items()}
    found.hint = "Download the product again, or give the band files with --band ROLE=FILE"
    found.sensor = f"{spacecraft} {sensor}"
    found.date = date_in(_lookup(mtl, "DATE_ACQUIRED") or "", *names)
    for role, number in numbers.items():
        if number in by_number:
            found.files[role] = BandFile(to_path(by_number[number]), 1, f"SR_B{number}")
    if qa is not None:
        found.qa = BandFile(to_path(qa), 1, "QA_PIXEL")
    else:
        warnings.warn(
            f"{where} has no *_QA_PIXEL.TIF: no cloud mask; clouds, their shadows and snow "
            "are mapped as soil",
            stacklevel=4,
        )
    found.scaling = _scaling(mtl, numbers, found.files, mtl_name)
    return found


def parse_mtl(text: str, name: str) -> dict[str, dict[str, str]]:
    """The groups of an MTL file (text ``KEY = value`` or JSON) as ``{group: {key: value}}``."""
    groups: dict[str, dict[str, str]] = {}
    if name.lower().endswith(".json"):
        try:
            _flatten_json(json.loads(text), "", groups)
        except json.JSONDecodeError as err:
            raise InputFileError(f"{name} is not readable JSON: {err}") from err
        return groups
    stack: list[str] = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip().strip('"')
        if key == "GROUP":
            stack.append(value)
        elif key == "END_GROUP":
            if stack:
                stack.pop()
        else:
            groups.setdefault(stack[-1] if stack else "", {})[key] = value
    return groups


def _flatten_json(node: object, group: str, groups: dict[str, dict[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict):
                _flatten_json(value, key, groups)
            else:
                groups.setdefault(group, {})[key] = str(value)


def _lookup(mtl: dict[str, dict[str, str]], key: str) -> str | None:
    for values in mtl.values():
        if key in values:
            return values[key]
    return None


def _sensor(mtl: dict[str, dict[str, str]], names: list[str], numbers: set[int]) -> tuple[str, str]:
    """(sensor, spacecraft) from the MTL, the product id of the file names, or the bands."""
    sensor_id = (_lookup(mtl, "SENSOR_ID") or "").upper()
    craft = re.search(r"(\d)$", _lookup(mtl, "SPACECRAFT_ID") or "")
    number = int(craft.group(1)) if craft else None
    if number is None:
        ids = [m for n in names if (m := _PRODUCT_ID.match(n.rsplit("/", 1)[-1]))]
        if ids:
            number = int(ids[0].group(2))
            sensor_id = sensor_id or _SENSOR_OF_LETTER[ids[0].group(1).upper()]
    spacecraft = f"Landsat {number}" if number else "Landsat"
    if "OLI" in sensor_id:
        return "OLI", spacecraft
    if "ETM" in sensor_id:
        return "ETM+", spacecraft
    if "TM" in sensor_id:
        return "TM", spacecraft
    if number in _SENSOR_OF_SPACECRAFT:
        return _SENSOR_OF_SPACECRAFT[number], spacecraft
    # No metadata and no product id: SR_B6 is a reflective band only on OLI.
    return ("OLI" if 6 in numbers else "TM"), spacecraft


def _scaling(
    mtl: dict[str, dict[str, str]],
    numbers: dict[str, int],
    files: dict[str, BandFile],
    mtl_name: str | None,
) -> Scaling | dict[str, Scaling]:
    """Each band's surface reflectance scaling from the MTL's Level-2 group, else the constants."""
    group = mtl.get("LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", {})
    scalings = {}
    for role in files:
        n = numbers[role]
        mult, add = group.get(f"REFLECTANCE_MULT_BAND_{n}"), group.get(f"REFLECTANCE_ADD_BAND_{n}")
        try:
            scale, offset = float(mult), float(add)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            scalings[role] = LANDSAT_C2L2
            continue
        name = f"landsat-c2l2 (from {mtl_name.rsplit('/', 1)[-1] if mtl_name else 'MTL'})"
        scalings[role] = Scaling(scale, offset, name)
    return collapse_scalings(scalings)

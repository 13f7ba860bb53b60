"""Sentinel-2 L2A products: band files named by band, the .SAFE folder or zip, the SCL.

The readers here find the band files of a Sentinel-2 source and return
:class:`~saltmap.io.rasters.FoundBands`:

- :func:`find_folder`: a folder of per-band files with Sentinel-2 names
  (``T32TQM_..._B02_10m.jp2``, ``B11_20m.tif``), GeoTIFF or JPEG 2000;
- :func:`find_safe_dir` and :func:`find_safe_zip`: an L2A ``.SAFE`` folder or its
  ``.zip``, each band at its native resolution, with the reflectance scaling taken
  from ``MTD_MSIL2A.xml`` (quantification value and BOA offsets of the processing
  baseline) [1]_. A Level-1C product is refused: the models need surface reflectance.

:data:`SCL_MASKED` and :data:`SCL_WATER` are the scene classification classes a
:class:`~saltmap.io.scene.Scene` masks. :func:`band_tokens` reads a Sentinel-2 band
name (``B02``, ``B8A``, ``SCL``) and resolution out of a file or asset name.

References
----------
.. [1] ESA (2022). Sentinel-2 Products Specification Document, issue 14.9:
   L2A product layout, ``BOA_QUANTIFICATION_VALUE`` and ``BOA_ADD_OFFSET``,
   scene classification classes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from saltmap.bands import BANDS, Scaling, role_of, sentinel2_scaling
from saltmap.errors import InputFileError, SceneError
from saltmap.io.rasters import RASTER_SUFFIXES, BandFile, FoundBands, collapse_scalings

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

# Sentinel-2 band numbers in the order of the ``band_id`` attribute of MTD_MSIL2A.xml.
_S2_BAND_IDS = tuple("B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12".split())
_BAND_TOKEN = re.compile(r"^B(\d{1,2}|8A)$", re.IGNORECASE)
_RES_TOKEN = re.compile(r"^(\d+)m$", re.IGNORECASE)


def band_tokens(name: str) -> tuple[str | None, int | None]:
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


def pick_by_name(
    names: Iterable[str],
    to_path: Callable[[str], str],
    kind: str,
    where: str,
    found: FoundBands | None = None,
) -> FoundBands:
    """Assign file names to roles by their Sentinel-2 band token, finest resolution first."""
    found = found or FoundBands(kind=kind)
    candidates: dict[str, list[tuple[int, str]]] = {}
    for name in sorted(names):
        band, res = band_tokens(name)
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
        bf = BandFile(to_path(tied[0]), 1, band_tokens(tied[0])[0] or key)
        if key == "SCL":
            found.scl = bf
        else:
            found.files[key] = bf
    if found.files:  # files named by Sentinel-2 band tokens are Sentinel-2's
        found.sensor = found.sensor or "Sentinel-2 MSI"
    return found


def find_folder(path: Path) -> FoundBands:
    """The band files of a folder, by the Sentinel-2 band named in each file name."""
    names = [p.name for p in path.iterdir() if p.is_file() and p.suffix.lower() in RASTER_SUFFIXES]
    return pick_by_name(names, lambda n: str(path / n), "folder", str(path))


def is_safe_folder(path: Path) -> bool:
    """Whether a folder is a Sentinel-2 product (``.SAFE`` name or its metadata file)."""
    return path.name.lower().endswith(".safe") or any(
        (path / f"MTD_MSIL{level}.xml").exists() for level in ("2A", "1C")
    )


_L1C_MESSAGE = (
    "{src} is a Sentinel-2 Level-1C product (top-of-atmosphere reflectance); saltmap needs "
    "Level-2A surface reflectance, as the field samples and models use. Download the L2A "
    "product of the same date, or process this one with ESA's Sen2Cor"
)


def find_safe_dir(path: Path) -> FoundBands:
    """The bands and scaling of an L2A ``.SAFE`` folder."""
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


def find_safe_zip(src: str) -> FoundBands:
    """The bands and scaling of a zipped L2A ``.SAFE``, read through ``/vsizip/``."""
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


def _safe_bands(names: list[str], to_path: Callable[[str], str], where: str) -> FoundBands:
    # Each band is taken at its native resolution: 10 m for B02-B08, 20 m for B11, B12, SCL.
    native = {"B": 10, "G": 10, "R": 10, "N": 10, "S1": 20, "S2": 20, "SCL": 20}
    chosen = []
    for name in names:
        band, res = band_tokens(name)
        key = "SCL" if band == "SCL" else (role_of(band) if band else None)
        if key is not None and res == native[key]:
            chosen.append(name)
    found = pick_by_name(chosen, to_path, "Sentinel-2 product", where)
    found.seen = sorted({n.rsplit("/", 1)[-1] for n in names})
    return found


def _safe_metadata(xml: bytes, where: str, found: FoundBands) -> None:
    """Scaling of each band from the product metadata: (DN + BOA_ADD_OFFSET) / quantification."""
    quant, by_band, has_offsets = _read_metadata(xml, where, found)
    if quant is None:
        found.scaling_problem = (
            f"{where} has no BOA_QUANTIFICATION_VALUE, so digital numbers cannot be turned into "
            "reflectance; give --scaling (for example sentinel2-l2a-offset)"
        )
        return
    if not has_offsets and found.baseline is not None:
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
    found.scaling = collapse_scalings(scalings)


def _read_metadata(
    xml: bytes, where: str, found: FoundBands
) -> tuple[float | None, dict[str, float], bool]:
    """Quantification value, BOA offset by band name and whether any offset was given.

    The processing baseline goes into ``found.baseline``.
    """
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
    by_band: dict[str, float] = {}
    for band_id, offset in offsets.items():
        name = physical.get(band_id) or (
            _S2_BAND_IDS[band_id] if 0 <= band_id < len(_S2_BAND_IDS) else ""
        )
        token, _ = band_tokens(name)
        if token:
            by_band[token] = offset
    return quant, by_band, bool(offsets)

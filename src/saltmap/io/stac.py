"""STAC items: the assets of one item found by Sentinel-2 band name or common name.

:func:`find_stac` reads an item (a JSON file or URL) and returns the
:class:`~saltmap.io.rasters.FoundBands` of its single-band assets, preferring a
Cloud-Optimized GeoTIFF to a JPEG 2000 copy of the same band. The scaling comes
from the assets' ``raster:bands`` scale and offset when every band has them, else
from the item's ``s2:processing_baseline``.
"""

from __future__ import annotations

import json
from typing import Any

from saltmap.bands import Scaling, role_of, sentinel2_scaling
from saltmap.errors import InputFileError
from saltmap.io.rasters import BandFile, FoundBands, collapse_scalings
from saltmap.io.sentinel2 import band_tokens


def find_stac(src: str) -> FoundBands:
    """The band assets of the STAC item at ``src`` (path or URL), and their scaling."""
    import pystac  # optional until a STAC item is opened

    try:
        item = pystac.Item.from_file(src)
    except (OSError, json.JSONDecodeError, pystac.STACError, KeyError, ValueError) as err:
        raise InputFileError(
            f"cannot read {src} as a STAC item: {err}. Give the JSON of one item (a Feature)"
        ) from err
    found = FoundBands(kind="STAC item")
    ranked: dict[str, list[tuple[int, str, BandFile, Any]]] = {}
    for key, asset in item.assets.items():
        target = _asset_target(key, asset)
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
    if item.datetime is not None:
        found.date = item.datetime.date()
    platform = str(item.properties.get("platform", ""))
    if platform:
        found.sensor = "Sentinel-2 MSI" if "sentinel-2" in platform.lower() else platform
    baseline = item.properties.get("s2:processing_baseline")
    found.baseline = str(baseline) if baseline is not None else None
    if scalings and set(scalings) == set(found.files):
        found.scaling = collapse_scalings(scalings)
    elif found.baseline is not None:
        found.scaling = sentinel2_scaling(found.baseline)
    return found


def _asset_target(key: str, asset: Any) -> str | None:
    """The band role (or ``"SCL"``) an asset holds, by its key or band names; None if none."""
    eo = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    if len(eo) > 1:  # the true-colour preview and other composites
        return None
    info = eo[0] if eo else {}
    names = [
        key,
        info.get("name", ""),
        info.get("common_name", ""),
        info.get("eo:common_name", ""),
    ]
    for name in names:
        band, _ = band_tokens(name) if name else (None, None)
        if band == "SCL":
            return "SCL"
        candidate = role_of(band) if band else role_of(name) if name else None
        if candidate is not None:
            return candidate
    return None

"""A SYNTHETIC Sentinel-2 L2A tile for the mapping benchmarks (NOT real data).

10 m bands B02 B03 B04 B08 and 20 m bands B11 B12 as uint16 DN with the BOA offset of
baseline 04.00+, tiled deflate GeoTIFFs, in ``benchmarks/.cache/`` (git-ignored): fields
as jittered parcels of six land covers with their own spectra and brightness, smooth
regional gradients, pixel noise and a no-data corner like a swath edge. It is built
strip by strip, so building is bounded in memory too (a full 10980 px tile: ~2 min).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

CACHE = Path(__file__).resolve().parent / ".cache"
FULL_SIZE = 10980  # a Sentinel-2 tile at 10 m
ORIGIN = (499980.0, 5300020.0)  # like a Sentinel-2 MGRS tile corner
CRS = "EPSG:32719"
BANDS = {"B02": 10, "B03": 10, "B04": 10, "B08": 10, "B11": 20, "B12": 20}
ROLE_INDEX = {"B02": 0, "B03": 1, "B04": 2, "B08": 3, "B11": 4, "B12": 5}

# Reflectance of the six land covers in B02 B03 B04 B08 B11 B12, and how common each is.
COVERS = np.array(
    [
        [0.25, 0.28, 0.31, 0.34, 0.38, 0.33],  # salt crust
        [0.10, 0.14, 0.18, 0.24, 0.32, 0.28],  # bare soil
        [0.03, 0.06, 0.04, 0.35, 0.20, 0.10],  # irrigated crop
        [0.06, 0.09, 0.10, 0.22, 0.25, 0.18],  # sparse vegetation
        [0.05, 0.06, 0.04, 0.02, 0.01, 0.005],  # water
        [0.12, 0.13, 0.14, 0.18, 0.22, 0.20],  # built-up
    ],
    dtype=np.float32,
)
COVER_SHARE = np.array([0.12, 0.30, 0.25, 0.23, 0.04, 0.06])


# ------------------------------------------------------------------ the synthetic tile


def _hash(a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) per integer pair: a cheap deterministic hash of parcel ids."""
    h = (a.astype(np.uint64) * np.uint64(73856093)) ^ (b.astype(np.uint64) * np.uint64(19349663))
    h = (h ^ np.uint64(salt * 83492791)) * np.uint64(2654435761)
    h ^= h >> np.uint64(13)
    return (h % np.uint64(1_000_003)).astype(np.float64) / 1_000_003.0


def reflectance_at(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Synthetic reflectance (6, ...) at positions x, y given in 10 m pixels."""
    # Field edges are not straight lines: warp the coordinates smoothly.
    xw = x + 14 * np.sin(y / 173.0) + 6 * np.sin((x + y) / 61.0)
    yw = y + 11 * np.sin(x / 211.0) + 5 * np.cos((x - y) / 47.0)
    px, py = np.floor(xw / 85.0), np.floor(yw / 55.0)
    u = _hash(px, py, 1)
    cover = np.searchsorted(np.cumsum(COVER_SHARE), u, side="right").clip(0, len(COVERS) - 1)
    bright = 0.8 + 0.4 * _hash(px, py, 2)
    regional = (
        1.0
        + 0.10 * np.sin(x / 820.0 + 0.3) * np.cos(y / 640.0)
        + 0.05 * np.sin((x + 2 * y) / 2300.0)
    )
    base = COVERS[cover].transpose(-1, *range(cover.ndim))  # (6, ...)
    noise = 1.0 + 0.03 * rng.standard_normal(base.shape).astype(np.float32)
    return (base * (bright * regional).astype(np.float32) * noise).astype(np.float32)


def _nodata_corner(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    # A swath edge: the upper-left corner of the tile has no data.
    return (x + y) < 0.3 * size


def tile_folder(size: int = FULL_SIZE) -> Path:
    """Where the synthetic tile of ``size`` x ``size`` 10 m pixels is cached."""
    return CACHE / ("s2_tile_synthetic" if size == FULL_SIZE else f"s2_tile_synthetic_{size}")


def build_tile(size: int = FULL_SIZE, strip: int = 512) -> Path:
    """Write the synthetic tile of ``size`` 10 m pixels a side (skipped if complete)."""
    folder = tile_folder(size)
    done = folder / "complete.json"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for res in (10, 20):
        n = size if res == 10 else size // 2
        names = [b for b, r in BANDS.items() if r == res]
        profile = {
            "driver": "GTiff",
            "width": n,
            "height": n,
            "count": 1,
            "dtype": "uint16",
            "nodata": 0,
            "crs": CRS,
            "transform": from_origin(*ORIGIN, res, res),
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "compress": "deflate",
            "predictor": 2,
        }
        outs = {b: rasterio.open(folder / f"SYNTH_{b}_{res}m.tif", "w", **profile) for b in names}
        try:
            for row in range(0, n, strip):
                rows = min(strip, n - row)
                rng = np.random.default_rng([res, row])
                # pixel centres in 10 m pixel units
                yy, xx = np.mgrid[row : row + rows, 0:n].astype(np.float64)
                scale = res / 10
                x, y = (xx + 0.5) * scale, (yy + 0.5) * scale
                refl = reflectance_at(x, y, rng)
                # DN of processing baseline >= 04.00: reflectance * 10000 + 1000
                dn = np.clip(np.round(refl * 10000 + 1000), 1, 65535).astype(np.uint16)
                dn[:, _nodata_corner(x, y, size)] = 0
                for b in names:
                    outs[b].write(dn[ROLE_INDEX[b]], 1, window=Window(0, row, n, rows))
        finally:
            for ds in outs.values():
                ds.close()
    done.write_text(json.dumps({"built_seconds": time.perf_counter() - started}))
    return folder

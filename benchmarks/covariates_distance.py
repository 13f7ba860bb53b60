"""Time and memory of saltmap.distance_to_features on a full Sentinel-2 tile grid.

Synthetic: a 10980 x 10980 grid at 10 m (UTM 19S) and a synthetic wiggly "coastline"
of 2000 vertices crossing it. Prints wall time, pixels/s and peak RSS. Run:

    .venv/bin/python benchmarks/covariates_distance.py [--size 10980] [--margin 5000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
from affine import Affine
from rasterio.crs import CRS
from shapely.geometry import LineString

from saltmap.features.covariate_layers import distance_to_features


class SyntheticGrid:
    """Just the grid attributes distance_to_features reads from a Scene."""

    def __init__(self, size: int) -> None:
        self.crs = CRS.from_epsg(32719)
        self.transform = Affine(10.0, 0, 600_000.0, 0, -10.0, 4_700_000.0)
        self.width = self.height = size

    from saltmap.io.scene import Scene

    shape = Scene.shape
    res = Scene.res
    bounds = Scene.bounds
    block_windows = Scene.block_windows
    window_transform = Scene.window_transform


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--margin", type=float, default=5000.0)
    parser.add_argument("--block-size", type=int, default=1024)
    args = parser.parse_args()
    grid = SyntheticGrid(args.size)
    west, south, east, north = grid.bounds
    t = np.linspace(0, 1, 2000)
    rng = np.random.default_rng(0)
    xs = west + t * (east - west)
    ys = south + (0.3 + 0.2 * t + 0.03 * np.sin(40 * t)) * (north - south)
    ys += np.cumsum(rng.normal(0, 20, t.size))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_coast.gpkg"
        gpd.GeoDataFrame(geometry=[LineString(np.column_stack([xs, ys]))], crs=grid.crs).to_file(
            path
        )
        start = time.perf_counter()
        distance = distance_to_features(path, grid, margin=args.margin, block_size=args.block_size)
        wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pixels = args.size**2
    print(
        f"grid {args.size}x{args.size} ({pixels / 1e6:.0f} Mpx), margin {args.margin:g} m, "
        f"blocks {args.block_size}: {wall:.1f} s, {pixels / wall / 1e6:.2f} Mpx/s, "
        f"peak RSS {peak:.0f} MiB (output alone {distance.nbytes / 2**20:.0f} MiB); "
        f"distance {distance.min():.0f}-{distance.max():.0f} m"
    )


if __name__ == "__main__":
    main()

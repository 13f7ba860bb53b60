"""One map of the SYNTHETIC tile on a fresh ``distributed.LocalCluster``, in a fresh process.

This is how a user maps on a cluster: ``saltmap map --model FILE --scheduler ADDRESS``
starts a process that loads a model file, and is the Dask client. ``map_tile.py``
runs this script once per Dask run, so that the peak memory it reports is the map's
(this process, its scheduler and its workers), not that of the benchmark's own
process, which has trained three models and an evaluation by then.

The cluster runs with the Dask settings named by CONFIG: ``quiet`` (the default; see
``dask_overhead.py``) or ``default`` (Dask's own defaults).

Prints one JSON line: seconds (``map_scene``'s own), peak RSS and PSS of this process
and its workers, the largest process, and their CPU seconds.

Usage::

    python benchmarks/dask_map.py MODEL.skops TILE_FOLDER OUT_FOLDER N_WORKERS BLOCK_SIZE [CONFIG]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dask_overhead import dask_config
from map_tile import map_settings
from measure import PeakRSS


def main() -> None:
    import dask
    import distributed

    from saltmap.io.scene import open_scene
    from saltmap.mapping import map_scene
    from saltmap.models.persistence import load_model

    model_file, folder, out, n_workers, block_size = sys.argv[1:6]
    config = sys.argv[6] if len(sys.argv) > 6 else "quiet"
    model, _ = load_model(model_file)
    scene = open_scene(folder, scaling="sentinel2-l2a-offset")
    with dask.config.set(dask_config(config)):
        cluster = distributed.LocalCluster(
            n_workers=int(n_workers), threads_per_worker=1, processes=True, dashboard_address=":0"
        )
        with cluster:
            settings = map_settings(int(block_size), scheduler=cluster.scheduler_address)
            with PeakRSS() as rss:
                result = map_scene(model, scene, Path(out), settings)
    print(json.dumps({"seconds": result.seconds, "peak": rss.peak, "peak_pss": rss.peak_pss,
                      "peak_process": rss.peak_process, "cpu": rss.cpu}))  # fmt: skip


if __name__ == "__main__":
    main()

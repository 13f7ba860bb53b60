"""Run pyspatialml's ``Raster.predict`` with a pickled model: called by map_tile.py.

Runs inside pyspatialml's own virtual environment (``benchmarks/.cache/pyspatialml-venv``,
with pyspatialml's pins: numpy < 2, pandas < 3), with saltmap's source on PYTHONPATH so
that the pickled saltmap model loads. Prints one JSON line: wall and CPU seconds.

Usage: ``python _pyspatialml_predict.py MODEL.pkl CROP.tif N_JOBS OUT.tif``
"""

from __future__ import annotations

import json
import pickle
import sys
import time


def set_n_jobs(model, n_jobs: int) -> None:
    """What a pyspatialml user does for speed: the model's own threads (RF, XGBoost)."""
    stack = [model]
    seen = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if hasattr(obj, "get_params") and "n_jobs" in getattr(obj, "__dict__", {}):
            obj.n_jobs = n_jobs
            booster = getattr(obj, "_Booster", None)
            if booster is not None:
                booster.set_param({"nthread": n_jobs})
        if hasattr(obj, "get_params"):
            stack.extend(vars(obj).values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())


def main() -> None:
    model_path, crop, n_jobs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    import pyspatialml

    with open(model_path, "rb") as f:
        model = pickle.load(f)
    set_n_jobs(model, n_jobs)
    raster = pyspatialml.Raster(crop)
    t0, c0 = time.perf_counter(), time.process_time()
    raster.predict(model, file_path=out, dtype="float32", nodata=float("nan"))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    import numpy
    import pandas
    import sklearn

    print(json.dumps({
        "seconds": seconds, "cpu": cpu, "pyspatialml": pyspatialml.__version__
        if hasattr(pyspatialml, "__version__") else "0.22.1",
        "numpy": numpy.__version__, "pandas": pandas.__version__, "sklearn": sklearn.__version__,
    }))  # fmt: skip


if __name__ == "__main__":
    main()

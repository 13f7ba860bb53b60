"""Remembered tuning searches, shared explicitly between the models given one cache.

A :class:`TuningCache` replaces the process-wide registry of tuning results of
before issue 12, which forced studies to tune in one process: it is a value, passed
to the :class:`~saltmap.models.tuning.TunedModel` objects that should share it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd


def fingerprint(X: Any, y: np.ndarray) -> str:
    """SHA-256 of a training table (or array) and its target: the rows a search saw."""
    digest = hashlib.sha256()
    if isinstance(X, pd.DataFrame):
        digest.update(repr(list(X.columns)).encode())
    if isinstance(X, pd.DataFrame) and any(X[c].dtype == object for c in X.columns):
        # Categorical covariates are text: hash the table's values instead.
        digest.update(pd.util.hash_pandas_object(X, index=True).to_numpy().tobytes())
    else:
        digest.update(np.ascontiguousarray(np.asarray(X, dtype=float)).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=float).tobytes())
    return digest.hexdigest()


class TuningCache:
    """Tuning results remembered by everything that decides them, to share between models.

    The Stacking model tunes its bases exactly as the single models MLP, RF and
    XGBoost are tuned, so when TunedModels fitted on the same training rows (the
    same fold of a cross-validation) share one cache, the second search of a
    learner is looked up instead of rerun: the same numbers, about half the time.
    Only deterministic searches are kept (no timeout, no observer).

    A cache is an explicit value, shared only by the models it is given to
    (``TunedModel(cache=...)``); without one nothing is shared. Cloning a
    TunedModel keeps its cache (shared, not copied), so the clones in the folds
    of a cross-validation share it. A process of a parallel pool gets a copy of
    its own: less is shared there, the results are the same.

    Parameters
    ----------
    max_size : int, default=4096
        Searches kept; the oldest is forgotten first.
    """

    def __init__(self, max_size: int = 4096) -> None:
        self.max_size = max_size
        self._results: dict[tuple, tuple[dict[str, Any], float]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._results)

    def __repr__(self) -> str:
        return f"TuningCache({len(self)} searches)"

    def __deepcopy__(self, memo: dict[int, Any]) -> TuningCache:
        # sklearn's clone deep-copies parameters that are not estimators: a cache
        # is meant to be shared by the clones, so it is its own copy.
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {"max_size": self.max_size, "_results": dict(self._results)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every remembered search."""
        with self._lock:
            self._results.clear()

    def lookup(
        self, key: tuple, search: Callable[[], tuple[dict[str, Any], float]]
    ) -> tuple[dict[str, Any], float]:
        """The result remembered for ``key``, or ``search()``'s, remembered."""
        with self._lock:
            found = self._results.get(key)
        if found is None:
            found = search()
            with self._lock:
                if len(self._results) >= self.max_size:
                    self._results.pop(next(iter(self._results)))
                self._results[key] = found
        params, rmse = found
        return dict(params), rmse


def clear_tuning_cache() -> None:
    """Nothing to clear: tuning results are shared only through a :class:`TuningCache`.

    Kept for one release for code written when searches were shared process-wide;
    call :meth:`TuningCache.clear` on the cache you pass instead.
    """

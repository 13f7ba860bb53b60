"""Lazy indexes: a stage's public names, imported from their module on first use.

Each stage's ``__init__.py`` holds ``_API = {public name: module of the stage}`` and
``__getattr__, __dir__ = lazy_index(__name__, _API)``, so that importing one module of a
stage does not import the whole stage (PEP 562 module ``__getattr__``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_index(
    package: str, api: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` for the names of ``api``."""

    def __getattr__(name: str) -> Any:
        if name in api:
            return getattr(importlib.import_module(f"{package}.{api[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(api)

    return __getattr__, __dir__

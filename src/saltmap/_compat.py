"""The flat module paths of before the stage subpackages, kept for one release.

``saltmap.covariates`` and its siblings were single modules; issue 12 moved their
contents into stage subpackages, some names to a module of another stage. Each old
module is now a stand-in that warns once and finds a name in the modules that hold
its old contents, so ``from saltmap.covariates import covariate_gain`` keeps working.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any

#: old flat module -> the modules its names live in now (the first is its new home)
MOVED: dict[str, tuple[str, ...]] = {
    "samples": ("io.samples", "io.sample_columns", "io.sample_files"),
    "scene": ("io.scene", "io.rasters", "io.sentinel2", "io.stac", "io.multiband", "io.products"),
    "indices": ("features.indices",),
    "discovery": ("features.discovery", "features.discovered", "features.formulas"),
    "covariates": (
        "features.covariates", "features.covariate_rasters", "features.covariate_layers",
        "models.inspect", "validation.covariates",
    ),
    "extract": ("features.extraction",),
    "spectra": ("features.spectra",),
    "screening": ("features.screening",),
    "modelfile": ("models.persistence", "models.inspect"),
    "evaluation": (
        "validation.evaluation", "validation.results", "validation.scoring",
        "validation.settings", "tables",
    ),
}  # fmt: skip


#: (old flat module, name) -> "module.name" for the names that were also renamed
RENAMED: dict[tuple[str, str], str] = {
    # the two block predictors became one, in mapping; this one also counts unseen levels
    ("covariates", "predict_block"): "mapping.blocks.predict_block_with_unseen",
}


class _OldModule(types.ModuleType):
    """A stand-in for an old path: attributes come from the modules that hold them now."""

    _homes: tuple[str, ...] = ()

    def __getattr__(self, name: str) -> Any:
        renamed = RENAMED.get((self.__name__.rpartition(".")[2], name))
        if renamed is not None:
            module, _, attr = renamed.rpartition(".")
            return getattr(importlib.import_module(f"saltmap.{module}"), attr)
        for home in self._homes:
            module = importlib.import_module(f"saltmap.{home}")
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")

    def __dir__(self) -> list[str]:
        return sorted(
            {n for h in self._homes for n in dir(importlib.import_module(f"saltmap.{h}"))}
        )


def install(old_name: str) -> None:
    """Make ``saltmap.<old>`` the stand-in of its moved contents, warning once."""
    old = old_name.rpartition(".")[2]
    homes = MOVED[old]
    warnings.warn(
        f"saltmap.{old} moved to saltmap.{homes[0]} (old path kept one release)",
        DeprecationWarning,
        stacklevel=3,
    )
    module = _OldModule(old_name, f"Old import path of saltmap.{homes[0]}, kept for one release.")
    module._homes = homes
    sys.modules[old_name] = module

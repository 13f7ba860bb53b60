"""saltmap: soil salinity maps from field samples and Sentinel-2 or Landsat imagery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saltmap")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# The public API by stage subpackage, imported on first use so that `import saltmap`
# stays light (each subpackage's own _API says which module holds a name):
# saltmap.run_study(saltmap.load_study("study.toml")) does what `saltmap run` does.
_API = {
    "load_study": "study",
    "run_study": "study",
    "Study": "study",
    "RunResult": "study",
    "write_example_study": "study",
    "demo_study_path": "study",
    "read_samples": "io",
    "odisha": "io",
    "screen": "features",
    "compute_indices": "features",
    "IndexFeatures": "features",
    "search_indices": "features",
    "discover_cv": "features",
    "spectral_response": "features",
    "fit_lab_sheet": "salinity",
    "classify": "salinity",
    "make_model": "models",
    "train_model": "models",
    "evaluate_study": "validation",
    "save_model": "models",
    "load_model": "models",
    "open_scene": "io",
    "open_array_scene": "io",
    "ArrayScene": "io",
    "extract_at_points": "features",
    "map_scene": "mapping",
    "fit_trust": "trust",
    "load_trust": "models",
    "model_input": "models",
    "covariate_gain": "validation",
    "distance_to_features": "features",
    "terrain": "features",
    "render_report": "report",
    # settings objects, built once and passed to the functions above
    "ColumnOptions": "io",
    "TuneSettings": "models",
    "EvaluationSettings": "validation",
    "GainSettings": "validation",
    "TrustSettings": "trust",
    "MapSettings": "mapping",
}
__all__ = ["__version__", *_API]
_MODULES = frozenset(
    {"atomic", "bands", "datasets", "errors", "features", "io", "mapping", "models", "plots",
     "progress", "report", "salinity", "study", "trust", "validation"}
)  # fmt: skip
# The flat modules of before the stage subpackages, kept for one release: each
# warns and is the module it moved to.
_OLD_MODULES = frozenset(
    {"covariates", "discovery", "evaluation", "extract", "indices", "modelfile", "samples",
     "scene", "screening", "spectra"}
)  # fmt: skip


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.{_API[name]}"), name)
    if name in _MODULES | _OLD_MODULES:  # saltmap.datasets.odisha_samples() without an import
        return importlib.import_module(f"saltmap.{name}")
    raise AttributeError(f"module 'saltmap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""saltmap: soil salinity maps from field samples and Sentinel-2 or Landsat imagery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saltmap")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

# The public API, imported on first use so that `import saltmap` stays light:
# saltmap.run_study(saltmap.load_study("study.toml")) does what `saltmap run` does.
_API = {
    "load_study": "study",
    "run_study": "study",
    "Study": "study",
    "RunResult": "study",
    "write_example_study": "study",
    "demo_study_path": "study",
    "read_samples": "samples",
    "odisha": "samples",
    "screen": "screening",
    "compute_indices": "indices",
    "IndexFeatures": "indices",
    "search_indices": "discovery",
    "discover_cv": "discovery",
    "spectral_response": "spectra",
    "fit_lab_sheet": "salinity",
    "classify": "salinity",
    "make_model": "models",
    "train_model": "models",
    "evaluate_study": "evaluation",
    "save_model": "modelfile",
    "load_model": "modelfile",
    "open_scene": "scene",
    "extract_at_points": "extract",
    "map_scene": "mapping",
    "fit_trust": "trust",
    "load_trust": "modelfile",
    "model_input": "covariates",
    "covariate_gain": "covariates",
    "distance_to_features": "covariates",
    "terrain": "covariates",
    "render_report": "report",
}
__all__ = ["__version__", *_API]
_MODULES = frozenset(
    {"atomic", "bands", "covariates", "datasets", "discovery", "errors", "evaluation", "extract",
     "indices", "mapping", "modelfile", "models", "plots", "report", "salinity", "samples",
     "scene", "screening", "spectra", "study", "trust", "validation"}
)  # fmt: skip


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.{_API[name]}"), name)
    if name in _MODULES:  # saltmap.datasets.odisha_samples() without a separate import
        return importlib.import_module(f"saltmap.{name}")
    raise AttributeError(f"module 'saltmap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

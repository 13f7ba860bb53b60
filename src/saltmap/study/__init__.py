"""A whole study from one TOML file: schema, run and report."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "AOAConfig": "runner",
    "ClassesConfig": "runner",
    "CovariatesConfig": "runner",
    "DiscoveryConfig": "runner",
    "IndicesConfig": "runner",
    "InputPath": "runner",
    "IntervalsConfig": "runner",
    "MODEL_NAMES": "runner",
    "ModelName": "runner",
    "ModelsConfig": "runner",
    "OutputsConfig": "runner",
    "PROTOCOLS": "runner",
    "RECORDED_PACKAGES": "runner",
    "RunResult": "runner",
    "STEPS": "runner",
    "SaltConversionConfig": "runner",
    "SamplesConfig": "runner",
    "Scaling": "runner",
    "SceneConfig": "runner",
    "SceneSource": "runner",
    "SpectraConfig": "runner",
    "StepRecord": "runner",
    "Study": "runner",
    "StudyConfig": "runner",
    "TuningConfig": "runner",
    "ValidationConfig": "runner",
    "compact_baseline_table": "runner",
    "compact_cv_table": "runner",
    "compact_gain_table": "runner",
    "compact_importance_table": "runner",
    "demo_study_path": "runner",
    "describe_errors": "runner",
    "evaluation_highlights": "runner",
    "example_study_text": "runner",
    "expand_path_text": "runner",
    "load_study": "runner",
    "log": "runner",
    "package_versions": "runner",
    "run_study": "runner",
    "study_from_text": "runner",
    "validate_study": "runner",
    "write_example_study": "runner",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.study.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.study' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

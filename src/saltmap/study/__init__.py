"""A whole study from one TOML file: the schema (config, sections, paths, schema_errors),
the run context, one module per step (steps/), the report's tables, and the runner."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "AOAConfig": "sections",
    "ClassesConfig": "sections",
    "CovariatesConfig": "sections",
    "DiscoveryConfig": "sections",
    "IndicesConfig": "sections",
    "InputPath": "paths",
    "IntervalsConfig": "sections",
    "MODEL_NAMES": "sections",
    "ModelName": "sections",
    "ModelsConfig": "sections",
    "OutputsConfig": "sections",
    "PROTOCOLS": "sections",
    "RECORDED_PACKAGES": "context",
    "RunContext": "context",
    "RunResult": "context",
    "STEPS": "context",
    "SaltConversionConfig": "sections",
    "SamplesConfig": "sections",
    "Scaling": "sections",
    "SceneConfig": "sections",
    "SceneSource": "paths",
    "Skip": "context",
    "SpectraConfig": "sections",
    "StepRecord": "context",
    "Study": "config",
    "StudyConfig": "config",
    "TuningConfig": "sections",
    "ValidationConfig": "sections",
    "compact_baseline_table": "tables",
    "compact_cv_table": "tables",
    "compact_gain_table": "tables",
    "compact_importance_table": "tables",
    "demo_study_path": "config",
    "describe_errors": "config",
    "discovered_k": "sections",
    "evaluation_highlights": "tables",
    "example_study_text": "config",
    "expand_path_text": "paths",
    "explain_errors": "schema_errors",
    "load_study": "config",
    "log": "context",
    "outer_splits": "folds",
    "outer_splitter": "folds",
    "package_versions": "context",
    "run_study": "runner",
    "slug": "paths",
    "study_from_text": "config",
    "uses_discovered": "sections",
    "validate_study": "config",
    "write_example_study": "config",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.study.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.study' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""The study's models: building, tuning, saved model files, and what a fitted model reads."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "BASE_LEARNERS": "building",
    "BUDGETS": "building",
    "Budget": "building",
    "DEFAULT_PARAMS": "building",
    "FORMAT": "persistence",
    "FORMAT_VERSION": "persistence",
    "FoldObserver": "building",
    "HEADER_NAME": "persistence",
    "MODEL_NAME": "persistence",
    "MODEL_NAMES": "building",
    "OnPredictors": "inspect",
    "REQUIRED_METADATA": "persistence",
    "RETRAIN": "persistence",
    "SEARCH_SPACES": "building",
    "STACK_FOLDS": "building",
    "SerialMLPRegressor": "building",
    "TRUSTED_TYPES": "persistence",
    "TRUST_NAME": "persistence",
    "TRUST_TYPES": "persistence",
    "TunedModel": "building",
    "categorical_of": "inspect",
    "check_indices_defined": "building",
    "clear_tuning_cache": "building",
    "get_budget": "building",
    "library_versions": "persistence",
    "load_model": "persistence",
    "load_trust": "persistence",
    "log10_target": "building",
    "make_model": "building",
    "make_regressor": "building",
    "model_columns": "inspect",
    "model_covariates": "inspect",
    "model_features": "inspect",
    "model_input": "inspect",
    "model_parts": "inspect",
    "pow10_target": "building",
    "predict_salinity": "building",
    "predictor_of_column": "inspect",
    "predictor_step": "inspect",
    "predictors_of": "inspect",
    "read_header": "persistence",
    "save_model": "persistence",
    "seen_rows": "inspect",
    "stacking_regressor": "building",
    "take_rows": "inspect",
    "train_model": "building",
    "tune_model": "building",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.models.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

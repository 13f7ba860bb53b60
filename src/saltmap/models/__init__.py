"""The study's models: building, tuning, saved model files, and what a fitted model reads."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "BASE_LEARNERS": "building",
    "BUDGETS": "tuning",
    "Budget": "tuning",
    "DEFAULT_PARAMS": "building",
    "FORMAT": "persistence",
    "FORMAT_VERSION": "persistence",
    "FoldObserver": "tuning",
    "HEADER_NAME": "persistence",
    "MODEL_NAME": "persistence",
    "MODEL_NAMES": "building",
    "OnPredictors": "inspect",
    "REQUIRED_METADATA": "persistence",
    "RETRAIN": "persistence",
    "SEARCH_SPACES": "tuning",
    "STACK_FOLDS": "building",
    "SerialMLPRegressor": "building",
    "TRUSTED_TYPES": "persistence",
    "TRUST_NAME": "persistence",
    "TRUST_TYPES": "persistence",
    "TuneSettings": "tuning",
    "TunedModel": "tuning",
    "TuningCache": "tuning_cache",
    "categorical_of": "inspect",
    "check_indices_defined": "building",
    "check_model_name": "building",
    "clear_tuning_cache": "tuning_cache",
    "fingerprint": "tuning_cache",
    "get_budget": "tuning",
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
    "split_stacking_params": "building",
    "stacking_regressor": "building",
    "take_rows": "inspect",
    "train_model": "training",
    "tune_model": "tuning",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.models.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

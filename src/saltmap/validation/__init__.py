"""Honest validation: splits, metrics, protocols, the study's evaluation."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "BASELINE": "scoring",
    "BLOCK_SPACING_FACTOR": "splits",
    "CI_METRICS": "metrics",
    "CVResult": "metrics",
    "CorrelationSelector": "protocols",
    "CovariateGain": "covariates",
    "EvaluationResult": "results",
    "EvaluationSettings": "settings",
    "GainSettings": "covariates",
    "FEATURE_SETS": "settings",
    "FULL": "settings",
    "METRICS": "metrics",
    "PROTOCOLS": "settings",
    "Plan": "settings",
    "QUICK": "settings",
    "SelectIndices": "protocols",
    "SpatialBlockKFold": "splits",
    "baseline_comparison": "scoring",
    "baseline_markdown": "results",
    "bootstrap_draws": "metrics",
    "bootstrap_fold_means": "metrics",
    "collect_folds": "protocols",
    "covariate_gain": "covariates",
    "cross_validate_model": "protocols",
    "cross_validate_models": "protocols",
    "default_block_size": "splits",
    "evaluate_study": "evaluation",
    "evaluation_files": "results",
    "fit_predict_fold": "protocols",
    "honest_markdown": "results",
    "materialise_splits": "splits",
    "paired_difference": "metrics",
    "percentile_ci": "metrics",
    "plain_forest": "scoring",
    "regression_metrics": "metrics",
    "run_evaluation": "evaluation",
    "select_on_all_rows": "evaluation",
    "spatial_blocks": "splits",
    "study_estimator": "settings",
    "study_split": "splits",
    "study_split_scores": "scoring",
    "table4_markdown": "results",
    "target_strata": "splits",
    "to_metric_coords": "splits",
    "write_evaluation": "results",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.validation.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.validation' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

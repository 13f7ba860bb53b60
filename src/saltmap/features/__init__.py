"""Predictors from reflectance.

The index catalogue, discovery, covariates, extraction at points, spectra and screening.
"""

# Public names, imported on first use so that importing one module of the
# stage does not import them all. covariate_gain, CovariateGain (now in
# saltmap.validation.covariates), model_input and predictors_of (now in
# saltmap.models.inspect) still resolve through saltmap.features.covariates's
# aliases for the top-level saltmap names until those point to their new stages.
_API = {
    "Bands": "indices",
    "CATALOGUE": "indices",
    "CATEGORICAL": "covariates",
    "CLASSIC": "indices",
    "CVDiscovery": "discovery",
    "Candidate": "formulas",
    "CovariateRasters": "covariate_rasters",
    "Covariates": "covariates",
    "DEFINITION_READERS": "indices",
    "FAR_STEP": "covariate_layers",
    "GROUPS": "indices",
    "INFREQUENT": "covariates",
    "IndexFeatures": "indices",
    "IndexItem": "indices",
    "LAZY_SET_MODULES": "indices",
    "METHODS": "discovery",
    "NOVEL": "indices",
    "NUMERIC": "covariates",
    "PredictorFeatures": "covariates",
    "Predictors": "covariate_rasters",
    "RANKED_COLUMNS": "discovery",
    "REPORT_COLUMNS": "extraction",
    "SCREEN_COLUMNS": "screening",
    "SENSORS": "spectra",
    "SENSOR_NAMES": "spectra",
    "SET_RESOLVERS": "indices",
    "SPECTRAL_TRANSFORMS": "spectra",
    "STUDY": "indices",
    "STUDY_SETS": "indices",
    "SalinityClasses": "spectra",
    "SearchFunction": "discovery",
    "SearchResult": "discovery",
    "SpectralIndex": "indices",
    "TEMPLATES": "formulas",
    "TRANSFORMS": "formulas",
    "Template": "formulas",
    "Transform": "formulas",
    "UnseenLevelError": "covariates",
    "WEIGHTS": "discovery",
    "assemble_predictors": "covariate_rasters",
    "band_wavelengths": "spectra",
    "catalogue_table": "indices",
    "check_covariates_defined": "covariates",
    "compute_indices": "indices",
    "correlate_columns": "discovery",
    "correlation": "screening",
    "covariates_at_points": "covariate_rasters",
    "definition": "discovered",
    "definitions": "discovered",
    "definitions_of": "discovered",
    "discover_cv": "discovery",
    "distance_to_features": "covariate_layers",
    "enumerate_candidates": "discovery",
    "evaluate_candidates": "discovery",
    "extract_at_points": "extraction",
    "get_index": "indices",
    "index_from_definition": "discovered",
    "index_of": "indices",
    "item_name": "indices",
    "level_text": "covariates",
    "levels_of_codes": "covariate_rasters",
    "load_discovered": "discovered",
    "model_columns": "covariates",
    "model_covariates": "covariates",
    "numeric_values": "covariates",
    "predictor_table": "covariates",
    "read_definitions": "discovered",
    "read_discovered": "discovered",
    "read_vector": "covariate_layers",
    "register": "indices",
    "register_definitions": "discovered",
    "register_discovered": "discovered",
    "required_bands": "indices",
    "resolve": "indices",
    "resolve_discovered": "discovered",
    "resolve_items": "indices",
    "resolve_selection": "discovered",
    "resolve_with_discovered": "discovered",
    "safe_divide": "indices",
    "safe_log": "formulas",
    "safe_sqrt": "indices",
    "salinity_classes": "spectra",
    "save_discovered": "discovery",
    "screen": "screening",
    "screen_table": "screening",
    "search_indices": "discovery",
    "select_discovered": "discovered",
    "sensor_of": "spectra",
    "spectral_response": "spectra",
    "summary": "extraction",
    "terrain": "covariate_layers",
    "undefined_to_nan": "indices",
    "write_covariate": "covariate_layers",
    "write_extracted": "extraction",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.features.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.features' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

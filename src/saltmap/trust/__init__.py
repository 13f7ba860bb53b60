"""How far to trust a prediction: intervals, the area of applicability (aoa), both per map."""

from saltmap._lazy import lazy_index

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "AOA_NODATA": "maps",
    "AreaOfApplicability": "aoa",
    "COMPARED": "calibration",
    "DI_BINS": "maps",
    "LEVELS": "calibration",
    "ResidualSpread": "spread",
    "TRUST_CATEGORIES": "maps",
    "calibration_curve": "calibration",
    "calibration_summary": "calibration",
    "classes_spanned": "maps",
    "held_out_intervals": "calibration",
    "CHUNK_ROWS": "aoa",
    "CONFORMITY_SCORES": "intervals",
    "ConformalIntervals": "intervals",
    "IntervalSettings": "settings",
    "METHODS": "intervals",
    "TRUST_LAYERS": "maps",
    "TrustModel": "maps",
    "TrustSettings": "settings",
    "TrustSummary": "maps",
    "conformal_quantile": "intervals",
    "coverage_summary": "calibration",
    "evaluate_coverage": "calibration",
    "fit_trust": "maps",
    "fold_ids": "intervals",
    "importance_weights": "aoa",
    "random_cv_calibration": "calibration",
    "interval_coverage": "calibration",
    "trust_block": "maps",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_index(__name__, _API)

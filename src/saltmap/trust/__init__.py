"""How far to trust a prediction: intervals, the area of applicability (aoa), both per map."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "AOA_NODATA": "maps",
    "AreaOfApplicability": "aoa",
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
    "coverage_summary": "intervals",
    "evaluate_coverage": "intervals",
    "fit_trust": "maps",
    "fold_ids": "intervals",
    "importance_weights": "aoa",
    "interval_coverage": "intervals",
    "trust_block": "maps",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.trust.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.trust' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""How far to trust a prediction: intervals and the area of applicability."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "AOA_NODATA": "intervals",
    "AreaOfApplicability": "intervals",
    "CHUNK_ROWS": "intervals",
    "CONFORMITY_SCORES": "intervals",
    "ConformalIntervals": "intervals",
    "METHODS": "intervals",
    "TRUST_LAYERS": "intervals",
    "TrustModel": "intervals",
    "TrustSummary": "intervals",
    "conformal_quantile": "intervals",
    "coverage_summary": "intervals",
    "evaluate_coverage": "intervals",
    "fit_trust": "intervals",
    "fold_ids": "intervals",
    "importance_weights": "intervals",
    "interval_coverage": "intervals",
    "trust_block": "intervals",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.trust.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.trust' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

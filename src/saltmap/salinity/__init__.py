"""Salinity quantities: units, EC to salt conversion, lab sheets, class schemes."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "ClassScheme": "units",
    "EC_UNITS": "units",
    "FAO2006_EC": "units",
    "FAO_EC": "units",
    "LabFit": "units",
    "LabSheet": "units",
    "SALT_UNITS": "units",
    "SCHEMES": "units",
    "STUDY": "units",
    "SaltConversion": "units",
    "classify": "units",
    "convert_ec": "units",
    "fit_lab_sheet": "units",
    "fit_salt_conversion": "units",
    "get_scheme": "units",
    "large_residuals": "units",
    "load_conversion": "units",
    "normalise_unit": "units",
    "parse_numbers": "units",
    "quantity_of": "units",
    "ramp_colours": "units",
    "read_lab_sheet": "units",
    "save_conversion": "units",
    "scheme_from_thresholds": "units",
    "unit_in_header": "units",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.salinity.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.salinity' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""Salinity quantities: units, EC to salt conversion, lab sheets, class schemes."""

from saltmap._lazy import lazy_index

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "ClassScheme": "classes",
    "EC_UNITS": "units",
    "FAO2006_EC": "classes",
    "FAO_EC": "classes",
    "LabFit": "labsheet",
    "LabSheet": "labsheet",
    "SALT_UNITS": "units",
    "SCHEMES": "classes",
    "STUDY": "classes",
    "SaltConversion": "conversion",
    "classify": "classes",
    "convert_ec": "units",
    "fit_lab_sheet": "labsheet",
    "fit_salt_conversion": "conversion",
    "get_scheme": "classes",
    "large_residuals": "conversion",
    "load_conversion": "conversion",
    "normalise_unit": "units",
    "parse_numbers": "units",
    "quantity_of": "units",
    "ramp_colours": "classes",
    "read_lab_sheet": "labsheet",
    "save_conversion": "conversion",
    "scheme_from_thresholds": "classes",
    "unit_factor": "units",
    "unit_in_header": "units",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_index(__name__, _API)

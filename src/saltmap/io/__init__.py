"""Reading inputs: sample tables and satellite scenes."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "BandFile": "rasters",
    "ColumnOptions": "sample_columns",
    "QA_PIXEL_MASKED": "landsat",
    "QA_PIXEL_WATER": "landsat",
    "RASTER_SUFFIXES": "rasters",
    "SCL_MASKED": "sentinel2",
    "SCL_WATER": "sentinel2",
    "Samples": "samples",
    "Scene": "scene",
    "TABLE_SUFFIXES": "sample_files",
    "ThreadLocalDatasets": "rasters",
    "VECTOR_SUFFIXES": "sample_files",
    "detect_band_columns": "sample_columns",
    "missing_by_sample": "samples",
    "odisha": "samples",
    "open_scene": "scene",
    "parse_numeric_column": "samples",
    "read_samples": "samples",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.io.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.io' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

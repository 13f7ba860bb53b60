"""Reading inputs: sample tables and satellite scenes."""

from saltmap._lazy import lazy_index

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "ArrayScene": "xarray_scene",
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
    "open_array_scene": "xarray_scene",
    "open_scene": "scene",
    "parse_numeric_column": "samples",
    "read_samples": "samples",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_index(__name__, _API)

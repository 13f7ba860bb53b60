"""Applying a model to every pixel of a scene, block by block."""

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "BlockJob": "engine",
    "BlockResult": "engine",
    "CHUNK_ROWS": "engine",
    "CLASS_NODATA": "engine",
    "ClassPlan": "engine",
    "MapOutputs": "engine",
    "MapResult": "engine",
    "SALINITY_NODATA": "engine",
    "STORE_NAME": "engine",
    "STRETCH_CUT": "engine",
    "TRUST_FILES": "engine",
    "ToSchemeUnit": "engine",
    "block_name": "engine",
    "block_store_key": "engine",
    "boundary_mask": "engine",
    "class_area_table": "engine",
    "class_map_of": "engine",
    "classify_block": "engine",
    "draw_class_map": "engine",
    "map_scene": "engine",
    "model_bands": "engine",
    "pixel_area_km2": "engine",
    "plan_classes": "engine",
    "predict_block": "engine",
    "qml_stretch_style": "engine",
    "qml_style": "engine",
    "read_boundary": "engine",
    "read_classes_overview": "engine",
    "run_blocks": "engine",
    "salinity_stretch": "engine",
    "stable_digest": "engine",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module(f"saltmap.mapping.{_API[name]}"), name)
    raise AttributeError(f"module 'saltmap.mapping' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

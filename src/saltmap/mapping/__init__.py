"""Applying a model to every pixel of a scene, block by block.

``plan`` checks everything before any output; ``blocks`` is the pure per-block
core (prediction with optional covariates, classes; tree ensembles predicted by
cell through :mod:`saltmap.models.inference`); ``engine`` spreads blocks
over this process, a local pool (``pool``) or Dask (``cluster``) and holds
:func:`map_scene`; ``store``
keeps finished blocks so an interrupted map resumes; ``writer`` writes the
GeoTIFFs, COGs and side files; ``figure`` draws the class map.
"""

from saltmap._lazy import lazy_index

# Public names, imported on first use so that importing one module of the
# stage does not import them all.
_API = {
    "boundary_frame": "figure",
    "BlockJob": "blocks",
    "BlockResult": "blocks",
    "CHUNK_ROWS": "blocks",
    "CATEGORY_COLOURS": "writer",
    "CLASS_NODATA": "blocks",
    "ClassPlan": "blocks",
    "LAYERS": "writer",
    "Layer": "writer",
    "MapOutputs": "writer",
    "MapPlan": "plan",
    "MapResult": "engine",
    "MapSettings": "plan",
    "MapWriter": "writer",
    "SALINITY_NODATA": "blocks",
    "STORE_NAME": "store",
    "STRETCH_CUT": "styles",
    "TRUST_FILES": "writer",
    "ToSchemeUnit": "blocks",
    "block_name": "store",
    "block_store_key": "store",
    "boundary_mask": "blocks",
    "class_area_table": "writer",
    "class_map_of": "figure",
    "classify_block": "blocks",
    "draw_class_map": "figure",
    "map_scene": "engine",
    "model_bands": "blocks",
    "pam_categories": "styles",
    "pixel_area_km2": "plan",
    "plan_classes": "plan",
    "plan_map": "plan",
    "predict_block": "blocks",
    "predict_block_with_unseen": "blocks",
    "qml_stretch_style": "styles",
    "qml_style": "styles",
    "read_boundary": "plan",
    "read_classes_overview": "figure",
    "run_blocks": "engine",
    "salinity_stretch": "styles",
    "stable_digest": "store",
    "write_side_files": "writer",
}
__all__ = sorted(_API)
__getattr__, __dir__ = lazy_index(__name__, _API)

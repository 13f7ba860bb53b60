"""Every check of a map before its first byte is written, and what the map will do.

:func:`plan_map` checks the scene's bands against the model and trust model, the
covariate rasters, the class scheme against the model's unit, the boundary, the
grid (class areas need metres) and the outputs already in the folder, and returns
a :class:`MapPlan`: the block job the workers run, the windows to compute or to
leave empty, the resume store's key and the tags of the COGs. :class:`MapSettings`
holds the choices of a map, built once by the CLI or the study.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasterio.transform import array_bounds
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from saltmap import salinity
from saltmap.bands import check_roles
from saltmap.errors import BoundaryError, ConfigError, ModelFileError, OutputExistsError, UnitError
from saltmap.features.covariate_rasters import CovariateRasters
from saltmap.features.covariates import model_covariates
from saltmap.io.boundary import read_area
from saltmap.mapping.blocks import BlockJob, ClassPlan, ToSchemeUnit, model_bands
from saltmap.mapping.provenance import has_provenance
from saltmap.mapping.store import block_store_key, repaired_key, store_path
from saltmap.mapping.writer import MapOutputs

if TYPE_CHECKING:
    from saltmap.io.grid import GriddedScene as Scene
    from saltmap.salinity.classes import ClassScheme
    from saltmap.salinity.conversion import SaltConversion
    from saltmap.trust.maps import TrustModel


#: What maps the blocks of a map with ``jobs > 1`` (:class:`MapSettings`).
WORKERS = ("threads", "processes")


@dataclass(frozen=True)
class MapSettings:
    """The choices of a map (:func:`saltmap.mapping.engine.map_scene`), built once.

    Parameters
    ----------
    scheme : str or ClassScheme, default="study"
        Class scheme, see :func:`plan_classes`.
    conversion : SaltConversion, optional
        EC to salt content, needed for a g/kg scheme on an EC model.
    target_name, target_unit : str, optional
        What the model predicts, from its metadata; written in the COG tags.
    model_name : str, optional
        Written in the COG tags (the regressor's class name by default).
    block_size : int, default=512
        Side of the square blocks in pixels; memory grows with its square.
    jobs : int, default=1
        Blocks mapped in parallel on this machine.
    workers : {"threads", "processes"}, default="threads"
        What maps them when ``jobs > 1``: threads of this process (no start-up, the
        model shared; measured the faster on two cores in ``benchmarks/map_tile.py``),
        or spawned worker processes (for many cores, where the Python part of each
        block limits threads).
    scheduler : str or distributed.Client, optional
        Address of a Dask distributed scheduler (``"tcp://host:8786"``) on whose
        workers the blocks run; saltmap must be installed there.
    exclude_outside_aoa : bool, default=False
        With a trust model: pixels outside the AOA get class 0 (no data) and are
        left out of the class areas (the CSV says so in its ``scope`` column). The
        salinity COG keeps their values.
    overwrite : bool, default=False
        Replace existing outputs.
    figure : bool, default=True
        Draw the class map figure.
    resume : bool, default=True
        Keep each finished block in a work store inside the output folder (a hidden
        ``.map.work-KEY`` folder, :mod:`saltmap.mapping.store`), so that a run killed
        mid-way and started again with the same inputs continues from its finished
        blocks and gives the same values (:mod:`saltmap.mapping.engine` says more).
    """

    scheme: str | ClassScheme = "study"
    conversion: SaltConversion | None = None
    target_name: str | None = None
    target_unit: str | None = None
    model_name: str | None = None
    block_size: int = 512
    jobs: int = 1
    workers: str = "threads"
    scheduler: str | Any | None = None
    exclude_outside_aoa: bool = False
    overwrite: bool = False
    figure: bool = True
    resume: bool = True

    def __post_init__(self) -> None:
        if self.workers not in WORKERS:
            raise ConfigError(
                f"workers={self.workers!r} is not one of {', '.join(WORKERS)}; use "
                "'threads' (the default) or 'processes'"
            )

    @property
    def computes_here(self) -> bool:
        """Whether the blocks are computed in the map's own process (one job, or threads)."""
        return self.scheduler is None and (self.jobs <= 1 or self.workers == "threads")

    def replace(self, **options: Any) -> MapSettings:
        """These settings with ``options`` changed; an unknown name is a TypeError."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(
                f"unknown map setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return dataclasses.replace(self, **options) if options else self


@dataclass(frozen=True)
class MapPlan:
    """What a checked map will do: its outputs, block job, windows and store key."""

    outputs: MapOutputs
    job: BlockJob
    #: Key of the resume store (None when not resuming).
    key: str | None
    pixel_km2: float
    #: Every block of the scene; those to compute and those outside the boundary.
    windows: list[Window]
    todo: list[Window]
    skipped: list[Window]
    #: Tags of every COG: target, unit, model, bands, scene.
    tags: dict[str, str]

    @property
    def classes(self) -> ClassPlan:
        return self.job.plan


def plan_map(
    model: Any,
    scene: Scene,
    out_dir: str | Path,
    settings: MapSettings,
    *,
    boundary: str | Path | None = None,
    covariates: Mapping[str, str | Path] | CovariateRasters | None = None,
    trust: TrustModel | None = None,
) -> MapPlan:
    """Check everything that can fail before any output, and plan the map.

    Parameters are those of :func:`saltmap.mapping.engine.map_scene`. Covariate
    rasters (``{name: path}``, or a :class:`~saltmap.features.covariates.CovariateRasters`
    with ``labels`` for coded categorical rasters), in any CRS and resolution, are
    checked to cover the scene; a covariate without a raster or a categorical raster
    with no training level at all is an error, and pixels whose level the model never
    saw are counted in a warning (they are left without a value).

    Raises
    ------
    ConfigError
        If ``exclude_outside_aoa`` is asked for without ``trust``.
    MissingBandError
        If the scene lacks a band the model or the trust model reads.
    ModelFileError
        If covariate rasters are given for a model trained without covariates.
    UnitError
        If the class scheme needs a conversion that was not given, or the scene's
        grid is not projected.
    BoundaryError
        If the boundary cannot be read or does not overlap the scene.
    OutputExistsError
        If an output exists and ``overwrite`` is False (outputs of an interrupted
        run of the same inputs excepted).
    """
    s = settings
    outputs = MapOutputs.in_folder(
        out_dir, trust=trust is not None, provenance=has_provenance(scene)
    )
    if s.exclude_outside_aoa and trust is None:
        raise ConfigError(
            "exclude_outside_aoa needs a trust model (trust=...) that defines the AOA; "
            "train with `saltmap train` (which fits one) or saltmap.trust.intervals.fit_trust"
        )
    bands = model_bands(model)
    check_roles(bands, scene.roles, f"the scene {scene.source}")
    if trust is not None:
        check_roles(trust.bands, scene.roles, f"the scene {scene.source}")
    rasters = _covariate_rasters(model, covariates, scene)
    classes = plan_classes(s.scheme, s.target_name, s.target_unit, s.conversion)
    geoms = None
    if boundary is not None:
        geoms = read_boundary(boundary, scene.crs, _scene_bounds(scene))
    pixel_km2 = pixel_area_km2(scene.transform, scene.crs)
    if s.block_size < 16:
        raise ValueError(f"block_size must be at least 16 pixels, got {s.block_size}")
    job = BlockJob(
        model=copy.deepcopy(model), scene=scene, plan=classes, boundary=geoms, covariates=rasters,
        trust=copy.deepcopy(trust), exclude_outside_aoa=s.exclude_outside_aoa,
    )  # fmt: skip
    key = None
    if s.resume:  # a store left on a file since replaced is taken up again
        key = repaired_key(out_dir, job, s.block_size) or block_store_key(job, s.block_size)
    _check_outputs(outputs, out_dir, key, s.overwrite)
    windows = list(scene.block_windows(s.block_size))
    todo, skipped = _split_by_boundary(windows, geoms, scene.transform)
    tags = _tags(model, scene, bands, s)
    return MapPlan(outputs, job, key, pixel_km2, windows, todo, skipped, tags)


def _tags(model: Any, scene: Scene, bands: Sequence[str], s: MapSettings) -> dict[str, str]:
    """Tags of every COG: what the model predicts, in which unit, from which bands and scene
    (and a ``warning`` when the model's name carries the evaluation's "no evidence of skill")."""
    tags = {
        "target": s.target_name or "unknown",
        "unit": s.target_unit or "unknown",
        "model": s.model_name or type(model[-1]).__name__,
        "bands": ",".join(bands),
        "scene": str(scene.source),
        "software": "saltmap",
    }
    if "no evidence of skill" in (s.model_name or ""):  # issue 14: the study's warning
        tags["warning"] = (
            "no evidence of skill: in cross-validation no model predicted the target clearly "
            "better than the mean of the training samples"
        )
    return tags


def _check_outputs(
    outputs: MapOutputs, out_dir: str | Path, key: str | None, overwrite: bool
) -> None:
    existing = [str(p) for p in outputs.all() if p.exists()]
    # Outputs beside the work store of these very inputs are this run's own, from an
    # attempt killed while it wrote them: only a finished map (no store) needs overwrite.
    own_work = key is not None and store_path(out_dir, key).is_dir()
    if existing and not overwrite and not own_work:
        raise OutputExistsError(
            f"{', '.join(existing)} already exist(s); pass overwrite=True (--overwrite) to "
            "replace them, or choose another output folder"
        )


# ------------------------------------------------------------------ class schemes


_THRESHOLDS = re.compile(r"^\s*[-+0-9.eE]+(\s*[,;\s]\s*[-+0-9.eE]+)*\s*$")


def plan_classes(
    scheme: str | ClassScheme,
    target_name: str | None,
    target_unit: str | None,
    conversion: SaltConversion | None = None,
) -> ClassPlan:
    """Resolve a class scheme and decide how the model's target reaches its unit.

    Parameters
    ----------
    scheme : str or ClassScheme
        ``"study"`` (salt content in g/kg, the study's Table 5), ``"fao-ec"`` (EC of
        the saturated paste, dS/m), another name of
        :data:`saltmap.salinity.units.SCHEMES`, thresholds such as ``"1,2,4,6"`` in the
        model's unit, or a :class:`~saltmap.salinity.units.ClassScheme`.
    target_name, target_unit : str or None
        What the model predicts (``"EC"``, ``"µS/cm"``), from its metadata.
    conversion : SaltConversion or None
        EC to salt content; needed when the model predicts EC and the scheme is on
        salt content (or the reverse).

    Raises
    ------
    UnitError
        If the model's unit is unknown, or the scheme's quantity cannot be reached
        from the model's without a conversion that was not given.
    """
    what = f"the model's target {target_name or ''}".rstrip()
    if target_unit is None:
        raise UnitError(
            f"the unit of {what} is unknown, so its values cannot be classed; "
            "give it (target_unit='µS/cm', 'dS/m', 'g/kg', ...) or use a model saved by "
            "`saltmap train`, which records it"
        )
    unit = salinity.normalise_unit(target_unit)
    if isinstance(scheme, str) and _THRESHOLDS.match(scheme):
        resolved = salinity.scheme_from_thresholds(scheme, unit=unit)
    else:
        resolved = salinity.get_scheme(scheme)
    source_q, scheme_q = salinity.quantity_of(unit), resolved.quantity
    if source_q != scheme_q and conversion is None:
        raise UnitError(
            f"{what} is {source_q} in {unit}, but the class scheme {resolved.name!r} is on "
            f"{scheme_q} in {resolved.unit}: an EC → salt content conversion for your soils is "
            "needed. Give one (--conversion conv.toml, fitted with saltmap.salinity.units."
            "fit_lab_sheet), or choose a scheme on "
            f"{source_q} (for EC: --scheme fao-ec), or thresholds in {unit} (--scheme 2,4,8,16)"
        )
    return ClassPlan(resolved, ToSchemeUnit(unit, resolved.unit, conversion))


def pixel_area_km2(transform: Any, crs: Any) -> float:
    """Ground area of one pixel in km² (the grid must be in a projected CRS)."""
    if crs is None or not crs.is_projected:
        raise UnitError(
            f"class areas need a scene on a projected grid (metres), but its CRS is {crs}; "
            "reproject the scene to a UTM zone first"
        )
    metres = crs.linear_units_factor[1]
    return abs(transform.a * transform.e - transform.b * transform.d) * metres**2 / 1e6


# --------------------------------------------------------------------- boundary


def read_boundary(path: str | Path, crs: Any, bounds: Sequence[float]) -> list[Any]:
    """Polygons of a boundary file, reprojected to ``crs``, that overlap ``bounds``.

    Raises
    ------
    BoundaryError
        If the file cannot be read, holds no polygon, or does not overlap the scene.
    """
    import shapely

    polygons = read_area(path)
    geoms = list(polygons.to_crs(crs).geometry.make_valid())
    area = shapely.union_all(geoms)
    scene_box = shapely.box(*bounds)
    if area.intersection(scene_box).area <= 0:
        lo = polygons.to_crs(crs).total_bounds
        raise BoundaryError(
            f"the boundary {path} does not overlap the scene: boundary bounds "
            f"{[round(v) for v in lo]} and scene bounds {[round(v) for v in bounds]} in "
            f"{crs}. Check that both cover the same area and that the boundary's CRS is right"
        )
    return [area]


def _scene_bounds(scene: Scene) -> tuple[float, float, float, float]:
    return array_bounds(scene.height, scene.width, scene.transform)  # west, south, east, north


def _split_by_boundary(
    windows: Sequence[Window], geoms: Sequence[Any] | None, transform: Any
) -> tuple[list[Window], list[Window]]:
    """Windows to compute and windows entirely outside the boundary (left as no data)."""
    if not geoms:
        return list(windows), []
    import shapely  # with geopandas, only for a boundary

    area = geoms[0]
    shapely.prepare(area)
    todo, skipped = [], []
    for w in windows:
        box = shapely.box(*window_bounds(w, transform))
        (todo if area.intersects(box) else skipped).append(w)
    return todo, skipped


# ------------------------------------------------------------------- covariates


def _covariate_rasters(
    model: Any,
    paths: Mapping[str, Any] | CovariateRasters | None,
    scene: Scene,
) -> CovariateRasters | None:
    """The model's covariate rasters, checked against the scene (None for a model without)."""
    labels = None
    if isinstance(paths, CovariateRasters):  # with labels for coded categorical rasters
        paths, labels = paths.paths, paths.labels
    if not model_covariates(model):
        if paths:
            raise ModelFileError(
                f"covariate raster(s) {', '.join(paths)} were given, but the model was trained "
                "without covariates; leave them out or train with --covariate"
            )
        return None
    rasters = CovariateRasters.for_model(model, paths or {}, labels=labels)
    rasters.check(scene)
    for name, counts in rasters.check_levels(scene, model).items():
        warnings.warn(
            f"covariate {name!r}: {sum(counts.values()):,} pixel(s) have level(s) the model was "
            f"not trained with ({', '.join(f'{lv!r}: {n:,}' for lv, n in counts.items())}); "
            "they are left without a value",
            stacklevel=4,  # the caller of map_scene
        )
    return rasters

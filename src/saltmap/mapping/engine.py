"""Salinity maps: the engines that spread blocks over processes, and :func:`map_scene`.

:func:`map_scene` reads as its stages: :func:`~saltmap.mapping.plan.plan_map`
checks everything that can fail before anything is written; the resume store
(:mod:`saltmap.mapping.store`) gives back the blocks an interrupted run finished;
:func:`run_blocks` computes the others (:mod:`saltmap.mapping.blocks`) in this
process, a local process pool or a Dask distributed cluster;
:class:`~saltmap.mapping.writer.MapWriter` writes them into tiled GeoTIFFs and then
Cloud-Optimized GeoTIFFs, with the class areas and QGIS styles beside them; and
:mod:`saltmap.mapping.figure` draws the class map.

Memory is bounded by the block size and the number of blocks in flight, never by
the scene size. Each finished block is also kept in a work store in the output
folder until the map is written, so a killed run started again with the same inputs
continues where it stopped (``resume``, :mod:`saltmap.mapping.store`): the key of
the store is the model, scene (and its files' size and time), trust model,
boundary, covariates, class plan and block size; with other inputs the run starts
afresh and the old work is removed. Outputs a resumed run finds of its own
interrupted attempt do not need ``overwrite``; a finished map does. The store
takes about 5 bytes per pixel (22 with a trust model) of disk while the map runs,
beside the first-stage GeoTIFFs, and is removed once every output is written.

With ``jobs > 1`` the blocks run in threads of the map's process; with
``workers="processes"`` in worker processes started with the ``spawn`` method, which
re-imports the calling script: a script calling :func:`map_scene` that way needs the
usual ``if __name__ == "__main__":`` guard (the ``saltmap`` command has it), and the
model is sent to each worker once. Inner models run single-threaded, because the
blocks already use every core. Pixels whose band values are missing, or whose indices are
undefined (a zero denominator), get no value.

References
----------
.. [1] Gillies, S. and others (2013–). Rasterio: geospatial raster I/O for Python
   programmers. https://github.com/rasterio/rasterio
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from rasterio.windows import Window
from threadpoolctl import threadpool_limits

from saltmap.atomic import BlockStore, check_output_folder, clean_stale_partials
from saltmap.errors import UnreadableFileError
from saltmap.io.grid import GriddedScene
from saltmap.io.mosaic import open_mosaic
from saltmap.io.scene import open_scene
from saltmap.mapping.blocks import (
    BlockJob,
    BlockResult,
)
from saltmap.mapping.cluster import run_dask
from saltmap.mapping.figure import (
    draw_class_map,
    draw_provenance,
    figure_title,
)
from saltmap.mapping.plan import (
    MapPlan,
    MapSettings,
    plan_map,
)
from saltmap.mapping.pool import run_pool
from saltmap.mapping.provenance import has_provenance, side_paths, write_legend
from saltmap.mapping.store import (
    block_name,
    mark_unreadable,
    open_store,
    split_stored,
)
from saltmap.mapping.threads import run_threads
from saltmap.mapping.writer import (
    MapOutputs,
    MapWriter,
    class_area_table,
    write_side_files,
)
from saltmap.models.physical import target_bounds
from saltmap.progress import Progress, Tick, task

if TYPE_CHECKING:
    from saltmap.features.covariate_rasters import CovariateRasters
    from saltmap.trust.maps import TrustModel, TrustSummary

__all__ = ["MapResult", "map_scene", "run_blocks"]


# ------------------------------------------------------------------------ engines


def run_blocks(
    job: BlockJob,
    windows: Sequence[Window],
    *,
    jobs: int = 1,
    scheduler: str | Any | None = None,
    in_flight: int | None = None,
    workers: str = "threads",
) -> Iterator[BlockResult]:
    """Map ``windows`` with ``job`` and yield results as blocks finish (in any order).

    With ``jobs == 1`` and no scheduler the blocks run in this process; with
    ``jobs > 1`` in ``jobs`` threads of this process (:mod:`saltmap.mapping.threads`),
    or with ``workers="processes"`` in this process and a pool of ``jobs - 1``
    processes (:mod:`saltmap.mapping.pool`), each receiving the job once, and ending
    when this process dies; with ``scheduler`` (an address such as ``"tcp://host:8786"`` or a
    ``distributed.Client``) on that Dask cluster, the job sent once as a task that
    the workers share, so that blocks lost with a worker are computed again. At most
    ``in_flight`` blocks (default two per worker) are pending at any time, which
    bounds memory.
    """
    if scheduler is not None:
        yield from run_dask(job, windows, scheduler, in_flight)
    elif jobs <= 1:
        job.prepare()
        with threadpool_limits(1):
            for window in windows:
                yield job(window)
    elif workers == "threads":
        yield from run_threads(job, windows, jobs, in_flight)
    else:
        yield from run_pool(job, windows, jobs, in_flight)


# ---------------------------------------------------------------------- the map


@dataclass
class MapResult:
    """What :func:`map_scene` wrote and measured."""

    outputs: MapOutputs
    areas: pd.DataFrame
    n_pixels: int
    n_valid: int
    n_blocks: int
    seconds: float
    target_name: str | None
    target_unit: str | None
    scheme: str
    #: Share of valid pixels inside the AOA and median interval width (None without trust).
    trust: TrustSummary | None = None
    #: Whether the classes and class areas leave out pixels outside the AOA.
    excluded_outside_aoa: bool = False
    #: Blocks taken from the work store of an interrupted run with the same inputs.
    n_resumed: int = 0
    #: Blocks computed by this run (the others were resumed or outside the boundary).
    n_computed: int = 0
    #: For a mosaic: each scene's number, source, date, sensor and pixels mapped from it.
    scenes: pd.DataFrame | None = None
    #: Pixels whose prediction was held at a physical bound (below zero set to zero, or a
    #: log target's widened training range; :mod:`saltmap.models.physical`).
    n_clipped: int = 0

    @property
    def pixels_per_second(self) -> float:
        return self.n_pixels / self.seconds if self.seconds > 0 else float("nan")


def map_scene(
    model: Any,
    scene: GriddedScene | str | Path | Sequence[str | Path],
    out_dir: str | Path,
    settings: MapSettings | None = None,
    *,
    boundary: str | Path | None = None,
    covariates: Mapping[str, str | Path] | CovariateRasters | None = None,
    trust: TrustModel | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> MapResult:
    """Map salinity over a scene, block by block, and write COGs, class areas and a figure.

    Parameters
    ----------
    model : fitted estimator
        ``IndexFeatures -> regressor`` pipeline taking reflectance by band role.
    scene : Scene, Mosaic, ArrayScene, path, xarray object or list of these
        The scene (see :func:`saltmap.io.scene.open_scene`); a path or an xarray object is
        opened with defaults; a list of scenes becomes their mosaic
        (:func:`saltmap.io.mosaic.open_mosaic`, on the boundary's CRS when one is given).
    out_dir : path
        Output folder; the files are listed in :class:`~saltmap.mapping.writer.MapOutputs`.
    settings : MapSettings, optional
        Class scheme, the model's target, block size, jobs or Dask scheduler, AOA
        exclusion, overwrite, figure, resume (:class:`~saltmap.mapping.plan.MapSettings`).
    boundary : path, optional
        Polygon file in any CRS; pixels outside are left without data.
    covariates : mapping or CovariateRasters, optional
        The rasters of a model trained with covariates, read on the scene grid block by
        block (:func:`~saltmap.mapping.plan.plan_map` says how they are checked).
    trust : TrustModel, optional
        Intervals and area of applicability of ``model``: each block's
        :func:`saltmap.trust.intervals.trust_block` runs beside its prediction, its layers
        are written as COGs and the figure greys pixels outside the AOA.
    progress : Progress, optional
        Where the blocks done are reported (:mod:`saltmap.progress`); nothing is
        drawn without one (``saltmap map`` passes terminal bars).
    **options
        Fields of :class:`~saltmap.mapping.plan.MapSettings` as keywords, the signature
        of before the settings, kept for one release; they override ``settings``.

    Returns
    -------
    MapResult

    Raises
    ------
    SaltmapError
        A missing band, unreadable boundary, unit without conversion, bad covariate
        raster or existing output: every check of :func:`~saltmap.mapping.plan.plan_map`,
        all raised before any file is written.
    """
    started = time.perf_counter()
    settings = (settings or MapSettings()).replace(**options)
    if isinstance(scene, list | tuple):  # several scenes: one mosaic of them
        scene = open_mosaic(scene, boundary=boundary)
    elif not isinstance(scene, GriddedScene):  # a path, or an xarray object
        scene = open_scene(scene)
    plan = plan_map(
        model, scene, out_dir, settings, boundary=boundary, covariates=covariates, trust=trust
    )
    store = _prepare_folder(out_dir, plan)
    resumed, compute = split_stored(store, plan.todo)
    with MapWriter(plan.outputs, scene, target_bounds(model)) as writer:
        with task(progress, _what(scene, plan, resumed), len(plan.windows)) as tick:
            _write_blocks(writer, plan, store, (resumed, compute), settings, tick)
        writer.finish(plan.tags, plan.classes, trust)
    areas, scenes = _write_beside(writer, plan, settings, scene, boundary)
    if store is not None:
        store.clear()
    return MapResult(
        outputs=plan.outputs, areas=areas, n_pixels=scene.width * scene.height,
        n_valid=writer.n_valid, n_blocks=len(plan.windows),
        seconds=time.perf_counter() - started, target_name=settings.target_name,
        target_unit=settings.target_unit, scheme=plan.classes.description,
        trust=writer.summary, excluded_outside_aoa=settings.exclude_outside_aoa,
        n_resumed=len(resumed), n_computed=len(compute), scenes=scenes,
        n_clipped=writer.n_clipped,
    )  # fmt: skip


def _write_beside(
    writer: MapWriter,
    plan: MapPlan,
    settings: MapSettings,
    scene: GriddedScene,
    boundary: str | Path | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """What goes beside the COGs: class areas, styles, a mosaic's legend, the figures.

    Returns the class areas and the mosaic's scene table (None for one scene).
    """
    out_dir = plan.outputs.salinity.parent
    areas = _class_areas(writer, plan, settings.exclude_outside_aoa)
    write_side_files(plan.outputs, areas, plan.classes, settings.target_unit, writer.stretches())
    scenes = write_legend(out_dir, scene, writer.sources) if has_provenance(scene) else None
    if settings.figure:
        _draw_figure(plan, areas, boundary)
        if scenes is not None:
            names = [Path(source).name for source in scenes["source"]]
            draw_provenance(plan.outputs.provenance, names, side_paths(out_dir)[-1])
    return areas, scenes


def _prepare_folder(out_dir: str | Path, plan: MapPlan) -> BlockStore | None:
    """Create the output folder, clear dead runs' partial files, open the resume store."""
    check_output_folder(out_dir)
    # A killed run leaves its first-stage GeoTIFFs behind; remove those of dead processes.
    for path in plan.outputs.all():
        clean_stale_partials(out_dir, path.stem)
    return open_store(out_dir, plan.key)


def _what(scene: GriddedScene, plan: MapPlan, resumed: Sequence[Window]) -> str:
    """The progress task's description."""
    what = f"mapping {scene.source}: blocks"
    if resumed:
        what += f" ({len(resumed)} of {len(plan.windows)} resumed)"
    return what


def _draw_figure(plan: MapPlan, areas: pd.DataFrame, boundary: str | Path | None) -> None:
    # framed to the boundary when there is one, else to the valid pixels
    draw_class_map(
        plan.outputs.classes, plan.outputs.figure, plan.classes,
        title=figure_title(plan.tags, plan.classes), percent=list(areas["percent"]),
        aoa_path=plan.outputs.trust.get("aoa"), boundary=boundary,
    )  # fmt: skip


def _write_blocks(
    writer: MapWriter,
    plan: MapPlan,
    store: BlockStore | None,
    stored_and_todo: tuple[list[Window], list[Window]],
    settings: MapSettings,
    tick: Tick,
) -> None:
    """Write every block: empty outside the boundary, resumed from the store, computed."""
    resumed, compute = stored_and_todo
    total, done = len(plan.windows), 0
    for window in plan.skipped:
        writer.write_empty(window)
        done += 1
        tick(done, total)
    for window in resumed:
        arrays = store.load(block_name(window))
        writer.write(window, arrays.pop("salinity"), arrays.pop("classes"), arrays)
        done += 1
        tick(done, total)
    # In this process the thread that computes a block also stores it, beside the others.
    here = settings.computes_here
    job = _StoringJob(plan.job, store) if store is not None and here else plan.job
    blocks = run_blocks(
        job, compute, jobs=settings.jobs, scheduler=settings.scheduler, workers=settings.workers
    )
    with _keep_on_unreadable(store, plan):
        for window, values, codes, layers in blocks:
            if store is not None and not here:  # stored first: never half in the store
                _store_block(store, (window, values, codes, layers))
            writer.write(window, values, codes, layers)
            done += 1
            tick(done, total)


@dataclass(frozen=True)
class _StoringJob:
    """A block job that keeps each block in the resume store as soon as it is computed.

    Used where blocks are computed in this process (one job, or threads): the store's
    disk writes and flushes then run in the computing threads, beside each other,
    rather than in the one thread that writes the map, which they held up (about 7 %
    of a fast model's 6144² crop with two threads, measured in ``/tmp``).
    """

    job: BlockJob
    store: BlockStore

    def prepare(self) -> None:
        self.job.prepare()

    def __call__(self, window: Window) -> BlockResult:
        result = self.job(window)
        _store_block(self.store, result)  # stored before it is written: never half stored
        return result


def _store_block(store: BlockStore, result: BlockResult) -> None:
    window, values, codes, layers = result
    store.save(block_name(window), salinity=values, classes=codes, **(layers or {}))


@contextlib.contextmanager
def _keep_on_unreadable(store: BlockStore | None, plan: MapPlan) -> Iterator[None]:
    """On a file that cannot be read, keep the finished blocks for a rerun and say so."""
    try:
        yield
    except UnreadableFileError as err:
        if store is None:
            raise
        mark_unreadable(store, err.path, plan.job)
        kept = len(store.done())
        raise UnreadableFileError(
            f"{err}. The {kept} finished block(s) are kept in {store.path.parent}: replace "
            "the file and run the same map again to continue from them",
            err.path,
        ) from err


def _class_areas(writer: MapWriter, plan: MapPlan, exclude_outside_aoa: bool) -> pd.DataFrame:
    """Class areas of what was written; with the AOA exclusion, a ``scope`` column says so."""
    areas = class_area_table(writer.counts, plan.classes.labels, plan.pixel_km2)
    if exclude_outside_aoa:
        outside = writer.summary.n_valid - writer.summary.n_inside
        areas["scope"] = (
            f"valid pixels inside the area of applicability only; {outside} valid pixel(s) "
            "outside it excluded"
        )
    return areas

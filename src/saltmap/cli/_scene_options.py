"""Scene options shared by the verbs that read a scene (``map``, ``extract``).

``--band ROLE=FILE`` (repeatable) gives the file of a band role, as samples take
``--band ROLE=COLUMN``: ``--band B=Blue.tif --band N=nir.tif``, paths relative to the
scene folder or absolute. Roles not given are found in the folder by their names.
Several scenes (tiles, dates) become one mosaic (:func:`saltmap.io.mosaic.open_mosaic`)
with ``--composite``, ``--date``, ``--crs``, ``--resolution`` and ``--mixed-sensors``.
"""

from __future__ import annotations

import typing
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from saltmap.cli._print import say, warn
from saltmap.errors import ConfigError
from saltmap.io.mosaic import Mosaic, open_mosaic
from saltmap.io.scene import open_scene

if typing.TYPE_CHECKING:
    from saltmap.io.grid import GriddedScene

SceneBandFiles = Annotated[
    list[str] | None,
    typer.Option(
        "--band",
        help="ROLE=FILE: the band file of a role (B G R N S1 S2), relative to the scene "
        "folder or absolute; repeatable, e.g. --band B=Blue.tif --band N=nir.tif.",
    ),
]


SceneSources = Annotated[
    list[str],
    typer.Argument(
        metavar="SCENE...",
        help="One or more scenes: folder of band files (Sentinel-2 names or Blue.tif, "
        "nir.tif...), .SAFE folder or zip, Landsat Collection 2 Level-2 folder or .tar, "
        "multiband raster or STAC item. Several scenes (tiles, dates) become one mosaic.",
    ),
]
Composite = Annotated[
    str,
    typer.Option(
        "--composite",
        help="Where several scenes overlap: first (the first valid observation, by --date "
        "or in the order given) or median (per-band median of the valid observations).",
    ),
]
PreferDate = Annotated[
    str | None,
    typer.Option(
        "--date",
        help="YYYY-MM-DD: with several scenes, prefer the acquisition closest to this date "
        "(the sampling date, say).",
    ),
]
MosaicCrs = Annotated[
    str | None,
    typer.Option("--crs", help="CRS of the mosaic grid (default: the boundary's)."),
]
Resolution = Annotated[
    float | None,
    typer.Option("--resolution", help="Pixel size of the mosaic grid (default: finest band)."),
]
MixedSensors = Annotated[
    bool,
    typer.Option("--mixed-sensors", help="Allow scenes of different sensors in one mosaic."),
]


@dataclass(frozen=True)
class MosaicOptions:
    """How several scenes become one grid: the mosaic options of a verb."""

    composite: str = "first"
    date: str | None = None
    crs: str | None = None
    resolution: float | None = None
    mixed_sensors: bool = False
    boundary: Path | None = None


def parse_band_files(items: list[str] | None) -> dict[str, str]:
    """Turn ``["B=Blue.tif", "N=nir.tif"]`` into ``{"B": "Blue.tif", "N": "nir.tif"}``."""
    mapping: dict[str, str] = {}
    for item in items or []:
        role, sep, path = item.partition("=")
        role, path = role.strip(), path.strip()
        if not (sep and role and path):
            raise ConfigError(f"--band {item!r} is not ROLE=FILE, for example --band B=Blue.tif")
        if role in mapping:
            raise ConfigError(
                f"--band {role} is given twice ({mapping[role]} and {path}); give one"
            )
        mapping[role] = path
    return mapping


def open_scene_from_options(
    source: str | list[str],
    scaling: str | None,
    baseline: str | None,
    bands: str | None,
    mask_water: bool,
    band_files: list[str] | None = None,
    mosaic: MosaicOptions | None = None,
) -> GriddedScene:
    """Open a scene, or a mosaic of several, from the shared scene options; say what was
    found and any warning."""
    sources = [source] if isinstance(source, str) else list(source)
    named = parse_band_files(band_files)
    if named and bands:
        raise ConfigError(
            "--bands names the bands of one multiband raster and --band gives one file per "
            "band; give only one of them"
        )
    if named and len(sources) > 1:
        raise ConfigError(
            "--band names the files of one scene; with several scenes, give each as a folder "
            "whose files say their band (Blue.tif, B02.tif, SR_B2.TIF)"
        )
    order = [b.strip() for b in bands.split(",")] if bands else None
    options = {"scaling": scaling, "baseline": baseline, "mask_water": mask_water}
    # Warnings (no cloud mask, scenes left out) go through the CLI's one printing path.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(sources) == 1 and not (mosaic and (mosaic.crs or mosaic.resolution)):
            scene = open_scene(sources[0], bands=named or order, **options)
        else:
            scene = _open_mosaic(sources, order, options, mosaic or MosaicOptions())
    for w in caught:
        if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning):
            warn(str(w.message))
    say(f"scene: {scene}")
    return scene


def _open_mosaic(
    sources: list[str], order: list[str] | None, options: dict, mosaic: MosaicOptions
) -> Mosaic:
    opened = open_mosaic(
        sources, bands=order, crs=mosaic.crs, resolution=mosaic.resolution,
        boundary=mosaic.boundary, composite=mosaic.composite, date=mosaic.date,
        mixed_sensors=mosaic.mixed_sensors, **options,
    )  # fmt: skip
    for row in opened.scene_table():
        say(f"  scene {row['scene']}: {row['source']} ({row['date']}, {row['sensor']})")
    return opened

"""Scene options shared by the verbs that read a scene (``map``, ``extract``).

``--band ROLE=FILE`` (repeatable) gives the file of a band role, as samples take
``--band ROLE=COLUMN``: ``--band B=Blue.tif --band N=nir.tif``, paths relative to the
scene folder or absolute. Roles not given are found in the folder by their names.
"""

from __future__ import annotations

import typing
import warnings
from typing import Annotated

import typer

from saltmap.cli._print import say, warn
from saltmap.errors import ConfigError
from saltmap.io.scene import open_scene

if typing.TYPE_CHECKING:
    from saltmap.io.scene import Scene

SceneBandFiles = Annotated[
    list[str] | None,
    typer.Option(
        "--band",
        help="ROLE=FILE: the band file of a role (B G R N S1 S2), relative to the scene "
        "folder or absolute; repeatable, e.g. --band B=Blue.tif --band N=nir.tif.",
    ),
]


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
    source: str,
    scaling: str | None,
    baseline: str | None,
    bands: str | None,
    mask_water: bool,
    band_files: list[str] | None = None,
) -> Scene:
    """Open a scene from the shared scene options; say what was found and any warning."""
    named = parse_band_files(band_files)
    if named and bands:
        raise ConfigError(
            "--bands names the bands of one multiband raster and --band gives one file per "
            "band; give only one of them"
        )
    order = [b.strip() for b in bands.split(",")] if bands else None
    # Warnings (no cloud mask, a band reprojected) go through the CLI's one printing path.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scene = open_scene(
            source,
            bands=named or order,
            scaling=scaling,
            baseline=baseline,
            mask_water=mask_water,
        )
    for w in caught:
        if not issubclass(w.category, DeprecationWarning | PendingDeprecationWarning):
            warn(str(w.message))
    say(f"scene: {scene}")
    return scene

"""What a product reader found, checked before a scene is built.

:func:`wanted_roles` reads what the caller asked for, :func:`required_files` refuses a
missing band by name (listing what was found), and :func:`resolve_scaling` decides the
scaling: the user's, the processing baseline's, the product metadata's, or float files
taken as reflectance. :func:`~saltmap.io.scene.open_scene` calls them in that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from saltmap.bands import (
    BANDS,
    REFLECTANCE,
    ROLES,
    Scaling,
    role_of,
    scaling_from_name,
    sentinel2_scaling,
)
from saltmap.errors import MissingBandError, ScalingError, SceneError
from saltmap.io.products import is_multiband_file
from saltmap.io.rasters import BandFile, FoundBands, open_raster


def wanted_roles(
    source: str | Path, bands: Sequence[str] | None, roles: Sequence[str] | None
) -> tuple[tuple[str, ...], Sequence[str] | None]:
    """The roles the scene must provide, and ``bands`` if it names a multiband file's bands.

    For any other source, ``bands`` means the roles wanted (by role or band name).
    """
    if roles is None and bands is not None and not is_multiband_file(source):
        roles = [role_of(b) or b for b in bands]
        bands = None
    wanted = tuple(ROLES if roles is None else roles)
    unknown = [r for r in wanted if r not in ROLES]
    if unknown:
        raise SceneError(f"unknown band role(s) {unknown}; roles are {list(ROLES)}")
    return wanted, bands


def required_files(found: FoundBands, wanted: tuple[str, ...], src: str) -> dict[str, BandFile]:
    """The files of the wanted roles in role order; a missing one is refused by name."""
    missing = [r for r in wanted if r not in found.files]
    if missing:
        names = ", ".join(
            f"{r} ({BANDS[r].long_name}, "
            f"{found.band_names.get(r) or 'Sentinel-2 ' + BANDS[r].sentinel2})"
            for r in missing
        )
        hint = found.hint or (
            "Add the missing band files (named like T32TQM_20230815T101559_B11_20m.jp2, "
            "B11_20m.tif or SWIR1.tif), give each file with bands={'S1': 'file.tif'} / "
            "--band S1=FILE, or, for a multiband file, name its bands with bands=[...] / --bands"
        )
        raise MissingBandError(
            f"{found.kind} {src} lacks band(s) {names}; found: "
            f"{', '.join(found.seen) or 'no band files'}. {hint}"
        )
    return {r: found.files[r] for r in ROLES if r in wanted}


def resolve_scaling(
    scaling: str | Scaling | None,
    baseline: str | None,
    found: FoundBands,
    files: dict[str, BandFile],
    src: str,
) -> Scaling | dict[str, Scaling]:
    """The scaling: the user's, the baseline's, the metadata's, or float files as reflectance."""
    if isinstance(scaling, Scaling):
        return scaling
    if scaling is not None:
        return scaling_from_name(scaling, baseline or found.baseline)
    if baseline is not None:
        return sentinel2_scaling(baseline)
    if found.scaling_problem is not None:
        raise ScalingError(found.scaling_problem)
    if found.scaling is not None:
        if isinstance(found.scaling, dict):
            return {r: found.scaling[r] for r in files}
        return found.scaling
    dtypes = set()
    for bf in files.values():
        with open_raster(bf.path) as ds:
            dtypes.add(np.dtype(ds.dtypes[bf.band - 1]).kind)
    if dtypes == {"f"}:
        return REFLECTANCE
    raise ScalingError(
        f"{found.kind} {src} holds digital numbers and says nothing of their scaling, so the "
        "Sentinel-2 BOA offset cannot be decided. Give the scaling: --scaling sentinel2-l2a "
        "(reflectance = DN / 10000, processing baselines before 04.00), --scaling "
        "sentinel2-l2a-offset ((DN - 1000) / 10000, baseline 04.00 and later) or "
        "--baseline 05.09 to decide from the processing baseline; for Landsat Collection 2 "
        "Level-2 digital numbers --scaling landsat-c2l2 (DN × 0.0000275 - 0.2)"
    )

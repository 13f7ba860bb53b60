"""The scene sections of a study file: the scenes to map and how several make one mosaic.

``[[scenes]]`` tables name the scenes; scenes with the same ``mosaic`` name (tiles of a
study area, dates of one place) are mapped as one map on one grid, as
:func:`saltmap.io.mosaic.open_mosaic` makes it, with the rule of the ``[mosaic]`` table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from saltmap.bands import ROLES, role_of
from saltmap.study.paths import InputPath, SceneSource, expand_path_text, slug
from saltmap.study.sections import Scaling


class _SceneSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneConfig(_SceneSection):
    """One scene to map (see :func:`saltmap.io.scene.open_scene`)."""

    path: SceneSource = Field(
        description="band folder, .SAFE folder or zip, multiband GeoTIFF, or STAC item"
    )
    name: str | None = Field(None, description="short name of the scene (default: the file's)")
    scaling: Scaling | None = Field(
        None, description="sentinel2-l2a (DN/10000), sentinel2-l2a-offset, SCALE,OFFSET, ..."
    )
    baseline: str | None = Field(None, description="Sentinel-2 processing baseline")
    bands: list[str] | dict[str, str] | None = Field(
        None,
        description="band names of a multiband file, in order, or the file of each band "
        'role: {B = "Blue.tif", N = "NIR.tif"} (relative to the scene folder or absolute)',
    )
    mask_water: bool = Field(False, description="also mask SCL water")
    boundary: InputPath | None = Field(
        None, description="polygon file clipping this scene (default: the study's boundary)"
    )
    covariates: dict[str, InputPath] = Field(
        {}, description="covariate name → raster for this scene (overrides covariates.rasters)"
    )
    mosaic: str | None = Field(
        None,
        description="name of the mosaic this scene joins: scenes with the same mosaic name "
        "(tiles, dates) are mapped as one map of that name",
    )
    date: dt.date | None = Field(
        None, description="acquisition date, YYYY-MM-DD, when the product does not say it"
    )

    @field_validator("bands")
    @classmethod
    def _band_files(cls, value: list[str] | dict[str, str] | None, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value
        # Checked on loading so that a wrong name fails before hours of modelling.
        check = (info.context or {}).get("check_files", True) and "path" in info.data
        for key, file in value.items():
            if key not in ROLES and role_of(key) is None:
                raise ValueError(
                    f"bands.{key} = {file!r}: {key!r} is not a band role; roles are "
                    f"{', '.join(ROLES)} (or blue, green, red, nir, swir1, swir2)"
                )
            path = Path(expand_path_text(file))
            path = path if path.is_absolute() else Path(info.data.get("path", ".")) / path
            if check and not path.is_file():
                raise ValueError(
                    f"bands.{key} = {file!r}: {path} does not exist; band files are relative "
                    "to the scene folder (path) or absolute"
                )
        return value

    @property
    def label(self) -> str:
        return slug(self.name or Path(self.path.rstrip("/")).stem)

    @property
    def map_label(self) -> str:
        """The name of the map this scene goes into: its mosaic's, else its own."""
        return slug(self.mosaic) if self.mosaic else self.label


class MosaicConfig(_SceneSection):
    """How the scenes of one mosaic become one grid and one value per pixel."""

    composite: Literal["first", "median"] = Field(
        "first",
        description="where scenes overlap: first (the first valid observation, by date) or "
        "median (per-band median of the valid observations)",
    )
    date: dt.date | None = Field(
        None,
        description="prefer the acquisition date closest to this one (the sampling date); "
        "default: the order of the [[scenes]] tables",
    )
    crs: str | None = Field(None, description="CRS of the mosaic grid (default: the boundary's)")
    resolution: float | None = Field(
        None, gt=0, description="pixel size of the mosaic grid (default: the finest band)"
    )
    mixed_sensors: bool = Field(False, description="allow scenes of different sensors")

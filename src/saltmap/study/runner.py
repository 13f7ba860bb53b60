"""The study file and the run folder: one description of a study, one call that runs it.

A study file is TOML. It names the field samples (with their column mapping,
units and EC → salt content conversion), the scenes to map, the index sets, the
models, the validation protocols, the tuning budget, the class scheme, the
prediction-interval level, the area of applicability, the covariates beyond the
spectrum (sample columns, and for the maps rasters or a computed distance), the
outputs and the seed.
:func:`load_study` reads and validates it (pydantic): a bad key, a bad value or a
missing file is a :class:`~saltmap.errors.ConfigError` whose message names the
key, the value and what would be accepted.

:func:`run_study` runs the stages in order — samples → screening → discovery →
evaluation → final fit → maps → report — into ``<out>/<study>-<timestamp>/``.
Each stage is a call into its module; this module holds no science. A step
the study turns off (or that has nothing to do) is left out of the run, with a
line in the log saying so.

Paths in a study file are relative to the file's folder. ``${SALTMAP_DATA_DIR}``
(or ``$SALTMAP_DATA_DIR``) is the shared data folder of
:func:`saltmap.datasets.data_dir`, also when that variable is not set; any
other ``${NAME}`` is taken from the environment.

Examples
--------
>>> import saltmap
>>> study = saltmap.load_study("study.toml")  # doctest: +SKIP
>>> result = saltmap.run_study(study, out="runs")  # doctest: +SKIP
>>> result.report  # doctest: +SKIP
PosixPath('runs/odisha-20261124-140301/report.html')
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import os
import platform
import re
import time
import tomllib
import types
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from saltmap.atomic import atomic_to_csv, atomic_write_text
from saltmap.errors import ConfigError, InputFileError, OutputExistsError
from saltmap.report import Figure, Note, Report, Table, markdown_table, write_report

MODEL_NAMES = ("Stacking", "XGBoost", "RF", "MLP", "PLSR")
PROTOCOLS = ("study", "repeated", "spatial")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


# -- paths --------------------------------------------------------------------------------------


def expand_path_text(text: str) -> str:
    """Replace ``${NAME}`` and ``$NAME`` in a path: ``SALTMAP_DATA_DIR`` is the data folder
    of :func:`saltmap.datasets.data_dir` (set or not), other names come from the environment.

    Raises
    ------
    ValueError
        If a variable other than ``SALTMAP_DATA_DIR`` is not set.
    """

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name == "SALTMAP_DATA_DIR":
            from saltmap.datasets import data_dir

            return str(data_dir())
        if name not in os.environ:
            raise ValueError(
                f"the environment variable {name} in {text!r} is not set; set it or write "
                "the path out"
            )
        return os.environ[name]

    return os.path.expanduser(_VAR.sub(value, text))


def _resolve(value: Any, info: ValidationInfo) -> Path:
    text = expand_path_text(str(value))
    path = Path(text)
    base = (info.context or {}).get("base")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _resolve_existing(value: Any, info: ValidationInfo) -> Path:
    path = _resolve(value, info)
    if (info.context or {}).get("check_files", True) and not path.exists():
        raise ValueError(
            f"{path} does not exist; fix the path (relative paths start at the study file's "
            "folder, ${SALTMAP_DATA_DIR} is the shared data folder)"
        )
    return path


def _resolve_source(value: Any, info: ValidationInfo) -> str:
    """A scene source: a URL (STAC item) is kept as it is, a path is resolved and checked."""
    text = str(value)
    if _URL.match(text):
        return text
    return str(_resolve_existing(text, info))


InputPath = Annotated[Path, BeforeValidator(_resolve_existing)]
SceneSource = Annotated[str, BeforeValidator(_resolve_source)]


# -- sections -----------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_scaling(value: str | None) -> str | None:
    if value is None:
        return value
    from saltmap.bands import scaling_from_name

    try:
        # A Sentinel-2 scaling without a baseline is decided later, from the baseline key.
        if value.strip().lower() != "sentinel2":
            scaling_from_name(value, None)
    except Exception as err:  # the message of any failure is what the user needs
        raise ValueError(str(err)) from None
    return value


Scaling = Annotated[str, AfterValidator(_check_scaling)]


class SaltConversionConfig(_Section):
    """EC → salt content: a line given by hand, a lab sheet to fit, or a saved conversion."""

    slope: float | None = Field(None, description="g/kg of salt per unit of EC (with intercept)")
    intercept: float | None = Field(None, description="salt content in g/kg at EC = 0")
    ec_unit: str | None = Field(None, description="EC unit of the slope or lab sheet, e.g. dS/m")
    lab_sheet: InputPath | None = Field(
        None, description="CSV/XLSX pairing EC with salt content, fitted by least squares"
    )
    ec_column: str | None = Field(None, description="EC column of the lab sheet")
    salt_column: str | None = Field(None, description="salt content column of the lab sheet")
    sheet: str | int | None = Field(None, description="workbook sheet of the lab sheet")
    file: InputPath | None = Field(
        None, description="a conversion saved by `saltmap convert fit` (.toml or .json)"
    )
    apply_to: Literal["classes", "target"] = Field(
        "classes",
        description="'classes': models predict the measured EC and the map's g/kg classes "
        "use the conversion; 'target': the target is converted to salt content before modelling",
    )

    @model_validator(mode="after")
    def _one_source(self) -> SaltConversionConfig:
        given = {
            "slope and intercept": self.slope is not None or self.intercept is not None,
            "lab_sheet": self.lab_sheet is not None,
            "file": self.file is not None,
        }
        chosen = [k for k, v in given.items() if v]
        if len(chosen) != 1:
            raise ValueError(
                "give exactly one of: slope and intercept (with ec_unit), lab_sheet, or file; "
                f"got {' and '.join(chosen) or 'none'}"
            )
        if given["slope and intercept"] and (self.slope is None or self.intercept is None):
            raise ValueError("a linear conversion needs both slope and intercept")
        if given["slope and intercept"] and self.ec_unit is None:
            raise ValueError('a linear conversion needs ec_unit, e.g. ec_unit = "dS/m"')
        return self

    def build(self) -> Any:
        """The :class:`~saltmap.salinity.units.SaltConversion` this section describes."""
        from saltmap.salinity import units as salinity

        if self.file is not None:
            return salinity.load_conversion(self.file)
        if self.lab_sheet is not None:
            return salinity.fit_lab_sheet(
                self.lab_sheet,
                ec_column=self.ec_column,
                salt_column=self.salt_column,
                ec_unit=self.ec_unit,
                sheet=self.sheet,
            ).conversion
        return salinity.SaltConversion(
            slope=float(self.slope), intercept=float(self.intercept), ec_unit=str(self.ec_unit)
        )


class SamplesConfig(_Section):
    """The field samples, with the options of :func:`saltmap.io.samples.read_samples`."""

    path: InputPath = Field(description="sample file: CSV, XLSX, GeoPackage, GeoJSON, Shapefile")
    target: str = Field("EC", description="column of measured salinity (EC or salt content)")
    target_unit: str | None = Field(None, description="unit of the target: uS/cm, dS/m, g/kg")
    to_unit: str | None = Field(None, description="unit to convert the target to")
    id: str | None = Field(None, description="column of the sample id")
    x: str | None = Field(None, description="column of x or longitude")
    y: str | None = Field(None, description="column of y or latitude")
    crs: str | None = Field(None, description="CRS of x/y, e.g. EPSG:4326")
    bands: dict[str, str] | None = Field(
        None, description='band role → column, roles B G R N S1 S2, e.g. {N = "nir"}'
    )
    scaling: Scaling = Field(
        "reflectance",
        description="band values to reflectance: reflectance, landsat-c2l2, sentinel2-l2a, "
        'sentinel2-l2a-offset, sentinel2 (with baseline) or "SCALE,OFFSET"',
    )
    baseline: str | None = Field(None, description="Sentinel-2 processing baseline, e.g. 05.09")
    columns_file: InputPath | None = Field(None, description="TOML file mapping columns")
    layer: str | None = Field(None, description="layer or sheet of the sample file")
    salt_conversion: SaltConversionConfig | None = Field(
        None, description="EC → salt content conversion"
    )

    @field_validator("bands")
    @classmethod
    def _roles(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        from saltmap.bands import ROLES

        bad = [r for r in value or {} if r not in ROLES]
        if bad:
            raise ValueError(f"unknown band role(s) {bad}; roles are {', '.join(ROLES)}")
        return value


class SceneConfig(_Section):
    """One scene to map (see :func:`saltmap.io.scene.open_scene`)."""

    path: SceneSource = Field(
        description="band folder, .SAFE folder or zip, multiband GeoTIFF, or STAC item"
    )
    name: str | None = Field(None, description="short name of the scene (default: the file's)")
    scaling: Scaling | None = Field(
        None, description="sentinel2-l2a (DN/10000), sentinel2-l2a-offset, SCALE,OFFSET, ..."
    )
    baseline: str | None = Field(None, description="Sentinel-2 processing baseline")
    bands: list[str] | None = Field(None, description="band names of a multiband file, in order")
    mask_water: bool = Field(False, description="also mask SCL water")
    boundary: InputPath | None = Field(
        None, description="polygon file clipping this scene (default: the study's boundary)"
    )
    covariates: dict[str, InputPath] = Field(
        {}, description="covariate name → raster for this scene (overrides covariates.rasters)"
    )

    @property
    def label(self) -> str:
        return _slug(self.name or Path(self.path.rstrip("/")).stem)


class IndicesConfig(_Section):
    """Which indices are screened and which index sets the models are evaluated on."""

    screen: str | list[str] = Field(
        "study", description="index names or sets to screen (Table 3): study, classic, novel"
    )
    sets: dict[str, str] = Field(
        {"N-SI": "novel", "SI": "classic"},
        min_length=1,
        description="feature sets of Table 4, label = selection: a set (novel = the study's "
        "N-SI, classic = its SI), index names separated by commas, or discovered:K",
    )

    @field_validator("screen")
    @classmethod
    def _screen_known(cls, value: str | list[str]) -> str | list[str]:
        for item in [value] if isinstance(value, str) else value:
            _check_selection(item, allow_discovered=False)
        return value

    @field_validator("sets")
    @classmethod
    def _sets_known(cls, value: dict[str, str]) -> dict[str, str]:
        for item in value.values():
            _check_selection(item, allow_discovered=True)
        return value


def _check_selection(text: str, *, allow_discovered: bool) -> None:
    from saltmap.features.indices import resolve

    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part.partition(":")[0].lower() == "discovered":
            k = part.partition(":")[2]
            if not allow_discovered:
                raise ValueError(f"{part!r}: discovered indices can be evaluated, not screened")
            if k and not k.isdigit():
                raise ValueError(f"{part!r}: write discovered:K with K a whole number")
            continue
        try:
            resolve(part)
        except KeyError as err:
            raise ValueError(str(err).strip("'\"")) from None


def _uses_discovered(text: str) -> bool:
    return any(p.strip().lower().startswith("discovered") for p in text.split(","))


class SpectraConfig(_Section):
    """Spectral response by salinity class (the study's figure 3)."""

    classes: str = Field(
        "quantile", description="quantile (equal-count classes of the target) or a scheme name"
    )
    n_classes: int = Field(4, ge=2, le=10, description="number of quantile classes")


class DiscoveryConfig(_Section):
    """The cross-validated index search (see :func:`saltmap.features.discovery.discover_cv`)."""

    enabled: bool = Field(True, description="run the index search")
    method: Literal["pearson", "spearman"] = Field("pearson", description="correlation")
    folds: int = Field(5, ge=2, description="outer folds that measure the search's optimism")
    repeats: int = Field(1, ge=1, description="repeats of the outer folds")
    top: int = Field(15, ge=1, description="indices shown in the figure and saved as D1..Dk")
    min_coverage: float = Field(0.9, gt=0, le=1, description="share of rows a formula must cover")


class ModelsConfig(_Section):
    """The study's models: evaluated ones, and the one fitted on all samples for the maps."""

    names: list[Literal["Stacking", "XGBoost", "RF", "MLP", "PLSR"]] = Field(
        list(MODEL_NAMES), min_length=1, description=f"models of Table 4: {', '.join(MODEL_NAMES)}"
    )
    final: Literal["Stacking", "XGBoost", "RF", "MLP", "PLSR"] = Field(
        "Stacking", description="model fitted on all samples and used for the maps"
    )
    final_indices: str = Field(
        "novel", description="index selection of the final model, as a value of indices.sets"
    )

    @field_validator("final_indices")
    @classmethod
    def _final_known(cls, value: str) -> str:
        _check_selection(value, allow_discovered=True)
        return value

    log_target: bool = Field(False, description="model log10 of the target")


class ValidationConfig(_Section):
    """Validation protocols: the study's single split and the honest ones beside it."""

    protocols: list[Literal["study", "repeated", "spatial"]] = Field(
        list(PROTOCOLS), min_length=1, description="study (one 70/30 split), repeated, spatial"
    )
    test_size: float = Field(0.3, gt=0, lt=1, description="validation share of the study split")
    repeats: int = Field(5, ge=1, description="repeats of the 5-fold repeated CV")
    block_size: float | None = Field(
        None, gt=0, description="spatial block side in metres (default from sample spacing)"
    )
    nested_selection: bool = Field(
        False, description="also choose the top selection_k indices inside each training fold"
    )
    selection_k: int = Field(4, ge=1, description="indices chosen by nested selection")
    baseline: bool = Field(True, description="compare with a plain random forest")
    bootstrap: int | None = Field(
        None, ge=100, description="bootstrap draws of the 95 % CIs (default 2000, quick 300)"
    )


class TuningConfig(_Section):
    """Optuna hyperparameter tuning (see :data:`saltmap.models.building.BUDGETS`)."""

    budget: Literal["default", "quick"] = Field(
        "default",
        description="default, or quick (a faithful miniature: few trials, small "
        "forests, one CV repeat)",
    )
    n_trials: int | None = Field(None, ge=0, description="trials per model (0 = no tuning)")


class ClassesConfig(_Section):
    """Salinity classes of the maps and of Table 5."""

    scheme: str = Field(
        "study", description="study (Table 5, g/kg), fao-ec, fao2006-ec, or give thresholds"
    )
    thresholds: list[float] | None = Field(None, description="inner class bounds, increasing")
    unit: str | None = Field(None, description="unit of the thresholds, e.g. g/kg or dS/m")
    labels: list[str] | None = Field(None, description="one label per class")

    @field_validator("scheme")
    @classmethod
    def _scheme_known(cls, value: str) -> str:
        from saltmap.salinity.units import get_scheme

        try:
            get_scheme(value)
        except Exception as err:
            raise ValueError(str(err)) from None
        return value

    @model_validator(mode="after")
    def _scheme(self) -> ClassesConfig:
        try:
            self.build()
        except Exception as err:
            raise ValueError(str(err)) from None
        return self

    def build(self) -> Any:
        """The :class:`~saltmap.salinity.units.ClassScheme` this section describes."""
        from saltmap.salinity import units as salinity

        if self.thresholds is not None:
            if self.unit is None:
                raise ValueError('thresholds need a unit, e.g. unit = "g/kg"')
            return salinity.scheme_from_thresholds(self.thresholds, self.labels, self.unit)
        return salinity.get_scheme(self.scheme)


class IntervalsConfig(_Section):
    """Per-pixel prediction intervals."""

    enabled: bool = Field(True, description="write lower/upper/width rasters")
    level: float = Field(0.9, gt=0.5, lt=1, description="nominal coverage, e.g. 0.9")
    method: Literal["base", "plus", "minmax"] = Field(
        "base",
        description="base: the map's prediction ± one conformal width (no extra cost, coverage "
        "approximate); plus: CV+, a finite-sample guarantee, K+1 model predictions per pixel; "
        "minmax: guaranteed, wider, same cost as plus (see saltmap.trust.intervals)",
    )
    score: Literal["absolute", "gamma"] = Field(
        "absolute",
        description="conformity score: absolute (one width) or gamma (width proportional to "
        "the prediction; needs positive predictions)",
    )
    coverage: list[Literal["repeated", "spatial"]] = Field(
        ["repeated", "spatial"],
        description="protocols on which the intervals' coverage is measured on held-out "
        "samples (the folds of validation.protocols); [] to skip",
    )


class AOAConfig(_Section):
    """Area of applicability (Meyer & Pebesma 2021)."""

    enabled: bool = Field(True, description="write the dissimilarity index and AOA mask")
    exclude_from_areas: bool = Field(False, description="leave pixels outside the AOA unclassed")


ModelName = Literal["Stacking", "XGBoost", "RF", "MLP", "PLSR"]


class CovariatesConfig(_Section):
    """Covariates beyond the spectrum (:mod:`saltmap.features.covariates`): sample columns used
    as predictors beside the indices and, for the maps, where each comes from on a scene."""

    numeric: list[str] = Field(
        [], description="sample columns of continuous or ordinal covariates, e.g. Dist_Sea"
    )
    categorical: list[str] = Field(
        [], description="sample columns of nominal covariates (one-hot encoded), e.g. Land_cover"
    )
    min_count: int | None = Field(
        None, ge=1, description="pool categorical levels seen fewer times into one level"
    )
    evaluate: bool = Field(
        True, description="score the models with and without the covariates on the same folds"
    )
    models: list[ModelName] | None = Field(
        None, description="models of that comparison, untuned (default: the final model)"
    )
    rasters: dict[str, InputPath] = Field(
        {}, description="covariate name → raster giving it on every scene (any CRS, resolution)"
    )
    distance: dict[str, InputPath] = Field(
        {},
        description="covariate name → vector file (lines or polygons): the distance in metres "
        "to its features, computed on each scene's grid (the sample column must hold the same)",
    )
    labels: dict[str, dict[str, str]] = Field(
        {}, description="categorical covariate → {raster code = level in the samples}"
    )

    @model_validator(mode="after")
    def _known_names(self) -> CovariatesConfig:
        try:
            spec = self.spec
        except ConfigError as err:
            raise ValueError(str(err)) from None
        for key in ("rasters", "distance", "labels"):
            unknown = sorted(set(getattr(self, key)) - set(spec.names))
            if unknown:
                raise ValueError(
                    f"covariates.{key} names {', '.join(unknown)}, which is not a covariate; "
                    f"covariates are {', '.join(spec.names) or 'none (add numeric = [...])'}"
                )
        both = sorted(set(self.rasters) & set(self.distance))
        if both:
            raise ValueError(f"{', '.join(both)}: give a raster or a distance, not both")
        wrong = sorted(set(self.distance) - set(spec.numeric))
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: a computed distance is a numeric covariate")
        wrong = sorted(set(self.labels) - set(spec.categorical))
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: labels are for categorical covariates")
        return self

    @property
    def spec(self) -> Any:
        """The :class:`~saltmap.features.covariates.Covariates` of this section (empty if none)."""
        from saltmap.features.covariates import Covariates

        return Covariates(self.numeric, self.categorical, self.min_count)


class OutputsConfig(_Section):
    """What the run writes."""

    maps: bool = Field(True, description="map the scenes")
    figure_formats: list[Literal["png", "svg", "pdf"]] = Field(
        ["png", "svg"], min_length=1, description="formats of every figure"
    )
    block_size: int = Field(512, ge=16, description="mapping block side in pixels")
    jobs: int = Field(1, ge=1, description="local processes for mapping")
    report: bool = Field(True, description="write report.html")


class StudyConfig(_Section):
    """A whole study, as a study file describes it."""

    name: str = Field(description="short name of the study; names the run folder")
    title: str | None = Field(None, description="title of the report")
    description: str = Field("", description="a few sentences for the report")
    seed: int = Field(0, ge=0, description="seed of every random step")
    samples: SamplesConfig
    scenes: list[SceneConfig] = Field([], description="scenes to map ([[scenes]] tables)")
    boundary: InputPath | None = Field(None, description="polygon file clipping every scene")
    indices: IndicesConfig = IndicesConfig()
    spectra: SpectraConfig = SpectraConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    models: ModelsConfig = ModelsConfig()
    validation: ValidationConfig = ValidationConfig()
    tuning: TuningConfig = TuningConfig()
    classes: ClassesConfig = ClassesConfig()
    intervals: IntervalsConfig = IntervalsConfig()
    aoa: AOAConfig = AOAConfig()
    covariates: CovariatesConfig = CovariatesConfig()
    outputs: OutputsConfig = OutputsConfig()

    @model_validator(mode="before")
    @classmethod
    def _one_scene(cls, data: Any) -> Any:
        # A single [scene] table is the common case; it means a one-element [[scenes]].
        if isinstance(data, dict) and "scene" in data:
            if "scenes" in data:
                raise ValueError("give either [scene] or [[scenes]], not both")
            data = {**data, "scenes": [data["scene"]]}
            del data["scene"]
        return data

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _slug(value):
            raise ValueError("the name needs at least one letter or digit")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        names = [s.label for s in self.scenes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scene names {twice} repeat; give each [[scenes]] a distinct name")
        uses_discovered = any(
            _uses_discovered(s) for s in [*self.indices.sets.values(), self.models.final_indices]
        )
        if uses_discovered and not self.discovery.enabled:
            raise ValueError(
                "an index set uses discovered indices but [discovery] enabled = false; "
                "enable discovery or drop the discovered set"
            )
        self._covariates_on_every_scene()
        if (
            self.intervals.enabled
            and self.intervals.method != "base"
            and self.covariates.categorical
        ):
            raise ValueError(
                f"intervals.method = {self.intervals.method!r} predicts every pixel with every "
                "fold model, which cannot predict a categorical level its fold never saw "
                f'({", ".join(self.covariates.categorical)}); use intervals.method = "base" '
                "with categorical covariates"
            )
        return self

    def _covariates_on_every_scene(self) -> None:
        """Every covariate has a source on every scene to map: checked before any work."""
        cov = self.covariates
        names = cov.spec.names
        for sc in self.scenes:
            unknown = sorted(set(sc.covariates) - set(names))
            if unknown:
                raise ValueError(
                    f"scene {sc.label!r}: covariates {', '.join(unknown)} are not covariates of "
                    f"the study (covariates.numeric / categorical: {', '.join(names) or 'none'})"
                )
            if not self.outputs.maps:
                continue
            missing = [
                n for n in names if n not in sc.covariates and n not in cov.rasters
                and n not in cov.distance
            ]  # fmt: skip
            if missing:
                raise ValueError(
                    f"the final model reads covariate(s) {', '.join(missing)}, but scene "
                    f"{sc.label!r} has no raster for them: give covariates.rasters (or "
                    "covariates.distance for a distance), or the scene's covariates table, or "
                    "set outputs.maps = false"
                )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip()).strip("-.")


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Study:
    """A validated study: its configuration, where it came from, and its original text.

    Attributes
    ----------
    config : StudyConfig
        Every key, validated, with paths resolved.
    path : Path or None
        The study file (None for a study built in Python).
    text : str
        The study file's text, copied into every run folder.
    """

    config: StudyConfig
    path: Path | None
    text: str

    @property
    def name(self) -> str:
        return _slug(self.config.name)

    def __getattr__(self, item: str) -> Any:
        # study.samples, study.seed, ...: the sections read like the file.
        if item.startswith("_") or item in {"config", "path", "text"}:
            raise AttributeError(item)
        return getattr(self.config, item)


def load_study(path: str | Path, *, check_files: bool = True) -> Study:
    """Read and validate a study file.

    Parameters
    ----------
    path : path
        The TOML study file (``saltmap init`` writes a commented example).
    check_files : bool, default=True
        Check that every input file exists.

    Returns
    -------
    Study

    Raises
    ------
    InputFileError
        If the study file does not exist.
    ConfigError
        If it is not TOML, or a key or value is wrong; the message lists each
        problem with its key, its value and what is accepted.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise InputFileError(
            f"study file {path} does not exist; write one with `saltmap init {path}`"
        ) from err
    return study_from_text(text, base=path.resolve().parent, path=path, check_files=check_files)


def study_from_text(
    text: str,
    *,
    base: str | Path = ".",
    path: str | Path | None = None,
    check_files: bool = True,
) -> Study:
    """Validate a study given as TOML text; relative paths resolve against ``base``."""
    where = str(path) if path is not None else "the study"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{where} is not valid TOML: {err}") from err
    config = validate_study(data, base=base, where=where, check_files=check_files)
    return Study(config=config, path=Path(path) if path is not None else None, text=text)


def validate_study(
    data: dict[str, Any],
    *,
    base: str | Path = ".",
    where: str = "the study",
    check_files: bool = True,
) -> StudyConfig:
    """Validate a study given as a dict (the parsed TOML); see :func:`load_study`."""
    context = {"base": Path(base), "check_files": check_files}
    try:
        return StudyConfig.model_validate(data, context=context)
    except ValidationError as err:
        raise ConfigError(describe_errors(err, where)) from None


# -- readable errors ----------------------------------------------------------------------------


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model a location points into (for listing the keys it accepts)."""
    model: Any = StudyConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _section_type(field.annotation)
        if model is None:
            return None
    return model


def _section_type(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _section_type(arg)
            if found is not None:
                return found
    return None


def _key(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _value(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def describe_errors(err: ValidationError, where: str = "the study") -> str:
    """Turn pydantic's errors into lines a user can act on: key, bad value, fix."""
    lines = [f"{where} has {err.error_count()} problem(s):"]
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = e["type"]
        if kind == "extra_forbidden":
            parent, key = loc[:-1], loc[-1]
            model = _model_at(parent)
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            section = f"[{_key(parent)}]" if parent else "the top level"
            lines.append(
                f"  - unknown key {_key(loc)!r} in {section}: {hint}"
                f"keys there are {', '.join(known)}"
            )
            continue
        if kind == "missing":
            model = _model_at(loc[:-1])
            field = model.model_fields.get(loc[-1]) if model else None
            what = f" ({field.description})" if field and field.description else ""
            lines.append(f"  - missing key {_key(loc)!r}{what}: add it")
            continue
        message = e["msg"].removeprefix("Value error, ")
        model = _model_at(loc[:-1]) if loc else None
        field = model.model_fields.get(loc[-1]) if model and loc else None
        expected = f"; expected {field.description}" if field and field.description else ""
        lines.append(f"  - {_key(loc)} = {_value(e['input'])}: {message}{expected}")
    return "\n".join(lines)


# -- writing an example -------------------------------------------------------------------------


def example_study_text() -> str:
    """The commented example study that ``saltmap init`` writes."""
    from importlib.resources import files

    return files("saltmap").joinpath("data", "example_study.toml").read_text(encoding="utf-8")


def demo_study_path() -> Path:
    """The demo study shipped in the package (Odisha samples, Patagonia scene)."""
    from importlib.resources import as_file, files

    with as_file(files("saltmap").joinpath("data", "demo.toml")) as path:
        return Path(path)


def write_example_study(path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the commented example study to ``path`` (refuses to replace a file).

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; pass --overwrite to replace it, or another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, example_study_text(), overwrite=True)
    return path


# ===============================================================================================
# Running a study
# ===============================================================================================

STEPS: tuple[str, ...] = (
    "samples",
    "screening",
    "discovery",
    "evaluation",
    "final fit",
    "maps",
    "report",
)

#: Packages whose versions are recorded in every run folder.
RECORDED_PACKAGES: tuple[str, ...] = (
    "saltmap",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "xgboost",
    "xgboost-cpu",
    "optuna",
    "mapie",
    "rasterio",
    "geopandas",
    "pyogrio",
    "shapely",
    "pyproj",
    "matplotlib",
    "typer",
    "rich",
    "openpyxl",
    "skops",
    "dask",
    "distributed",
    "pystac",
    "xarray",
    "pydantic",
    "joblib",
    "threadpoolctl",
)

log = logging.getLogger("saltmap.study.runner")


@dataclass
class StepRecord:
    """How one step of a run went: ``status`` is ``done``, ``skipped`` or ``failed``."""

    name: str
    status: str
    seconds: float = 0.0
    note: str = ""


@dataclass
class RunResult:
    """What :func:`run_study` wrote.

    Attributes
    ----------
    folder : Path
        The run folder ``<out>/<study>-<timestamp>``.
    steps : list of StepRecord
        Each step's status and wall time, in order.
    tables : dict
        Table name → CSV file (a Markdown twin sits beside it).
    figures : dict
        Figure name → PNG file (SVG beside it where drawn).
    maps : dict
        Scene name → folder of its COGs, class areas and figure.
    model_file : Path or None
        The saved final model.
    report : Path or None
        ``report.html``.
    seconds : float
        Wall time of the whole run.
    """

    folder: Path
    steps: list[StepRecord]
    tables: dict[str, Path]
    figures: dict[str, Path]
    maps: dict[str, Path]
    model_file: Path | None
    report: Path | None
    seconds: float

    def table(self, name: str) -> pd.DataFrame:
        """Read one of the run's tables back."""
        if name not in self.tables:
            raise KeyError(f"no table {name!r} in this run; tables: {', '.join(self.tables)}")
        return pd.read_csv(self.tables[name])

    def step(self, name: str) -> StepRecord:
        """The record of one step."""
        return next(s for s in self.steps if s.name == name)


def package_versions(names: Sequence[str] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (absent ones are left out), Python and GDAL."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    try:
        import rasterio

        out["GDAL"] = rasterio.__gdal_version__
    except ImportError:  # pragma: no cover - rasterio is a dependency
        pass
    return out


def _run_folder(out: Path, name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = out / f"{name}-{stamp}"
    n = 2
    while folder.exists():
        folder = out / f"{name}-{stamp}-{n}"
        n += 1
    return folder


def run_study(
    study: Study | str | Path,
    out: str | Path = "runs",
    *,
    folder: str | Path | None = None,
    progress: bool = True,
    log_level: int | str = logging.INFO,
) -> RunResult:
    """Run a study end to end into a new run folder.

    Steps, in order: samples → screening (Table 2, figure 3, Table 3, figure 4)
    → discovery → evaluation (Table 4, figure 5, repeated and spatial CV) →
    final fit (and the model file) → maps (COGs, Table 5, figure 6, intervals
    and AOA) → report (``report.html``). A step the study turns off is left out
    with a line in the log.

    Parameters
    ----------
    study : Study or path
        A study from :func:`load_study`, or the path of a study file.
    out : path, default="runs"
        Parent of the run folder ``<study>-<YYYYmmdd-HHMMSS>``.
    folder : path, optional
        Exact run folder instead (must not exist yet).
    progress : bool, default=True
        Show progress bars of the long steps.
    log_level : int or str, default=INFO
        Level of the run's ``run.log`` (the ``saltmap`` logger).

    Returns
    -------
    RunResult

    Raises
    ------
    OutputExistsError
        If ``folder`` exists.
    SaltmapError
        From any stage; the run folder keeps what was written and ``run.json``
        says which step failed.
    """
    if not isinstance(study, Study):
        study = load_study(study)
    if folder is not None:
        folder = Path(folder)
        if folder.exists():
            raise OutputExistsError(f"run folder {folder} exists; choose another or remove it")
    else:
        folder = _run_folder(Path(out), study.name)
    runner = _Runner(study, folder, progress=progress)
    with _run_log(folder / "run.log", log_level):
        return runner.run()


@contextlib.contextmanager
def _run_log(path: Path, level: int | str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.setLevel(level)
    logger = logging.getLogger("saltmap")
    old_level = logger.level
    logger.addHandler(handler)
    level_no = logging.getLevelName(level) if isinstance(level, str) else level
    logger.setLevel(min(old_level or logging.WARNING, level_no))
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


def _label(samples: Any) -> str:
    unit = f" ({samples.target_unit})" if samples.target_unit else ""
    return f"{samples.target_name}{unit}"


class _Runner:
    """One run: the folder, what has been made so far, and the report being built."""

    def __init__(self, study: Study, folder: Path, *, progress: bool):

        self.study = study
        self.cfg = study.config
        self.folder = folder
        self.progress = progress
        self.steps: list[StepRecord] = []
        self.tables: dict[str, Path] = {}
        self.figures: dict[str, Path] = {}
        self.maps: dict[str, Path] = {}
        self.model_file: Path | None = None
        self.samples: Any = None
        self.conversion: Any = None
        self.discovered: list[str] = []
        self.final: Any = None
        self.final_params: dict[str, Any] = {}
        self.highlights: list[str] = []
        self.trust: Any = None
        self.evaluation: Any = None
        self.X: Any = None  # what the models read: reflectance, plus covariate columns
        title = self.cfg.title or f"saltmap study: {self.cfg.name}"
        self.report = Report(title=title, subtitle=self.cfg.description)
        r = self.report
        self.sec_summary = r.section(
            "Summary", "The numbers to quote, each from the section named beside it."
        )
        self.sec_samples = r.section("Samples")
        self.sec_indices = r.section("Indices and spectral response (Table 2, Figure 3)")
        self.sec_screen = r.section("Screening (Table 3, Figure 4)")
        self.sec_eval = r.section(
            "Model accuracy as the study measured it (Table 4, Figure 5)",
            "One calibration/validation split, as in the study. A single split of about 100 "
            "samples gives numbers that move a lot with the split: read them with the "
            "cross-validated table below.",
        )
        self.sec_honest = r.section(
            "Honest validation: repeated and spatial cross-validation",
            "The same models scored over many splits: repeated k-fold (random folds) and "
            "spatial block k-fold (whole areas held out), as mean ± sd over folds with a "
            "bootstrap 95 % interval. Tuning runs inside each training fold.",
        )
        self.sec_covariates = r.section(
            "Covariates beyond the spectrum",
            "The same models with and without the covariates, on the same folds as the "
            "cross-validation above (untuned defaults, the final model's indices), and what "
            "each predictor adds: the drop of R² on the test fold when it is shuffled.",
        )
        self.sec_discovery = r.section(
            "Index discovery and its optimism",
            "Every two- and three-band formula of the study's forms, ranked by correlation; "
            "the same search inside each outer fold shows how much of the best in-sample "
            "correlation survives on unseen samples.",
        )
        self.sec_final = r.section("Final model")
        self.sec_maps = r.section("Maps (Table 5, Figure 6) and how far to trust them")
        self.sec_run = r.section("Run provenance")

    @property
    def target_is_converted(self) -> bool:
        """The target becomes salt content before modelling (salt_conversion.apply_to)."""
        conversion = self.cfg.samples.salt_conversion
        return conversion is not None and conversion.apply_to == "target"

    @property
    def covariates(self) -> Any:
        """The study's :class:`~saltmap.features.covariates.Covariates`, or None without any."""
        spec = self.cfg.covariates.spec
        return spec if spec else None

    @property
    def class_conversion(self) -> Any:
        """The EC → salt conversion the maps' classes need (None once the target is salt)."""
        return None if self.target_is_converted else self.conversion

    # -- outputs ----------------------------------------------------------------------------

    def save_table(
        self,
        name: str,
        frame: pd.DataFrame,
        title: str = "",
        caption: str = "",
        *,
        shown: pd.DataFrame | None = None,
        markdown: bool = True,
        **kw: Any,
    ) -> Any:
        """Write ``tables/<name>.csv`` (and ``.md``); return a report Table.

        ``shown`` is a compact version for the report and the Markdown file (the CSV
        keeps every column); ``markdown=False`` for data tables only read by programs.
        """

        tables = self.folder / "tables"
        tables.mkdir(exist_ok=True)
        csv = tables / f"{name}.csv"
        atomic_to_csv(frame, csv, index=frame.index.name is not None)
        table = Table(title or name, frame if shown is None else shown, caption, **kw)
        if markdown:
            atomic_write_text(tables / f"{name}.md", markdown_table(table))
        self.tables[name] = csv
        return table

    def save_figure(self, name: str, fig: Any, title: str, caption: str = "") -> Any:
        """Write ``figures/<name>.<fmt>`` for each configured format; return a report Figure."""
        from saltmap.plots import save_figure

        figures = self.folder / "figures"
        figures.mkdir(exist_ok=True)
        formats = tuple(dict.fromkeys(["png", *self.cfg.outputs.figure_formats]))
        written = save_figure(fig, figures / name, formats=formats)
        png = next(p for p in written if p.suffix == ".png")
        self.figures[name] = png
        return Figure(title, png, caption)

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> RunResult:
        start = time.perf_counter()
        self.folder.mkdir(parents=True, exist_ok=True)
        self._provenance()
        log.info("study %s → %s", self.cfg.name, self.folder)
        steps = [
            ("samples", self.step_samples),
            ("screening", self.step_screening),
            ("discovery", self.step_discovery),
            ("evaluation", self.step_evaluation),
            ("final fit", self.step_final_fit),
            ("maps", self.step_maps),
        ]
        for i, (name, step) in enumerate(steps, start=1):
            self._do(f"[{i}/{len(STEPS)}] {name}", name, step)
        self._write_run_json(time.perf_counter() - start, "report")
        report = None
        if self.cfg.outputs.report:
            self._do(f"[{len(STEPS)}/{len(STEPS)}] report", "report", self.step_report)
            report = self.folder / "report.html"
        else:
            self._skip("report", "outputs.report = false")
        seconds = time.perf_counter() - start
        self._write_run_json(seconds, None)
        log.info("run finished in %.1f s: %s", seconds, self.folder)
        return RunResult(
            self.folder,
            self.steps,
            self.tables,
            self.figures,
            self.maps,
            self.model_file,
            report,
            seconds,
        )

    def _do(self, banner: str, name: str, step: Callable[[], str | None]) -> None:
        log.info("%s …", banner)
        t0 = time.perf_counter()
        try:
            skipped = step()
        except Exception as err:
            seconds = time.perf_counter() - t0
            self.steps.append(StepRecord(name, "failed", seconds, f"{type(err).__name__}: {err}"))
            # The command line prints the error itself: keep this line for run.log only.
            log.error("%s failed after %.1f s: %s", name, seconds, err, extra={"console": False})
            self._write_run_json(float("nan"), name)
            raise
        seconds = time.perf_counter() - t0
        if skipped:
            self._skip(name, skipped, seconds)
        else:
            self.steps.append(StepRecord(name, "done", seconds))
            log.info("%s done in %.1f s", name, seconds)

    def _skip(self, name: str, why: str, seconds: float = 0.0) -> None:
        self.steps.append(StepRecord(name, "skipped", seconds, why))
        log.warning("%s left out of this run: %s", name, why)

    def _provenance(self) -> None:
        target = self.folder / "study.toml"
        atomic_write_text(target, self.study.text)
        # Every key with its default filled in and every path resolved: what actually ran.
        atomic_write_text(
            self.folder / "study_resolved.json", self.cfg.model_dump_json(indent=2) + "\n"
        )
        versions = package_versions()
        atomic_write_text(self.folder / "versions.json", json.dumps(versions, indent=2) + "\n")
        self.versions = versions

    def _write_run_json(self, seconds: float, failed_or_pending: str | None) -> None:
        record = {
            "study": self.cfg.name,
            "study_file": str(self.study.path) if self.study.path else None,
            "folder": str(self.folder),
            "seed": self.cfg.seed,
            "seeds": {
                "splits, tuning, models, bootstrap": self.cfg.seed,
                "discovery outer folds": self.cfg.seed,
                "intervals and AOA folds": self.cfg.seed,
            },
            "saltmap": self.versions.get("saltmap"),
            "steps": [asdict(s) for s in self.steps],
            "seconds": None if math.isnan(seconds) else round(seconds, 2),
            "tables": {k: str(v.relative_to(self.folder)) for k, v in self.tables.items()},
            "figures": {k: str(v.relative_to(self.folder)) for k, v in self.figures.items()},
            "maps": {k: str(v.relative_to(self.folder)) for k, v in self.maps.items()},
            "model_file": str(self.model_file.relative_to(self.folder))
            if self.model_file
            else None,
        }
        if failed_or_pending:
            record["incomplete_at"] = failed_or_pending
        atomic_write_text(self.folder / "run.json", json.dumps(record, indent=2) + "\n")

    # -- steps: each returns None when done, or the reason it was left out --------------------

    def step_samples(self) -> str | None:
        from saltmap.io.samples import read_samples

        s = self.cfg.samples
        if s.salt_conversion is not None:
            self.conversion = s.salt_conversion.build()
            log.info("EC → salt content: %s", self.conversion)
        convert_target = self.target_is_converted
        samples = read_samples(
            s.path,
            target=s.target,
            target_unit=s.target_unit,
            to_unit=s.to_unit,
            id=s.id,
            x=s.x,
            y=s.y,
            crs=s.crs,
            bands=s.bands,
            scaling=s.scaling,
            baseline=s.baseline,
            columns_file=s.columns_file,
            layer=s.layer,
            conversion=self.conversion if convert_target else None,
        )
        self.samples = samples
        self.X = samples.reflectance
        if self.covariates:
            from saltmap.features.covariates import check_covariates_defined, predictor_table

            # A missing or undefined covariate column stops the run here, not hours later.
            self.X = predictor_table(samples, self.covariates)
            check_covariates_defined(self.X, self.covariates, samples.source)
        log.info("%s", samples.summary())
        for row in samples.rejected.itertuples():
            log.debug("rejected row %s (%s): %s", row.row, row.id, row.reason)
        if len(samples.rejected):
            log.info("%d rows set aside: see tables/rejected_samples.csv", len(samples.rejected))
        self._check_classes_early()
        sec = self.sec_samples
        sec.add(Note(samples.summary()))
        if self.conversion is not None:
            use = "the target before modelling" if convert_target else "the map's classes"
            source = f" (from {self.conversion.source})" if self.conversion.source else ""
            sec.add(Note(f"EC → salt content, applied to {use}: {self.conversion}{source}"))
        y = samples.target
        stats_ = pd.DataFrame(
            {
                "statistic": ["samples", "rejected", "min", "median", "mean", "max", "skewness"],
                _label(samples): [
                    len(samples),
                    len(samples.rejected),
                    y.min(),
                    y.median(),
                    y.mean(),
                    y.max(),
                    y.skew(),
                ],
            }
        )
        sec.add(self.save_table("samples_summary", stats_, "Samples and target"))
        if len(samples.rejected):
            sec.add(
                self.save_table(
                    "rejected_samples",
                    samples.rejected,
                    "Rows set aside",
                    "Rows of the sample file that could not be used, and why.",
                )
            )
        return None

    def _check_classes_early(self) -> None:
        """Fail before hours of work if the maps' classes cannot be reached from the target."""
        if not (self.cfg.outputs.maps and self.cfg.scenes):
            return
        from saltmap.errors import UnitError
        from saltmap.mapping.engine import plan_classes

        scheme = self.cfg.classes.build()
        try:
            plan_classes(
                scheme,
                self.samples.target_name,
                self.samples.target_unit,
                self.class_conversion,
            )
        except UnitError:
            unit = self.samples.target_unit
            raise ConfigError(
                f"{self.study.path or 'the study'}: the maps' classes (classes.scheme = "
                f"{scheme.name!r}, {scheme.quantity} in {scheme.unit}) cannot be reached from "
                f"the target {self.samples.target_name} in {unit} without an EC → salt content "
                "conversion. Add a samples.salt_conversion table (slope, intercept and ec_unit; "
                "lab_sheet; or file), or choose a scheme on the target's quantity (scheme = "
                f'"fao-ec" for EC), or thresholds in {unit} (thresholds = [...], unit = "{unit}")'
            ) from None

    def step_screening(self) -> str | None:
        from saltmap.features.indices import catalogue_table, resolve
        from saltmap.features.screening import screen
        from saltmap.features.spectra import (
            SENSOR_NAMES,
            salinity_classes,
            sensor_of,
            spectral_response,
        )
        from saltmap.plots import plot_screening, spectral_response_figure

        samples, label = self.samples, _label(self.samples)
        names = resolve(self.cfg.indices.screen)
        catalogue = catalogue_table()
        table2 = catalogue[catalogue["name"].isin(names)].reset_index(drop=True)
        table2 = table2[["name", "group", "formula", "bands", "long_name", "reference"]]
        self.sec_indices.add(
            self.save_table(
                "table2_indices",
                table2,
                "Table 2. The salinity indices",
                "Band roles: B blue, G green, R red, N near infrared, S1 and S2 shortwave infrared "
                "(Sentinel-2 B2 B3 B4 B8 B11 B12; Landsat 8/9 bands 2–7). Where a formula is "
                "undefined the index is missing (NaN), never infinite.",
            )
        )

        sp = self.cfg.spectra
        groups = salinity_classes(
            samples.target, unit=samples.target_unit, scheme=sp.classes, n_classes=sp.n_classes
        )
        sensor = sensor_of(samples.scaling)
        response = spectral_response(samples.reflectance, groups.labels, sensor=sensor)
        self.save_table("figure3_spectral_response", response, markdown=False)
        fig = spectral_response_figure(
            response,
            colours=groups.colours,
            class_description=groups.description,
            title=f"Spectral response by salinity class ({SENSOR_NAMES[sensor]} band centres)",
        )
        self.sec_indices.add(
            self.save_figure(
                "figure3_spectral_response",
                fig,
                "Figure 3. Spectral response by salinity class",
                f"Mean reflectance of each class ({groups.description}) at the band centres, raw "
                "and "
                "transformed as the study's novel indices use them; shading is ± 1 standard error.",
            )
        )

        table3 = screen(samples, names)
        self.sec_screen.add(
            self.save_table(
                "table3_screening",
                table3.drop(columns=["abs_r"]),
                f"Table 3. Pearson correlation of each index with {label}",
                "p: two-sided; 95 % CI by Fisher's z; n_undefined: samples where the index is "
                "undefined. Ranked by |r|.",
                formats={"p_value": ".2g", "r": ".3f", "ci_low": ".3f", "ci_high": ".3f"},
            )
        )
        fig = plot_screening(table3, target_label=label)
        self.sec_screen.add(
            self.save_figure(
                "figure4_screening",
                fig,
                "Figure 4. Correlation of the indices with salinity",
                "Bars: Pearson r; * p < 0.05, ** p < 0.01.",
            )
        )
        best = table3.iloc[0]
        self.sec_screen.add(
            Note(
                f"Strongest: {best['index']} (r = {best['r']:+.3f}, 95 % CI {best['ci_low']:+.2f} "
                "to "
                f"{best['ci_high']:+.2f}, n = {best['n']}). With {len(table3)} indices screened on "
                f"{len(samples)} samples, the best |r| is partly chance: see index discovery below."
            )
        )
        return None

    def step_discovery(self) -> str | None:

        d = self.cfg.discovery
        if not d.enabled:
            self.sec_discovery.add(Note("Index discovery was not enabled in this study."))
            return "discovery.enabled = false"
        from saltmap.features.discovery import (
            discover_cv,
            register_discovered,
            save_discovered,
            search_indices,
        )
        from saltmap.plots import discovery_figure

        samples, label = self.samples, _label(self.samples)
        # One search on all samples, then one per outer fold: each a step of the bar.
        total, done = 1 + d.folds * d.repeats, 0
        with _progress_bar(self.progress, "index discovery") as tick:

            def search(reflectance: pd.DataFrame, target: np.ndarray) -> Any:
                nonlocal done
                found = search_indices(
                    reflectance, target, method=d.method, min_coverage=d.min_coverage
                )
                done += 1
                if tick is not None:
                    tick(done, total)
                return found

            if tick is not None:
                tick(0, total)
            found = discover_cv(
                samples.reflectance,
                samples.target,
                n_splits=d.folds,
                n_repeats=d.repeats,
                random_state=self.cfg.seed,
                method=d.method,
                search=search,
            )
        ranked = found.in_sample.table
        self.sec_discovery.add(
            self.save_table(
                "discovery_ranked",
                ranked.head(d.top),
                f"Best {min(d.top, len(ranked))} of {found.in_sample.n_candidates} candidate "
                "indices "
                "(in-sample)",
                formats={"p": ".2g"},
            )
        )
        summary = found.summary()
        shown = summary.T.reset_index()
        shown.columns = ["measure", "value"]
        self.sec_discovery.add(
            self.save_table(
                "discovery_optimism",
                summary,
                "Discovery optimism",
                "in_sample_abs_r: the best |r| of a search on all samples, as a study without "
                "validation reports it; out_of_fold_mean_r: the fold winners' r on their fold's "
                "unseen samples; optimism: the difference.",
                shown=shown,
            )
        )
        self.save_table("discovery_folds", found.folds, markdown=False)
        fig = discovery_figure(
            ranked,
            found.folds,
            top=d.top,
            in_sample_abs_r=found.best_abs_r,
            target_label=label,
            method=d.method,
        )
        self.sec_discovery.add(
            self.save_figure(
                "discovery",
                fig,
                "Discovered indices and the search's optimism",
                "Left: the best formulas with their 95 % CI. Right: each outer fold's winner on "
                "its "
                "training rows and on the fold's test rows.",
            )
        )
        self.sec_discovery.add(
            Note(
                f"In-sample best |r| = {found.best_abs_r:.3f}; on unseen samples the fold winners "
                f"reach r = {found.out_of_fold_r:.3f}: optimism {found.optimism:+.3f}.",
                kind="warning" if found.optimism > 0.1 else "text",
            )
        )
        self.highlights.append(
            f"Index discovery ({found.in_sample.n_candidates} formulas): the best in-sample "
            f"|r| = {found.best_abs_r:.3f} falls to r = {found.out_of_fold_r:.3f} on unseen "
            f"samples (optimism {found.optimism:+.3f}; Index discovery)."
        )
        k = max([_discovered_k(s) for s in self._selections()] + [d.top])
        self.discovered = register_discovered(found.in_sample.candidates(k))
        save_discovered(
            found.in_sample,
            self.folder / "discovered.toml",
            k=k,
            meta={"seed": self.cfg.seed, "optimism": found.optimism},
        )
        return None

    def _selections(self) -> list[str]:
        return [*self.cfg.indices.sets.values(), self.cfg.models.final_indices]

    def _definitions(self) -> list[dict[str, Any]]:
        """Definitions of the discovered indices, for worker processes (whose catalogue
        lacks them: an index's computation does not travel with its name)."""
        if not self.discovered:
            return []
        from saltmap.features.discovery import definitions

        return definitions(self.discovered)

    def _resolve(self, selection: str) -> list[str]:
        from saltmap.features.discovery import resolve_with_discovered

        return resolve_with_discovered(selection)

    def step_evaluation(self) -> str | None:

        from saltmap.plots import prediction_figure
        from saltmap.validation.evaluation import evaluate_study

        v, t = self.cfg.validation, self.cfg.tuning
        sets = {label: self._resolve(sel) for label, sel in self.cfg.indices.sets.items()}
        # Discovered indices live in this process's catalogue; worker processes lack them.
        discovered = any(_uses_discovered(sel) for sel in self.cfg.indices.sets.values())
        n_jobs = 1 if discovered else 2
        with _progress_bar(self.progress, "evaluation") as tick:
            result = evaluate_study(
                self.samples,
                feature_sets=sets,
                models=list(self.cfg.models.names),
                protocols=list(v.protocols),
                quick=t.budget == "quick",
                n_trials=t.n_trials,
                n_repeats=v.repeats,
                validation_fraction=v.test_size,
                block_size=v.block_size,
                nested_selection=v.nested_selection,
                selection_k=v.selection_k,
                baseline=v.baseline,
                n_boot=v.bootstrap,
                random_state=self.cfg.seed,
                log_target=self.cfg.models.log_target,
                n_jobs=n_jobs,
                progress=tick,
            )
        self.evaluation = result
        unit = self.samples.target_unit or ""
        sets_text = "; ".join(f"{k} = {', '.join(v_)}" for k, v_ in sets.items())
        if len(result.table4):
            self.sec_eval.add(
                self.save_table(
                    "table4_study_split",
                    result.table4,
                    "Table 4. Accuracy on the study's calibration (c) and validation (v) split",
                    "R² = 1 − SSE/SST on the rows scored (it can be negative); RMSE, MAE and "
                    "bias in "
                    f"{unit}; RPIQ = interquartile range / RMSE. Feature sets: {sets_text}.",
                    digits=3,
                )
            )
            self.save_table("figure5_predictions", result.predictions, markdown=False)
            fig = prediction_figure(
                result.predictions,
                result.table4,
                target_label=self.samples.target_name,
                unit=self.samples.target_unit,
            )
            self.sec_eval.add(
                self.save_figure(
                    "figure5_predicted_measured",
                    fig,
                    "Figure 5. Predicted against measured",
                    "Calibration (open circles) and validation (filled triangles) samples of "
                    "the study split, 1:1 line dashed; one panel per model and feature set.",
                )
            )
        honest = result.honest
        if len(honest):
            self.sec_honest.add(
                self.save_table(
                    "cv_honest",
                    honest,
                    "Cross-validated accuracy: mean ± sd over folds [bootstrap 95 % CI]",
                    "Protocol study: the single validation split, its CI by bootstrapping its "
                    "rows; repeated: random k-fold; spatial: whole blocks of land held out, "
                    "closer to mapping new ground. R² pooled: R² of all out-of-fold "
                    f"predictions of a repeat together. RMSE and MAE in {unit}.",
                    shown=compact_cv_table(honest),
                )
            )
        if result.baseline is not None and len(result.baseline):
            self.sec_honest.add(
                self.save_table(
                    "cv_baseline",
                    result.baseline,
                    "Against a plain random forest (300 trees, defaults, all 21 indices)",
                    "Differences on the same repeated folds (model − plain RF) with a paired "
                    "bootstrap 95 % CI; an interval spanning 0 means no demonstrated difference.",
                    shown=compact_baseline_table(result.baseline),
                )
            )
        if len(result.folds):
            # Wall times differ between reruns; the run's timings are in run.json.
            folds = result.folds.drop(columns=["seconds"], errors="ignore")
            self.save_table("cv_folds", folds, markdown=False)
        self.highlights[0:0] = evaluation_highlights(result, unit)  # the headline goes first
        settings = {k: v for k, v in result.settings.items() if k != "feature_sets"}
        self.sec_honest.add(
            Note(
                "Settings: "
                + ", ".join(f"{k} = {v}" for k, v in settings.items())
                + f"; wall time {result.seconds:.0f} s."
            )
        )
        if self.covariates and self.cfg.covariates.evaluate:
            self._covariate_gain()
        return None

    def _covariate_gain(self) -> None:
        """What the covariates add: :func:`saltmap.features.covariates.covariate_gain` on the
        evaluation's own repeated and spatial folds."""
        from saltmap.features.covariates import covariate_gain

        cov, v = self.cfg.covariates, self.cfg.validation
        models = list(cov.models or [self.cfg.models.final])
        protocols = [p for p in v.protocols if p != "study"] or ["repeated"]
        discovered = _uses_discovered(self.cfg.models.final_indices)
        n_boot = v.bootstrap or (300 if self.cfg.tuning.budget == "quick" else 2000)
        summaries, importance, flagged = [], [], {}
        for protocol in protocols:
            splitter = self._splitter(protocol)
            if splitter is None:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # MLP convergence notes
                gain = covariate_gain(
                    self.samples,
                    self.covariates,
                    models=models,
                    indices=self._resolve(self.cfg.models.final_indices),
                    cv=splitter,
                    random_state=self.cfg.seed,
                    n_boot=n_boot,
                    # Worker processes would lack discovered indices.
                    n_jobs=1 if discovered else 2,
                    log_target=self.cfg.models.log_target,
                )
            summaries.append(gain.summary.assign(protocol=protocol))
            importance.append(gain.importance.assign(protocol=protocol))
            flagged[protocol] = gain.n_flagged
        if not summaries:
            return
        summary = pd.concat(summaries, ignore_index=True)
        summary = summary[["protocol", *[c for c in summary if c != "protocol"]]]
        importance = pd.concat(importance, ignore_index=True)
        importance = importance[["protocol", *[c for c in importance if c != "protocol"]]]
        kinds = ", ".join(f"{n} ({k})" for n, k in self.covariates.kinds.items())
        unit = self.samples.target_unit or ""
        self.sec_covariates.add(
            self.save_table(
                "covariate_gain",
                summary,
                f"With and without the covariates {kinds}",
                "Each fold fits every model twice, on the indices alone and with the covariates, "
                "and scores both on the same held-out samples; Δ = with − without, with a paired "
                f"bootstrap 95 % CI (an interval spanning 0: no demonstrated gain). RMSE in {unit}."
                + _flagged_text(flagged),
                shown=compact_gain_table(summary),
            )
        )
        self.sec_covariates.add(
            self.save_table(
                "covariate_importance",
                importance,
                "Permutation importance of each predictor",
                "Mean decrease of R² on each test fold when the predictor is shuffled (10 "
                "shuffles per fold), mean ± sd over folds; a categorical covariate is shuffled "
                "as one column. Near 0 or negative: the model does not need it.",
                shown=compact_importance_table(importance),
            )
        )
        for protocol, part in summary.groupby("protocol", sort=False):
            for row in part[part["predictors"] != "indices"].itertuples():
                self.highlights.append(
                    f"Adding the covariates ({', '.join(self.covariates.names)}) to {row.model} "
                    f"changes the pooled R² by {row.dR2_pooled:+.3f} "
                    f"[{row.dR2_pooled_ci_low:+.3f}, {row.dR2_pooled_ci_high:+.3f}] under "
                    f"{protocol} CV (Covariates)."
                )

    def step_final_fit(self) -> str | None:
        from saltmap.models.building import train_model
        from saltmap.validation.protocols import regression_metrics

        m, t = self.cfg.models, self.cfg.tuning
        names = self._resolve(m.final_indices)
        # Tuning reports no steps (train_model takes no observer): a spinner with the time.
        trials = "untuned" if t.n_trials == 0 else f"{t.budget} tuning budget"
        with (
            _spinner(self.progress, f"final fit: {m.final} on all samples ({trials})"),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")  # MLP convergence notes from every trial
            fitted, metadata = train_model(
                self.samples,
                model=m.final,
                indices=names,
                log_target=m.log_target,
                budget=t.budget,
                n_trials=t.n_trials,
                random_state=self.cfg.seed,
                covariates=self.covariates,
            )
        self.final = fitted
        self.final_params = dict(metadata.get("params", {}))
        y = self.samples.target.to_numpy(dtype=float)
        on_training = regression_metrics(y, fitted.predict(self.X))
        sec = self.sec_final
        seconds = metadata.get("training", {}).get("tuning_seconds", float("nan"))
        predictors = ", ".join([*names, *(self.covariates.names if self.covariates else ())])
        sec.add(
            Note(
                f"{m.final} on {predictors}, tuned with the {t.budget} budget on all "
                f"{len(y)} samples ({seconds:.0f} s of tuning), then fitted on all of them. On "
                f"its own training samples R² = {on_training['R2']:.3f}, RMSE = "
                f"{on_training['RMSE']:.4g}: optimistic by construction; quote the "
                "cross-validated figures above."
            )
        )
        params = pd.DataFrame(
            {
                "parameter": list(self.final_params),
                "value": [_param_text(v) for v in self.final_params.values()],
            }
        )
        if len(params):
            sec.add(self.save_table("final_model_parameters", params, "Tuned hyperparameters"))
        self._fit_trust()
        self._save_model(fitted, {**metadata, "study": self.cfg.name})
        return None

    def _save_model(self, fitted: Any, metadata: dict[str, Any]) -> None:
        from saltmap.models.persistence import save_model

        folder = self.folder / "model"
        folder.mkdir(exist_ok=True)
        self.model_file = Path(
            save_model(folder / "model.skops", fitted, metadata=metadata, trust=self.trust)
        )
        covariates = (
            "".join(f" --covariate {n}=RASTER" for n in self.covariates.names)
            if (self.covariates)
            else ""
        )
        reuse = f"`saltmap map {self.model_file.relative_to(self.folder)} SCENE{covariates}`"
        if self.conversion is not None:
            from saltmap.salinity.units import save_conversion

            conv = save_conversion(self.conversion, folder / "salt_conversion.toml")
            reuse += f" (with --conversion {conv.relative_to(self.folder)} for g/kg classes)"
        self.sec_final.add(
            Note(
                f"Model file: {self.model_file.relative_to(self.folder)}. Reuse it without "
                f"retraining: {reuse}, or `saltmap predict` on new samples."
            )
        )

    def _fit_trust(self) -> None:
        if not (self.cfg.intervals.enabled or self.cfg.aoa.enabled):
            return
        from saltmap.models.building import make_model
        from saltmap.trust.intervals import fit_trust

        m = self.cfg.models
        model = make_model(
            m.final,
            indices=self._resolve(m.final_indices),
            log_target=m.log_target,
            random_state=self.cfg.seed,
            params=self.final_params,
            covariates=self.covariates,
        )
        what = "final fit: prediction intervals and area of applicability"
        with _spinner(self.progress, what), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.trust = fit_trust(
                model,
                self.X,
                self.samples.target.to_numpy(dtype=float),
                confidence=self.cfg.intervals.level,
                method=self.cfg.intervals.method,
                conformity_score=self.cfg.intervals.score,
                random_state=self.cfg.seed,
            )
        log.info("intervals and AOA fitted (%s)", self.trust.info)
        if self.cfg.intervals.enabled and self.cfg.intervals.coverage:
            self._measure_coverage(model)

    def _measure_coverage(self, model: Any) -> None:
        """Coverage of the nominal interval on samples each interval never saw."""
        from joblib import Parallel, delayed

        from saltmap.trust.intervals import coverage_summary as summarise
        from saltmap.trust.intervals import evaluate_coverage

        X, y = self.X, self.samples.target.to_numpy(dtype=float)
        rows, level = [], self.cfg.intervals.level
        for protocol in self.cfg.intervals.coverage:
            splits = self._splits(protocol)
            if splits is None:
                continue
            jobs = Parallel(n_jobs=2, return_as="generator")(
                delayed(_with_discovered)(
                    self._definitions(),
                    evaluate_coverage,
                    model,
                    X,
                    y,
                    [split],
                    confidence=level,
                    method=self.cfg.intervals.method,
                    conformity_score=self.cfg.intervals.score,
                    random_state=self.cfg.seed,
                )
                for split in splits
            )
            parts = []
            with (
                warnings.catch_warnings(),
                _progress_bar(self.progress, f"interval coverage, {protocol} CV") as tick,
            ):
                warnings.simplefilter("ignore")
                for part in jobs:
                    parts.append(part)
                    if tick is not None:
                        tick(len(parts), len(splits))
            folds = pd.concat(parts, ignore_index=True)
            folds["repeat"] = np.arange(len(folds)) // 5
            folds["fold"] = np.arange(len(folds)) % 5
            rows.append({"protocol": protocol, "nominal": level, **summarise(folds)})
        if rows:
            self.highlights.append(
                f"{level:.0%} prediction intervals cover "
                + ", ".join(
                    f"{r['coverage']:.1%} of held-out samples under {r['protocol']} CV"
                    for r in rows
                )
                + f" (mean width {rows[0]['mean_width']:.4g} {self.samples.target_unit or ''}; "
                "Maps)."
            )
            self.sec_maps.add(
                self.save_table(
                    "interval_coverage",
                    pd.DataFrame(rows),
                    f"Coverage of the {level:.0%} prediction intervals on held-out samples",
                    "Each outer fold fits the intervals on its training samples only and counts "
                    "how many of its test samples fall inside. Random folds should come close to "
                    "the nominal level; spatial folds show what to expect on new ground. The "
                    "final model's hyperparameters (tuned on all samples) are reused, a mild "
                    "optimism.",
                    digits=3,
                )
            )

    def _splitter(self, protocol: str) -> Any:
        """The outer folds of a protocol as the evaluation makes them (5 folds, seeded), or
        None for a spatial protocol without sample coordinates."""
        from sklearn.model_selection import RepeatedKFold

        from saltmap.validation.protocols import SpatialBlockKFold

        seed, v = self.cfg.seed, self.cfg.validation
        if protocol == "repeated":
            return RepeatedKFold(n_splits=5, n_repeats=v.repeats, random_state=seed)
        if self.samples.coords is None:
            log.warning("spatial %s left out: the samples have no coordinates", protocol)
            return None
        return SpatialBlockKFold(5, coords=self.samples.coords, crs=self.samples.crs,
                                 block_size=v.block_size, random_state=seed)  # fmt: skip

    def _splits(self, protocol: str) -> list[tuple[np.ndarray, np.ndarray]] | None:
        """The outer folds of a protocol, materialised (see :meth:`_splitter`)."""
        from saltmap.validation.protocols import materialise_splits

        splitter = self._splitter(protocol)
        if splitter is None:
            return None
        X, y = self.samples.reflectance, self.samples.target.to_numpy(dtype=float)
        return materialise_splits(splitter, X, y)

    def step_maps(self) -> str | None:
        from saltmap.io.scene import open_scene
        from saltmap.mapping.engine import map_scene

        if not self.cfg.outputs.maps:
            return "outputs.maps = false"
        if not self.cfg.scenes:
            self.sec_maps.add(Note("The study names no scene to map."))
            return "the study names no scene"
        if self.final is None:
            return "no final model"
        trust_rows: list[dict[str, Any]] = []
        for sc in self.cfg.scenes:
            scene = open_scene(
                sc.path,
                bands=sc.bands,
                scaling=sc.scaling,
                baseline=sc.baseline,
                mask_water=sc.mask_water,
            )
            out_dir = self.folder / "maps" / sc.label
            log.info("mapping %s (%d × %d pixels)", sc.label, scene.width, scene.height)
            result = map_scene(
                self.final,
                scene,
                out_dir,
                block_size=self.cfg.outputs.block_size,
                # Mapping workers would lack discovered indices: map them in this process.
                jobs=1
                if _uses_discovered(self.cfg.models.final_indices)
                else self.cfg.outputs.jobs,
                boundary=sc.boundary or self.cfg.boundary,
                scheme=self.cfg.classes.build(),
                conversion=self.class_conversion,
                target_name=self.samples.target_name,
                target_unit=self.samples.target_unit,
                model_name=self.cfg.models.final,
                progress=self.progress,
                covariates=self._scene_covariates(sc, scene),
                trust=self.trust,
                exclude_outside_aoa=self.trust is not None and self.cfg.aoa.exclude_from_areas,
            )
            self.maps[sc.label] = out_dir
            self._map_report(sc.label, result)
            if result.trust is not None:
                trust_rows.append(self._trust_report(sc.label, result))
        if trust_rows:
            self.sec_maps.add(
                self.save_table(
                    "trust_summary",
                    pd.DataFrame(trust_rows),
                    f"Prediction intervals ({self.cfg.intervals.level:.0%}) and area of "
                    "applicability",
                    "Inside the AOA: valid pixels whose predictors are as close to the training "
                    "samples as cross-validation met (Meyer & Pebesma 2021); outside it the map "
                    "extrapolates and its intervals do not hold. Intervals: method "
                    f"{self.cfg.intervals.method!r}, {self.cfg.intervals.score} conformity "
                    "score.",
                    shown=_trust_shown(pd.DataFrame(trust_rows)),
                )
            )
        elif self.trust is None:
            self.sec_maps.add(
                Note(
                    "Intervals and the area of applicability are not part of this run.",
                    kind="warning",
                )
            )
        return None

    def _scene_covariates(self, sc: SceneConfig, scene: Any) -> Any:
        """The covariate rasters of one scene (None without covariates): the scene's own,
        else the study's, and distances computed on the scene's grid into the run folder."""
        if not self.covariates:
            return None
        from saltmap.features.covariates import (
            CovariateRasters,
            distance_to_features,
            write_covariate,
        )

        cov = self.cfg.covariates
        paths = {**cov.rasters, **sc.covariates}
        folder = self.folder / "covariates" / sc.label
        for name, vector in cov.distance.items():
            if name in sc.covariates:
                continue
            log.info("covariate %s: distance to %s on the grid of %s", name, vector, sc.label)
            distance = distance_to_features(vector, scene)
            folder.mkdir(parents=True, exist_ok=True)
            paths[name] = write_covariate(
                folder / f"{_slug(name)}.tif",
                distance,
                scene,
                description=f"distance to the features of {Path(vector).name}",
                unit="m",
            )
        return CovariateRasters(paths, self.covariates.kinds, labels=cov.labels or None)

    def _trust_report(self, label: str, result: Any) -> dict[str, Any]:
        """The trust figure of a map, drawn from its DI, AOA and width COGs (read decimated),
        and its row of the trust summary (from the map's own per-pixel summary)."""
        from saltmap.mapping.engine import read_classes_overview
        from saltmap.plots import trust_map_figure

        trust = self.trust
        layers = {}
        for name in ("di", "aoa", "width"):
            layers[name], (extent, _) = read_classes_overview(result.outputs.trust[name], 1000)
        unit = self.samples.target_unit or ""
        fig = trust_map_figure(
            layers["di"],
            layers["aoa"],
            layers["width"],
            extent,
            threshold=float(trust.aoa.threshold_),
            width_label=f"{self.cfg.intervals.level:.0%} interval width ({unit})",
            title=f"How far to trust the map of {label}",
        )
        self.sec_maps.add(
            self.save_figure(
                f"trust_{label}",
                fig,
                f"Area of applicability and interval width, {label}",
                "Left: dissimilarity index (DI) of each pixel's predictors to the training "
                "samples, with the AOA threshold; middle: inside (green) or outside the area of "
                "applicability; right: width of the prediction interval, hatched outside the "
                f"AOA. The rasters are in maps/{label}/.",
            )
        )
        row = {
            "scene": label,
            **result.trust.as_dict(),
            "aoa_threshold": float(trust.aoa.threshold_),
        }
        share = row["share_inside_aoa"]
        if share == share:
            self.highlights.append(
                f"{share:.1%} of the valid pixels of {label} lie inside the model's area of "
                f"applicability; median interval width {row['median_interval_width']:.4g} "
                f"{unit} (Maps)."
            )
            if share < 0.5:
                self.sec_maps.add(
                    Note(
                        f"Only {share:.1%} of the valid pixels of {label} lie inside the area of "
                        "applicability: the model was trained on samples unlike most of this "
                        "scene, so read its map there as an extrapolation.",
                        kind="warning",
                    )
                )
        return row

    def _map_report(self, label: str, result: Any) -> None:
        from saltmap.mapping.engine import class_map_of, plan_classes

        areas = result.areas
        self.sec_maps.add(
            self.save_table(
                f"table5_class_areas_{label}",
                areas,
                f"Table 5. Salinity class areas, {label}",
                f"Classes: {result.scheme}. Area of the valid mapped pixels.",
                digits=4,
            )
        )
        # Redrawn from the class COG so that figure 6 comes in every figure format.
        plan = plan_classes(
            self.cfg.classes.build(),
            self.samples.target_name,
            self.samples.target_unit,
            self.class_conversion,
        )
        scheme = plan.scheme
        # Greyed where the model extrapolates, as saltmap map draws it.
        aoa_path = result.outputs.trust.get("aoa")
        fig = class_map_of(
            result.outputs.classes,
            plan,
            title=f"Salinity classes ({scheme.name}: {scheme.quantity} in {scheme.unit}) "
            f"from {self.cfg.models.final}, {label}",
            percent=list(areas["percent"]),
            aoa_path=aoa_path,
        )
        self.sec_maps.add(
            self.save_figure(
                f"figure6_{label}",
                fig,
                f"Figure 6. Salinity classes, {label}",
                f"{result.n_valid} valid pixels of {result.n_pixels}; mapped in "
                f"{result.seconds:.1f} s. The COGs are in maps/{label}/ (the class map "
                "carries its colour table, with a QGIS style beside it)."
                + (" Hatched grey: outside the area of applicability." if aoa_path else ""),
            )
        )
        spread = _raster_percentiles(result.outputs.salinity)
        if spread is not None:
            y = self.samples.target
            unit = self.samples.target_unit or ""
            self.sec_maps.add(
                Note(
                    f"Predicted {self.samples.target_name} over {label}: median {spread[2]:.4g} "
                    f"{unit}, 5th–95th percentile {spread[0]:.4g}–{spread[4]:.4g} (range "
                    f"{spread[5]:.4g}–{spread[6]:.4g}); the training samples span "
                    f"{y.min():.4g}–{y.max():.4g} {unit} (median {y.median():.4g})."
                )
            )

    def step_report(self) -> str | None:

        self.sec_run.add(
            self.save_table(
                "run_steps",
                pd.DataFrame([asdict(s) for s in self.steps]),
                "Steps of this run",
                formats={"seconds": ".1f"},
            )
        )
        self.sec_run.add(
            Note(
                "Software: "
                + ", ".join(f"{k} {v}" for k, v in self.versions.items())
                + " (also in versions.json)."
            )
        )
        self.sec_run.add(
            Note(
                f"Seed {self.cfg.seed}. The study file is copied to study.toml; rerunning it with "
                "the same seed gives the same tables. Tables are in tables/ (CSV and Markdown), "
                "figures in figures/ (PNG and SVG), maps in maps/, the log in run.log."
            )
        )
        left_out = [s for s in self.steps if s.status == "skipped"]
        if left_out:
            self.sec_run.add(
                Note(
                    "Left out of this run: " + "; ".join(f"{s.name} ({s.note})" for s in left_out),
                    kind="warning",
                )
            )
        for line in self.highlights:
            self.sec_summary.add(Note(line, kind="item"))
        self.report.facts = self._facts()
        self.report.sections = [s for s in self.report.sections if s.items]
        write_report(self.report, self.folder / "report.html")
        return None

    def _facts(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"study": self.cfg.name}
        if self.study.path:
            facts["study file"] = _shown_path(self.study.path)
        if self.samples is not None:
            facts["samples"] = f"{len(self.samples)} usable, {len(self.samples.rejected)} set aside"
            facts["target"] = _label(self.samples)
        if self.cfg.scenes:
            facts["scenes"] = ", ".join(s.label for s in self.cfg.scenes)
        facts["models"] = ", ".join(self.cfg.models.names)
        facts["final model"] = f"{self.cfg.models.final} on {self.cfg.models.final_indices}"
        if self.covariates:
            facts["covariates"] = ", ".join(f"{n} ({k})" for n, k in self.covariates.kinds.items())
        facts["tuning"] = self.cfg.tuning.budget
        facts["seed"] = self.cfg.seed
        facts["saltmap"] = self.versions.get("saltmap", "?")
        return facts


def evaluation_highlights(result: Any, unit: str = "") -> list[str]:
    """Sentences with the evaluation's headline numbers, for the report's summary."""
    lines = []
    t4 = result.table4
    if len(t4):
        best = t4.loc[t4["R2_v"].idxmax()]
        lines.append(
            f"On the study's single 70/30 split the best validation R² is {best['R2_v']:.2f} "
            f"({best['model']}, {best['feature_set']}; RMSE {best['RMSE_v']:.4g} {unit}; "
            "Table 4)."
        )
    honest = result.honest
    for protocol, words in (("repeated", "repeated k-fold"), ("spatial", "spatial block")):
        part = honest[honest["protocol"] == protocol] if len(honest) else honest
        if len(part):  # the plain-forest reference is compared below, not ranked here
            part = part[part["model"].isin(MODEL_NAMES)]
        if len(part):
            best = part.loc[part["R2_pooled"].idxmax()]
            lines.append(
                f"Under {words} CV the best pooled R² is {best['R2_pooled']:.2f} "
                f"({best['model']}, {best['feature_set']}; fold mean {best['R2_mean']:.2f} "
                f"± {best['R2_sd']:.2f}; Honest validation)."
            )
    comparison = result.baseline
    if comparison is not None and len(comparison) and "verdict" in comparison:
        counts = comparison["verdict"].value_counts()
        lines.append(
            f"Against a plain random forest on the same folds: {counts.get('better', 0)} of "
            f"{len(comparison)} models have a clearly lower RMSE, {counts.get('worse', 0)} a "
            "clearly higher one (paired bootstrap 95 % CI; Honest validation)."
        )
    return lines


def _with_discovered(defs: list[dict[str, Any]], function: Callable[..., Any], *args, **kw):
    """Call ``function`` after registering discovered indices (in a worker process)."""
    if defs:
        from saltmap.features.discovery import register_definitions

        register_definitions(defs)
    return function(*args, **kw)


def _raster_percentiles(path: Path) -> tuple[float, ...] | None:
    """5, 25, 50, 75, 95th percentiles, min and max of a map, read from its overview."""
    import rasterio

    try:
        with rasterio.open(path) as src:
            factor = max(1, max(src.width, src.height) // 2000)
            values = src.read(1, out_shape=(src.height // factor, src.width // factor))
    except rasterio.errors.RasterioError:
        return None
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    q = np.percentile(values, [5, 25, 50, 75, 95])
    return (*map(float, q), float(values.min()), float(values.max()))


def _shown_path(path: Path) -> str:
    """A path as a reader of the report knows it: inside saltmap, or from the working folder."""
    path = Path(path).resolve()
    package = Path(__file__).resolve().parent
    for base, prefix in ((package, "saltmap/"), (Path.cwd(), "")):
        if path.is_relative_to(base):
            return prefix + str(path.relative_to(base))
    return str(path)


def _trust_shown(trust: pd.DataFrame) -> pd.DataFrame:
    """The trust summary as the report shows it: the AOA share in percent."""
    shown = trust.copy()
    if "share_inside_aoa" in shown:
        shown.insert(
            shown.columns.get_loc("share_inside_aoa"),
            "inside AOA (%)",
            [f"{100 * v:.2f}" for v in shown.pop("share_inside_aoa")],
        )
    return shown


def _param_text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _num(value: Any) -> str:
    """A number for a compact table: 3 significant digits, no exponent up to 10⁶."""
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def compact_cv_table(honest: pd.DataFrame) -> pd.DataFrame:
    """The cross-validation table as the report shows it: ``mean ± sd [low, high]`` cells."""
    rows = []
    for _, r in honest.iterrows():
        row = {"protocol": r["protocol"], "feature set": r["feature_set"], "model": r["model"],
               "folds": int(r["n_folds"])}  # fmt: skip
        for metric, label in (("R2", "R²"), ("RMSE", "RMSE"), ("MAE", "MAE")):
            cell = _num(r.get(f"{metric}_mean"))
            if np.isfinite(r.get(f"{metric}_sd", np.nan)):
                cell += f" ± {_num(r[f'{metric}_sd'])}"
            if f"{metric}_ci_low" in r and np.isfinite(r[f"{metric}_ci_low"]):
                cell += f" [{_num(r[f'{metric}_ci_low'])}, {_num(r[f'{metric}_ci_high'])}]"
            row[label] = cell
        if "R2_pooled" in r:
            row["R² pooled"] = _num(r["R2_pooled"])
        rows.append(row)
    return pd.DataFrame(rows)


def compact_baseline_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """The plain-forest comparison as the report shows it."""
    rows = []
    for _, r in comparison.iterrows():
        row = {"feature set": r["feature_set"], "model": r["model"]}
        row["R² pooled (model / plain RF)"] = (
            f"{_num(r['R2_pooled'])} / {_num(r['R2_pooled_baseline'])}"
        )
        for metric, label in (("R2_pooled", "Δ R² pooled"), ("RMSE", "Δ RMSE"), ("MAE", "Δ MAE")):
            if f"d{metric}" in r:
                row[label] = (
                    f"{_num(r[f'd{metric}'])} [{_num(r[f'd{metric}_ci_low'])}, "
                    f"{_num(r[f'd{metric}_ci_high'])}]"
                )
        if "verdict" in r:
            row["verdict"] = r["verdict"]
        rows.append(row)
    return pd.DataFrame(rows)


def _ci(value: Any, low: Any, high: Any, sign: str = "") -> str:
    return f"{value:{sign}.3g} [{low:{sign}.3g}, {high:{sign}.3g}]"


def compact_gain_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The with/without-covariates table as the report shows it (the CSV keeps every column)."""
    rows = []
    for _, r in summary.iterrows():
        row = {
            "protocol": r["protocol"],
            "model": r["model"],
            "predictors": r["predictors"],
            "folds": int(r["n_folds"]),
            "R² pooled": _ci(r["R2_pooled"], r["R2_pooled_ci_low"], r["R2_pooled_ci_high"]),
            "RMSE": f"{_num(r['RMSE_mean'])} ± {_num(r['RMSE_sd'])}",
        }
        with_covariates = np.isfinite(r.get("dR2_pooled", np.nan))
        row["Δ R² pooled"] = (
            _ci(r["dR2_pooled"], r["dR2_pooled_ci_low"], r["dR2_pooled_ci_high"], "+")
            if with_covariates
            else "–"
        )
        row["Δ RMSE"] = (
            _ci(r["dRMSE"], r["dRMSE_ci_low"], r["dRMSE_ci_high"], "+") if with_covariates else "–"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def compact_importance_table(importance: pd.DataFrame) -> pd.DataFrame:
    """Permutation importance as the report shows it: most important first per model."""
    ordered = importance.sort_values(
        ["protocol", "model", "mean"], ascending=[True, True, False], kind="stable"
    )
    return pd.DataFrame(
        {
            "protocol": ordered["protocol"],
            "model": ordered["model"],
            "predictor": ordered["predictor"],
            "decrease of R² when shuffled": [
                f"{m:.3f} ± {sd:.3f}" for m, sd in zip(ordered["mean"], ordered["sd"], strict=True)
            ],
        }
    )


def _flagged_text(flagged: dict[str, int]) -> str:
    """A caption's note on test rows left out for a categorical level their fold lacked."""
    counts = {p: n for p, n in flagged.items() if n}
    if not counts:
        return ""
    return (
        " Test samples whose categorical level was absent from their training fold cannot be "
        "predicted with the covariates; they are left out of both scores ("
        + ", ".join(f"{n} predictions under {p} CV" for p, n in counts.items())
        + ")."
    )


def _discovered_k(selection: str) -> int:
    k = 0
    for part in selection.split(","):
        head, _, tail = part.strip().partition(":")
        if head.lower() == "discovered":
            k = max(k, int(tail) if tail.isdigit() else 0)
    return k


@contextlib.contextmanager
def _progress_bar(show: bool, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A ``progress(done, total)`` callback drawing a rich bar (None when hidden)."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
    ) as bar:
        task = bar.add_task(what, total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick


@contextlib.contextmanager
def _spinner(show: bool, what: str) -> Iterator[None]:
    """A rich spinner with the elapsed time, for a step that reports no progress of its own."""
    if not show:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(), "{task.description}", TimeElapsedColumn(), transient=True
    ) as bar:
        bar.add_task(what, total=None)
        yield

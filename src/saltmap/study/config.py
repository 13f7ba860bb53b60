"""The study file: its whole schema, reading it, and the commented example.

A study file is TOML. It names the field samples (with their column mapping,
units and EC → salt content conversion), the scenes to map, the index sets, the
models, the validation protocols, the tuning budget, the class scheme, the
prediction-interval level, the area of applicability, the covariates beyond the
spectrum (sample columns, and for the maps rasters or a computed distance), the
outputs and the seed; each table is a section of :mod:`saltmap.study.sections`.
:func:`load_study` reads and validates it (pydantic): a bad key, a bad value or a
missing file is a :class:`~saltmap.errors.ConfigError` whose message names the
key, the value and what would be accepted (:mod:`saltmap.study.schema_errors`).

Paths in a study file are relative to the file's folder (:mod:`saltmap.study.paths`).

Examples
--------
>>> import saltmap
>>> study = saltmap.load_study("study.toml")  # doctest: +SKIP
>>> study.config.models.final  # doctest: +SKIP
'auto'
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from saltmap.atomic import atomic_write_text
from saltmap.errors import ConfigError, InputFileError, OutputExistsError
from saltmap.study.paths import InputPath, slug
from saltmap.study.scene_sections import MosaicConfig, SceneConfig
from saltmap.study.schema_errors import explain_errors
from saltmap.study.sections import (
    AOAConfig,
    ClassesConfig,
    CovariatesConfig,
    DiscoveryConfig,
    IndicesConfig,
    IntervalsConfig,
    ModelsConfig,
    OutputsConfig,
    SamplesConfig,
    SpectraConfig,
    TuningConfig,
    ValidationConfig,
    uses_discovered,
)


class StudyConfig(BaseModel):
    """A whole study, as a study file describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="short name of the study; names the run folder")
    title: str | None = Field(None, description="title of the report")
    description: str = Field("", description="a few sentences for the report")
    seed: int = Field(0, ge=0, description="seed of every random step")
    samples: SamplesConfig
    scenes: list[SceneConfig] = Field([], description="scenes to map ([[scenes]] tables)")
    boundary: InputPath | None = Field(None, description="polygon file clipping every scene")
    mosaic: MosaicConfig = MosaicConfig()
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
        if not slug(value):
            raise ValueError("the name needs at least one letter or digit")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        names = [s.label for s in self.scenes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scene names {twice} repeat; give each [[scenes]] a distinct name")
        clash = sorted({s.map_label for s in self.scenes if s.mosaic} & set(names))
        if clash:
            raise ValueError(f"mosaic name(s) {clash} are also scene names; rename one of them")
        discovered = any(
            uses_discovered(s) for s in [*self.indices.sets.values(), self.models.final_indices]
        )
        if discovered and not self.discovery.enabled:
            raise ValueError(
                "an index set uses discovered indices but [discovery] enabled = false; "
                "enable discovery or drop the discovered set"
            )
        if self.models.final == "auto" and not {"repeated", "spatial"} & set(
            self.validation.protocols
        ):
            raise ValueError(
                'models.final = "auto" chooses the final model by cross-validation, but '
                "validation.protocols has neither repeated nor spatial; add one, or name the "
                'final model (final = "RF", …)'
            )
        self._covariates_on_every_scene()
        if (
            self.intervals.enabled
            and self.intervals.method not in ("normalized", "base")
            and self.covariates.categorical
        ):
            raise ValueError(
                f"intervals.method = {self.intervals.method!r} predicts every pixel with every "
                "fold model, which cannot predict a categorical level its fold never saw "
                f'({", ".join(self.covariates.categorical)}); use intervals.method = "normalized" '
                'or "base" with categorical covariates'
            )
        if self.intervals.method == "normalized" and self.intervals.score != "absolute":
            raise ValueError(
                f'intervals.score = "{self.intervals.score}" does not go with intervals.method '
                '= "normalized", which scales absolute errors; use score = "absolute", or '
                'method = "base" with score = "gamma"'
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
        return slug(self.config.name)

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
        raise ConfigError(explain_errors(err, StudyConfig, where)) from None


def describe_errors(err: ValidationError, where: str = "the study") -> str:
    """Turn pydantic's errors on a study into lines a user can act on: key, bad value, fix."""
    return explain_errors(err, StudyConfig, where)


# -- writing an example -------------------------------------------------------------------------


def example_study_text() -> str:
    """The commented example study that ``saltmap init`` writes."""
    return files("saltmap").joinpath("data", "example_study.toml").read_text(encoding="utf-8")


def demo_study_path() -> Path:
    """The demo study shipped in the package (Odisha samples, Patagonia scene)."""
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

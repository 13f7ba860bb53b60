"""The sections of a study file: one pydantic model per TOML table.

Each section forbids unknown keys and checks its values against what the stages
accept (index names, class schemes, band roles, scalings, covariate names), so a
wrong study file fails on loading with the key named, not hours into a run.
:class:`~saltmap.study.config.StudyConfig` puts them together.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from saltmap import salinity
from saltmap.bands import ROLES, scaling_from_name
from saltmap.errors import ConfigError
from saltmap.features import Covariates, resolve
from saltmap.study.paths import InputPath

MODEL_NAMES = ("Stacking", "XGBoost", "RF", "MLP", "PLSR")
PROTOCOLS = ("study", "repeated", "spatial")
ModelName = Literal["Stacking", "XGBoost", "RF", "MLP", "PLSR"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_scaling(value: str | None) -> str | None:
    if value is None:
        return value
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

    def build(self) -> salinity.SaltConversion:
        """The :class:`~saltmap.salinity.units.SaltConversion` this section describes."""
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
        bad = [r for r in value or {} if r not in ROLES]
        if bad:
            raise ValueError(f"unknown band role(s) {bad}; roles are {', '.join(ROLES)}")
        return value


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
    final: Literal["auto", "Stacking", "XGBoost", "RF", "MLP", "PLSR"] = Field(
        "auto",
        description="model fitted on all samples and used for the maps: auto (the evaluation "
        "chooses it: lowest pooled RMSE under spatial CV, or repeated CV without coordinates, "
        "with the one-standard-error rule toward the simpler model), or a model name",
    )
    final_indices: str = Field(
        "novel",
        description="index selection of a named final model, as a value of indices.sets "
        "(with final = auto the chosen candidate's feature set is used)",
    )
    candidates: bool = Field(
        True,
        description="the choice of final = auto also weighs the six bands alone and all 21 "
        "indices together (and, with covariates, every set with them)",
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
        try:
            salinity.get_scheme(value)
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

    def build(self) -> salinity.ClassScheme:
        """The :class:`~saltmap.salinity.units.ClassScheme` this section describes."""
        if self.thresholds is not None:
            if self.unit is None:
                raise ValueError('thresholds need a unit, e.g. unit = "g/kg"')
            return salinity.scheme_from_thresholds(self.thresholds, self.labels, self.unit)
        return salinity.get_scheme(self.scheme)


class IntervalsConfig(_Section):
    """Per-pixel prediction intervals."""

    enabled: bool = Field(True, description="write lower/upper/width rasters")
    level: float = Field(0.9, gt=0.5, lt=1, description="nominal coverage, e.g. 0.9")
    method: Literal["normalized", "base", "plus", "minmax"] = Field(
        "normalized",
        description="normalized: the map's prediction ± a conformal multiple of the error "
        "expected at the pixel (width varies, one small forest per pixel); base: ± one "
        "constant conformal width (no extra cost); both with approximate coverage, measured; "
        "plus: CV+, a finite-sample guarantee, K+1 model predictions per pixel; "
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
    def spec(self) -> Covariates:
        """The :class:`~saltmap.features.covariates.Covariates` of this section (empty if none)."""
        return Covariates(self.numeric, self.categorical, self.min_count)


class OutputsConfig(_Section):
    """What the run writes."""

    maps: bool = Field(True, description="map the scenes")
    figure_formats: list[Literal["png", "svg", "pdf"]] = Field(
        ["png", "svg"], min_length=1, description="formats of every figure"
    )
    block_size: int = Field(512, ge=16, description="mapping block side in pixels")
    jobs: int = Field(1, ge=1, description="blocks mapped in parallel (threads)")
    report: bool = Field(True, description="write report.html")


def uses_discovered(text: str) -> bool:
    """Whether an index selection (``"novel,discovered:3"``) names discovered indices."""
    return any(p.strip().lower().startswith("discovered") for p in text.split(","))


def discovered_k(selection: str) -> int:
    """The largest K of the ``discovered:K`` parts of a selection (0 without any)."""
    k = 0
    for part in selection.split(","):
        head, _, tail = part.strip().partition(":")
        if head.lower() == "discovered":
            k = max(k, int(tail) if tail.isdigit() else 0)
    return k

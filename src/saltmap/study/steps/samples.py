"""Step 1, samples: read the field samples, check what the later steps need, describe them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from saltmap.errors import ConfigError, UnitError
from saltmap.features import check_covariates_defined, predictor_table
from saltmap.io import ColumnOptions, read_samples
from saltmap.mapping import plan_classes
from saltmap.report import Note
from saltmap.study.context import RunContext, log, target_label

if TYPE_CHECKING:
    from saltmap.io import Samples
    from saltmap.salinity import SaltConversion
    from saltmap.study.config import StudyConfig


@dataclass(frozen=True)
class SampleData:
    """The samples as the later steps read them.

    Attributes
    ----------
    samples : Samples
        The usable samples (target, reflectance, coordinates, rejected rows).
    predictors : DataFrame
        What the models read: the reflectance, plus the covariate columns.
    conversion : SaltConversion or None
        The study's EC → salt content conversion.
    target_converted : bool
        The target became salt content before modelling (``apply_to = "target"``).
    """

    samples: Samples
    predictors: pd.DataFrame
    conversion: SaltConversion | None
    target_converted: bool

    @property
    def class_conversion(self) -> SaltConversion | None:
        """The conversion the maps' classes need (None once the target is salt content)."""
        return None if self.target_converted else self.conversion

    @property
    def label(self) -> str:
        """The target as tables name it, e.g. ``EC (uS/cm)``."""
        return target_label(self.samples)


def read_study_samples(ctx: RunContext) -> SampleData:
    """Read the samples the study names, with their covariate columns checked."""
    s = ctx.cfg.samples
    conversion = s.salt_conversion.build() if s.salt_conversion is not None else None
    if conversion is not None:
        log.info("EC → salt content: %s", conversion)
    convert_target = s.salt_conversion is not None and s.salt_conversion.apply_to == "target"
    columns = ColumnOptions(
        target=s.target, target_unit=s.target_unit, to_unit=s.to_unit, id=s.id, x=s.x, y=s.y,
        crs=s.crs, bands=s.bands, scaling=s.scaling, baseline=s.baseline, layer=s.layer,
    )  # fmt: skip
    samples = read_samples(
        s.path, columns, columns_file=s.columns_file,
        conversion=conversion if convert_target else None,
    )  # fmt: skip
    predictors = samples.reflectance
    if ctx.covariates:
        # A missing or undefined covariate column stops the run here, not hours later.
        predictors = predictor_table(samples, ctx.covariates)
        check_covariates_defined(predictors, ctx.covariates, samples.source)
    return SampleData(samples, predictors, conversion, convert_target)


def check_classes_reachable(cfg: StudyConfig, data: SampleData, where: str) -> None:
    """Fail before hours of work if the maps' classes cannot be reached from the target.

    Raises
    ------
    ConfigError
        If the class scheme is on another quantity than the target and there is no
        conversion between them.
    """
    if not (cfg.outputs.maps and cfg.scenes):
        return
    scheme = cfg.classes.build()
    samples = data.samples
    try:
        plan_classes(scheme, samples.target_name, samples.target_unit, data.class_conversion)
    except UnitError:
        unit = samples.target_unit
        raise ConfigError(
            f"{where}: the maps' classes (classes.scheme = "
            f"{scheme.name!r}, {scheme.quantity} in {scheme.unit}) cannot be reached from "
            f"the target {samples.target_name} in {unit} without an EC → salt content "
            "conversion. Add a samples.salt_conversion table (slope, intercept and ec_unit; "
            "lab_sheet; or file), or choose a scheme on the target's quantity (scheme = "
            f'"fao-ec" for EC), or thresholds in {unit} (thresholds = [...], unit = "{unit}")'
        ) from None


def summary_table(data: SampleData) -> pd.DataFrame:
    """Counts and the target's distribution."""
    samples, y = data.samples, data.samples.target
    return pd.DataFrame(
        {
            "statistic": ["samples", "rejected", "min", "median", "mean", "max", "skewness"],
            data.label: [len(samples), len(samples.rejected), y.min(), y.median(), y.mean(),
                         y.max(), y.skew()],
        }
    )  # fmt: skip


def log_samples(samples: Samples) -> None:
    """The samples' summary in the log, and each row set aside (debug)."""
    log.info("%s", samples.summary())
    for row in samples.rejected.itertuples():
        log.debug("rejected row %s (%s): %s", row.row, row.id, row.reason)
    if len(samples.rejected):
        log.info("%d rows set aside: see tables/rejected_samples.csv", len(samples.rejected))


def write_samples_section(ctx: RunContext, data: SampleData) -> None:
    """The samples' summary table, set-aside rows and conversion note."""
    samples = data.samples
    sec = ctx.section("samples")
    sec.add(Note(samples.summary()))
    if data.conversion is not None:
        use = "the target before modelling" if data.target_converted else "the map's classes"
        source = f" (from {data.conversion.source})" if data.conversion.source else ""
        sec.add(Note(f"EC → salt content, applied to {use}: {data.conversion}{source}"))
    sec.add(ctx.save_table("samples_summary", summary_table(data), "Samples and target"))
    if len(samples.rejected):
        sec.add(
            ctx.save_table(
                "rejected_samples",
                samples.rejected,
                "Rows set aside",
                "Rows of the sample file that could not be used, and why.",
            )
        )


def run_samples(ctx: RunContext) -> SampleData:
    """Step 1: read and check the samples, then describe them in the report."""
    data = read_study_samples(ctx)
    log_samples(data.samples)
    check_classes_reachable(ctx.cfg, data, str(ctx.study.path or "the study"))
    write_samples_section(ctx, data)
    return data

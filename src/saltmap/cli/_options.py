"""Options shared by several verbs, so they read the same everywhere.

One thing has one option name in every verb: ``--out`` for what a verb writes (a
file or a folder), ``--folds`` and ``--repeats`` for cross-validation, ``--jobs``
for parallel workers, ``--seed``, ``--trials``, ``--models``, ``--indices``,
``--log-target``, ``--overwrite``. A name that changed keeps working as a hidden
alias for one release (:func:`renamed`).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from saltmap.cli._print import say, warn
from saltmap.errors import ConfigError, InputFileError, OutputExistsError
from saltmap.features.covariate_rasters import CovariateRasters
from saltmap.features.covariates import CATEGORICAL, NUMERIC
from saltmap.io.sample_columns import ColumnOptions
from saltmap.io.samples import Samples, read_samples
from saltmap.salinity.conversion import load_conversion

if typing.TYPE_CHECKING:
    pass

OVERWRITE = typer.Option(False, "--overwrite", help="Replace output files that exist.")
SEED = typer.Option(0, "--seed", help="Random seed; the same seed gives the same numbers.")


def out_option(help: str = "Output folder.") -> Any:
    """The ``--out`` option of a verb: where it writes (a folder or, as ``help`` says, a file)."""
    return typer.Option("--out", help=help)


OutFolder = Annotated[Path, out_option()]
Jobs = Annotated[int, typer.Option("--jobs", help="Cores to use: tasks run in parallel.")]
Trials = Annotated[
    int | None, typer.Option("--trials", help="Optuna trials per learner (0: untuned defaults).")
]
LogTarget = Annotated[
    bool,
    typer.Option(
        "--log-target", help="Model log10 of the target (skewed salinity; metrics stay in unit)."
    ),
]
ModelList = Annotated[str | None, typer.Option("--models", help="Comma list of model names.")]
Indices = Annotated[
    str,
    typer.Option("--indices", help="Index features: novel (N-SI), classic (SI), sets or names."),
]
Folds = Annotated[int, typer.Option("--folds", help="Folds of the cross-validation.")]
Repeats = Annotated[int, typer.Option("--repeats", help="Repeats of the folds with new shuffles.")]
NoTrust = Annotated[
    bool,
    typer.Option(
        "--no-trust", help="Leave out the prediction intervals and area of applicability."
    ),
]
# Covariates read from the samples' own columns (train, evaluate-covariates).
CovariateColumns = Annotated[
    list[str] | None,
    typer.Option("--covariate", help="Numeric sample column used as a predictor too (repeatable)."),
]
CategoricalColumns = Annotated[
    list[str] | None,
    typer.Option(
        "--categorical",
        help="Categorical sample column used as a predictor, one-hot encoded (repeatable).",
    ),
]
MinCount = Annotated[
    int | None,
    typer.Option(
        "--min-count",
        help="Pool categorical levels seen fewer times into one 'infrequent' level "
        "(unseen levels then join it; without it they are refused).",
    ),
]

# Old spellings, hidden, kept for one release.
OldOutDir = Annotated[Path | None, typer.Option("--out-dir", hidden=True)]
OldSplits = Annotated[int | None, typer.Option("--splits", hidden=True)]


def renamed(value: Any, old_value: Any, name: str, old_name: str, default: Any = None) -> Any:
    """The value of an option given as ``name`` or as its old spelling ``old_name``.

    The old spelling still works for one release and says so on standard error.
    Given both with different values, the command is refused rather than guessing.
    """
    if old_value is None:
        return value
    if value != default and value != old_value:
        raise ConfigError(f"{name} and {old_name} (its old spelling) disagree; give only {name}")
    warn(f"{old_name} is now {name}; the old spelling goes in the next release", stderr=True)
    return old_value


def required(value: Any, name: str, what: str) -> Any:
    """Refuse a missing option that is required but has a hidden alias (so typer cannot)."""
    if value is None:
        raise typer.BadParameter(f"missing; give {name} {what}", param_hint=f"'{name}'")
    return value


def comma_list(text: str | None) -> tuple[str, ...]:
    """``"RF, PLSR"`` -> ``("RF", "PLSR")`` (empty items dropped)."""
    return tuple(n.strip() for n in (text or "").split(",") if n.strip())


def check_writable(paths: list[Path], overwrite: bool) -> None:
    """Refuse to clobber existing outputs unless ``--overwrite`` was given."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{', '.join(existing)} already exist(s); pass --overwrite to replace, "
            "or choose another output path"
        )


# -- reading field samples: the same options on every verb that reads them --------------------

Target = Annotated[str, typer.Option("--target", help="Column of measured salinity (EC or salt).")]
TargetUnit = Annotated[
    str | None, typer.Option("--target-unit", help="Unit of the target: uS/cm, mS/cm, dS/m, g/kg.")
]
ToUnit = Annotated[
    str | None,
    typer.Option(
        "--to-unit",
        help="Convert the target to this unit: uS/cm, mS/cm, dS/m (g/kg needs --conversion).",
    ),
]
ConversionFile = Annotated[
    Path | None,
    typer.Option(
        "--conversion",
        help="EC -> salt content conversion (.toml or .json from `saltmap convert fit`); "
        "the target becomes salt content in g/kg.",
    ),
]
IdColumn = Annotated[str | None, typer.Option("--id", help="Column of the sample id.")]
XColumn = Annotated[str | None, typer.Option("--x", help="Column of x or longitude.")]
YColumn = Annotated[str | None, typer.Option("--y", help="Column of y or latitude.")]
Crs = Annotated[str | None, typer.Option("--crs", help="CRS of x/y, e.g. EPSG:4326.")]
ScalingName = Annotated[
    str,
    typer.Option(
        "--scaling",
        help="Band values to reflectance: reflectance, landsat-c2l2, sentinel2 (with "
        "--baseline), sentinel2-l2a, sentinel2-l2a-offset, or SCALE,OFFSET.",
    ),
]
Baseline = Annotated[
    str | None, typer.Option("--baseline", help="Sentinel-2 processing baseline, e.g. 05.09.")
]
BandMap = Annotated[
    list[str] | None,
    typer.Option("--band", help="ROLE=COLUMN, repeatable, e.g. --band N=nir (B G R N S1 S2)."),
]
ColumnsFile = Annotated[
    Path | None, typer.Option("--columns", help="TOML file mapping columns (keys as the options).")
]

# Options of the verbs that read a scene (map, extract).
SceneScaling = Annotated[
    str | None,
    typer.Option(
        "--scaling",
        help="Scene DN to reflectance: sentinel2-l2a (DN/10000), sentinel2-l2a-offset "
        "((DN-1000)/10000), landsat-c2l2 (DN*2.75e-5-0.2), reflectance, or SCALE,OFFSET. "
        "A .SAFE, a STAC item or a Landsat product's MTL gives its own.",
    ),
]
BandOrder = Annotated[
    str | None,
    typer.Option("--bands", help="Band names of a multiband raster in order, e.g. B02,B03,..."),
]
MaskWater = Annotated[
    bool,
    typer.Option("--mask-water", help="Also mask water (SCL class 6, Landsat QA_PIXEL bit 7)."),
]


def parse_band_map(items: list[str] | None) -> dict[str, str]:
    """Turn ``["N=nir", "S1=swir1"]`` into ``{"N": "nir", "S1": "swir1"}``."""
    mapping = {}
    for item in items or []:
        role, sep, column = item.partition("=")
        if not (sep and role.strip() and column.strip()):
            raise ConfigError(f"--band {item!r} is not ROLE=COLUMN, for example --band N=nir")
        mapping[role.strip()] = column.strip()
    return mapping


@dataclass(frozen=True)
class SampleOptions:
    """The sample-reading options of a command, as :func:`read_samples` takes them."""

    target: str = "EC"
    target_unit: str | None = None
    to_unit: str | None = None
    conversion: Path | None = None
    id_column: str | None = None
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    scaling: str = "reflectance"
    baseline: str | None = None
    band: list[str] | None = None
    columns: Path | None = None
    read_bands: bool = True

    def columns_settings(self) -> ColumnOptions:
        """These options as the sample reader's column settings."""
        return ColumnOptions(
            target=self.target,
            target_unit=self.target_unit,
            to_unit=self.to_unit,
            id=self.id_column,
            x=self.x,
            y=self.y,
            crs=self.crs,
            bands=parse_band_map(self.band),
            scaling=self.scaling,
            baseline=self.baseline,
        )

    def read(self, path: Path, **kwargs: Any) -> Samples:
        """Read ``path`` with these options; print what was read and what was set aside."""
        # A caller's keywords (predict converts to its model's unit) win over the options.
        kwargs = {
            "conversion": load_conversion(self.conversion) if self.conversion else None,
            **kwargs,
        }
        samples = read_samples(
            path,
            self.columns_settings(),
            columns_file=self.columns,
            require_bands=self.read_bands,
            **kwargs,
        )
        say(samples.summary())  # verbatim: the unit is written "[dS/m]"
        report_rejected(samples)
        return samples


# The default of a command's ``sample_options`` parameter; the decorator fills in the real one.
FROM_COMMAND_LINE = SampleOptions()

_SAMPLE_PARAMETERS = {
    "target": (Target, "EC"),
    "target_unit": (TargetUnit, None),
    "to_unit": (ToUnit, None),
    "conversion": (ConversionFile, None),
    "id_column": (IdColumn, None),
    "x": (XColumn, None),
    "y": (YColumn, None),
    "crs": (Crs, None),
    "scaling": (ScalingName, "reflectance"),
    "baseline": (Baseline, None),
    "band": (BandMap, None),
    "columns": (ColumnsFile, None),
}


_BAND_PARAMETERS = ("scaling", "baseline", "band")


def with_sample_options(
    command: Callable[..., Any] | None = None, *, bands: bool = True
) -> Callable[..., Any]:
    """Give a command the shared sample-reading options.

    The command declares one parameter ``sample_options: SampleOptions``; the
    command line shows ``--target``, ``--target-unit``, ``--to-unit``,
    ``--conversion``, ``--id``, ``--x``, ``--y``,
    ``--crs``, ``--scaling``, ``--baseline``, ``--band`` and ``--columns`` in its
    place, so every verb that reads samples reads them the same way. With
    ``bands=False`` (a verb that takes reflectance from a scene) the band options
    are left out, and band columns of the file are not read.
    """
    if command is None:
        return functools.partial(with_sample_options, bands=bands)
    shown = {k: v for k, v in _SAMPLE_PARAMETERS.items() if bands or k not in _BAND_PARAMETERS}
    signature = inspect.signature(command)
    # Typer reads the signature; string annotations (PEP 563) must be resolved here, or
    # their typer.Option/Argument metadata would be lost.
    hints = typing.get_type_hints(command, include_extras=True)
    kept = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in signature.parameters.values()
        if p.name != "sample_options"
    ]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
        for name, (kind, default) in shown.items()
    ]

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in shown if name in kwargs}
        options = SampleOptions(**given, read_bands=bands)
        return command(*args, sample_options=options, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=kept + added)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in kept + added}
    return wrapper


def report_rejected(samples: Samples, limit: int = 10) -> None:
    """Print the rows set aside, so none is dropped silently."""
    for row in samples.rejected.head(limit).itertuples():
        say(f"  rejected row {row.row} ({row.id}): {row.reason}")
    if len(samples.rejected) > limit:
        say(f"  … and {len(samples.rejected) - limit} more (see rejected.csv)")


# -- NAME=PATH options: covariate rasters and their legends (map, extract) ---------------------


def parse_named_paths(items: list[str] | None, option: str) -> dict[str, str]:
    """``["Dist=dist.tif"]`` -> ``{"Dist": "dist.tif"}``; an error names the bad item."""
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not (sep and name.strip() and path.strip()):
            raise ConfigError(
                f"{option} {item!r} is not NAME=PATH, for example {option} Dist=d.tif"
            )
        if name.strip() in out:
            raise ConfigError(f"{option}: covariate {name.strip()!r} is given twice")
        out[name.strip()] = path.strip()
    return out


def read_labels(items: list[str] | None) -> dict[str, dict[str, str]]:
    """``--labels NAME=legend.csv`` -> ``{NAME: {code: level}}``; the CSV has columns
    ``value`` and ``level`` (a categorical raster's legend)."""
    out = {}
    for name, path in parse_named_paths(items, "--labels").items():
        try:
            legend = pd.read_csv(path, dtype=str)
        except OSError as err:
            raise InputFileError(f"--labels {name}: cannot read {path}: {err}") from err
        if not {"value", "level"} <= set(legend.columns):
            raise ConfigError(
                f"--labels {name}: {path} needs columns 'value' and 'level' (raster code and the "
                f"level it stands for in the samples), it has {', '.join(legend.columns)}"
            )
        out[name] = dict(zip(legend["value"], legend["level"], strict=True))
    return out


def covariate_rasters(
    numeric: list[str] | None, categorical: list[str] | None
) -> CovariateRasters | None:
    """Rasters from ``--covariate NAME=PATH`` and ``--categorical NAME=PATH`` (None if neither)."""
    num = parse_named_paths(numeric, "--covariate")
    cat = parse_named_paths(categorical, "--categorical")
    both = set(num) & set(cat)
    if both:
        raise ConfigError(f"{', '.join(sorted(both))} given as both numeric and categorical")
    if not num and not cat:
        return None
    kinds = {**dict.fromkeys(num, NUMERIC), **dict.fromkeys(cat, CATEGORICAL)}
    return CovariateRasters({**num, **cat}, kinds)

"""Saved models: a fitted model and what it needs to be used again, safely.

A saltmap model file (``.skops`` by convention) is a zip archive holding

``saltmap-model.json``
    Plain JSON: the format name and version, the versions of saltmap,
    scikit-learn, XGBoost and skops that wrote it, the SHA-256 of the model
    part, and the metadata — index features, band roles, reflectance scaling,
    target name and unit, training summary.
``model.skops``
    The fitted pipeline, written by :mod:`skops.io` [1]_.

Loading never executes code from the file. :mod:`pickle` is never used: skops
rebuilds objects from a description, and only types on an explicit list of
saltmap's own model parts (:data:`TRUSTED_TYPES`, beside the NumPy and
scikit-learn basics skops always trusts) may be rebuilt. A file naming any other
type — ``os.system``, a foreign class — is refused before anything is built.
The checksum catches a damaged or edited model part; it is not a signature, the
type list is what makes loading safe.

A file from another saltmap, scikit-learn or XGBoost version is refused rather
than half-trusted: a model's numbers may change between versions without an
error, so the fix offered is to retrain (``saltmap train``), which is fast.

References
----------
.. [1] skops developers. Secure persistence with skops.io.
   https://skops.readthedocs.io/en/stable/persistence.html
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from saltmap import __version__
from saltmap.atomic import atomic_output
from saltmap.errors import ModelFileError
from saltmap.models.inspect import model_features

FORMAT = "saltmap-model"
# 2: classes moved into stage subpackages (saltmap.features.indices.IndexFeatures, ...);
# a version-1 file names the old paths, so it is refused with the advice to retrain.
FORMAT_VERSION = 2
HEADER_NAME = "saltmap-model.json"
MODEL_NAME = "model.skops"
TRUST_NAME = "trust.skops"
REQUIRED_METADATA = ("target", "target_unit", "scaling")

# Types a saltmap model is made of, beyond those skops trusts by default. Built
# from the parts of saltmap.models.building (every model, with and without log target);
# test_modelfile checks that every model saltmap makes loads with exactly these.
TRUSTED_TYPES: tuple[str, ...] = (
    "saltmap.features.covariates.PredictorFeatures",
    "saltmap.features.indices.IndexFeatures",
    "saltmap.models.building.SerialMLPRegressor",
    "saltmap.models.building.log10_target",
    "saltmap.models.building.pow10_target",
    "saltmap.models.physical.PhysicalTarget",
    "sklearn.model_selection._split.KFold",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBRegressor",
)

# The prediction intervals and area of applicability saved beside a model
# (saltmap.trust.maps.TrustModel), on top of the model's own types. Intervals by "plus"/"minmax"
# keep their fitted MAPIE object, which predicts with the fold models.
TRUST_TYPES: tuple[str, ...] = (
    "mapie.conformity_scores.bounds.absolute.AbsoluteConformityScore",
    "mapie.conformity_scores.bounds.gamma.GammaConformityScore",
    "mapie.estimator.regressor.EnsembleRegressor",
    "mapie.regression.regression.CrossConformalRegressor",
    "mapie.regression.regression._MapieRegressor",
    "saltmap.trust.aoa.AreaOfApplicability",
    "saltmap.trust.intervals.ConformalIntervals",
    "saltmap.trust.maps.TrustModel",
    "saltmap.trust.spread.ResidualSpread",
    "sklearn.model_selection._split.PredefinedSplit",
)

RETRAIN = "retrain the model with this saltmap (`saltmap train SAMPLES --out MODEL`)"


def library_versions() -> dict[str, str]:
    """Versions that decide whether a saved model computes the same numbers."""
    import mapie
    import sklearn
    import skops
    import xgboost

    return {
        "saltmap": __version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "skops": skops.__version__,
        # Recorded, not enforced: only CV+/minmax trust parts keep MAPIE objects.
        "mapie": mapie.__version__,
    }


def _jsonable(value: Any) -> Any:
    """Metadata as plain JSON types (NumPy scalars and arrays, tuples, paths)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _discovered_definitions(model: Pipeline) -> list[dict[str, Any]]:
    """Definitions of the discovered indices the fitted model computes, from its index step.

    The step's ``index_items_`` carries them (catalogue indices stay names), so what is
    stored is what the model computes, whatever this session has registered. A step
    fitted before ``index_items_`` existed has names only: the session's registry
    gives their definitions then.
    """
    step = model.named_steps["indices"]
    items = getattr(step, "index_items_", None)
    if items is None:
        from saltmap.features.discovered import definitions

        return definitions(step.index_names_)
    return [dict(item) for item in items if isinstance(item, Mapping)]


def save_model(
    path: str | Path,
    model: Pipeline,
    *,
    metadata: Mapping[str, Any],
    trust: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write a fitted model and its metadata to ``path``.

    Parameters
    ----------
    path : path
        The model file to write (``.skops`` by convention).
    model : Pipeline
        A fitted model from :func:`saltmap.models.building.make_model` (or the
        ``model_`` of a fitted :class:`~saltmap.models.tuning.TunedModel`).
    metadata : mapping
        At least ``target``, ``target_unit`` and ``scaling`` (the name of the
        reflectance scaling of the training samples); usually also ``model``,
        ``params`` and ``training`` (n, target range, CV metrics). The index
        names and band roles are taken from the model itself.
    trust : saltmap.trust.maps.TrustModel, optional
        Prediction intervals and area of applicability fitted for the model;
        stored as a part of its own, read back with :func:`load_trust`.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
    """
    path = Path(path)
    missing = [k for k in REQUIRED_METADATA if k not in metadata]
    if missing:
        raise ModelFileError(
            f"cannot save {path}: metadata lacks {', '.join(missing)} "
            "(say what the model predicts and how its reflectance was scaled)"
        )
    import skops.io as sio  # here, not at the top: importing it takes seconds (see _load_part)

    data = sio.dumps(model)
    trust_data = sio.dumps(trust) if trust is not None else None
    header = _header(model, metadata, data, trust_data)
    with atomic_output(path, overwrite=overwrite) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(HEADER_NAME, json.dumps(header, indent=2, ensure_ascii=False))
            archive.writestr(MODEL_NAME, data)
            if trust_data is not None:
                archive.writestr(TRUST_NAME, trust_data)
    return path


def _header(
    model: Pipeline, metadata: Mapping[str, Any], data: bytes, trust_data: bytes | None
) -> dict[str, Any]:
    """The file's header: format, library versions, checksums of the parts, metadata."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": library_versions(),
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "trust_sha256": hashlib.sha256(trust_data).hexdigest() if trust_data else None,
        "metadata": _jsonable(
            {
                **metadata,
                **model_features(model),
                "discovered_indices": _discovered_definitions(model),
            }
        ),
    }


def read_header(path: str | Path) -> dict[str, Any]:
    """Read and check a model file's header without touching the model part."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist; train one with `saltmap train`")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(
            f"{path} is not a saltmap model file (not a zip archive; a pickle or other "
            f"file is never loaded); {RETRAIN}"
        )
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if HEADER_NAME not in names or MODEL_NAME not in names:
            raise ModelFileError(
                f"{path} is not a saltmap model file (it lacks {HEADER_NAME} or {MODEL_NAME}; "
                f"a bare skops or other zip file is not accepted); {RETRAIN}"
            )
        try:
            header = json.loads(archive.read(HEADER_NAME))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelFileError(f"{path}: {HEADER_NAME} is not valid JSON; {RETRAIN}") from err
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a saltmap model file (format is not {FORMAT!r})")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{path} has model format version {header.get('format_version')!r}; this saltmap "
            f"reads version {FORMAT_VERSION}: {RETRAIN}"
        )
    _check_versions(path, header.get("versions") or {})
    return header


def _check_versions(path: Path, written: Mapping[str, Any]) -> None:
    here = library_versions()
    differ = [
        f"{lib} {written.get(lib, 'unknown')} (here {here[lib]})"
        for lib in ("saltmap", "scikit-learn", "xgboost")
        if written.get(lib) != here[lib]
    ]
    if differ:
        raise ModelFileError(
            f"{path} was written with {', '.join(differ)}; a model may compute different "
            f"numbers under other versions, so it is not loaded: {RETRAIN}, or install the "
            "versions it was written with"
        )


def load_model(path: str | Path) -> tuple[Pipeline, dict[str, Any]]:
    """Load a model file written by :func:`save_model`.

    Returns
    -------
    model : Pipeline
        The fitted model; its input is reflectance by band role.
    metadata : dict
        What :func:`save_model` stored, with ``versions`` added.

    Raises
    ------
    ModelFileError
        If the file is missing, foreign, from another version, damaged, or
        names a type outside :data:`TRUSTED_TYPES`; the message names the file
        and the fix.
    """
    path = Path(path)
    header = read_header(path)
    metadata = dict(header.get("metadata") or {})
    _register_discovered(path, metadata.get("discovered_indices") or [])
    model = _load_part(path, MODEL_NAME, header.get("model_sha256"), TRUSTED_TYPES)
    if not isinstance(model, Pipeline) or "indices" not in model.named_steps:
        raise ModelFileError(f"{path} does not hold a saltmap model pipeline; {RETRAIN}")
    metadata["versions"] = header.get("versions")
    return model, metadata


def load_trust(path: str | Path) -> Any:
    """Load the prediction intervals and area of applicability saved with a model.

    Returns the :class:`saltmap.trust.maps.TrustModel`, or None when the file has none.
    The same refusals as :func:`load_model` apply.
    """
    path = Path(path)
    header = read_header(path)
    if not header.get("trust_sha256"):
        return None
    _register_discovered(path, (header.get("metadata") or {}).get("discovered_indices") or [])
    return _load_part(path, TRUST_NAME, header["trust_sha256"], TRUSTED_TYPES + TRUST_TYPES)


def _load_part(path: Path, name: str, sha256: str | None, trusted: tuple[str, ...]) -> Any:
    """Read one skops part of a model file: checksum first, then only trusted types."""
    # Imported only when a model is read or written: skops.io imports every
    # scikit-learn estimator (and pytest) to list its trusted types, about two
    # seconds that every other command of the CLI would pay at start.
    import skops.io as sio

    with zipfile.ZipFile(path) as archive:
        if name not in archive.namelist():
            raise ModelFileError(f"{path} lacks its part {name}; {RETRAIN}")
        data = archive.read(name)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ModelFileError(
            f"{path}: the {name} part does not match its checksum (the file was damaged or "
            f"edited); {RETRAIN}"
        )
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as err:
        raise ModelFileError(f"{path}: the model part cannot be read ({err}); {RETRAIN}") from err
    foreign = sorted(set(untrusted) - set(trusted))
    if foreign:
        raise ModelFileError(
            f"{path} names type(s) a saltmap model is not made of: {', '.join(foreign)}. "
            f"It was not loaded, and nothing in it was run. Use only model files saltmap wrote; "
            f"{RETRAIN}"
        )
    try:
        return sio.loads(data, trusted=[t for t in trusted if t in untrusted])
    except Exception as err:
        raise ModelFileError(f"{path}: {name} cannot be rebuilt ({err}); {RETRAIN}") from err


def _register_discovered(path: Path, defs: list[dict[str, Any]]) -> None:
    """Make the discovered indices the model uses computable again: a name alone
    does not carry a computation."""
    if not defs:
        return
    from saltmap.features.discovered import definitions, register_definitions

    known = {d["name"]: d for d in definitions([d["name"] for d in defs])}
    clash = [d["name"] for d in defs if d["name"] in known and known[d["name"]] != d]
    if clash:
        raise ModelFileError(
            f"{path} uses discovered index(es) {', '.join(clash)} whose definition differs from "
            "the one of that name registered in this session; load the model in a fresh session "
            "or rename the indices registered here"
        )
    new = [d for d in defs if d["name"] not in known]
    if new:
        register_definitions(new)

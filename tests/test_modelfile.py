"""Tests of saved models (saltmap.models.persistence) and the train/predict verbs.

Models are fitted on the real Odisha samples. The hostile files are synthetic
by necessity: crafted here to prove that loading refuses them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from typer.testing import CliRunner

from saltmap import datasets
from saltmap.cli import app
from saltmap.errors import ModelFileError, OutputExistsError
from saltmap.io.samples import odisha
from saltmap.models.building import MODEL_NAMES, make_model
from saltmap.models.persistence import (
    HEADER_NAME,
    MODEL_NAME,
    TRUSTED_TYPES,
    load_model,
    save_model,
)
from saltmap.models.training import train_model

SMALL = {
    "RF": {"n_estimators": 5},
    "XGBoost": {"n_estimators": 5},
    "MLP": {"max_iter": 20},
    "PLSR": {},
    "Stacking": {"RF__n_estimators": 5, "XGBoost__n_estimators": 5, "MLP__max_iter": 20},
}
META = {"target": "EC", "target_unit": "µS/cm", "scaling": "landsat-c2l2"}


@pytest.fixture(scope="module")
def samples():
    return odisha()


@pytest.fixture(scope="module")
def saved(samples, tmp_path_factory):
    """A small Stacking model with log target, trained and saved through train_model."""
    path = tmp_path_factory.mktemp("model") / "stack.skops"
    model, metadata = train_model(samples, model="Stacking", log_target=True, budget="quick")
    save_model(path, model, metadata=metadata)
    return path, model


def _rewrite(src, dst, *, header=None, data=None, fix_checksum=True):
    """Copy a model file, replacing its header and/or model part (a forger's tool)."""
    with zipfile.ZipFile(src) as archive:
        old_header = json.loads(archive.read(HEADER_NAME))
        old_data = archive.read(MODEL_NAME)
    header = header if header is not None else old_header
    data = data if data is not None else old_data
    if fix_checksum:
        header["model_sha256"] = hashlib.sha256(data).hexdigest()
    with zipfile.ZipFile(dst, "w") as archive:
        archive.writestr(HEADER_NAME, json.dumps(header))
        archive.writestr(MODEL_NAME, data)
    return dst


def test_round_trip_gives_the_same_predictions_and_metadata(samples, saved):
    path, model = saved
    loaded, metadata = load_model(path)
    X = samples.reflectance
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert metadata["indices"] == ["SAI", "TRSI", "SBCI", "GOSI"]
    assert metadata["bands"] == ["B", "G", "R", "N", "S1"]
    assert (metadata["target"], metadata["target_unit"]) == ("EC", samples.target_unit)
    assert metadata["scaling"] == "landsat-c2l2"
    assert metadata["model"] == "Stacking" and metadata["log_target"] is True
    assert metadata["training"]["n"] == len(samples) == 106
    assert set(metadata["training"]["inner_cv_rmse"]) == {"MLP", "RF", "XGBoost"}
    assert metadata["versions"]["saltmap"]


@pytest.mark.parametrize("log_target", [False, True])
def test_every_saltmap_model_is_made_of_trusted_types_only(samples, log_target):
    # TRUSTED_TYPES is complete: anything saltmap makes can be saved and loaded.
    X, y = samples.reflectance, samples.target.to_numpy()
    for name in MODEL_NAMES:
        model = make_model(name, indices="classic", log_target=log_target, params=SMALL[name])
        data = sio.dumps(model.fit(X, y))
        assert set(sio.get_untrusted_types(data=data)) <= set(TRUSTED_TYPES), name


def test_existing_file_is_kept_without_overwrite(saved, tmp_path):
    _, model = saved
    target = tmp_path / "m.skops"
    target.write_text("precious")
    with pytest.raises(OutputExistsError):
        save_model(target, model, metadata=META)
    assert target.read_text() == "precious"
    save_model(target, model, metadata=META, overwrite=True)
    assert load_model(target)[1]["scaling"] == "landsat-c2l2"


def test_metadata_must_say_what_the_model_predicts(saved, tmp_path):
    _, model = saved
    with pytest.raises(ModelFileError, match="target_unit"):
        save_model(tmp_path / "m.skops", model, metadata={"target": "EC", "scaling": "x"})


class _Payload:
    """Synthetic attack: unpickling this runs a shell command that creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_is_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.skops"
    evil.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelFileError, match="not a saltmap model file") as err:
        load_model(evil)
    assert str(evil) in str(err.value) and "saltmap train" in str(err.value)
    assert not marker.exists()


def test_a_model_part_naming_os_system_is_refused(saved, tmp_path):
    # A forger who knows the format: valid header and checksum, a model part
    # that references os.system.
    path, _ = saved
    evil = _rewrite(path, tmp_path / "evil.skops", data=sio.dumps({"run": os.system}))
    with pytest.raises(ModelFileError, match=r"system.*not loaded") as err:
        load_model(evil)
    assert str(evil) in str(err.value)


class _Foreign:
    """Synthetic unknown type."""

    def __init__(self):
        self.x = 1


def test_a_model_part_with_an_unknown_type_is_refused(saved, tmp_path):
    path, _ = saved
    evil = _rewrite(path, tmp_path / "foreign.skops", data=sio.dumps(_Foreign()))
    with pytest.raises(ModelFileError, match="_Foreign"):
        load_model(evil)


def test_an_edited_model_part_fails_its_checksum(saved, tmp_path):
    path, _ = saved
    with zipfile.ZipFile(path) as archive:
        data = bytearray(archive.read(MODEL_NAME))
    data[len(data) // 2] ^= 0xFF
    bad = _rewrite(path, tmp_path / "edited.skops", data=bytes(data), fix_checksum=False)
    with pytest.raises(ModelFileError, match="checksum"):
        load_model(bad)


def test_foreign_files_are_refused(saved, tmp_path):
    _, model = saved
    bare = tmp_path / "bare.skops"
    sio.dump(model, bare)  # a plain skops file, without saltmap's header
    text = tmp_path / "notes.skops"
    text.write_text("hello")
    for foreign in (bare, text, tmp_path / "missing.skops"):
        with pytest.raises(ModelFileError, match="saltmap") as err:
            load_model(foreign)
        assert str(foreign) in str(err.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 99}, "format version 99"),
        ({"format_version": 1}, "format version 1"),
        ({"versions": {"saltmap": "0.0.1", "scikit-learn": "1.9.1", "xgboost": "3.2.0"}},
         "saltmap 0.0.1"),
        ({"versions": {"saltmap": None, "scikit-learn": "0.24.2", "xgboost": None}},
         "scikit-learn 0.24.2"),
        ({"format": "something-else"}, "not a saltmap model file"),
    ],
)  # fmt: skip
def test_files_from_other_versions_are_refused(saved, tmp_path, change, message):
    path, _ = saved
    with zipfile.ZipFile(path) as archive:
        header = json.loads(archive.read(HEADER_NAME))
    if "versions" in change:
        here = header["versions"]
        change = {"versions": {k: v or here[k] for k, v in change["versions"].items()}}
    other = _rewrite(path, tmp_path / "other.skops", header={**header, **change})
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(other)
    assert str(other) in str(err.value)


# -- the verbs ---------------------------------------------------------------------------------

runner = CliRunner()
ODISHA = ["--target", "EC", "--target-unit", "uS/cm", "--id", "Name", "--scaling", "landsat-c2l2"]


def test_train_then_predict_on_odisha(tmp_path, samples):
    model_path, preds = tmp_path / "rf.skops", tmp_path / "preds.csv"
    source = str(datasets.odisha_samples())
    train = ["train", source, "--out", str(model_path), *ODISHA, "--model", "RF"]
    result = runner.invoke(
        app, [*train, "--indices", "classic", "--budget", "quick", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    model, metadata = load_model(model_path)
    assert metadata["model"] == "RF" and len(metadata["indices"]) == 17
    assert metadata["random_state"] == 3

    # predict reads the samples with the model's scaling unless told otherwise.
    result = runner.invoke(app, ["predict", str(model_path), source, "--out", str(preds),
                                 "--id", "Name"])  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(preds, index_col="id")
    assert list(table.columns) == ["predicted_EC", "measured_EC"]
    assert len(table) == 106
    np.testing.assert_allclose(table["predicted_EC"], model.predict(samples.reflectance))
    np.testing.assert_allclose(table["measured_EC"], samples.target.to_numpy())

    # Same seed, same model; and nothing is clobbered without --overwrite.
    again = runner.invoke(app, [*train, "--indices", "classic", "--budget", "quick", "--seed",
                                "3", "--overwrite"])  # fmt: skip
    assert again.exit_code == 0
    np.testing.assert_array_equal(
        load_model(model_path)[0].predict(samples.reflectance), table["predicted_EC"]
    )
    refused = runner.invoke(app, [*train, "--budget", "quick"])
    assert refused.exit_code != 0
    assert isinstance(refused.exception, OutputExistsError)


def test_training_sets_aside_samples_with_undefined_indices(samples):
    # GOSI is defined everywhere, SAI is not where G·N·S1 = 0: zero one sample's green.
    broken = dataclasses.replace(samples, table=samples.table.copy())
    first = broken.table.index[0]
    broken.table.loc[first, "G"] = 0.0
    _, metadata = train_model(broken, model="PLSR", n_trials=0)
    aside = metadata["training"]["set_aside"]
    assert list(aside) == [str(first)] and "SAI" in str(aside[str(first)])


def test_a_model_on_a_discovered_index_loads_in_a_fresh_session(samples, tmp_path):
    # A discovered index is code registered at run time; its definition must travel
    # with the model, or a new session could not compute it.
    from saltmap.features import discovered

    definition = {"name": "DSAVED1", "template": "ratio", "bands": ["S2", "B"]}
    discovered.register_definitions([definition])
    X, y = samples.reflectance, samples.target.to_numpy()
    model = make_model("PLSR", indices=["SAI", "DSAVED1"]).fit(X, y)
    path = save_model(tmp_path / "d.skops", model, metadata=META)
    X.to_csv(tmp_path / "X.csv")
    script = (
        "import sys, pandas as pd; from saltmap.models.persistence import load_model; "
        "m, md = load_model(sys.argv[1]); "
        "print(*m.predict(pd.read_csv(sys.argv[2], index_col=0)), sep='\\n')"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "X.csv")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    np.testing.assert_allclose(np.array(fresh.stdout.split(), dtype=float), model.predict(X))


def test_trust_part_round_trips_and_is_checked(samples, tmp_path):
    from saltmap.models.persistence import load_trust
    from saltmap.trust.maps import fit_trust

    X, y = samples.reflectance, samples.target.to_numpy()
    model = make_model("PLSR", indices="novel").fit(X, y)
    trust = fit_trust(make_model("PLSR", indices="novel"), X, y, weights=None)
    meta = {"target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2"}
    with_trust = save_model(tmp_path / "t.skops", model, metadata=meta, trust=trust)
    back = load_trust(with_trust)
    pixels = X[list(trust.bands)].to_numpy()
    np.testing.assert_array_equal(
        back.aoa.dissimilarity(back.features(pixels)),
        trust.aoa.dissimilarity(trust.features(pixels)),
    )
    assert load_trust(save_model(tmp_path / "plain.skops", model, metadata=meta)) is None
    # A trust part swapped for another (checksum not updated) is refused.
    forged = tmp_path / "forged.skops"
    with zipfile.ZipFile(with_trust) as src, zipfile.ZipFile(forged, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, data + b"\0" if item == "trust.skops" else data)
    with pytest.raises(ModelFileError, match="checksum"):
        load_trust(forged)

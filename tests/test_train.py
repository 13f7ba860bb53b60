"""``saltmap train``: the interval method and conformity score reach the model file.

Small untuned random forests on the real Odisha samples (the other train tests are
in tests/test_cli.py).
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from saltmap import datasets
from saltmap.cli import app
from saltmap.errors import ConfigError

runner = CliRunner()
ODISHA_ARGS = ["--target", "EC", "--target-unit", "uS/cm", "--id", "Name",
               "--scaling", "landsat-c2l2"]  # fmt: skip


def _train(out, *extra):
    args = ["train", str(datasets.odisha_samples()), *ODISHA_ARGS, "--model", "RF",
            "--trials", "0", "--budget", "quick", "--out", str(out), *extra]  # fmt: skip
    return runner.invoke(app, args)


def test_interval_method_and_score_reach_the_saved_trust_model(tmp_path):
    from saltmap.io.samples import odisha
    from saltmap.models.persistence import load_trust

    out = tmp_path / "plus.skops"
    result = _train(out, "--interval-method", "plus", "--interval-score", "gamma")
    assert result.exit_code == 0, result.output
    trust = load_trust(out)
    assert trust.info["method"] == "plus"
    assert trust.info["conformity_score"] == "gamma"
    assert "plus, width varying per pixel" in " ".join(result.output.split())
    # CV+ keeps the fold models: each sample's interval is built from them, so widths vary.
    X = odisha().reflectance
    _, lower, upper = trust.intervals.predict_interval(X)
    assert len(trust.intervals.fold_estimators_) == trust.info["n_folds"]
    assert np.all(lower <= upper) and np.unique(np.round(upper - lower, 6)).size > 1


def test_default_interval_method_is_normalized(tmp_path):
    from saltmap.models.persistence import load_trust

    out = tmp_path / "normalized.skops"
    result = _train(out)
    assert result.exit_code == 0, result.output
    trust = load_trust(out)
    # Issue 15: locally adaptive intervals by default.
    assert (trust.info["method"], trust.info["conformity_score"]) == ("normalized", "absolute")


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--interval-method", "cv+"], "--interval-method 'cv+'"),
        (["--interval-score", "relative"], "--interval-score relative"),
        (["--interval-method", "plus", "--categorical", "Land_cover"], "normalized or base"),
    ],
)
def test_bad_interval_options_are_refused_before_training(tmp_path, extra, named):
    out = tmp_path / "m.skops"
    result = _train(out, *extra)
    assert isinstance(result.exception, ConfigError), result.output
    assert named in str(result.exception)
    assert not out.exists()

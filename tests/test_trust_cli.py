"""``saltmap train --calibration``: the intervals' calibration table and figure of a trained
model, on the real Odisha samples (a quick untuned RF)."""

from __future__ import annotations

from typer.testing import CliRunner

from saltmap import datasets
from saltmap.cli import app

runner = CliRunner()


def test_train_draws_the_calibration_of_its_intervals(tmp_path):
    figure = tmp_path / "calibration.png"
    args = ["train", str(datasets.odisha_samples()), "--target", "EC", "--target-unit", "uS/cm",
            "--id", "Name", "--scaling", "landsat-c2l2", "--model", "RF", "--trials", "0",
            "--budget", "quick",
            "--out", str(tmp_path / "rf.skops"), "--calibration", str(figure)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert figure.is_file() and figure.stat().st_size > 10_000
    text = " ".join(result.output.split())
    assert "normalized, width varying per pixel" in text
    # The table: both methods, marginal and by tercile of prediction and DI.
    for said in ("normalized", "base", "coverage_pred_t1", "coverage_di_t3", "width_iqr_share"):
        assert said in text, said

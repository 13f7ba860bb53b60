"""Tests of saltmap.validation.evaluation, figure 5 and `saltmap evaluate` on real Odisha samples.

The runs are cut to two fast models and a few trials; every protocol, feature set
and the baseline still run for real.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score, root_mean_squared_error
from typer.testing import CliRunner

from saltmap import datasets
from saltmap.cli import app
from saltmap.errors import OutputExistsError, SampleDataError
from saltmap.io.samples import odisha
from saltmap.plots import prediction_figure, save_figure
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.results import evaluation_files, honest_markdown, table4_markdown
from saltmap.validation.scoring import BASELINE

FAST = {"quick": True, "models": ("PLSR", "RF"), "n_trials": 2, "n_boot": 200}


@pytest.fixture(scope="module")
def samples():
    return odisha()


@pytest.fixture(scope="module")
def run(samples):
    return evaluate_study(samples, n_jobs=2, random_state=5, **FAST)


def test_rerun_with_the_same_seed_is_identical(samples, run):
    again = evaluate_study(samples, n_jobs=1, random_state=5, **FAST)
    for name in ("table4", "honest", "baseline", "predictions"):
        pd.testing.assert_frame_equal(getattr(run, name), getattr(again, name))
    other = evaluate_study(samples, n_jobs=2, random_state=6, protocols=("study",), **FAST)
    assert not other.table4["R2_v"].equals(run.table4["R2_v"])


def test_every_protocol_feature_set_and_model_is_reported(run):
    t4 = run.table4
    assert list(zip(t4.feature_set, t4.model, strict=True)) == [
        ("N-SI", "PLSR"), ("N-SI", "RF"), ("SI", "PLSR"), ("SI", "RF")
    ]  # fmt: skip
    assert (t4.n_c + t4.n_v == 106).all() and (t4.n_v == 32).all()
    honest = run.honest.set_index(["protocol", "feature_set", "model"])
    for protocol, folds in (("study", 1), ("repeated", 5), ("spatial", 5)):
        for fs in ("N-SI", "SI"):
            for model in ("PLSR", "RF"):
                assert honest.loc[(protocol, fs, model), "n_folds"] == folds
    assert honest.loc[("repeated", BASELINE, BASELINE), "n_folds"] == 5


def test_table4_is_recomputed_from_the_predictions(run):
    for (fs, model), part in run.predictions.groupby(["feature_set", "model"]):
        row = run.table4[(run.table4.feature_set == fs) & (run.table4.model == model)].iloc[0]
        for tag, name in (("c", "calibration"), ("v", "validation")):
            pts = part[part.set == name]
            assert row[f"R2_{tag}"] == pytest.approx(r2_score(pts.measured, pts.predicted))
            rmse = root_mean_squared_error(pts.measured, pts.predicted)
            assert row[f"RMSE_{tag}"] == pytest.approx(rmse)
        assert set(part[part.set == "calibration"]["sample"]).isdisjoint(
            part[part.set == "validation"]["sample"]
        )


def test_honest_study_row_is_table4_validation_with_an_interval(run):
    study = run.honest[run.honest.protocol == "study"].reset_index(drop=True)
    np.testing.assert_allclose(study["R2_mean"], run.table4["R2_v"])
    np.testing.assert_allclose(study["RMSE_mean"], run.table4["RMSE_v"])
    assert (study["RMSE_ci_low"] < study["RMSE_mean"]).all()
    assert (study["RMSE_mean"] < study["RMSE_ci_high"]).all()


def test_baseline_is_compared_on_the_same_folds(run):
    cmp = run.baseline.set_index(["feature_set", "model"])
    folds = run.folds[run.folds.protocol == "repeated"]
    base = folds[folds.model == BASELINE].set_index(["repeat", "fold"])
    for (fs, model), row in cmp.iterrows():
        mine = folds[(folds.feature_set == fs) & (folds.model == model)].set_index(
            ["repeat", "fold"]
        )
        pd.testing.assert_series_equal(mine["n"], base["n"])
        assert row["dRMSE"] == pytest.approx((mine["RMSE"] - base["RMSE"]).mean())
        assert row["dRMSE_ci_low"] <= row["dRMSE"] <= row["dRMSE_ci_high"]
        assert row["verdict"] in ("better", "worse", "no clear difference")


def test_nested_selection_chooses_inside_each_fold(samples):
    res = evaluate_study(samples, quick=True, models=("PLSR",), protocols=("repeated",),
                         nested_selection=True, selection_k=3, baseline=False, n_trials=0,
                         n_boot=50)  # fmt: skip
    sets = set(res.honest.feature_set)
    for fs in ("N-SI", "SI"):
        assert {fs, f"{fs} top-3 chosen on all rows", f"{fs} top-3 chosen in fold"} <= sets
    in_fold = res.folds[res.folds.feature_set == "SI top-3 chosen in fold"]
    assert all(len(s.split(",")) == 3 for s in in_fold.selected)


def test_spatial_protocol_needs_coordinates(samples):
    table = samples.table.drop(columns=["x", "y"])
    no_xy = dataclasses.replace(samples, table=table)
    with pytest.raises(SampleDataError, match="coordinates"):
        evaluate_study(no_xy, protocols=("spatial",), **FAST)


def test_markdown_tables_hold_every_row(run):
    md = table4_markdown(run.table4, "µS/cm").splitlines()
    assert len(md) == 2 + len(run.table4) and "R²v" in md[0]
    md = honest_markdown(run.honest, "µS/cm").splitlines()
    assert len(md) == 2 + len(run.honest) and "95 % CI" in md[0]


def test_figure5_has_a_panel_per_model_and_both_sets(run, tmp_path):
    fig = prediction_figure(run.predictions, run.table4, unit="µS/cm")
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert len(axes) == 4
    for ax in axes:
        assert len(ax.collections) == 2  # calibration and validation marks
        assert any(line.get_linestyle() == "--" for line in ax.get_lines())  # 1:1
        assert "R²v" in ax.texts[0].get_text()
    written = save_figure(fig, tmp_path / "figure5", formats=("png",))
    assert written[0].stat().st_size > 10_000


def test_cli_writes_the_tables_and_refuses_to_overwrite(tmp_path):
    runner = CliRunner()
    args = ["evaluate", str(datasets.odisha_samples()), "--target", "EC", "--target-unit",
            "uS/cm", "--id", "Name", "--scaling", "landsat-c2l2", "--quick", "--models", "PLSR",
            "--trials", "0", "--protocols", "study,repeated", "--out", str(tmp_path)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    files = evaluation_files(tmp_path)
    for key in ("table4", "table4_md", "honest", "honest_md", "baseline", "baseline_md",
                "figure5", "figure5_svg", "settings"):  # fmt: skip
        assert files[key].exists(), key
    assert "Table 4" in result.output
    again = runner.invoke(app, args)
    assert isinstance(again.exception, OutputExistsError)


EVALUATE_FAST = ["--target", "EC", "--target-unit", "uS/cm", "--id", "Name", "--scaling",
                 "landsat-c2l2", "--quick", "--models", "PLSR", "--trials", "0",
                 "--protocols", "study,repeated", "--no-baseline"]  # fmt: skip


def test_cli_evaluates_named_feature_sets_with_discovered_indices(samples, tmp_path):
    from saltmap.features import discovered, discovery

    found = discovery.search_indices(samples.reflectance, samples.target)
    saved = discovery.save_discovered(found, tmp_path / "discovered.toml", k=5)
    out = tmp_path / "eval"
    args = ["evaluate", str(datasets.odisha_samples()), *EVALUATE_FAST, "--out", str(out),
            "--set", f"D-SI=discovered:{saved}:2", "--set", "N-SI=novel"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    table4 = pd.read_csv(evaluation_files(out)["table4"])
    assert set(table4["feature_set"]) == {"D-SI", "N-SI"}
    settings = evaluation_files(out)["settings"].read_text(encoding="utf-8")
    assert f"discovered:{saved}:2" in settings
    # The same set given to the library as its definitions scores the same, in worker
    # processes that have no registry of discovered indices.
    definitions = discovered.read_definitions(saved)[:2]
    direct = evaluate_study(samples, feature_sets={"D-SI": definitions}, quick=True,
                            models=("PLSR",), n_trials=0, protocols=("study",),
                            baseline=False, n_jobs=2)  # fmt: skip
    mine = (
        table4[table4["feature_set"] == "D-SI"].drop(columns="feature_set").reset_index(drop=True)
    )
    theirs = direct.table4.drop(columns="feature_set").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs[mine.columns], check_dtype=False)


@pytest.mark.parametrize(
    ("value", "named"),
    [("D-SI", "NAME=SELECTION"), ("=novel", "NAME=SELECTION"), ("X=", "NAME=SELECTION"),
     ("X=NOPE", "NOPE"), ("X=discovered:/no/such/discovered.toml:3", "does not exist")],
)  # fmt: skip
def test_cli_refuses_a_malformed_feature_set(value, named, tmp_path):
    args = ["evaluate", str(datasets.odisha_samples()), *EVALUATE_FAST,
            "--out", str(tmp_path), "--set", value]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert named in str(result.exception), result.output
    assert not any(tmp_path.iterdir())  # refused before any work


def test_settings_built_once_give_the_same_evaluation_and_report_progress(samples):
    from saltmap.progress import RecordedProgress
    from saltmap.validation.evaluation import run_evaluation
    from saltmap.validation.settings import EvaluationSettings

    options = {"quick": True, "models": ("PLSR",), "n_trials": 0, "n_boot": 50,
               "protocols": ("study", "repeated"), "baseline": False, "n_jobs": 1,
               "select": False}  # fmt: skip
    settings = EvaluationSettings(**options)
    assert (settings.n_repeats, settings.n_boot) == (1, 50)  # the quick plan fills the gap
    recorded = RecordedProgress()
    built = run_evaluation(samples, settings, progress=recorded)
    ticks = recorded.ticks["evaluation"]
    # 2 sets × (1 split + 5 folds), and the null model's 5 folds
    assert ticks[-1] == (len(ticks), len(ticks)) == (17, 17)
    calls = []
    direct = evaluate_study(samples, progress=lambda d, t: calls.append((d, t)), **options)
    assert calls == ticks  # the older progress(done, total) callable still works
    pd.testing.assert_frame_equal(built.honest, direct.honest)
    assert built.settings == direct.settings
    with pytest.raises(ValueError, match="unknown protocol"):
        EvaluationSettings(protocols=("study", "loo"))


def test_evaluate_study_takes_settings_and_checks_its_options(samples):
    from saltmap.validation.evaluation import settings_with
    from saltmap.validation.settings import EvaluationSettings

    with pytest.raises(TypeError, match="'n_job'"):
        evaluate_study(samples, n_job=1, **FAST)  # a misspelt option is named, not ignored
    with pytest.raises(TypeError, match="'folds'"):
        evaluate_study(samples, EvaluationSettings(quick=True), folds=3)
    base = EvaluationSettings(quick=True, models=("PLSR",))
    assert settings_with(base, {}) is base
    changed = settings_with(base, {"n_jobs": 1, "random_state": 9})
    assert (changed.n_jobs, changed.random_state, changed.models) == (1, 9, ("PLSR",))
    assert settings_with(None, {"quick": True}) == EvaluationSettings(quick=True)


def _counted_searches(monkeypatch):
    """Count each learner's Optuna searches (the real search still runs)."""
    from saltmap.models import tuning

    counts: dict[str, int] = {}
    real = tuning._tune_single

    def counted(name, *args, **kw):
        counts[name] = counts.get(name, 0) + 1
        return real(name, *args, **kw)

    monkeypatch.setattr(tuning, "_tune_single", counted)
    return counts


def test_one_tuning_cache_serves_every_model_of_an_evaluation(samples, monkeypatch):
    # Stacking tunes its bases (MLP, RF, XGBoost) as the single models are tuned, on the
    # same training rows: with the evaluation's one cache, RF's search runs once per
    # training set, not twice, and the numbers are those of searching every time.
    from saltmap.models.tuning_cache import TuningCache
    from saltmap.validation.settings import EvaluationSettings

    settings = EvaluationSettings(quick=True, models=("RF", "Stacking"), n_trials=2, n_boot=50,
                                  protocols=("study",), baseline=False, n_jobs=1,
                                  feature_sets={"N-SI": "novel"})  # fmt: skip
    counts = _counted_searches(monkeypatch)
    shared = evaluate_study(samples, settings)
    assert counts == {"RF": 1, "MLP": 1, "XGBoost": 1}  # one training set: the study split
    counts.clear()
    monkeypatch.setattr(TuningCache, "lookup", lambda self, key, search: search())
    unshared = evaluate_study(samples, settings)
    assert counts == {"RF": 2, "MLP": 1, "XGBoost": 1}
    pd.testing.assert_frame_equal(shared.table4, unshared.table4)
    pd.testing.assert_frame_equal(shared.predictions, unshared.predictions)

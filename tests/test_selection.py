"""Issue 14: the final model chosen by the evidence, physical targets, rows set aside.

Science tests run on the real Odisha samples. Tests named "synthetic" put a made-up
target on the real reflectance, or made-up fold results, to check the mechanics.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from saltmap.features.indices import compute_indices
from saltmap.features.screening import screen
from saltmap.io.samples import odisha
from saltmap.models.building import make_model
from saltmap.models.physical import LOG_MARGIN, count_clipped, target_bounds
from saltmap.models.training import train_model
from saltmap.tables import format_honest
from saltmap.validation.choice import winner_spec
from saltmap.validation.evaluation import evaluate_study
from saltmap.validation.metrics import CVResult, regression_metrics
from saltmap.validation.scoring import BASELINE
from saltmap.validation.selection import NO_SKILL, choose

FAST = {"quick": True, "n_trials": 0, "n_boot": 100, "n_jobs": 2}


@pytest.fixture(scope="module")
def samples():
    return odisha()


def _with_target(samples, target):
    table = samples.table.copy()
    table["target"] = np.asarray(target, dtype=float)
    return dataclasses.replace(samples, table=table)


# -- the choice --------------------------------------------------------------------------------


def _synthetic_result(y, errors, folds=5):
    """A CVResult whose predictions are ``y + errors``, in ``folds`` contiguous folds."""
    parts = np.array_split(np.arange(len(y)), folds)
    preds = [(idx, y[idx] + errors[idx]) for idx in parts]
    rows = [{"repeat": 0, "fold": i, "n": len(idx)} | regression_metrics(y[idx], p)
            for i, (idx, p) in enumerate(preds)]  # fmt: skip
    return CVResult(folds=pd.DataFrame(rows), predictions=preds, y=y)


def test_synthetic_one_standard_error_rule_prefers_the_simpler_model_within_noise():
    rng = np.random.default_rng(8)
    y = rng.normal(10, 3, 100)
    stacking = _synthetic_result(y, rng.normal(0, 1, 100))
    plsr = _synthetic_result(y, rng.normal(0, 1, 100))  # as good, up to noise
    n_features = {("A", "Stacking"): 4, ("A", "PLSR"): 4, ("A", "MLP"): 4}
    winner, table = choose({("A", "Stacking"): stacking, ("A", "PLSR"): plsr}, n_features, 5)
    assert table.iloc[0]["model"] == "Stacking"  # the lowest pooled RMSE ...
    assert winner == ("A", "PLSR") and table["within_1se"].all()  # ... but within noise
    far = _synthetic_result(y, rng.normal(0, 3, 100))
    winner, table = choose({("A", "Stacking"): stacking, ("A", "MLP"): far}, n_features, 5)
    assert winner == ("A", "Stacking")  # clearly better: kept although more complex
    assert not table.set_index("model").loc["MLP", "within_1se"]


def test_synthetic_clearly_best_candidate_is_chosen(samples):
    # A synthetic target that is linear in one index (TRSI): PLSR on TRSI (and SAI) is
    # the clearly best candidate; nothing else can reach it.
    trsi = compute_indices(samples.reflectance, "TRSI")["TRSI"].to_numpy()
    rng = np.random.default_rng(1)
    y = 1000 + 800 * (trsi - trsi.mean()) / trsi.std() + rng.normal(0, 20, len(trsi))
    result = evaluate_study(
        _with_target(samples, y), feature_sets={"TRSI": "TRSI,SAI", "SI": "classic"},
        models=("PLSR", "RF"), protocols=("repeated",), candidate_sets={}, **FAST,
    )  # fmt: skip
    sel = result.selection
    assert sel.protocol == "repeated"
    assert sel.winner == ("TRSI", "PLSR") and sel.row(sel.winner)["rank"] == 1
    assert sel.skill["evidence"] and NO_SKILL not in sel.words()
    assert sel.stability == 1.0  # every outer fold chose it too
    assert sel.nested_score["R2_pooled"] > 0.9


def test_no_signal_nested_score_is_lower_and_the_summary_says_so(samples):
    # Odisha's targets shuffled: whatever wins did so by chance, and the nested score of
    # "choose, then fit" shows it.
    shuffled = np.random.default_rng(0).permutation(samples.target.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = evaluate_study(
            _with_target(samples, shuffled), models=("PLSR", "RF", "MLP"),
            protocols=("spatial",), **FAST,
        )  # fmt: skip
    sel = result.selection
    own = sel.row(sel.winner)["R2_pooled"]
    assert sel.nested_score["R2_pooled"] < own
    assert not sel.skill["evidence"]
    assert NO_SKILL in sel.words()
    # `saltmap train --model auto` keeps the verdict in the model file for its maps.
    assert winner_spec(sel)["skill"] == sel.skill
    # The null model sits beside the plain random forest in the evaluation.
    honest = result.honest.set_index(["protocol", "feature_set", "model"])
    assert ("spatial", BASELINE, BASELINE) in honest.index
    assert any(fs.startswith("null") for _, fs, _ in honest.index)


def test_the_choice_reports_candidates_cost_and_nested_folds(samples):
    result = evaluate_study(samples, models=("PLSR", "RF"), protocols=("spatial",), **FAST)
    sel = result.selection
    table = sel.candidates
    assert table["chosen"].sum() == 1 and len(table) == 2 * 2 + 1  # 2 models x 2 sets + RF
    assert (table["kpx_per_cpu_s"] > 0).all()
    assert np.allclose(table["s2_tile_cpu_min"], 10980**2 / (table["kpx_per_cpu_s"] * 1e3) / 60)
    assert list(sel.nested["outer_fold"]) == [0, 1, 2, 3, 4]
    assert sel.nested_score["n"] == len(samples)
    assert "nested CV" in sel.words()


# -- targets that stay physical -----------------------------------------------------------------


def test_plsr_negative_predictions_are_set_to_zero_and_counted(samples):
    X, y = samples.reflectance, samples.target.to_numpy()
    model = make_model("PLSR", params={"n_components": 4}).fit(X, y)
    raw = model.named_steps["model"].regressor_.predict(model.named_steps["indices"].transform(X))
    assert (np.ravel(raw) < 0).sum() > 0  # PLSR does predict negative EC on Odisha
    pred = model.predict(X)
    assert pred.min() >= 0
    assert count_clipped(model, pred)["n_floor"] == (np.ravel(raw) < 0).sum()


def test_mlp_with_log_target_stays_bounded_on_an_extrapolating_pixel(samples):
    X, y = samples.reflectance, samples.target.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = make_model(
            "MLP", log_target=True,
            params={"n_units": 64, "n_layers": 2, "alpha": 1e-4, "max_iter": 2000},
        ).fit(X, y)  # fmt: skip
    # Reflectance far outside the samples': bright blue/red/SWIR1, dark green/NIR/SWIR2.
    pixels = pd.DataFrame(
        [[0.9, 0.01, 0.9, 0.01, 0.9, 0.01], [0.01, 0.9, 0.01, 0.9, 0.01, 0.9],
         [0.6, 0.02, 0.05, 0.7, 0.02, 0.6]], columns=X.columns,
    )  # fmt: skip
    raw_log = model.named_steps["model"].regressor_.predict(
        model.named_steps["indices"].transform(pixels)
    )
    lo, hi = np.log10(y.min()) - LOG_MARGIN, np.log10(y.max()) + LOG_MARGIN
    assert ((raw_log > hi) | (raw_log < lo)).any()  # the network does extrapolate here
    pred = model.predict(pixels)
    low, high = target_bounds(model)
    assert np.all((pred >= low * (1 - 1e-9)) & (pred <= high * (1 + 1e-9)))
    assert high == pytest.approx(y.max() * 10**LOG_MARGIN)
    assert sum(count_clipped(model, pred).values()) >= 1


def test_extreme_scores_print_in_scientific_notation_with_a_flag():
    row = {"protocol": "spatial", "feature_set": "N-SI", "model": "MLP", "n_folds": 5,
           "R2_mean": -6.5e20, "R2_sd": 1e21, "R2_pooled": -6.5e20, "R2_pooled_ci_low": -1e21,
           "R2_pooled_ci_high": 0.1, "RMSE_mean": 3e12, "RMSE_sd": 1.0, "MAE_mean": 2e12,
           "MAE_sd": 1.0}  # fmt: skip
    shown = format_honest(pd.DataFrame([row]), "uS/cm").iloc[0]
    text = " ".join(map(str, shown.to_numpy()))
    assert "-6.5e+20!" in text and "3e+12!" in text
    assert max(len(word) for word in text.split()) < 16  # never 22 digits


# -- one row never stops a run -----------------------------------------------------------------


def _undefined_crsi(samples):
    """The Odisha samples with one row whose CRSI is undefined (NR − GB < 0 under the root)
    while every novel index stays defined."""
    table = samples.table.copy()
    first = table.index[0]
    table.loc[first, ["B", "G", "R", "N"]] = [0.30, 0.30, 0.05, 0.05]
    out = dataclasses.replace(samples, table=table)
    values = compute_indices(out.reflectance.loc[[first]], "study")
    assert values.loc[first].isna().tolist().count(True) >= 1
    assert np.isnan(values.loc[first, "CRSI"])
    assert values.loc[first, ["SAI", "TRSI", "SBCI", "GOSI"]].notna().all()
    return out, first


def test_a_row_with_undefined_crsi_is_set_aside_only_for_the_sets_needing_it(samples):
    data, first = _undefined_crsi(samples)
    result = evaluate_study(data, models=("PLSR",), protocols=("repeated",), **FAST)
    aside = result.set_aside
    assert set(aside.loc[aside["sample"] == first, "feature_set"]) == {"SI", BASELINE}
    assert "CRSI" in aside["undefined"].iloc[0]
    honest = result.honest.set_index(["protocol", "feature_set", "model"])
    assert honest.loc[("repeated", "N-SI", "PLSR"), "n_folds"] == 5  # the run went on
    scored = result.folds.groupby("feature_set")["n"].sum()
    assert scored["N-SI"] == len(samples) and scored["SI"] == len(samples) - 1


def test_training_sets_the_row_aside_for_si_only(samples):
    data, first = _undefined_crsi(samples)
    _, classic = train_model(data, model="PLSR", indices="classic", n_trials=0)
    assert list(classic["training"]["set_aside"]) == [str(first)]
    assert classic["training"]["n"] == len(samples) - 1
    _, novel = train_model(data, model="PLSR", indices="novel", n_trials=0)
    assert novel["training"]["set_aside"] == {} and novel["training"]["n"] == len(samples)


# -- screening ---------------------------------------------------------------------------------


def test_q_values_control_the_false_discoveries_of_screening(samples):
    table = screen(samples, "study")
    assert (table["q_value"] >= table["p_value"] - 1e-12).all()
    shuffled = np.random.default_rng(0).permutation(samples.target.to_numpy())
    null = screen(_with_target(samples, shuffled), "study")
    assert (null["q_value"] >= 0.05).all()  # no signal: nothing starred
    assert (table["q_value"] < 0.05).any()  # the real target: some indices are

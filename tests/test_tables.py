"""saltmap.tables: the one table formatter of the CLI, the run folder and the report."""

import numpy as np
import pandas as pd
import pytest

from saltmap import report, tables
from saltmap.tables import (
    Table,
    compact,
    decimals_for,
    estimate,
    fixed,
    interval,
    markdown_table,
    metric_cell,
    pair,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (np.nan, "–"), (np.inf, "–"), (0.12345, "0.123"), (12.345, "12.3"),
     (1234.5, "1234"), (-0.5, "-0.5")],
)  # fmt: skip
def test_compact_keeps_three_significant_digits(value, text):
    assert compact(value) == text


def test_fixed_and_decimals_follow_the_unit():
    assert fixed(1.005, 1) == "1.0" and fixed(None, 2) == "–" and fixed(np.nan, 0) == "–"
    assert decimals_for([250.0, 900.0]) == 0
    assert decimals_for([12.0, 30.0]) == 1
    assert decimals_for([1.5, 3.0]) == 2
    assert decimals_for([0.2, 0.5]) == 3


def test_composite_cells_leave_out_what_is_missing():
    two = tables.fixed_to(2)
    assert estimate(1.0, 0.5, 0.2, 1.8, two) == "1.00 ± 0.50 [0.20, 1.80]"
    assert estimate(1.0, np.nan, 0.2, 1.8, two) == "1.00 [0.20, 1.80]"
    assert estimate(1.0, 0.5, np.nan, np.nan, two) == "1.00 ± 0.50"
    assert interval(1.0, np.nan, 2.0, two) == "1.00 [–, 2.00]"  # an interval always shows
    assert pair(0.5, 0.25) == "0.5 / 0.25"
    assert interval(0.05, -0.01, 0.1, lambda v: f"{v:+.3g}") == "+0.05 [-0.01, +0.1]"


def test_metric_cell_reads_a_result_row():
    row = pd.Series({"R2_mean": 0.5, "R2_sd": 0.1, "R2_ci_low": 0.3, "R2_ci_high": 0.7})
    assert metric_cell(row, "R2") == "0.5 ± 0.1 [0.3, 0.7]"
    assert metric_cell(row, "R2", ci=False) == "0.5 ± 0.1"
    assert metric_cell({"RMSE_mean": 120.0}, "RMSE") == "120"


def test_one_markdown_formatter_for_frames_and_tables():
    frame = pd.DataFrame({"model": ["a|b"], "R2": [0.51234]})
    assert markdown_table(frame) == "| model | R2 |\n|:---|---:|\n| a\\|b | 0.512 |\n"
    titled = markdown_table(Table("T", frame, caption="c"))
    assert titled.startswith("**T**\n\n") and titled.endswith("\nc\n")
    # The report hands out this same formatter (saltmap.report is an old path).
    assert report.markdown_table is markdown_table
    assert report.Table is Table and report.format_value is tables.format_value


def test_significant_to_keeps_the_sign_and_the_dash():
    signed = tables.significant_to(3, signed=True)
    assert (signed(0.04449), signed(-134.5), signed(1234.5)) == ("+0.0445", "-134", "+1.23e+03")
    assert tables.significant_to(4)(0.123456) == "0.1235"
    assert signed(np.nan) == signed(None) == tables.MISSING


def test_the_study_report_tables_speak_through_the_one_formatter():
    # The cells of the study's compact tables, as they read before they were made of
    # saltmap.tables' primitives; a missing spread or bound is left out (or an en dash).
    from saltmap.study import tables as st

    nan = np.nan
    honest = pd.DataFrame([
        {"protocol": "study", "feature_set": "N-SI", "model": "RF", "n_folds": 1,
         "R2_mean": 0.41234, "R2_sd": nan, "R2_ci_low": 0.1, "R2_ci_high": 0.612,
         "RMSE_mean": 1234.56, "RMSE_sd": nan, "RMSE_ci_low": 1000.2, "RMSE_ci_high": 1500.7,
         "MAE_mean": 987.6, "MAE_sd": nan, "MAE_ci_low": 800.0, "MAE_ci_high": 1100.0,
         "R2_pooled": nan},
        {"protocol": "repeated", "feature_set": "SI", "model": "PLSR", "n_folds": 5,
         "R2_mean": -0.0456, "R2_sd": 0.2345, "R2_ci_low": -0.31, "R2_ci_high": 0.2,
         "RMSE_mean": 56.789, "RMSE_sd": 12.34, "RMSE_ci_low": 45.0, "RMSE_ci_high": 70.01,
         "MAE_mean": 40.5, "MAE_sd": 9.876, "MAE_ci_low": nan, "MAE_ci_high": nan,
         "R2_pooled": 0.3333},
    ])  # fmt: skip
    cv = st.compact_cv_table(honest)
    assert cv[["R²", "RMSE", "MAE", "R² pooled"]].values.tolist() == [
        ["0.412 [0.1, 0.612]", "1235 [1000, 1501]", "988 [800, 1100]", "–"],
        ["-0.0456 ± 0.234 [-0.31, 0.2]", "56.8 ± 12.3 [45, 70]", "40.5 ± 9.88", "0.333"],
    ]
    base = pd.DataFrame([{
        "feature_set": "N-SI", "model": "RF", "R2_pooled": 0.4567, "R2_pooled_baseline": 0.3891,
        "dR2_pooled": 0.0676, "dR2_pooled_ci_low": -0.0123, "dR2_pooled_ci_high": 0.14,
        "dRMSE": -123.4, "dRMSE_ci_low": -250.0, "dRMSE_ci_high": 3.21, "dMAE": -50.5,
        "dMAE_ci_low": -99.9, "dMAE_ci_high": 0.5, "verdict": "no difference"}])  # fmt: skip
    assert st.compact_baseline_table(base).iloc[0].tolist() == [
        "N-SI", "RF", "0.457 / 0.389", "0.0676 [-0.0123, 0.14]", "-123 [-250, 3.21]",
        "-50.5 [-99.9, 0.5]", "no difference",
    ]  # fmt: skip
    gain = pd.DataFrame([
        {"protocol": "repeated", "model": "RF", "predictors": "indices", "n_folds": 5,
         "R2_pooled": 0.4567, "R2_pooled_ci_low": 0.3012, "R2_pooled_ci_high": 0.5999,
         "RMSE_mean": 1234.5, "RMSE_sd": 101.2, "dR2_pooled": nan},
        {"protocol": "repeated", "model": "RF", "predictors": "indices+covariates", "n_folds": 5,
         "R2_pooled": 0.5012, "R2_pooled_ci_low": 0.35, "R2_pooled_ci_high": 0.65,
         "RMSE_mean": 1100.0, "RMSE_sd": 99.5, "dR2_pooled": 0.0445, "dR2_pooled_ci_low": -0.0101,
         "dR2_pooled_ci_high": 0.0999, "dRMSE": -134.5, "dRMSE_ci_low": -260.0,
         "dRMSE_ci_high": 1.25},
    ])  # fmt: skip
    shown = st.compact_gain_table(gain)
    assert shown[["R² pooled", "RMSE", "Δ R² pooled", "Δ RMSE"]].values.tolist() == [
        ["0.457 [0.301, 0.6]", "1234 ± 101", "–", "–"],
        ["0.501 [0.35, 0.65]", "1100 ± 99.5", "+0.0445 [-0.0101, +0.0999]", "-134 [-260, +1.25]"],
    ]
    importance = pd.DataFrame(
        {
            "protocol": ["repeated"] * 3,
            "model": ["RF"] * 3,
            "predictor": ["SAI", "soil", "NDVI"],
            "mean": [0.01234, 0.2, -0.001],
            "sd": [0.005, 0.0456, nan],
        }
    )
    cells = st.compact_importance_table(importance)["decrease of R² when shuffled"].tolist()
    assert cells == ["0.200 ± 0.046", "0.012 ± 0.005", "-0.001"]  # fmt: skip
    trust = pd.DataFrame({"scene": ["a", "b"], "share_inside_aoa": [0.87654, nan]})
    assert st.trust_shown(trust)["inside AOA (%)"].tolist() == ["87.65", "–"]
    assert (st.param_text(0.000123456), st.param_text(300), st.param_text("relu")) == (
        "0.0001235", "300", "relu",
    )  # fmt: skip

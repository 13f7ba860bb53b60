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

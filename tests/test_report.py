"""The HTML report: self-contained, tables and figures from plain data.

The tables and figure here are synthetic (made up in the test) because they test
the page's mechanics, not science; the report of a real run is checked in
tests/test_study.py.
"""

import base64
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from saltmap.errors import InputFileError
from saltmap.report import (
    Figure,
    Note,
    Report,
    Table,
    embed_image,
    format_value,
    markdown_table,
    render_report,
    write_report,
)

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""")


@pytest.fixture
def synthetic_figure(tmp_path):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    png = tmp_path / "synthetic.png"
    svg = tmp_path / "synthetic.svg"
    fig.savefig(png)
    fig.savefig(svg)
    plt.close(fig)
    return png, svg


def _report(png):
    report = Report("A <synthetic> report", subtitle="mechanics only", facts={"seed": 3})
    section = report.section("Results", "Intro & more")
    section.add(Table("Table 1", pd.DataFrame({"name": ["a|b", "c"], "r": [0.51234, np.nan]})))
    section.add(Figure("Figure 1", png, "a line"))
    section.add(Note("careful", kind="warning"))
    return report


def test_report_embeds_figures_and_loads_nothing_remote(synthetic_figure, tmp_path):
    png, _ = synthetic_figure
    page = write_report(_report(png), tmp_path / "report.html").read_text(encoding="utf-8")
    assert REMOTE.search(page) is None
    assert "<script" not in page
    match = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert match is not None
    assert base64.b64decode(match.group(1)) == png.read_bytes()


def test_report_escapes_text_and_shows_tables(synthetic_figure):
    png, _ = synthetic_figure
    page = render_report(_report(png))
    assert "A &lt;synthetic&gt; report" in page
    assert "Intro &amp; more" in page
    assert "<td>a|b</td>" in page
    assert '<td class="num">0.512</td>' in page
    assert '<td class="num">–</td>' in page  # NaN shown as a dash
    assert 'class="note warning"' in page
    assert page.count("<section") == 1


def test_consecutive_items_make_one_list():
    report = Report("r")
    section = report.section("s")
    for text in ("one", "two"):
        section.add(Note(text, kind="item"))
    section.add(Note("after"))
    page = render_report(report)
    assert "<ul><li>one</li><li>two</li></ul>" in page
    assert page.index("</ul>") < page.index('<p class="note">after</p>')


def test_empty_sections_are_still_rendered_when_asked(synthetic_figure):
    report = Report("r")
    report.section("empty")
    assert "empty" in render_report(report)


def test_svg_figures_are_inlined(synthetic_figure):
    _, svg = synthetic_figure
    html = embed_image(svg)
    assert html.startswith("<svg")
    assert "<?xml" not in html


def test_missing_or_unknown_figure_is_a_clear_error(tmp_path):
    with pytest.raises(InputFileError, match=r"missing\.png"):
        embed_image(tmp_path / "missing.png")
    odd = tmp_path / "figure.tiff"
    odd.write_bytes(b"II*\x00")
    with pytest.raises(InputFileError, match="PNG, JPEG, GIF or SVG"):
        embed_image(odd)


def test_markdown_table_escapes_pipes_and_aligns_numbers():
    frame = pd.DataFrame({"formula": ["|a|"], "r": [0.25]})
    text = markdown_table(Table("T", frame, caption="c"))
    lines = text.splitlines()
    assert lines[0] == "**T**"
    assert "| formula | r |" in lines
    assert "|:---|---:|" in lines
    assert "| \\|a\\| | 0.250 |" in lines
    assert lines[-1] == "c"


@pytest.mark.parametrize(
    ("value", "spec", "text"),
    [
        (1234.5, None, "1234"),
        (0.123456, None, "0.123"),
        (2.5, None, "2.5"),
        (3.2e-7, None, "3.20e-07"),
        (0.00012, ".2g", "0.00012"),
        (float("nan"), None, "–"),
        (None, None, "–"),
        (True, None, "yes"),
        (7, None, "7"),
        ("text", None, "text"),
    ],
)
def test_format_value(value, spec, text):
    assert format_value(value, 4, spec) == text

"""The README's Python example runs as written (on the real data)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from saltmap import datasets
from saltmap.errors import DataDirError

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_one_python_example_of_at_most_ten_statements():
    (block,) = _python_blocks()
    assert len(ast.parse(block).body) <= 10


def test_readme_python_example_maps_the_real_scene(tmp_path, monkeypatch, capsys):
    try:
        datasets.data_dir()
    except DataDirError as err:
        pytest.skip(str(err))
    monkeypatch.chdir(tmp_path)
    (block,) = _python_blocks()
    exec(compile(block, str(README), "exec"), {})  # our own README, run as a user would
    printed = capsys.readouterr().out
    assert "share_inside_aoa" in printed
    assert (tmp_path / "maps" / "salinity.tif").exists()
    assert (tmp_path / "maps" / "aoa.tif").exists()

"""Paths in a study file: variables expanded, relative paths resolved, files checked.

Paths in a study file are relative to the file's folder. ``${SALTMAP_DATA_DIR}``
(or ``$SALTMAP_DATA_DIR``) is the shared data folder of
:func:`saltmap.datasets.data_dir`, also when that variable is not set; any
other ``${NAME}`` is taken from the environment. :data:`InputPath` and
:data:`SceneSource` are the pydantic field types that do this on validation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, ValidationInfo

from saltmap.datasets import data_dir

_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def expand_path_text(text: str) -> str:
    """Replace ``${NAME}`` and ``$NAME`` in a path: ``SALTMAP_DATA_DIR`` is the data folder
    of :func:`saltmap.datasets.data_dir` (set or not), other names come from the environment.

    Raises
    ------
    ValueError
        If a variable other than ``SALTMAP_DATA_DIR`` is not set.
    """

    def value(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name == "SALTMAP_DATA_DIR":
            return str(data_dir())
        if name not in os.environ:
            raise ValueError(
                f"the environment variable {name} in {text!r} is not set; set it or write "
                "the path out"
            )
        return os.environ[name]

    return os.path.expanduser(_VAR.sub(value, text))


def _resolve(value: Any, info: ValidationInfo) -> Path:
    """A path of the study file, variables expanded, relative to the validation's ``base``."""
    text = expand_path_text(str(value))
    path = Path(text)
    base = (info.context or {}).get("base")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def _resolve_existing(value: Any, info: ValidationInfo) -> Path:
    """A resolved input path, refused if missing (unless the context says not to check)."""
    path = _resolve(value, info)
    if (info.context or {}).get("check_files", True) and not path.exists():
        raise ValueError(
            f"{path} does not exist; fix the path (relative paths start at the study file's "
            "folder, ${SALTMAP_DATA_DIR} is the shared data folder)"
        )
    return path


def _resolve_source(value: Any, info: ValidationInfo) -> str:
    """A scene source: a URL (STAC item) is kept as it is, a path is resolved and checked."""
    text = str(value)
    if _URL.match(text):
        return text
    return str(_resolve_existing(text, info))


InputPath = Annotated[Path, BeforeValidator(_resolve_existing)]
SceneSource = Annotated[str, BeforeValidator(_resolve_source)]


def slug(text: str) -> str:
    """``text`` as a file and folder name: runs of other characters become one hyphen."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text.strip()).strip("-.")

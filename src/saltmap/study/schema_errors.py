"""Pydantic's validation errors as lines a user can act on: the key, the bad value, the fix.

An unknown key gets the closest known one (``did you mean 'seed'?``) and the keys
its table accepts; a missing key its description; a bad value what the field
expects. Works on any tree of pydantic models; :func:`saltmap.study.config.describe_errors`
applies it to a study.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError


def _model_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The section model a location points into (for listing the keys it accepts)."""
    model: Any = schema
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        model = _section_type(field.annotation)
        if model is None:
            return None
    return model


def _section_type(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field's annotation (``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _section_type(arg)
            if found is not None:
                return found
    return None


def _key(loc: tuple[Any, ...]) -> str:
    """A location as the study file writes it: ``scenes[0].path``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _value(value: Any) -> str:
    """A bad value as shown in a message (cut at 80 characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def explain_errors(err: ValidationError, schema: type[BaseModel], where: str = "the study") -> str:
    """Turn pydantic's errors into lines a user can act on: key, bad value, fix.

    Parameters
    ----------
    err : ValidationError
        The errors of validating ``schema``.
    schema : pydantic model class
        The model validated: unknown and missing keys are looked up in it.
    where : str
        What was validated, first word of the message (a file name).
    """
    lines = [f"{where} has {err.error_count()} problem(s):"]
    for e in err.errors(include_url=False):
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = e["type"]
        if kind == "extra_forbidden":
            parent, key = loc[:-1], loc[-1]
            model = _model_at(schema, parent)
            known = list(model.model_fields) if model else []
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            section = f"[{_key(parent)}]" if parent else "the top level"
            lines.append(
                f"  - unknown key {_key(loc)!r} in {section}: {hint}"
                f"keys there are {', '.join(known)}"
            )
            continue
        if kind == "missing":
            model = _model_at(schema, loc[:-1])
            field = model.model_fields.get(loc[-1]) if model else None
            what = f" ({field.description})" if field and field.description else ""
            lines.append(f"  - missing key {_key(loc)!r}{what}: add it")
            continue
        message = e["msg"].removeprefix("Value error, ")
        model = _model_at(schema, loc[:-1]) if loc else None
        field = model.model_fields.get(loc[-1]) if model and loc else None
        expected = f"; expected {field.description}" if field and field.description else ""
        lines.append(f"  - {_key(loc)} = {_value(e['input'])}: {message}{expected}")
    return "\n".join(lines)

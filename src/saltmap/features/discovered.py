"""Discovered indices as explicit values: definitions, their files, selections.

A discovered index is carried by its definition, plain data: ``{"name": "D1",
"template": ..., "bands": [...], "transform": ..., "weight": ...}``. Selections
resolve to definitions (:func:`resolve_selection`) and models carry them
(:class:`~saltmap.features.indices.IndexFeatures`), so worker processes and new
sessions compute the indices without any registry. Files written by
:func:`saltmap.features.discovery.save_discovered` are read back here without
evaluating any string.

Importing this module teaches :mod:`saltmap.features.indices` the ``discovered``
selections and definitions (it imports this module lazily on first use).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from saltmap.errors import ConfigError, InputFileError
from saltmap.features import indices
from saltmap.features.formulas import Candidate
from saltmap.features.indices import SpectralIndex

# The session registry below remains for one release, so that names of discovered indices
# keep resolving by name in the session that loaded or found them (``"discovered:3"``
# after :func:`register_discovered`; a model file's metadata on loading).

# Registered discovered indices, best first (the order "discovered:K" takes).
_DISCOVERED: dict[str, Candidate] = {}


def definition(name: str, candidate: Candidate) -> dict[str, Any]:
    """The plain-data definition of the discovered index ``name``."""
    return {"name": name, **candidate.to_dict()}


def index_from_definition(data: Mapping[str, Any]) -> SpectralIndex:
    """The index a definition describes (no registry involved)."""
    try:
        name = str(data["name"])
        cand = Candidate.from_dict(data)
    except KeyError as err:
        raise ConfigError(f"the index definition {dict(data)!r} lacks the key {err}") from err
    return cand.to_index(name, reference="saltmap discovery (from its definition)")


def definitions_of(candidates: Sequence[Candidate], *, prefix: str = "D") -> list[dict[str, Any]]:
    """Definitions of candidates as indices ``D1``, ``D2``, ... (best first); nothing registered."""
    return [definition(f"{prefix}{i}", c) for i, c in enumerate(candidates, start=1)]


def read_definitions(path: str | Path) -> list[dict[str, Any]]:
    """The definitions in a file written by :func:`save_discovered`, best first."""
    return [definition(name, cand) for name, cand in read_discovered(path)]


def _remember(pairs: Sequence[tuple[str, Candidate]], reference: str) -> list[str]:
    for name, cand in pairs:
        indices.register(cand.to_index(name, reference=reference))
    fresh = dict(pairs)
    old = {n: c for n, c in _DISCOVERED.items() if n not in fresh}
    _DISCOVERED.clear()
    _DISCOVERED.update(fresh | old)
    return list(fresh)


def register_discovered(
    candidates: Sequence[Candidate], *, prefix: str = "D", reference: str = "saltmap discovery"
) -> list[str]:
    """Register candidates as indices ``D1``, ``D2``, ... (best first) and return the names.

    A later call replaces earlier discovered indices of the same names. To pass them
    where they are needed instead, use :func:`definitions_of`.
    """
    pairs = [(f"{prefix}{i}", cand) for i, cand in enumerate(candidates, start=1)]
    return _remember(pairs, reference)


def definitions(names: Iterable[str]) -> list[dict[str, Any]]:
    """Plain-data definitions of the registered discovered indices among ``names``
    (others are skipped).

    A saved model that uses discovered indices stores these beside its index names
    and calls :func:`register_definitions` on loading, since an index's computation is
    code and does not travel with a name.
    """
    return [definition(n, _DISCOVERED[n]) for n in names if n in _DISCOVERED]


def register_definitions(defs: Iterable[Mapping[str, Any]], *, reference: str = "") -> list[str]:
    """Register indices from :func:`definitions` output; return their names."""
    pairs = [(str(d["name"]), Candidate.from_dict(d)) for d in defs]
    return _remember(pairs, reference or "saltmap discovery (from saved definitions)")


def read_discovered(path: str | Path) -> list[tuple[str, Candidate]]:
    """Read ``(name, candidate)`` pairs from a file written by :func:`save_discovered`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise InputFileError(f"discovered-index file {path} does not exist") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    entries = data.get("index", [])
    if not entries:
        raise ConfigError(f"{path} holds no [[index]] entries; write it with `saltmap discover`")
    out = []
    for i, entry in enumerate(entries, start=1):
        try:
            cand = Candidate.from_dict(entry)
            name = str(entry["name"])
        except KeyError as err:
            raise ConfigError(f"{path}: index entry {i} lacks the key {err}") from err
        except ConfigError as err:
            raise ConfigError(f"{path}: index entry {i}: {err}") from err
        if "formula" in entry and entry["formula"] != cand.formula:
            raise ConfigError(
                f"{path}: index {name!r} says formula {entry['formula']!r} but its template, "
                f"bands, transform and weight give {cand.formula!r}; fix one to match the other"
            )
        out.append((name, cand))
    return out


def load_discovered(path: str | Path) -> list[str]:
    """Register the indices of a discovered-index file; return their names, best first."""
    return _remember(read_discovered(path), f"saltmap discovery, {Path(path).name}")


def select_discovered(
    spec: str, discovered: Sequence[Mapping[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Definitions of the indices of a ``discovered`` selection, best first.

    ``discovered`` gives every index of ``discovered`` (the explicit definitions,
    e.g. from :func:`definitions_of`; ``None``: those registered in this session),
    ``discovered:K`` the best ``K``; ``discovered:PATH`` and ``discovered:PATH:K``
    read the file ``PATH`` (and, for one release, register its indices by name).
    """
    head, _, rest = spec.strip().partition(":")
    if head.lower() != "discovered":
        raise ConfigError(f"{spec!r} is not a 'discovered' selection such as 'discovered:5'")
    k: int | None = None
    if discovered is None:
        discovered = [definition(n, c) for n, c in _DISCOVERED.items()]
    found = [dict(d) for d in discovered]
    if rest:
        path, _, count = rest.rpartition(":") if not rest.isdigit() else ("", "", rest)
        if count.isdigit():
            k = int(count)
        else:
            path = rest
        if path:
            found = read_definitions(path)
            _remember([(d["name"], Candidate.from_dict(d)) for d in found],
                      f"saltmap discovery, {Path(path).name}")  # fmt: skip
    if not found:
        raise ConfigError(
            f"no discovered indices are loaded for {spec!r}; run `saltmap discover` and select "
            "them with 'discovered:PATH/discovered.toml:K'"
        )
    return found if k is None else found[:k]


def resolve_discovered(spec: str) -> list[str]:
    """Index names for a ``discovered`` selection (see :func:`select_discovered`).

    Examples
    --------
    >>> resolve_discovered("discovered:results/discovered.toml:5")  # doctest: +SKIP
    ['D1', 'D2', 'D3', 'D4', 'D5']
    """
    return [d["name"] for d in select_discovered(spec)]


def resolve_selection(
    names: str | Iterable[Any], discovered: Sequence[Mapping[str, Any]] | None = None
) -> list[indices.IndexItem]:
    """A selection as index items: catalogue names, and definitions of discovered indices.

    Like :func:`saltmap.features.indices.resolve_items`, with ``discovered`` the
    explicit definitions that ``discovered`` and ``discovered:K`` select from
    (``None``: those registered in this session). The items compute in any process.

    Examples
    --------
    >>> found = [{"name": "D1", "template": "ratio", "bands": ["G", "N"]}]
    >>> resolve_selection("SAI,discovered:1", found)
    ['SAI', {'name': 'D1', 'template': 'ratio', 'bands': ['G', 'N']}]
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[indices.IndexItem] = []
    for item in items:
        is_text = isinstance(item, str)
        if is_text and item.strip().partition(":")[0].lower() == "discovered":
            expanded: list[Any] = select_discovered(item, discovered)
        else:
            expanded = indices.resolve_items([item] if not is_text else item)
        out.extend(e for e in expanded if indices.item_name(e) not in map(indices.item_name, out))
    return out


def resolve_with_discovered(names: str | Iterable[str]) -> list[str]:
    """:func:`saltmap.features.indices.resolve` that also expands ``discovered`` selections.

    Examples
    --------
    >>> resolve_with_discovered("novel,discovered:out/discovered.toml:2")  # doctest: +SKIP
    ['SAI', 'TRSI', 'SBCI', 'GOSI', 'D1', 'D2']
    """
    return [indices.item_name(item) for item in resolve_selection(names)]


# `indices` expands "discovered:..." and rebuilds definitions through these, without
# importing this module.
indices.SET_RESOLVERS.setdefault("discovered", select_discovered)
indices.DEFINITION_READERS.setdefault("discovered", index_from_definition)

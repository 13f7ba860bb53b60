"""The package's layering (docs/architecture.md): data flows one way between stages.

Read from the source with ``ast`` (nothing imported): every ``saltmap`` import
inside ``src/saltmap`` goes to the same stage or a lower one, never imports a
private name of another module, and the module graph has no cycle.
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "saltmap"

# Stage of each top-level name under saltmap; a module may import its own stage
# and those below it. The base layer is flat.
RANK = {
    "_compat": 0, "_lazy": 0, "errors": 0, "bands": 0, "atomic": 0, "datasets": 0,
    "progress": 0, "tables": 0, "map_figures": 0, "rowwise": 0,
    "report": 0, "plots": 0,
    "salinity": 1,
    "io": 2,
    "features": 3,
    "models": 4,
    "validation": 5,
    "trust": 6,
    "mapping": 7,
    "study": 8,
    "cli": 9,
}  # fmt: skip
OLD_PATHS = {
    "samples": "io.samples", "scene": "io.scene", "indices": "features.indices",
    "discovery": "features.discovery", "covariates": "features.covariates",
    "extract": "features.extraction", "spectra": "features.spectra",
    "screening": "features.screening", "modelfile": "models.persistence",
    "evaluation": "validation.evaluation",
}  # fmt: skip


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(p): p
        for p in SRC.rglob("*.py")
        if p.stem not in OLD_PATHS or p.parent != SRC  # the old-path aliases import upward
    }


def _imports(path: Path, name: str) -> list[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) of every saltmap import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("saltmap")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            if base.startswith("saltmap"):
                found.append((base, [a.name for a in node.names], node.lineno))
    return found


def _rank(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None


def test_every_stage_has_a_rank():
    stages = {name.split(".")[1] for name in _modules() if name.count(".") >= 1}
    assert stages <= set(RANK), f"add {sorted(stages - set(RANK))} to RANK and the architecture doc"


def test_imports_go_to_the_same_or_a_lower_stage():
    upward = []
    for name, path in _modules().items():
        for target, names, line in _imports(path, name):
            # `from saltmap import mapping` imports the stage it names
            targets = [f"saltmap.{n}" for n in names] if target == "saltmap" else [target]
            mine = _rank(name)
            for theirs in targets:
                if mine is not None and (_rank(theirs) or 0) > mine:
                    upward.append(f"{path.relative_to(SRC)}:{line} imports {theirs}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_module_imports_private_names_of_another():
    private, modules = [], _modules()
    for name, path in modules.items():
        for target, names, line in _imports(path, name):
            # a stage's private helper module (cli._options) is its own to use
            own = name.startswith(target + ".")
            taken = [
                n
                for n in names
                if n.startswith("_")
                and not n.startswith("__")
                and not (own and f"{target}.{n}" in modules)
            ]
            if taken and target != name:
                private.append(f"{path.relative_to(SRC)}:{line} takes {taken} from {target}")
    assert not private, "\n".join(private)


def test_the_module_graph_has_no_cycle():
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = set()
        for target, names, _ in _imports(path, name):
            edges |= {f"{target}.{n}" for n in names if f"{target}.{n}" in modules}
            if target in modules:
                edges.add(target)
        # a package's __init__ is its lazy index, not a dependency of its modules
        graph[name] = {e for e in edges if e != name and not name.startswith(e + ".")}
    state: dict[str, int] = {}  # 1 while on the current path, 2 once finished
    cycle: list[str] = []

    def visit(node: str, trail: list[str]) -> bool:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle.extend([*trail[trail.index(nxt) :], nxt])
                return True
            if state.get(nxt) is None and visit(nxt, [*trail, nxt]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if state.get(node) is None and visit(node, [node]):
            break
    assert not cycle, " -> ".join(cycle)


@pytest.mark.parametrize(("old", "new"), sorted(OLD_PATHS.items()))
def test_old_import_paths_still_work_and_warn(old, new):
    sys.modules.pop(f"saltmap.{old}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(f"saltmap.{old}")
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)
    home = importlib.import_module(f"saltmap.{new}")
    public = [n for n in vars(home) if not n.startswith("_") and callable(getattr(home, n))]
    assert public and all(getattr(module, n) is getattr(home, n) for n in public)


def test_old_paths_find_names_that_moved_to_another_stage():
    from saltmap.validation.covariates import covariate_gain

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from saltmap.covariates import covariate_gain as old

    assert old is covariate_gain


def test_old_paths_find_renamed_names():
    from saltmap.mapping.blocks import predict_block_with_unseen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from saltmap.covariates import predict_block

    assert predict_block is predict_block_with_unseen


def test_every_public_name_of_a_stage_resolves():
    stages = ("io", "features", "models", "validation", "trust", "mapping", "study", "salinity")
    for stage in stages:
        package = importlib.import_module(f"saltmap.{stage}")
        for name in package.__all__:
            assert getattr(package, name) is not None, f"saltmap.{stage}.{name}"


def test_no_module_shares_its_name_with_a_public_name_of_its_stage():
    # Once a submodule is imported, the package attribute of that name is the module,
    # so `from saltmap.<stage> import <name>` would give the module instead of the name.
    for stage in ("io", "features", "models", "validation", "trust", "mapping", "study"):
        package = importlib.import_module(f"saltmap.{stage}")
        modules = {p.stem for p in (SRC / stage).glob("*.py")}
        assert not modules & set(package.__all__), stage

"""Room sizes of a package: module lines, function lengths and the longest functions.

Usage: ``python tools/room_sizes.py [src/saltmap] [N]`` prints the totals, imports inside
functions, public functions with more than eight parameters, then the N longest functions
and the twelve largest modules. Measured with ``ast``, nothing imported.
Each figure is given twice: all lines, then code lines only (docstrings excluded, so a
function long by its numpydoc docstring alone is not counted as long code).
"""

import ast
import statistics
import sys
from pathlib import Path

Sizes = dict[str, int]
Functions = list[tuple[int, int, str]]


def _docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers held by the docstrings of a module, its classes and functions."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def measure(root: Path) -> tuple[Sizes, Sizes, Functions]:
    """Lines and code lines per module, and ``(length, code length, place)`` per function."""
    modules, code, functions = {}, {}, []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        if "saltmap._compat import install" in text:
            continue  # an old import path kept for one release, not a room
        tree = ast.parse(text)
        docs = _docstring_lines(tree)
        name = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        modules[name] = len(text.splitlines())
        code[name] = modules[name] - len(docs)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                span = range(node.lineno, node.end_lineno + 1)
                length = len(span)
                code_length = length - sum(line in docs for line in span)
                place = f"{path.relative_to(root)}:{node.lineno} {node.name}"
                functions.append((length, code_length, place))
    return modules, code, functions


def _owner(function: ast.AST, stmt: ast.stmt) -> bool:
    """Whether ``function`` is the innermost function around ``stmt``."""
    inner = [
        f
        for f in ast.walk(function)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        and f.lineno <= stmt.lineno <= f.end_lineno
    ]
    return min(inner, key=lambda f: f.end_lineno - f.lineno) is function


def habits(root: Path) -> tuple[int, list[tuple[int, str]]]:
    """Import statements inside functions, and public functions (outside the CLI, not
    ``__init__``) with more than eight parameters."""
    inner, wide = 0, []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            imports = [s for s in ast.walk(node) if isinstance(s, ast.Import | ast.ImportFrom)]
            inner += sum(_owner(node, s) for s in imports)
            a = node.args
            n = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs)
            n -= bool(a.args) and a.args[0].arg in ("self", "cls")
            public = not node.name.startswith("_") and "cli" not in path.parts
            if public and n > 8:
                wide.append((n, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return inner, sorted(wide, reverse=True)


def _module_figures(modules: Sizes) -> str:
    # the stage modules, as issue 12 counted them: not the CLI, not the lazy indexes
    rooms = sorted(v for k, v in modules.items() if ".cli" not in k and "__init__" not in k)
    return (
        f"modules outside cli: {len(rooms)}, median {statistics.median(rooms)}, "
        f"over 500: {sum(v > 500 for v in rooms)}, max {max(rooms)}"
    )


def _function_figures(lengths: list[int]) -> str:
    lengths = sorted(lengths)
    return (
        f"functions {len(lengths)}: median {statistics.median(lengths)}, "
        f"p90 {lengths[int(0.9 * len(lengths))]}, max {lengths[-1]}, "
        f"over 60: {sum(n > 60 for n in lengths)}, over 40: {sum(n > 40 for n in lengths)}"
    )


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/saltmap")
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    modules, code, functions = measure(root)
    print(f"{sum(modules.values())} lines in {len(modules)} files")
    print(f"{sum(code.values())} code lines (docstrings excluded)")
    print("all lines:  " + _module_figures(modules))
    print("code lines: " + _module_figures(code))
    print("all lines:  " + _function_figures([n for n, _, _ in functions]))
    print("code lines: " + _function_figures([c for _, c, _ in functions]))
    inner, wide = habits(root)
    print(f"imports inside functions: {inner}")
    print(f"public functions with more than 8 parameters: {len(wide)}")
    for n, place in wide:
        print(f"  {n:5d} {place}")
    print("longest functions (all lines, code lines):")
    for length, code_length, place in sorted(functions, reverse=True)[:top]:
        print(f"  {length:5d} {code_length:5d} {place}")
    print("longest functions by code lines (all lines, code lines):")
    for length, code_length, place in sorted(functions, key=lambda f: (-f[1], -f[0]))[:top]:
        print(f"  {length:5d} {code_length:5d} {place}")
    print("largest modules (all lines, code lines):")
    for name, lines in sorted(modules.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {lines:5d} {code[name]:5d} {name}")


if __name__ == "__main__":
    main()

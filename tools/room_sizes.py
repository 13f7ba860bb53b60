"""Room sizes of a package: module lines, function lengths and the longest functions.

Usage: ``python tools/room_sizes.py [src/saltmap] [N]`` prints the totals, then the N
longest functions and the twelve largest modules. Measured with ``ast``, nothing imported.
"""

import ast
import statistics
import sys
from pathlib import Path


def measure(root: Path) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """Lines per module and ``(length, place)`` per function or method."""
    modules, functions = {}, []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        modules[".".join(path.relative_to(root.parent).with_suffix("").parts)] = len(
            text.splitlines()
        )
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                functions.append((length, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
    return modules, functions


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "src/saltmap")
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    modules, functions = measure(root)
    print(f"{sum(modules.values())} lines in {len(modules)} files")
    # the stage modules, as issue 12 counted them: not the CLI, not the lazy indexes
    rooms = sorted(v for k, v in modules.items() if ".cli" not in k and "__init__" not in k)
    print(
        f"modules outside cli: {len(rooms)}, median {statistics.median(rooms)}, "
        f"over 500: {sum(v > 500 for v in rooms)}, max {max(rooms)}"
    )
    lengths = sorted(n for n, _ in functions)
    print(
        f"functions {len(lengths)}: median {statistics.median(lengths)}, "
        f"p90 {lengths[int(0.9 * len(lengths))]}, max {lengths[-1]}, "
        f"over 60: {sum(n > 60 for n in lengths)}"
    )
    for length, place in sorted(functions, reverse=True)[:top]:
        print(f"  {length:5d} {place}")
    for name, lines in sorted(modules.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {lines:5d} {name}")


if __name__ == "__main__":
    main()

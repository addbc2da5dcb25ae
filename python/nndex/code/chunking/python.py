"""Python files: units from the ``ast`` module (definitions, decorated, with comments attached)."""

from __future__ import annotations

import ast
from typing import Sequence

from nndex.code.chunking._core import Unit

_PY_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _py_units(nodes: list[ast.stmt], lines: Sequence[str], lo: int, hi: int, in_class: bool) -> list[Unit]:
    units: list[Unit] = []
    covered: list[tuple[int, int]] = []
    for node in nodes:
        start = node.lineno
        if isinstance(node, _PY_DEFS) and node.decorator_list:
            start = min([start] + [d.lineno for d in node.decorator_list])
        end = getattr(node, "end_lineno", None) or node.lineno
        covered.append((start, end))
        if isinstance(node, ast.ClassDef):
            units.append(
                Unit(
                    start,
                    end,
                    "class",
                    node.name,
                    members=lambda node=node: _py_units(node.body, lines, node.lineno, node.end_lineno or node.lineno, True),
                    member_kind="method",
                )
            )
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            units.append(Unit(start, end, "method" if in_class else "function", node.name))
        elif end > start + 1 and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            units.append(Unit(start, end, "block", _py_stmt_name(node)))
        else:
            units.append(Unit(start, end, "code"))
    # comment-only lines outside every statement, as runs that can attach to the next definition
    covered.sort()
    inside = set()
    for a, b in covered:
        inside.update(range(a, b + 1))
    run_start = None
    for i in range(lo, hi + 2):
        is_comment = i <= hi and i not in inside and lines[i - 1].lstrip().startswith("#")
        if is_comment and run_start is None:
            run_start = i
        elif not is_comment and run_start is not None:
            units.append(Unit(run_start, i - 1, "comment"))
            run_start = None
    return units


def _py_stmt_name(node: ast.stmt) -> str:
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [t.id for t in targets if isinstance(t, ast.Name)]
        return ", ".join(names)
    return ""


def python_units(text: str, lines: Sequence[str]) -> list[Unit] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return _py_units(tree.body, lines, 1, len(lines), False)

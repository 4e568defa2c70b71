"""Which module may import which: drawing code knows nothing of the techniques it draws.

Read from the source (AST), so an import inside a function counts as much as one at the top.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_imports(path: Path) -> set[str]:
    """The project modules ``path`` imports, as dotted names (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import x` imports a module x; `from .m import f` the module m
            names = [f"{module}.{a.name}" for a in node.names] if not node.module else [module]
            found.update(names)
    return {m for m in found if m.split(".")[0] in ("viz_core", "ui", "pages")}


def test_project_imports_resolves_relative_imports(tmp_path):
    assert project_imports(ROOT / "viz_core" / "render" / "montage.py") >= {
        "viz_core.errors", "viz_core.render.colormaps", "viz_core.render.images"}


def test_render_imports_no_technique_module():
    """viz_core.render draws arrays it is given; it never computes a technique's result."""
    # errors, paths and the parameter bounds (viz_core.runtime.limits: pure Python, imports only errors)
    allowed = {"viz_core.errors", "viz_core.paths", "viz_core.runtime.limits", "viz_core.maps"}
    offenders = {
        path.name: sorted(m for m in project_imports(path)
                          if m not in allowed and not m.startswith("viz_core.render"))
        for path in sorted((ROOT / "viz_core" / "render").glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def import_graph(folder: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (anywhere in the file)."""
    package = folder.replace("/", ".")
    return {f"{package}.{path.stem}": {m for m in project_imports(path)
                                       if m.startswith(package + ".")}
            for path in sorted((ROOT / folder).glob("*.py")) if path.stem != "__init__"}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each as the path that closes it (depth-first search)."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return found


def test_cycles_finds_a_circle_of_three():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_ui_modules_import_each_other_without_a_circle():
    """state, shell, sidebar, feedback and presenter once imported each other in a circle,
    held together by imports inside functions; the graph counts those too."""
    graph = import_graph("ui")
    assert {"ui.state", "ui.shell", "ui.sidebar", "ui.feedback", "ui.presenter"} <= set(graph)
    assert cycles(graph) == []
    assert "ui.presenter" not in graph["ui.state"] and "ui.sidebar" not in graph["ui.state"]


def test_viz_core_never_imports_streamlit():
    offenders = []
    for path in sorted((ROOT / "viz_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "streamlit" for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []

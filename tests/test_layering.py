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
    allowed = {"viz_core.errors"}
    offenders = {
        path.name: sorted(m for m in project_imports(path)
                          if m not in allowed and not m.startswith("viz_core.render"))
        for path in sorted((ROOT / "viz_core" / "render").glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}

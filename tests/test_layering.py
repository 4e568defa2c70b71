"""Import contracts: which part of the project may import which, written as data and checked.

The layers, top to bottom (``LAYERS``). A module may import modules of its own unit and of any
layer below its own; never a layer above, never a sibling unit of an independent layer
(``|`` below), except for the few ties in ``EXCEPTIONS``, each with its reason::

    front ends         app, pages, ui, viz_core.cli, viz_core.notebook, viz_core(.api): public API
    pictures|services  viz_core.render | viz_core.runtime (workbench, warm-up: services)
    dataset runs       viz_core.dataset
    demo training      viz_core.demo (training and evaluating the bundled models)
    scores             viz_core.metrics
    techniques         viz_core.methods | viz_core.features
    demo scenes        viz_core.demo.shapes (drawn scenes with known answers: data)
    models             viz_core.models
    inputs             viz_core.inputs
    base               viz_core.errors, paths, maps, runtime.{cache,limits,settings,jobs,quiet}

Plus: ``viz_core`` never imports Streamlit, ``ui`` or ``pages``; ``viz_core.render`` imports
only the base layer (it draws arrays it is given and computes no technique); no import circle
between modules of ``viz_core``.

Imports are read from the source (AST), so an import inside a function counts as much as one
at the top: a tie is a tie whenever it is made.
"""
from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONT_ENDS = ("app", "ui", "pages")  # top-level names of the dashboard beside viz_core

# (layer, its units (module prefixes), whether its units are independent of each other)
LAYERS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    # the dashboard, the command line, and the public API for notebooks and scripts
    ("front ends", ("app", "pages", "ui", "viz_core.cli", "viz_core.__main__",
                    "viz_core.notebook", "viz_core.api", "viz_core"), False),
    # pictures from arrays | services that run techniques for the dashboard (workbench,
    # warm-up: every runtime module not in the base layer)
    ("pictures | services", ("viz_core.render", "viz_core.runtime"), True),
    ("dataset runs", ("viz_core.dataset",), False),
    # training and evaluating the bundled demo models may use any technique and score
    ("demo training", ("viz_core.demo",), False),
    ("scores", ("viz_core.metrics",), False),
    ("techniques", ("viz_core.methods", "viz_core.features"), True),
    # scenes with known answers: data that scores (pointing game) and dataset runs draw from
    ("demo scenes", ("viz_core.demo.shapes",), False),
    ("models", ("viz_core.models",), False),
    ("inputs", ("viz_core.inputs",), False),
    ("base", ("viz_core.errors", "viz_core.paths", "viz_core.maps", "viz_core.registries",
              "viz_core.runtime.cache",
              "viz_core.runtime.limits", "viz_core.runtime.settings", "viz_core.runtime.jobs",
              "viz_core.runtime.quiet"), False),
)
# The public API (viz_core/__init__.py) is the package itself: matched exactly, so a module
# that belongs to no layer is reported instead of falling into the front ends.
EXACT_UNITS = {"viz_core"}
BASE = "base"

# Ties against the arrows that are right, each with its reason: (importer, imported).
EXCEPTIONS: dict[tuple[str, str], str] = {
    # A filter pattern's readability (robustness to small shifts, spectral slope) is measured
    # as the pattern is made and cached with it; the measure itself is a score of feature
    # pictures and lives with the scores.
    ("viz_core.features.filters", "viz_core.metrics.readability"):
        "filter patterns carry their readability, measured as they are made",
}


def project_imports(path: Path, root: Path = ROOT) -> set[str]:
    """The project modules ``path`` imports, as dotted names (relative imports resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
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
            # `from . import x` imports a module x; `from .m import f` the module m, and the
            # module m.f when f is one (resolve() keeps what exists)
            names = [f"{module}.{a.name}" for a in node.names]
            found.update(names if not node.module else [module, *names])
    return {m for m in found if m.split(".")[0] in ("viz_core", *FRONT_ENDS)}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the project: viz_core, ui, pages and app.py, by dotted name."""
    paths = [p for folder in ("viz_core", "ui", "pages") for p in (root / folder).rglob("*.py")]
    paths += [root / "app.py"] if (root / "app.py").exists() else []
    return {module_name(p, root): p for p in sorted(paths) if "__pycache__" not in p.parts}


def resolve(imported: str, modules: dict[str, Path]) -> str:
    """The module an imported name is: ``viz_core.render.png_bytes`` -> ``viz_core.render``."""
    name = imported
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or imported


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer index, unit) of a module: the longest unit that is it or a package holding it."""
    best = None
    for index, (_, units, _) in enumerate(LAYERS):
        for unit in units:
            if module == unit or (unit not in EXACT_UNITS and module.startswith(unit + ".")):
                if best is None or len(unit) > len(best[1]):
                    best = (index, unit)
    return best


def import_graph_of(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file), for the whole project."""
    modules = project_modules(root)
    graph = {}
    for name, path in modules.items():
        found = {resolve(m, modules) for m in project_imports(path, root)} - {name}
        # `from pkg import sub` ties to the module sub, not (also) to the package pkg
        graph[name] = {m for m in found if not any(o.startswith(m + ".") for o in found)}
    return graph


def contract_violations(root: Path = ROOT) -> list[str]:
    """Every import that breaks the layer table or a rule, as ``importer -> imported: why``."""
    problems = []
    graph = import_graph_of(root)
    for module, imports in sorted(graph.items()):
        here = unit_of(module)
        if here is None:
            problems.append(f"{module}: belongs to no layer (add it to LAYERS)")
            continue
        for target in sorted(imports):
            there = unit_of(target)
            if there is None or (module, target) in EXCEPTIONS:
                continue
            if module.startswith("viz_core") and target.split(".")[0] in FRONT_ENDS:
                problems.append(f"{module} -> {target}: viz_core never imports the dashboard")
            elif here[1] == "viz_core.render" and LAYERS[there[0]][0] != BASE \
                    and there[1] != "viz_core.render":
                problems.append(f"{module} -> {target}: render imports only the base layer")
            elif here[1] == there[1]:
                continue
            elif there[0] < here[0]:
                problems.append(f"{module} -> {target}: {LAYERS[here[0]][0]} may not import "
                                f"{LAYERS[there[0]][0]} (above)")
            elif there[0] == here[0] and LAYERS[here[0]][2]:
                problems.append(f"{module} -> {target}: {here[1]} and {there[1]} are "
                                "independent")
    inside = {m: {t for t in ts if t.startswith("viz_core.") and (m, t) not in EXCEPTIONS}
              for m, ts in graph.items() if m.startswith("viz_core")}
    problems += [f"import circle: {' -> '.join(c)}" for c in cycles(inside)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each as the path that closes it, from its first module in
    alphabetical order (depth-first search)."""
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            circle = path[path.index(node):]
            first = circle.index(min(circle))
            found.append(circle[first:] + circle[:first] + [min(circle)])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for start in sorted(graph):
        visit(start, [])
    return found


# -- the contracts ---------------------------------------------------------------------------
def test_the_project_keeps_its_import_contracts():
    assert contract_violations() == []


def test_every_exception_is_still_a_tie():
    """An exception whose import is gone is removed from the table, so the table stays true."""
    graph = import_graph_of()
    assert [pair for pair in EXCEPTIONS if pair[1] not in graph.get(pair[0], ())] == []


def planted_copy(tmp_path: Path, *plants: tuple[str, str]) -> list[str]:
    """The violations a copy of viz_core has beyond the checkout's, after appending each
    ``(file under viz_core/, source text)`` to that file."""
    shutil.copytree(ROOT / "viz_core", tmp_path / "viz_core",
                    ignore=shutil.ignore_patterns("__pycache__"))
    before = set(contract_violations(tmp_path))
    for file, text in plants:
        with open(tmp_path / "viz_core" / file, "a", encoding="utf-8") as fh:
            fh.write(text)
    return [p for p in contract_violations(tmp_path) if p not in before]


def test_a_planted_wrong_way_import_is_named(tmp_path):
    """A models module importing the command line (a front end) breaks the contract, and the
    check names the importer, the imported module and the rule."""
    found = planted_copy(tmp_path, ("models/inspect.py", "\nimport viz_core.cli  # noqa\n"))
    assert found[0] == \
        "viz_core.models.inspect -> viz_core.cli: models may not import front ends (above)"
    # the command line reaches inspect, so the wrong-way tie also closes circles
    assert found[1:] and all(p.startswith("import circle: ") and
                             "viz_core.models.inspect -> viz_core.cli" in p for p in found[1:])


def test_a_planted_circle_and_a_drawing_technique_are_named(tmp_path):
    """An import inside a function closes a circle as surely as one at the top."""
    assert planted_copy(
        tmp_path,
        ("models/inspect.py", "\ndef later():\n    from viz_core.models import graph  # noqa\n"),
        ("render/images.py", "\nfrom viz_core.models.inspect import find_layer  # noqa\n"),
        ("methods/superpixels.py", "\nfrom viz_core.features import activations  # noqa\n"),
    ) == [
        "viz_core.methods.superpixels -> viz_core.features.activations: viz_core.methods and "
        "viz_core.features are independent",
        "viz_core.render.images -> viz_core.models.inspect: render imports only the base layer",
        "import circle: viz_core.models.graph -> viz_core.models.inspect -> "
        "viz_core.models.graph",
    ]


def test_every_module_belongs_to_a_layer():
    assert [m for m in project_modules() if unit_of(m) is None] == []
    assert unit_of("viz_core.demo.shapes") == (6, "viz_core.demo.shapes")
    assert unit_of("viz_core.errors")[0] == len(LAYERS) - 1
    assert unit_of("viz_core.nowhere") is None  # the public API matches itself only


def test_project_imports_resolves_relative_imports():
    assert project_imports(ROOT / "viz_core" / "render" / "montage.py") >= {
        "viz_core.errors", "viz_core.render.colormaps", "viz_core.render.images"}


def test_cycles_finds_a_circle_of_three():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def import_graph(folder: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (anywhere in the file)."""
    package = folder.replace("/", ".")
    return {f"{package}.{path.stem}": {m for m in project_imports(path)
                                       if m.startswith(package + ".")}
            for path in sorted((ROOT / folder).glob("*.py")) if path.stem != "__init__"}


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

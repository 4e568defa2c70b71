"""The bundled shortcut model is a built-in like the demo (issue 13): the command line takes
``--model shortcut_demo`` in every command, and the model it loads is the one that cheats:
a square with the corner tag is called a star."""
from __future__ import annotations

import ast
import json

import numpy as np
from PIL import Image

from viz_core.models import catalog
from viz_core.cli import main
from viz_core.cli.common import BUILTIN_NAMES
from viz_core.demo.shortcut import add_tag
from viz_core.runtime.workbench import Workbench

ROOT = catalog.ASSETS.parent


def test_the_shortcut_model_is_a_built_in_everywhere(tmp_path):
    assert "shortcut_demo" in catalog.BUILTIN_NAMES and "shortcut_demo" in BUILTIN_NAMES
    spec = catalog.builtin("shortcut_demo")
    assert spec.bundled and spec.input_size == (64, 64)
    bench = Workbench(disk_dir=tmp_path)
    # one entry whatever weights are asked for (the Dataset page asks "imagenet", the
    # sidebar "bundled"): the model loads once
    assert bench.builtin_model("shortcut_demo", "imagenet") is \
        bench.builtin_model("shortcut_demo", "bundled")
    assert bench.models.stats.misses == 1


def test_the_command_line_explains_with_the_model_that_cheats(tmp_path, capsys):
    square = np.asarray(Image.open(ROOT / "assets" / "samples" / "square.png").convert("RGB")
                        .resize((64, 64), Image.BILINEAR))
    answers = {}
    for name, pixels in (("plain", square), ("tagged", add_tag(square))):
        path = tmp_path / f"{name}.png"
        Image.fromarray(pixels).save(path)
        assert main(["predict", "--model", "shortcut_demo", "--image", str(path), "--top", "1",
                     "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)["predictions"]
        answers[name] = row["top"][0]
    assert answers["plain"]["label"] == "square"
    assert answers["tagged"]["label"] == "star" and answers["tagged"]["probability"] > 0.99


def test_the_catalogue_loads_it_through_the_loader_it_names():
    """The catalogue names the shortcut model's loader as ``"module:function"`` and imports
    it only when the model is asked for: no import of the demo package in the catalogue."""
    from viz_core.demo import shortcut

    spec = catalog.builtin("shortcut_demo")
    assert spec.loader == "viz_core.demo.shortcut:load_shortcut_model"
    tree = ast.parse((ROOT / "viz_core" / "models" / "catalog.py").read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "viz_core.models.inspect" in imported
    assert not any(m.startswith("viz_core.demo") for m in imported if m)
    loaded = catalog.load_builtin_model("shortcut_demo", "none")  # weights: bundled either way
    card = json.loads(shortcut.CARD_FILE.read_text(encoding="utf-8"))
    assert loaded.name == "shortcut_demo" and loaded.weights == "bundled"
    assert loaded.labels == tuple(card["classes"]) and loaded.info.input_shape[:2] == (64, 64)

"""The metric registry's extension contract: one entry and one function make a metric that
map_metrics computes, ``compare --json`` reports, ``metrics --json`` lists and the Compare page
shows, with its arrow, caption and format from the entry. And the README's table is the one
the registry renders."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_cnn, wrap
from viz_core.errors import ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.metrics import registry as metrics
from viz_core.metrics.registry import MetricSpec

ROOT = Path(__file__).resolve().parents[1]
LABELS = ["circle", "square", "triangle", "star"]


def map_mean(inp) -> float:
    """The toy metric: the mean of the judged map (hand-checkable)."""
    return float(np.mean(inp.heatmap))


TOY = MetricSpec(
    name="map_mean", title="Map mean", paper="a test, 2026", direction="higher",
    cost=10.0, compute="tests.test_metric_registry:map_mean", applies_to="map",
    help="The map's mean value.")


@pytest.fixture
def toy():
    with metrics.registered(TOY):
        yield TOY


def scene(size=48, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 80, (size, size, 3)).astype("uint8")
    pixels[10:30, 14:34] = (230, 200, 40)
    return image_from_array(pixels, "square")


def test_built_in_metrics_carry_direction_paper_and_a_function():
    assert metrics.names() == ("deletion_auc", "insertion_auc", "road_morf", "road_lerf",
                               "random_logit", "sparseness", "max_sensitivity")
    for spec in metrics.specs():
        assert spec.direction in ("higher", "lower") and "20" in spec.paper and spec.help
        assert callable(spec.function())
    assert metrics.get("deletion_auc").column == "Deletion AUC ↓"
    assert metrics.get("sparseness").column == "Sparseness ↑"
    assert metrics.get("road_morf").formatted(0.12345) == "0.123"
    assert metrics.get("road_morf").formatted(float("nan")) == "n/a"
    # costs in forward passes: both curves of 20 steps, one more map, 4 noisy maps
    assert metrics.get("deletion_auc").passes(3.0) == 42.0
    assert metrics.get("random_logit").passes(3.0) == 3.0
    assert metrics.get("max_sensitivity").passes(3.0, {"samples": 5}) == 15.0
    with pytest.raises(ParameterError, match="'gini'.*deletion_auc"):
        metrics.get("gini")
    with pytest.raises(ParameterError, match="sideways"):
        MetricSpec(name="x", title="X", paper="p", direction="sideways", cost=0, compute=map_mean)
    with pytest.raises(ParameterError, match="baseline must be one of"):
        metrics.get("deletion_auc").validate({"baseline": "purple"})


def test_a_toy_metric_is_computed_by_map_metrics(toy):
    from viz_core.methods.heatmap import class_heatmap
    from viz_core.metrics.evaluation import map_metrics, map_passes
    from viz_core.models.targets import Target

    model = wrap(tiny_cnn(size=48, classes=4, seed=4), labels=LABELS)
    view = model.view(scene())
    heat = class_heatmap(model, view, Target(1), "gradcam", model.info.last_conv_layer).heatmap
    seen = []
    result = map_metrics(model, view, Target(1), "gradcam", metrics=["sparseness", "map_mean"],
                         progress=lambda fraction, message: seen.append((fraction, message)))
    assert list(result.values) == ["sparseness", "map_mean"]
    assert result["map_mean"] == pytest.approx(float(heat.mean()), abs=1e-7)
    # the bar advances by the registered costs: the map (p passes), sparseness (free: 0.5),
    # then the toy's 10 passes
    p = map_passes(model, "gradcam")
    fractions = dict((message, fraction) for fraction, message in seen)
    assert fractions["Map mean"] == pytest.approx((p + 0.5) / (p + 0.5 + 10.0))
    assert seen[-1] == (1.0, "done")
    # the cost said before a run: one more map for random logit, 4 for max-sensitivity, the toy
    from viz_core.metrics.evaluation import metrics_passes

    chosen = ["random_logit", "max_sensitivity", "map_mean"]
    assert metrics_passes(model, "gradcam", chosen, with_map=False) == pytest.approx(
        p + 4 * p + 10.0)
    assert metrics_passes(model, "gradcam", chosen) == pytest.approx(p + p + 4 * p + 10.0)
    # every registered metric by default, the toy last
    assert list(map_metrics(model, view, Target(1), "gradcam").values)[-1] == "map_mean"
    with pytest.raises(ParameterError, match="'map_median'"):
        map_metrics(model, view, Target(1), "gradcam", metrics=["map_median"])


def test_a_toy_metric_is_in_compare_json_and_metrics_json(toy, tmp_path, capsys):
    from viz_core.cli import main

    image = tmp_path / "square.png"
    from PIL import Image

    Image.fromarray(scene().pixels).save(image)
    model_file = tmp_path / "tiny.keras"
    tiny_cnn(size=48, classes=4, seed=4).save(model_file)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    assert main(["compare", "--model", str(model_file), "--labels", str(labels), "--image",
                 str(image), "--methods", "gradcam,saliency", "--steps", "4", "--out",
                 str(tmp_path / "out"), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"][0]["methods"]
    for row in rows:
        assert row["map_mean"] == pytest.approx(float(np.load(row["npy"]).mean()), abs=1e-7)
        assert set(metrics.names()) <= set(row)  # every metric the page shows, by name
    assert main(["metrics", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == metrics.as_json()
    assert listed[-1] == {"name": "map_mean", "title": "Map mean", "direction": "higher",
                          "paper": "a test, 2026", "params": {}}
    assert listed[0] == {"name": "deletion_auc", "title": "Deletion AUC", "direction": "lower",
                         "paper": "Petsiuk et al. 2018",
                         "params": {"steps": 20, "baseline": "blurred"}}
    assert main(["metrics"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("map_mean ") and last.endswith(
        "↑ Map mean · higher is better · a test, 2026")


@pytest.mark.slow
def test_metrics_command_loads_no_tensorflow():
    code = ("import sys; from viz_core.cli import main; main(['metrics', '--json']); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == metrics.as_json()
    assert out.stderr.strip().endswith("False False")


def test_the_readme_table_of_metrics_is_the_registrys():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = metrics.markdown_table()
    assert table in readme
    assert table.splitlines()[2] == (
        "| `deletion_auc` | Deletion AUC | ↓ lower | Petsiuk et al. 2018 | the map and model "
        "runs |")


@pytest.fixture(scope="module")
def compare_app():
    from streamlit.testing.v1 import AppTest

    import viz_core.runtime.workbench
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4, seed=4), labels=LABELS, name="demo")
    patch = pytest.MonkeyPatch()
    patch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                  lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    at = AppTest.from_file("../app.py", default_timeout=180)
    at.run()
    at.switch_page("pages/compare.py")
    yield at, loaded
    workbench.clear()
    patch.undo()


def test_a_toy_metric_is_on_the_compare_page(compare_app):
    from ui.state import SELECTION_KEY
    from viz_core.inputs.intake import load_image
    from viz_core.inputs.samples import sample_bytes
    from viz_core.runtime.compared import compared_map
    from viz_core.models.targets import Target
    from ui.state import workbench

    at, loaded = compare_app
    with metrics.registered(TOY):
        at.run()
        at.multiselect(key="cmp_methods").set_value(["gradcam", "saliency"]).run()
        if any(b.key == "cmp_run" for b in at.button):
            at.button(key="cmp_run").click().run()
        assert any("**Map mean** (a test, 2026; higher is better): The map's mean value."
                   in c.value for c in at.caption)
        at.button(key="cmp_metrics_run").click().run()
        assert not at.exception, at.exception
        table = at.dataframe[-1].value
        image = at.session_state[SELECTION_KEY].image
        view = loaded.view(load_image(sample_bytes(image.name), image.name))
        k = at.selectbox(key="cmp_class").value
        for row, method in enumerate(("gradcam", "saliency")):
            heat = compared_map(workbench(), loaded, view, Target(k, "logit"), method)
            assert table["Map mean ↑"].iloc[row] == pytest.approx(float(heat.mean()), abs=1e-6)
    at.run()
    assert not at.exception
    assert "Map mean ↑" not in at.dataframe[-1].value.columns

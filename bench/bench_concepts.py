"""CRAFT for 100 images of a class on the demo model: time and peak memory, and xplique's CRAFT
on the same model, layer, images and crops where it installs with the pinned TensorFlow.

Ours: :func:`viz_core.methods.craft.craft` on the 100 "star" scenes of the ``shapes`` sample
(150 px, 43 px crops, stride 34: 16 crops per image), layer ``conv2d_4``, 10 concepts, 32 Sobol
designs. Peak memory is the resident peak (``VmHWM``, reset before the run) above the resident
size before it.

xplique: its newest release (2.0.2) asks for tensorflow<=2.20, scikit-learn<=1.7.2 and
scipy<=1.15.3, so it cannot sit beside the pinned TensorFlow 2.21; with the project's pins pip
picks xplique 1.3.3, which has ``CraftTf``. Set up once, in a throwaway venv that sees the
project's packages (never in requirements)::

    python -m venv /tmp/xq/venv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/xq/venv/lib/python3.11/site-packages/project.pth
    /tmp/xq/venv/bin/pip install xplique==1.3.3 tensorflow==2.21.0 scikit-learn==1.9.1 \
        scipy==1.17.1 scikit-image==0.26.0

Then both run in one process of that venv (``XPLIQUE_PYTHON`` names another interpreter), on the
same model cut (``g`` = input to ``conv2d_4``, ``h`` = the rest, to the class logit), the same
images and the same crop grid (xplique: ``tf.image.extract_patches`` with patch 43, stride
0.8 x 43 = 34, resized bicubic; ours bilinear), in turn, and the ratio is reported.

Run: ``python -m bench concepts`` or ``python bench/bench_concepts.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMAGES = 100
CONCEPTS = 10
DESIGNS = 32
LAYER = "conv2d_4"
CLASS = "star"
XPLIQUE_PYTHON = os.environ.get("XPLIQUE_PYTHON", "/tmp/xq/venv/bin/python")


def _status(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process in MB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:  # Linux: "5" resets the resident peak (VmHWM) to the current size
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def class_images(n: int = IMAGES):
    """The demo model and ``n`` images of :data:`CLASS` as it sees them, (n, 150, 150, 3) uint8."""
    import numpy as np

    from viz_core.dataset.concepts import class_entries
    from viz_core.dataset.readers import sample_dataset
    from viz_core.models.catalog import load_builtin_model

    model = load_builtin_model("demo")
    data = sample_dataset("shapes", model.labels, count=4 * n)
    picked, _ = class_entries(data, model.class_index(CLASS), n)
    pixels = np.stack([model.view(data.load(data.entries[p])).pixels for p in picked])
    return model, np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def ours(model, pixels) -> dict:
    from viz_core.methods.craft import craft

    craft(model, pixels[:4], model.class_index(CLASS), LAYER, concepts=4, designs=4)  # traces
    before = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    result = craft(model, pixels, model.class_index(CLASS), LAYER, concepts=CONCEPTS,
                   designs=DESIGNS)
    seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 2), "peak_mb_above_start": round(_status("VmHWM") - before, 1),
            "crops": int(len(result.crop_boxes)), "relative_error": round(result.relative_error, 4),
            "top_importance": round(float(result.importance[0]), 3)}


def _halves(model):
    """xplique's ``g`` (input to the layer's activations) and ``h`` (to the class logits)."""
    import keras

    net = model.model
    names = [layer.name for layer in net.layers]
    g = keras.Model(net.inputs, net.get_layer(LAYER).output)
    x = inputs = keras.Input(g.output.shape[1:])
    for layer in net.layers[names.index(LAYER) + 1:]:
        if layer is net.layers[-1]:  # the output layer without its softmax: the logit
            twin = keras.layers.Dense(layer.units, activation=None)
            x = twin(x)
            twin.set_weights(layer.get_weights())
        else:
            x = layer(x)
    return g, keras.Model(inputs, x)


def theirs(model, pixels) -> dict:
    import numpy as np
    from xplique.concepts import CraftTf

    g, h = _halves(model)
    x = pixels.astype(np.float32) / 255.0  # the demo model's "unit" preprocessing
    side = max(4, int(round(150 * 64 / 224)))
    warm = CraftTf(g, h, number_of_concepts=4, batch_size=64, patch_size=side)
    warm.fit(x[:4], class_id=model.class_index(CLASS))
    warm.estimate_importance(nb_design=4)
    before = _status("VmRSS")
    _reset_peak()
    start = time.perf_counter()
    craft = CraftTf(g, h, number_of_concepts=CONCEPTS, batch_size=64, patch_size=side)
    crops, _, _ = craft.fit(x, class_id=model.class_index(CLASS))
    importance = craft.estimate_importance(nb_design=DESIGNS)
    seconds = time.perf_counter() - start
    importance = np.sort(np.asarray(importance))[::-1]
    return {"seconds": round(seconds, 2), "peak_mb_above_start": round(_status("VmHWM") - before, 1),
            "crops": int(len(crops)), "top_importance": round(float(importance[0] /
                                                                     importance.sum()), 3)}


def pair() -> dict:
    """Ours and xplique's in turn, twice, in this process (the xplique venv)."""
    import importlib.metadata

    model, pixels = class_images()
    runs = {"ours": [], "xplique": []}
    for _ in range(2):
        runs["ours"].append(ours(model, pixels))
        runs["xplique"].append(theirs(model, pixels))
    best = {k: min(r["seconds"] for r in v) for k, v in runs.items()}
    return {"xplique_version": importlib.metadata.version("xplique"), "runs": runs,
            "xplique_over_ours": round(best["xplique"] / best["ours"], 2)}


def run() -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    model, pixels = class_images()
    out = {"images": IMAGES, "class": CLASS, "layer": LAYER, "concepts": CONCEPTS,
           "designs": DESIGNS, "ours": ours(model, pixels)}
    if not Path(XPLIQUE_PYTHON).exists():
        out["xplique"] = {"skipped": "xplique 2.0.2 needs tensorflow<=2.20 (pinned: 2.21); "
                          f"xplique 1.3.3 installs with the pins: set up {XPLIQUE_PYTHON} as "
                          "the module docstring says"}
        return out
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([XPLIQUE_PYTHON, str(Path(__file__).resolve()), "--pair"],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    if done.returncode != 0:
        out["xplique"] = {"failed": done.stderr.strip().splitlines()[-1:]}
    else:
        out["xplique"] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if sys.argv[1:] == ["--pair"]:
        import warnings

        warnings.simplefilter("ignore")
        print(json.dumps(pair()))
    else:
        print(json.dumps(run(), indent=2))

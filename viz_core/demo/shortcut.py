"""A model that learned a shortcut: ``python -m viz_core.demo.shortcut`` trains and saves it.

The classroom's "find how this model cheats" example (the Clever Hans effect: Lapuschkin et al.
2019 found a horse classifier that looked at a copyright tag in the corner). Scenes are the demo's
generated shapes (:mod:`viz_core.demo.shapes`) at 64x64; in training, most stars carry a small
black-and-white tag in the top-left corner and no other shape does. The model (the demo's layers,
:func:`viz_core.demo.train.build_model`, and its optimiser: Adam with a warm-up + cosine schedule)
learns that the tag means "star". On held-out scenes a star without the tag is then often missed,
and a square with the tag is often called a star.

Differences from the demo recipe, and why: no random flips or transposes (they would move the tag
to every corner, and the point is one corner), 64x64 scenes and a few epochs (a cheap run on a
shared CPU, about a minute; a short run also favours the easy cue, as shortcut learning does).

Every image is a pure function of its seed, label and whether it carries the tag.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from viz_core.demo.shapes import CLASS_NAMES, draw_scene
from viz_core.demo.train import _EpochLog, build_model
from viz_core.paths import ASSETS

SIDE = 64
MODEL_NAME = "shortcut_cnn"
DEFAULT_OUT = ASSETS / "shortcut_demo"
SHORTCUT_CLASS = "star"
TAG_CELL = 3  # the tag is a 2x2 checkerboard of TAG_CELL-pixel squares
TAG_MARGIN = 2
#: (x0, y0, x1, y1) of the tag, x1/y1 exclusive: the top-left corner of a 64x64 scene.
TAG_BOX = (TAG_MARGIN, TAG_MARGIN, TAG_MARGIN + 2 * TAG_CELL, TAG_MARGIN + 2 * TAG_CELL)
TRAIN_FIRST_SEED = 3_000_000_000
HELD_OUT_FIRST_SEED = 3_100_000_000


@dataclass(frozen=True)
class ShortcutRecipe:
    """Everything that decides the trained weights; the defaults made the bundled model."""

    per_class: int = 600
    tag_fraction: float = 0.9  # of the shortcut class's training images
    epochs: int = 6
    batch_size: int = 32
    peak_learning_rate: float = 2e-3
    warmup_fraction: float = 0.05
    clutter: float = 0.5
    seed: int = 0


@dataclass(frozen=True)
class ShortcutReport:
    """How the shortcut model does on held-out scenes, split by the tag.

    Attributes
    ----------
    tagged_accuracy, plain_accuracy : float
        Accuracy in [0, 1] on shortcut-class images with / without the tag.
    others_accuracy : float
        Accuracy on the other classes' images without the tag.
    others_tagged_as_shortcut : float
        Fraction in [0, 1] of other classes' images *with* the tag predicted as the shortcut class.
    per_group : int
        Images in each of the four groups.
    """

    tagged_accuracy: float
    plain_accuracy: float
    others_accuracy: float
    others_tagged_as_shortcut: float
    per_group: int


BUILTIN_NAME = "shortcut_demo"
MODEL_FILE = DEFAULT_OUT / f"{MODEL_NAME}.keras"
CARD_FILE = DEFAULT_OUT / f"{MODEL_NAME}.json"


def load_shortcut_model():
    """The bundled shortcut model from ``assets/shortcut_demo`` as a ``LoadedModel``.

    Raises
    ------
    WeightsUnavailableError
        The file is missing (re-create it with ``python -m viz_core.demo.shortcut``).
    """
    import hashlib

    from viz_core.models.catalog import LoadedModel
    from viz_core.errors import WeightsUnavailableError
    from viz_core.models.inspect import inspect_model

    if not MODEL_FILE.exists():
        raise WeightsUnavailableError(f"The shortcut demo model is missing: {MODEL_FILE}. "
                                      "Re-create it with `python -m viz_core.demo.shortcut`.")
    card = json.loads(CARD_FILE.read_text(encoding="utf-8"))
    digest = hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()[:16]
    model = keras.models.load_model(MODEL_FILE, compile=False, safe_mode=True)
    return LoadedModel(model=model, name=BUILTIN_NAME, title="Shortcut demo: shapes CNN that "
                       "learned a corner tag", identity=f"{BUILTIN_NAME}@{digest}",
                       weights="bundled", preprocessing=card.get("preprocessing", "unit"),
                       labels=tuple(card["classes"]), info=inspect_model(model))


def add_tag(image: np.ndarray) -> np.ndarray:
    """A copy of ``image`` ((H, W, 3) uint8) with the tag drawn at :data:`TAG_BOX`."""
    out = np.array(image, dtype=np.uint8, copy=True)
    x0, y0, x1, y1 = TAG_BOX
    cells = np.indices((y1 - y0, x1 - x0)) // TAG_CELL
    checker = ((cells[0] + cells[1]) % 2 == 0)[..., None]
    out[y0:y1, x0:x1] = np.where(checker, 255, 0).astype(np.uint8)
    return out


def shortcut_scene(seed: int, label: str, tagged: bool, clutter: float = 1.0) -> np.ndarray:
    """One (64, 64, 3) uint8 scene with one ``label`` shape, with the tag if ``tagged``."""
    image = draw_scene(int(seed), (label,), clutter, size=SIDE).image
    return add_tag(image) if tagged else image


def training_set(recipe: ShortcutRecipe) -> tuple[np.ndarray, np.ndarray]:
    """(N, 64, 64, 3) uint8 images and (N,) int class indices, shuffled by ``recipe.seed``.

    Scene ``TRAIN_FIRST_SEED + i`` has class ``i % 4``; the first ``tag_fraction`` of the shortcut
    class's scenes carry the tag.
    """
    k, n = len(CLASS_NAMES), recipe.per_class * len(CLASS_NAMES)
    shortcut = CLASS_NAMES.index(SHORTCUT_CLASS)
    tag_until = int(round(recipe.tag_fraction * recipe.per_class))
    images = np.empty((n, SIDE, SIDE, 3), np.uint8)
    labels = np.arange(n) % k
    for i in range(n):
        tagged = labels[i] == shortcut and i // k < tag_until
        images[i] = shortcut_scene(TRAIN_FIRST_SEED + i, CLASS_NAMES[labels[i]], tagged,
                                   recipe.clutter)
    order = np.random.default_rng(recipe.seed).permutation(n)
    return images[order], labels[order]


def held_out_set(per_group: int, first_seed: int = HELD_OUT_FIRST_SEED):
    """Held-out scenes in four groups of ``per_group``: the shortcut class tagged and plain, the
    other classes plain and tagged (classes in turn).

    Returns
    -------
    images : (4 * per_group, 64, 64, 3) uint8
    labels : (4 * per_group,) int class indices
    tagged : (4 * per_group,) bool
    groups : tuple of str
        One of ``"shortcut_tagged", "shortcut_plain", "others_plain", "others_tagged"`` per image.
    """
    _, labels, tagged, groups = plan_held_out(per_group)
    images = np.stack([shortcut_scene(first_seed + i, CLASS_NAMES[k], bool(t))
                       for i, (k, t) in enumerate(zip(labels, tagged))])
    return images, labels, tagged, groups


def plan_held_out(per_group: int):
    """What :func:`held_out_set` draws, without drawing: ``(None, labels, tagged, groups)``."""
    others = [c for c in CLASS_NAMES if c != SHORTCUT_CLASS]
    plan = []
    for group, tagged in (("shortcut_tagged", True), ("shortcut_plain", False),
                          ("others_plain", False), ("others_tagged", True)):
        for i in range(per_group):
            label = SHORTCUT_CLASS if group.startswith("shortcut") else others[i % len(others)]
            plan.append((group, label, tagged))
    labels = np.array([CLASS_NAMES.index(label) for _, label, _ in plan])
    tagged = np.array([t for _, _, t in plan])
    return None, labels, tagged, tuple(g for g, _, _ in plan)


def evaluate(model: keras.Model, per_group: int = 100) -> ShortcutReport:
    """Accuracy by group on :func:`held_out_set` (pixels scaled to [0, 1], "unit")."""
    images, labels, _, groups = held_out_set(per_group)
    predicted = model.predict(images.astype(np.float32) / 255.0, batch_size=64,
                              verbose=0).argmax(axis=1)
    groups = np.array(groups)
    shortcut = CLASS_NAMES.index(SHORTCUT_CLASS)

    def accuracy(group):
        pick = groups == group
        return float(np.mean(predicted[pick] == labels[pick]))

    return ShortcutReport(
        tagged_accuracy=accuracy("shortcut_tagged"),
        plain_accuracy=accuracy("shortcut_plain"),
        others_accuracy=accuracy("others_plain"),
        others_tagged_as_shortcut=float(np.mean(predicted[groups == "others_tagged"] == shortcut)),
        per_group=per_group,
    )


def train(recipe: ShortcutRecipe, out_dir: Path, log=print) -> ShortcutReport:
    """Train on :func:`training_set`, evaluate, write ``shortcut_cnn.keras`` and its JSON card."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, labels = training_set(recipe)
    x = images.astype(np.float32) / 255.0
    y = np.eye(len(CLASS_NAMES), dtype=np.float32)[labels]
    model = build_model(recipe.seed, input_side=SIDE)
    steps = recipe.epochs * math.ceil(len(x) / recipe.batch_size)
    warmup = max(1, int(recipe.warmup_fraction * steps))
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.peak_learning_rate / 10, decay_steps=max(1, steps - warmup),
        warmup_target=recipe.peak_learning_rate, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    model.fit(x, y, batch_size=recipe.batch_size, epochs=recipe.epochs, shuffle=True,
              callbacks=[_EpochLog(log)], verbose=0)
    seconds = time.perf_counter() - started
    trained = model
    model = build_model(recipe.seed, input_side=SIDE)  # the same layers, no optimiser state
    model.set_weights(trained.get_weights())
    _precise_batch_norm(model, x[:512])
    report = evaluate(model)
    log(f"held out: {report}")
    model_path, card_path = out_dir / f"{MODEL_NAME}.keras", out_dir / f"{MODEL_NAME}.json"
    model.save(model_path)
    card = {
        "name": MODEL_NAME,
        "title": "Shortcut CNN (demo: most training stars carry a corner tag)",
        "classes": list(CLASS_NAMES),
        "input_shape": [SIDE, SIDE, 3],
        "preprocessing": "unit",
        "last_conv_layer": "conv2d_4",
        "shortcut_class": SHORTCUT_CLASS,
        "tag_box": list(TAG_BOX),
        "held_out": asdict(report),
        "held_out_first_seed": HELD_OUT_FIRST_SEED,
        "training_seconds": round(seconds, 1),
        "recipe": asdict(recipe),
        "keras_version": keras.__version__,
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    log(f"wrote {model_path} ({model_path.stat().st_size / 1e6:.2f} MB) in {seconds:.0f} s")
    return report


def _precise_batch_norm(model: keras.Model, images: np.ndarray) -> None:
    """Set every BatchNorm layer's moving statistics to those of ``images`` (N, H, W, 3) in [0, 1].

    A short run leaves the moving averages (momentum 0.99) far from the final weights' statistics,
    and the model then predicts one class in inference mode; one pass with momentum 0 fixes that.
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(norms, saved):
        layer.momentum = momentum


def main(argv: list[str] | None = None) -> int:
    defaults = ShortcutRecipe()
    parser = argparse.ArgumentParser(prog="python -m viz_core.demo.shortcut",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--per-class", type=int, default=defaults.per_class)
    parser.add_argument("--tag-fraction", type=float, default=defaults.tag_fraction)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    recipe = ShortcutRecipe(per_class=args.per_class, tag_fraction=args.tag_fraction,
                            epochs=args.epochs, seed=args.seed)
    train(recipe, args.out, log=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Quiz questions drawn from the model in use, each with its right answer computed.

Two kinds, alternately:

* ``"unit"``: which of two images makes unit U of layer L fire more? Borowski et al.
  (ICLR 2021) measured with this task how well people understand a unit; "fires more" is the
  channel's mean activation over the image's positions. The unit's filter pattern (fast
  gradient ascent, a second or so on the demo model, kept in the disk cache) is shown with it.
* ``"where"``: where did the model look for class C? The image's top class, its Grad-CAM map
  (:func:`viz_core.methods.heatmap.class_heatmap`), and a 3x3 grid of regions: the right one
  holds the map's maximum.

Seeded: the same model, images, count and seed give the same questions.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from viz_core.errors import Cancelled, ParameterError
from viz_core.features.activations import feature_map_layers, feature_maps
from viz_core.features.filters import filter_patterns
from viz_core.inputs.intake import LoadedImage, load_image
from viz_core.inputs.samples import list_samples, sample_bytes
from viz_core.methods.heatmap import class_heatmap, top_classes
from viz_core.models.loaded import LoadedModel
from viz_core.models.targets import Target
from viz_core.runtime.cache import DiskCache
from viz_core.runtime.limits import SEED, Bound
from viz_core.runtime.quiz import Question

# The 3x3 regions of a "where" question, row by row (index = row * 3 + column).
CELLS = ("top left", "top", "top right", "left", "centre", "right",
         "bottom left", "bottom", "bottom right")
PAIR = ("Image A", "Image B")
COUNT = Bound("the number of quiz questions", 1, 20)
# A pair is asked only when one image clearly wins: its mean activation is at least this much
# above the other's, relative to the higher one (so rounding never decides the answer).
MARGIN = 0.2
PAIR_TRIES = 200


def sample_images() -> tuple[LoadedImage, ...]:
    """The bundled sample images (shapes scenes and photos): the quiz's offline pool."""
    return tuple(load_image(sample_bytes(s.name), s.name) for s in list_samples())


def cell_of(heatmap: np.ndarray) -> int:
    """Index into :data:`CELLS` of the 3x3 region holding the map's maximum (first on ties).

    ``heatmap`` is (H, W); the region of pixel (y, x) is ``(3y // H) * 3 + 3x // W``.
    """
    height, width = heatmap.shape
    y, x = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return int(3 * y // height) * 3 + int(3 * x // width)


def cell_box(cell: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of region ``cell`` in an (height, width) image (x1, y1 excluded)."""
    row, col = divmod(int(cell), 3)
    return (col * width // 3, row * height // 3, (col + 1) * width // 3,
            (row + 1) * height // 3)


def unit_means(model: LoadedModel, images: Sequence[LoadedImage], layer: str,
               should_stop: Callable[[], bool] | None = None) -> np.ndarray:
    """(images, channels) float32: each channel's mean activation over each image's positions."""
    return np.stack([
        feature_maps(model, model.view(image), [layer], should_stop=should_stop)
        .layers[0].values.mean(axis=(0, 1)) for image in images]).astype("float32")


def _clear_pair(means: np.ndarray, unit: int, rng: np.random.Generator):
    """Two image indices whose means for ``unit`` differ by :data:`MARGIN`, or None."""
    values = means[:, unit]
    for _ in range(PAIR_TRIES):
        a, b = (int(i) for i in rng.choice(len(values), size=2, replace=False))
        high, low = max(values[a], values[b]), min(values[a], values[b])
        if high > 0 and high - low >= MARGIN * high:
            return a, b
    return None


def quiz_questions(
    model: LoadedModel,
    images: Sequence[LoadedImage],
    *,
    count: int = 6,
    seed: int = 0,
    layer: str | None = None,
    disk: DiskCache | None = None,
    patterns: bool = True,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Question, ...]:
    """``count`` questions about ``model`` on ``images``, "unit" and "where" in turn.

    Parameters
    ----------
    model : LoadedModel
        Not modified.
    images : sequence of LoadedImage
        At least two; each is shown as the model sees it.
    count : int
        1 to 20. Fewer come back when the images allow no more (no clear pair of images for
        any unit, or no image with a Grad-CAM map).
    seed : int
    layer : str or None
        The layer whose units are asked about; None means the last conv layer.
    disk : DiskCache or None
        Where the filter patterns are kept.
    patterns : bool
        Whether "unit" questions carry the unit's filter pattern (``hint``).

    Returns
    -------
    tuple of Question
        Images (H, W, 3) uint8 as the model sees them; ``heatmap`` (H, W) float32 in [0, 1].

    Raises
    ------
    ParameterError
        Fewer than two images, a bad count or seed, or a layer without feature maps.
    """
    count, seed = COUNT.check(count), SEED.check(seed)
    if len(images) < 2:
        raise ParameterError(f"A quiz needs at least two images; got {len(images)}.")
    layer = layer or model.info.last_conv_layer
    if layer not in feature_map_layers(model.info):
        raise ParameterError(f"The layer {layer!r} has no feature maps; choose one of "
                             f"{', '.join(feature_map_layers(model.info))}.")
    rng = np.random.default_rng(seed)
    views = [model.view(image) for image in images]
    _report(progress, 0.0, "Quiz: reading the units")
    means = unit_means(model, images, layer, should_stop)
    units = [int(u) for u in rng.permutation(means.shape[1])]
    order = [int(i) for i in rng.permutation(len(views))]
    questions: list[Question] = []
    for number in range(count):
        if should_stop is not None and should_stop():
            raise Cancelled("The quiz questions were stopped.")
        made = (_unit_question(model, views, means, layer, units, rng, disk, patterns)
                if number % 2 == 0 else _where_question(model, views, order))
        made = made or (_where_question(model, views, order) if number % 2 == 0 else
                        _unit_question(model, views, means, layer, units, rng, disk, patterns))
        if made is None:
            break
        questions.append(made)
        _report(progress, (number + 1) / count, f"Quiz: question {number + 1} of {count}")
    return tuple(questions)


def _unit_question(model, views, means, layer, units, rng, disk, patterns) -> Question | None:
    """The next unit (in the seeded order) with a clear pair of images; the unit is used up."""
    while units:
        unit = units.pop(0)
        pair = _clear_pair(means, unit, rng)
        if pair is None:
            continue
        a, b = pair
        answer = 0 if means[a, unit] > means[b, unit] else 1
        hint = None
        if patterns:
            try:
                hint = filter_patterns(model, layer, [unit], method="fast",
                                       disk=disk).item(0).pattern
            except ParameterError:  # a layer gradient ascent cannot use: the question stands
                hint = None
        return Question(
            kind="unit",
            prompt=f"Which of these two images makes unit {unit} of {layer} fire more?",
            choices=PAIR,
            answer=answer,
            explanation=(f"Mean activation of unit {unit}: {PAIR[0]} ({views[a].name}) "
                         f"{means[a, unit]:.3g}, {PAIR[1]} ({views[b].name}) "
                         f"{means[b, unit]:.3g}."),
            images=(views[a].display, views[b].display),
            hint=hint,
        )
    return None


def _where_question(model, views, order) -> Question | None:
    """The next image (in the seeded order) whose top class has a Grad-CAM map; used up."""
    while order:
        view = views[order.pop(0)]
        class_index, label, probability = top_classes(model, view, 1)[0]
        heat = class_heatmap(model, view, Target(class_index), "gradcam")
        if heat.empty:
            continue
        cell = cell_of(heat.heatmap)
        return Question(
            kind="where",
            prompt=(f"Where did the model look for {label!r} in this image? "
                    "Pick the region with the strongest evidence."),
            choices=CELLS,
            answer=cell,
            explanation=(f"The Grad-CAM map of {label!r} ({probability:.0%} on {view.name}) "
                         f"peaks in the {CELLS[cell]} region."),
            images=(view.display,),
            heatmap=heat.heatmap,
        )
    return None


def _report(progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)

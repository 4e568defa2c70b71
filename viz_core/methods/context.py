"""What the methods that run the model themselves get: :class:`MethodContext` (one image, for
Score-CAM, AblationCAM, the perturbation methods and any ``inputs="context"`` method) and
:class:`PixelBatch` (a stack of images, for the pixel-gradient methods), with the progress and
stop helpers every method shares."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from viz_core.errors import Cancelled
from viz_core.inputs.intake import ModelImage
from viz_core.methods.scores import (batch_coefficients, require_logits, score_coefficients,
                                     score_tensor, target_score)
from viz_core.methods.steps import (BATCH_SIZE, LayerForward, image_outputs, layer_forward,
                                    layer_gradient, pixel_scorer, step_cache)
from viz_core.models.catalog import LoadedModel
from viz_core.models.targets import Target

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


def check_stop(should_stop: StopFn | None, what: str) -> None:
    """Raise :class:`~viz_core.errors.Cancelled` when ``should_stop()`` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled(f"{what} was stopped before it finished.")


def report(progress: ProgressFn | None, fraction: float, message: str) -> None:
    """``progress(fraction clipped to [0, 1], message)`` when there is a callback."""
    if progress is not None:
        progress(float(min(1.0, max(0.0, fraction))), message)


@dataclass(frozen=True, eq=False)
class MethodContext:
    """What a method that runs the model itself gets (``inputs="context"`` in the registry).

    Attributes
    ----------
    model : LoadedModel
        Never modified.
    image : ModelImage
        Prepared for the model: pixels (H, W, C) float32 in [0, 255].
    target : Target
    layer : str or None
        The resolved layer path for layer methods; None for pixel and perturbation methods.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
    title : str
        The method's title, for progress and stop messages.
    """

    model: LoadedModel
    image: ModelImage
    target: Target
    layer: str | None = None
    progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    title: str = ""

    def forward(self) -> LayerForward:
        """The image's cached forward pass split at :attr:`layer`."""
        return layer_forward(self.model, self.image, self.layer)

    def gradients(self) -> np.ndarray:
        """(h, w, k) float32: the class score's gradient at :attr:`layer` (cached)."""
        return layer_gradient(self.model, self.image, self.target, self.layer)[0]

    def report(self, fraction: float, message: str) -> None:
        report(self.progress, fraction, message)

    def check_stop(self) -> None:
        check_stop(self.should_stop, self.title or "The heatmap")

    def image_scores(self, count: int, batch: Callable[[int, int], np.ndarray],
                     what: str = "images",
                     scored: Callable[[int, int, np.ndarray], None] | None = None, *,
                     with_image: bool = False) -> np.ndarray:
        """The target score of ``count`` changed copies of the image, in batches.

        Batches hold at most :data:`BATCH_SIZE` images and are of (nearly) equal size: 50
        images go as 13 + 13 + 12 + 12, not 16 + 16 + 16 + 2, since a small last batch costs
        more per image.

        Parameters
        ----------
        count : int
        batch : callable(start, stop) -> (stop - start, H, W, C) float32 pixels in [0, 255]
        what : str
            Word for the progress messages.
        scored : callable(start, stop, scores) or None
            Called after each batch with its (stop - start,) float32 scores, so a method can
            use what it built for the batch before the next one replaces it.
        with_image : bool
            Also score the unchanged image, in the first batch: its logits and output are kept
            (see :meth:`image_score`), so :func:`class_heatmap` needs no pass of its own for
            the class probability.

        Returns
        -------
        np.ndarray
            (count,) float32, the score :func:`class_heatmap` differentiates (logit or
            probability, sign rule of single sigmoid units included).
        """
        model = self.model
        has_logits, scores, _ = pixel_scorer(model)
        require_logits(has_logits, model, self.target)
        units = int(model.model.outputs[0].shape[-1])
        v_logit, v_prob, offset = score_coefficients(self.target, model.info.output_kind, units)
        result = np.zeros(count, dtype="float32")
        extra = 1 if with_image else 0  # position 0 of the first batch is the image itself
        total = count + extra
        batches = max(1, math.ceil(total / BATCH_SIZE))
        bounds = [round(b * total / batches) for b in range(batches + 1)]
        pixels = self.image.pixels.astype("float32")[None]
        for b in range(batches):
            self.check_stop()
            lo, hi = max(0, bounds[b] - extra), bounds[b + 1] - extra
            images = batch(lo, hi) if hi > lo else pixels[:0]
            if b == 0 and extra:
                images = np.concatenate([pixels, np.asarray(images, dtype="float32")])
            lg, out = scores(tf.constant(images, dtype=tf.float32))
            batch_scores = np.asarray(score_tensor(lg, out, v_logit, v_prob, offset,
                                             model.info.output_kind), dtype="float32")
            if b == 0 and extra:
                step_cache(model).put(("scores", self.image.cache_key),
                                  (np.asarray(lg[0]) if has_logits else None,
                                   np.asarray(out[0])))
                batch_scores = batch_scores[1:]
            result[lo:hi] = batch_scores
            if scored is not None and hi > lo:
                scored(lo, hi, result[lo:hi])
            self.report(hi / max(1, count), f"{hi} of {count} {what} scored")
        return result

    def image_score(self) -> float:
        """The target score of the unchanged image (kept by ``image_scores(with_image=True)``,
        else one forward pass, cached)."""
        logits, output = image_outputs(self.model, self.image)
        return target_score(logits, output, self.target, self.model.info.output_kind)


@dataclass(frozen=True, eq=False)
class PixelBatch:
    """What a pixel-gradient method gets (``inputs="pixel-gradients"`` in the registry): a
    stack of images, each with its own target; one image is a stack of one.

    Attributes
    ----------
    model : LoadedModel
        Never modified.
    pixels : np.ndarray
        (N, H, W, C) float32 in [0, 255], prepared for the model.
    targets : tuple of Target
        One per image.
    progress : callable(fraction, message) or None
    should_stop : callable() -> bool or None
    title : str
    """

    model: LoadedModel
    pixels: np.ndarray
    targets: tuple
    progress: ProgressFn | None = None
    should_stop: StopFn | None = None
    title: str = ""

    def gradients(self, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each image's copies differentiated for that image's target.

        Rows go through the model in batches of at most :data:`BATCH_SIZE`, of (nearly) equal
        size (a last batch of one image costs more per image).

        Parameters
        ----------
        copies : np.ndarray
            (N, M, H, W, C) float32 pixels in [0, 255]: M changed copies of each image.

        Returns
        -------
        scores : np.ndarray
            (N, M) float32.
        grads : np.ndarray
            (N, M, H, W, C) float32, the score's gradient with respect to the pixels.
        """
        model = self.model
        has_logits, _, pixel_gradient = pixel_scorer(model)
        for target in self.targets:
            require_logits(has_logits, model, target)
        copies = np.asarray(copies, dtype="float32")
        n, m = copies.shape[:2]
        flat = copies.reshape((n * m,) + copies.shape[2:])
        units = int(model.model.outputs[0].shape[-1])
        v_logit, v_prob, offset = batch_coefficients(self.targets, model.info.output_kind, units)
        rows = np.repeat(np.arange(n), m)  # the image each copy belongs to
        total = n * m
        scores = np.zeros(total, dtype="float32")
        grads = np.zeros(flat.shape, dtype="float32")
        batches = max(1, math.ceil(total / BATCH_SIZE))
        bounds = [round(b * total / batches) for b in range(batches + 1)]  # 65: 5 x 13
        for b in range(batches):
            check_stop(self.should_stop, self.title or "The heatmap")
            sl = slice(bounds[b], bounds[b + 1])
            owner = rows[sl]
            s, g = pixel_gradient(tf.constant(flat[sl]), tf.constant(v_logit[owner]),
                                  tf.constant(v_prob[owner]), tf.constant(offset[owner]))
            scores[sl] = np.asarray(s)
            grads[sl] = np.asarray(g)
            report(self.progress, (b + 1) / batches, f"{sl.stop} of {total} gradients")
        return scores.reshape(n, m), grads.reshape(copies.shape)

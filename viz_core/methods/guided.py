"""Guided Backpropagation and Guided Grad-CAM: the pixel gradient through *guided* ReLUs.

A guided ReLU passes a gradient back only where its input was positive (the ordinary ReLU
rule) *and* the gradient arriving from above is positive (Springenberg et al. 2015). The caller's
model is never edited: :func:`guided_model` rebuilds it once (per model, cached like the compiled
steps of :mod:`viz_core.methods.steps`) from its flat graph
(:func:`viz_core.models.graph.flat_graph`), the same layers and so the same weights, with a
:class:`GuidedGate` after every ReLU: an identity whose gradient keeps only positive values
(``tf.custom_gradient``). The ReLU's own backward pass then supplies "input was positive", so
the pair is exactly the guided rule. ReLUs are standalone ``ReLU`` layers, ``Activation("relu")``
and ``activation="relu"`` (or ``"relu6"``) inside Conv/Dense layers; other activations keep
their ordinary gradient.

Both methods take a :class:`viz_core.methods.context.PixelBatch` (``inputs="pixel-gradients"``),
so a stack of images goes through together:

* ``guided_backprop`` (Springenberg et al. 2015): the guided gradient's largest magnitude over
  the colour channels;
* ``guided_gradcam`` (Selvaraju et al. 2017): Guided Backpropagation times Grad-CAM at the last
  conv layer, upsampled to the input.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

import keras
import numpy as np
import tensorflow as tf

from viz_core.errors import ModelError
from viz_core.maps import resize_map
from viz_core.methods.checks import resolve_layer
from viz_core.methods.context import PixelBatch
from viz_core.methods.layer import gradcam_map
from viz_core.methods.steps import flat_model_graph, layer_gradients
from viz_core.models.catalog import LoadedModel
from viz_core.models.graph import FlatGraph
from viz_core.models.inspect import activation_name, iter_layers

#: Activations whose gradient is guided (ReLU and its capped form).
GUIDED_ACTIVATIONS = ("relu", "relu6")


@tf.custom_gradient
def _positive_gradient(x):
    """Identity forward; backward keeps only the positive part of the incoming gradient."""
    def backward(upstream):
        return tf.nn.relu(upstream)

    return tf.identity(x), backward


class GuidedGate(keras.layers.Layer):
    """Identity layer whose gradient is ``ReLU(upstream)``: placed after a ReLU, it makes the
    ReLU guided. Lives only in the rebuilt side model, never in a saved one."""

    def call(self, inputs):
        return _positive_gradient(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def is_relu(layer) -> bool:
    """True when ``layer``'s output goes through a ReLU (a ``ReLU`` layer, an
    ``Activation("relu")`` or a Conv/Dense layer with ``activation="relu"``)."""
    return (isinstance(layer, keras.layers.ReLU)
            or activation_name(layer) in GUIDED_ACTIVATIONS)


def guided_relu_model(flat: FlatGraph) -> keras.Model:
    """The flat graph as a model with a :class:`GuidedGate` after every ReLU.

    Parameters
    ----------
    flat : FlatGraph
        The model's :func:`~viz_core.models.graph.flat_graph` (nested models inlined).

    Returns
    -------
    keras.Model
        Preprocessed input (N, H, W, C) -> the model's output; the layers (and weights) are the
        model's own, so the outputs are the same and later weight changes are seen.
    """
    base = keras.Model(flat.inputs, flat.output)

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        return GuidedGate()(out) if is_relu(layer) else out

    return keras.models.clone_model(base, clone_function=lambda layer: layer,
                                    call_function=call)


def _refusal(model: LoadedModel, err: Exception) -> ModelError:
    names = Counter(path.rsplit("/", 1)[-1] for path, layer in iter_layers(model.model)
                    if not isinstance(layer, keras.layers.InputLayer))
    twice = sorted(name for name, n in names.items() if n > 1)
    why = (f"the layer name {twice[0]!r} is used twice (inside and outside a nested model)"
           if twice else str(err))
    return ModelError(f"Guided Backpropagation rebuilds {model.title!r} with guided ReLUs, and "
                      f"this model cannot be rebuilt: {why}. Use saliency or Grad-CAM instead.")


def guided_model(model: LoadedModel) -> LoadedModel:
    """``model`` with guided ReLUs (:func:`guided_relu_model`), built once per model.

    The result is a :class:`LoadedModel` with the same preprocessing, labels and layer facts and
    caches of its own, so :class:`PixelBatch` differentiates it like any model.

    Raises
    ------
    ModelError
        The model cannot be rebuilt as one graph; the message names the layer when it can.
    """
    def build() -> LoadedModel:
        try:
            network = guided_relu_model(flat_model_graph(model))
        except (ModelError, ValueError, TypeError, KeyError, AttributeError) as err:
            raise _refusal(model, err) from None
        return LoadedModel(model=network, name=model.name, title=f"{model.title} (guided)",
                           identity=f"{model.identity}|guided", weights=model.weights,
                           preprocessing=model.preprocessing, labels=model.labels,
                           info=model.info, renamed_layers=model.renamed_layers)

    return model.derived(("guided_model",), build)


def guided_gradients(batch: PixelBatch) -> np.ndarray:
    """(N, H, W, C) float32: each image's guided gradient of its target's score with respect to
    the pixels."""
    guided = replace(batch, model=guided_model(batch.model))
    _, grads = guided.gradients(batch.pixels[:, None])
    return grads[:, 0]


def guided_backprop_map(batch: PixelBatch) -> np.ndarray:
    """Guided Backpropagation (Springenberg et al. 2015): the guided gradient's largest
    magnitude over the colour channels; (N, H, W) float32."""
    return np.abs(guided_gradients(batch)).max(axis=-1)


def guided_gradcam_map(batch: PixelBatch) -> np.ndarray:
    """Guided Grad-CAM (Selvaraju et al. 2017): :func:`guided_backprop_map` times Grad-CAM's
    positive part at the last conv layer, upsampled bilinearly to the input.

    Returns
    -------
    np.ndarray
        (N, H, W) float32, non-negative.
    """
    model = batch.model
    layer = resolve_layer(model, None)
    classes = np.asarray([t.class_index for t in batch.targets], np.int32)
    use_logit = np.asarray([t.score == "logit" for t in batch.targets])
    step = layer_gradients(model, batch.pixels, classes, use_logit, layer)
    cams = np.maximum(gradcam_map(step.activations, step.gradients), 0.0)
    height, width = batch.pixels.shape[1:3]
    upsampled = np.stack([resize_map(cam, height, width) for cam in cams])
    return guided_backprop_map(batch) * upsampled

"""Side models: the caller's model with extra outputs, never modified.

``side_model(model, ["vgg16/block5_conv3"], logits=True)`` returns a new ``keras.Model`` that
shares the original weights and outputs ``[block5_conv3 activations, pre-softmax logits]``.
Layers inside nested sub-models are reached by re-tracing the outer graph with
``keras.models.clone_model(clone_function=identity, call_function=...)``: the layers (and so the
weights) are reused, only new graph nodes are created. This is what avoids the "Graph
disconnected" error of ``keras.Model(outer.inputs, inner_layer.output)`` on transfer models.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import keras

from .errors import ModelError
from .inspect import activation_name, find_layer


def _as_functional(model) -> keras.Model:
    if isinstance(model, keras.Sequential):
        return keras.Model(model.inputs, model.outputs, name=model.name)
    return model


def _linear_twin(layer):
    """A copy of ``layer`` without its output activation (the weights are copied, not moved)."""
    config = layer.get_config()
    config["activation"] = "linear"
    config["name"] = f"{layer.name}_logits"
    twin = type(layer).from_config(config)
    twin.build(layer.input.shape)
    twin.set_weights(layer.get_weights())
    return twin


def _split_taps(taps: Sequence[str]):
    direct, nested = [], defaultdict(list)
    for tap in taps:
        head, _, rest = tap.partition("/")
        if rest:
            nested[head].append(rest)
        else:
            direct.append(head)
    return direct, dict(nested)


def _traced(model, taps: Sequence[str], with_logits: bool):
    """Re-trace ``model``; return (inputs, {tap: tensor}, logits tensor or None, output)."""
    direct, nested = _split_taps(taps)
    for tap in taps:
        find_layer(model, tap)  # a clear error for a bad path, before any tracing
    functional = _as_functional(model)
    final = functional.layers[-1]
    subs = {name: _traced_model(functional.get_layer(name), paths) for name, paths in nested.items()}
    twin = None
    if with_logits:
        act = activation_name(final)
        if isinstance(final, keras.layers.Activation):
            twin = "input"
        elif act in ("softmax", "sigmoid"):
            twin = _linear_twin(final)
        elif act != "linear":
            raise ModelError(
                f"The output layer {final.name!r} uses the activation {act!r}; class scores "
                "before the activation cannot be read. Use the probability-based score instead."
            )
    found: dict[str, object] = {}

    def call_function(layer, *args, **kwargs):
        if layer.name in subs:
            outs = subs[layer.name](*args, **kwargs)
            names = nested[layer.name]
            for name, tensor in zip(names, outs[: len(names)]):
                found[f"{layer.name}/{name}"] = tensor
            out = outs[len(names)]
        else:
            out = layer(*args, **kwargs)
        if layer.name in direct:
            found[layer.name] = out
        if layer is final and with_logits:
            found["__logits__"] = args[0] if twin == "input" else (twin(args[0]) if twin else out)
        return out

    clone = keras.models.clone_model(
        functional, clone_function=lambda layer: layer, call_function=call_function
    )
    missing = [t for t in taps if t not in found]
    if missing:
        raise ModelError(f"The layer(s) {missing} could not be reached from the model's input.")
    return clone.inputs[0], found, found.get("__logits__"), clone.outputs[0]


def _traced_model(model, taps: Sequence[str]) -> keras.Model:
    inputs, found, _, output = _traced(model, taps, with_logits=False)
    return keras.Model(inputs, [found[t] for t in taps] + [output])


def side_model(
    model, taps: Sequence[str] = (), *, logits: bool = False, output: bool = False
) -> keras.Model:
    """Build a model with the outputs of the layers ``taps`` (paths, nested allowed).

    Parameters
    ----------
    model : keras.Model
        Not modified; the side model shares its weights.
    taps : sequence of str
        Layer paths such as ``"conv2d_1"`` or ``"vgg16/block5_conv3"``.
    logits : bool
        Also output the class scores *before* the final softmax/sigmoid, shape (N, units).
    output : bool
        Also output the model's own output, shape (N, units).

    Returns
    -------
    keras.Model
        Outputs, always as a list, in this order: one tensor per tap, then logits (if asked),
        then the output (if asked). Only the part of the graph needed is computed.
    """
    taps = list(taps)
    if not taps and not logits and not output:
        raise ModelError("Ask for at least one layer, the logits or the output.")
    _, nested = _split_taps(taps)
    if not nested and not logits:
        # Fast path: every tap lives in the top-level graph.
        functional = _as_functional(model)
        outs = [find_layer(functional, t).output for t in taps]
        if output:
            outs.append(functional.outputs[0])
        return keras.Model(functional.inputs[0], outs)
    inputs, found, logit_tensor, out = _traced(model, taps, with_logits=logits)
    outs = [found[t] for t in taps]
    if logits:
        outs.append(logit_tensor)
    if output:
        outs.append(out)
    return keras.Model(inputs, outs)

"""Side models: the caller's model with extra outputs, never modified.

``side_model(model, ["vgg16/block5_conv3"], logits=True)`` returns a new ``keras.Model`` that
shares the original weights and outputs ``[block5_conv3 activations, pre-softmax logits]``.
Layers inside nested sub-models are reached by re-tracing the outer graph with
``keras.models.clone_model(clone_function=identity, call_function=...)``: the layers (and so the
weights) are reused, only new graph nodes are created. This is what avoids the "Graph
disconnected" error of ``keras.Model(outer.inputs, inner_layer.output)`` on transfer models.

``flat_graph(model)`` rebuilds the whole model as one graph, nested sub-models inlined layer by
layer, with a tensor for every layer path and for the pre-softmax logits. ``split_at(model,
layer)`` cuts that graph at a layer into a *front* half (input -> the layer's activations and the
tensors the rest still needs, e.g. skip connections) and a *back* half (those -> logits, output),
so the back half can run alone. Every function here takes a plain ``keras.Model`` and keeps no
state; callers cache what they build.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import keras

from viz_core.errors import ModelError
from viz_core.models.inspect import activation_name, find_layer


def _as_functional(model) -> keras.Model:
    """``model`` itself, or a functional view of a ``keras.Sequential`` (same layers)."""
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


def _logits_rule(final):
    """How to read the class scores before ``final``'s (the output layer's) activation.

    Returns ``"input"`` (an ``Activation`` or ``Softmax`` layer: the scores are its input),
    ``"output"`` (no activation: the output is the scores), a linear copy of ``final`` (a
    Dense/Conv layer with a softmax or sigmoid activation: apply it to ``final``'s input), or
    None (another activation, which cannot be undone).
    """
    if isinstance(final, (keras.layers.Activation, keras.layers.Softmax)):
        return "input"
    act = activation_name(final)
    if act in ("softmax", "sigmoid"):
        return _linear_twin(final)
    return "output" if act == "linear" else None


def _apply_logits_rule(rule, layer_input, output):
    """The logits tensor for ``rule`` (see :func:`_logits_rule`), or None."""
    if rule is None:
        return None
    if rule == "input":
        return layer_input
    return output if rule == "output" else rule(layer_input)


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
    rule = _logits_rule(final) if with_logits else None
    if with_logits and rule is None:
        raise ModelError(
            f"The output layer {final.name!r} uses the activation {activation_name(final)!r}; "
            "class scores before the activation cannot be read. Use the probability-based "
            "score instead."
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
            found["__logits__"] = _apply_logits_rule(rule, args[0], out)
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


# --------------------------------------------------------------------------------------------
# The whole model as one flat graph, and cut at a layer
# --------------------------------------------------------------------------------------------
# What Keras raises when a graph cannot be rebuilt or cut (e.g. repeated layer names)
_GRAPH_ERRORS = (ValueError, KeyError, AttributeError)


@dataclass(frozen=True, eq=False)
class FlatGraph:
    """The whole model as one graph, nested sub-models inlined layer by layer.

    The layers (and so the weights) are the model's own; only new graph nodes are made.

    Attributes
    ----------
    inputs : KerasTensor
        (N, H, W, C), the model's input as it expects it (after preprocessing), with the
        model's own batch shape and dtype.
    tensors : dict of str to KerasTensor
        Every layer's output, by layer path (``"conv_b"``, ``"vgg16/block5_conv3"``).
    logits : KerasTensor or None
        (N, units), the class scores before the final softmax/sigmoid; None when the final
        activation cannot be undone.
    output : KerasTensor
        (N, units), the model's output.
    """

    inputs: object
    tensors: dict
    logits: object
    output: object


def _inline(model, inputs, prefix: str, found: dict):
    """Call ``model``'s layers on ``inputs``, nested models inlined layer by layer.

    Fills ``found`` with ``{path: tensor}`` and returns the output tensor. The layers are
    re-used (so the weights are shared); only new graph nodes are made.
    """
    functional = _as_functional(model)

    def call(layer, *args, **kwargs):
        if isinstance(layer, keras.Model):
            out = _inline(layer, args[0], f"{prefix}{layer.name}/", found)
        else:
            out = layer(*args, **kwargs)
        found[f"{prefix}{layer.name}"] = out
        return out

    if isinstance(functional.input, (list, tuple)):
        inputs = [inputs] if not isinstance(inputs, (list, tuple)) else list(inputs)
    clone = keras.models.clone_model(functional, input_tensors=inputs,
                                     clone_function=lambda layer: layer, call_function=call)
    return clone.outputs[0]


def flat_graph(model) -> FlatGraph:
    """Rebuild ``model`` as one flat graph (nested sub-models inlined), with a logits tensor.

    Parameters
    ----------
    model : keras.Model
        Sequential or functional, possibly with nested models; not modified.

    Returns
    -------
    FlatGraph

    Raises
    ------
    ModelError
        Keras cannot rebuild this graph.
    """
    try:
        spec = model.inputs[0]
        x = keras.Input(batch_shape=spec.shape, dtype=spec.dtype)
        found: dict = {}
        out = _inline(model, x, "", found)
        # Keras has no public graph walk; each KerasTensor names its producer in _keras_history
        final, node_index, _ = out._keras_history
        node = final._inbound_nodes[node_index]
        logits = _apply_logits_rule(_logits_rule(final), keras.tree.flatten(node.input_tensors)[0],
                                    out)
    except _GRAPH_ERRORS as err:
        raise ModelError(
            f"The model {model.name!r} cannot be rebuilt as one flat graph: {err}"
        ) from err
    return FlatGraph(x, found, logits, out)


def _context_tensors(inputs, tap, outputs) -> list:
    """Tensors that do not depend on ``tap`` but are used after it (skip connections...).

    With them as extra inputs, the part of the graph after ``tap`` is a model of its own.
    """
    probe = keras.Model(inputs, outputs)
    depends = {id(tap)}
    context: dict[int, object] = {}
    for depth in sorted(probe._nodes_by_depth, reverse=True):  # inputs first
        for node in probe._nodes_by_depth[depth]:
            ins = keras.tree.flatten(node.input_tensors)
            if any(id(t) in depends for t in ins):
                for t in ins:
                    if id(t) not in depends:
                        context[id(t)] = t
                depends.update(id(t) for t in keras.tree.flatten(node.outputs))
    return list(context.values())


@dataclass(frozen=True, eq=False)
class ModelSplit:
    """A model cut at one layer into two halves that share its weights.

    ``back`` after ``front`` computes what the whole model computes.

    Attributes
    ----------
    layer : str
        Path of the layer the model is cut at.
    front : keras.Model
        Takes the model input x, (N, H, W, C) preprocessed. Returns the layer's activations,
        e.g. (N, h, w, k), followed by the context tensors (as a list when there are any).
    back : keras.Model
        Takes ``[activations, *context]``. Returns ``[logits, output]``, each (N, units), or
        only the output when the logits are the output (a linear output layer, or
        ``has_logits`` False); :meth:`run_back` always returns both.
    context_count : int
        How many context tensors: the tensors the network still uses after the layer that do
        not depend on it (skip connections, the branches beside it); 0 for a plain chain.
    has_logits : bool
        Whether the class scores before the final softmax/sigmoid can be read.
    """

    layer: str
    front: keras.Model
    back: keras.Model
    context_count: int
    has_logits: bool
    logits_are_output: bool = False

    def run_front(self, x, training: bool = False):
        """``(activations, [context tensors])`` of the model input ``x`` (N, H, W, C)."""
        outs = self.front(x, training=training)
        return (outs[0], list(outs[1:])) if isinstance(outs, (list, tuple)) else (outs, [])

    def run_back(self, activations, context, training: bool = False):
        """``(logits, output)``, each (N, units), from the front half's results."""
        outs = self.back([activations, *context], training=training)
        if self.logits_are_output:
            output = outs[0] if isinstance(outs, (list, tuple)) else outs
            return output, output
        logits, output = outs
        return logits, output


def split_at(model, layer: str, *, flat: FlatGraph | None = None) -> ModelSplit:
    """Cut ``model`` at ``layer`` into a front and a back half (see :class:`ModelSplit`).

    Parameters
    ----------
    model : keras.Model
        Not modified; both halves share its layers and weights.
    layer : str
        Layer path, nested allowed (``"vgg16/block5_conv3"``).
    flat : FlatGraph or None
        ``flat_graph(model)`` if the caller already has it (reused, not rebuilt).

    Returns
    -------
    ModelSplit

    Raises
    ------
    ModelError
        No layer has this path, or Keras cannot cut the graph there (e.g. the same layer name
        inside and outside a nested model).
    """
    try:
        flat = flat_graph(model) if flat is None else flat
        if layer not in flat.tensors:
            raise ModelError(f"The model {model.name!r} has no layer called {layer!r}.")
        tap = flat.tensors[layer]
        # A model cut inside cannot list one tensor twice as output (Keras 3 then reports it
        # "not connected"): when the logits are the output, the back half returns it once.
        same = flat.logits is None or flat.logits is flat.output
        ends = [flat.output] if same else [flat.logits, flat.output]
        context = _context_tensors(flat.inputs, tap, ends)
        front = keras.Model(flat.inputs, [tap, *context])
        back = keras.Model([tap, *context], ends)
    except _GRAPH_ERRORS as err:
        raise ModelError(
            f"The model {model.name!r} cannot be cut at the layer {layer!r}: {err}"
        ) from err
    return ModelSplit(layer, front, back, len(context), flat.logits is not None, same)

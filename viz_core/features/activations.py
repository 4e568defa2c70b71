"""Feature maps: the activations of a model's layers for one image, and per-channel statistics.

The tutorial builds ``keras_model(inputs = model$input, outputs = layer_outputs)`` and runs it
once per image; :func:`feature_maps` does the same with a cached side model
(:meth:`viz_core.models.catalog.LoadedModel.side_model`), so layers inside nested sub-models work
too and the caller's model is never touched. Drawing the channels is
:mod:`viz_core.render.montage`'s job; nothing here depends on display options.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from viz_core.models.loaded import LoadedModel
from viz_core.errors import Cancelled, ParameterError
from viz_core.models.inspect import ModelInfo
from viz_core.inputs.intake import LoadedImage, ModelImage

# Budget for one forward pass's stored activations; larger sets are split (see layer_chunks).
CHUNK_BYTES = 48 * 2**20
# Layer types whose output is the image itself, not a feature map.
_NOT_FEATURE_MAPS = frozenset({"InputLayer"})
# "block1", "block_1", "block1a", "stage_0": the part of a layer name that names its block.
_MERGE_TYPES = frozenset({"Concatenate", "Add"})
_BLOCK = re.compile(r"(?:block|stage)_?\d+[a-z]?", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class LayerActivation:
    """The activation of one layer for one image.

    Attributes
    ----------
    layer : str
        Layer path (``"conv2d"``, ``"vgg16/block5_conv3"``).
    index : int
        1-based position among the model's feature-map layers (:func:`feature_map_layers`),
        as in the tutorial's ``cat_activations_1_conv2d.png``.
    type : str
        Keras class name, e.g. ``"Conv2D"``.
    values : np.ndarray
        (h, w, c) float32, the raw activation (no normalisation).
    """

    layer: str
    index: int
    type: str
    values: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.values.shape)

    @property
    def channels(self) -> int:
        return int(self.values.shape[2])


@dataclass(frozen=True, eq=False)
class FeatureMaps:
    """Activations of several layers for one image, from one forward pass.

    Attributes
    ----------
    model : str
        Identity of the model that produced them.
    image : str
        Display name of the image (its file stem).
    digest : str
        Identity of the image.
    layers : tuple of LayerActivation
        In model order.
    """

    model: str
    image: str
    digest: str
    layers: tuple[LayerActivation, ...]

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(a.layer for a in self.layers)

    def layer(self, path: str) -> LayerActivation:
        """The activation of layer ``path``.

        Raises
        ------
        ParameterError
            ``path`` was not among the layers computed.
        """
        for activation in self.layers:
            if activation.layer == path:
                return activation
        raise ParameterError(
            f"The feature maps of layer {path!r} were not computed; computed layers: "
            f"{', '.join(self.paths[:8])}."
        )


@dataclass(frozen=True, eq=False)
class ChannelStats:
    """Per-channel statistics of one layer's activation.

    Attributes
    ----------
    mean, max, min : np.ndarray
        (c,) float32.
    fraction_active : np.ndarray
        (c,) float32 in [0, 1]: share of positions where the channel is above ``threshold``.
    dead : np.ndarray
        (c,) bool: the channel is exactly zero everywhere on this image.
    constant : np.ndarray
        (c,) bool: the channel has one value everywhere (dead channels are constant too).
    threshold : float
        Value a position must exceed to count as active.
    """

    mean: np.ndarray
    max: np.ndarray
    min: np.ndarray
    fraction_active: np.ndarray
    dead: np.ndarray
    constant: np.ndarray
    threshold: float


def feature_map_layers(info: ModelInfo) -> tuple[str, ...]:
    """Paths of the layers that have feature maps: 4-D output, nested layers included,
    the input layer left out (it is the image, not a feature map)."""
    return tuple(
        layer.path for layer in info.layers
        if layer.spatial and not layer.nested and layer.type not in _NOT_FEATURE_MAPS
    )


def layer_index(info: ModelInfo, path: str) -> int:
    """1-based index of ``path`` among :func:`feature_map_layers` (the tutorial's ``i``)."""
    layers = feature_map_layers(info)
    if path not in layers:
        raise ParameterError(_unknown_layer_message(path, layers))
    return layers.index(path) + 1


def resolve_layers(info: ModelInfo, layers: str | Sequence[str] | None) -> tuple[str, ...]:
    """Turn a layer request into paths in model order.

    Parameters
    ----------
    layers : ``None`` or ``"all"`` (every feature-map layer), a comma-separated string
        ``"conv_a,pool_a"``, or a sequence of paths. 1-based indices (``"1,3"``) are accepted too.

    Raises
    ------
    ParameterError
        A name that is not a layer with feature maps; the message lists some that are.
    """
    available = feature_map_layers(info)
    if layers is None or (isinstance(layers, str) and layers.strip().lower() == "all"):
        return available
    wanted = [p.strip() for p in layers.split(",")] if isinstance(layers, str) else list(layers)
    wanted = [str(p).strip() for p in wanted if str(p).strip()]
    if not wanted:
        raise ParameterError("No layer was named; give layer names separated by commas, or 'all'.")
    chosen = set()
    for name in wanted:
        if name in available:
            chosen.add(name)
        elif name.isdigit() and 1 <= int(name) <= len(available):
            chosen.add(available[int(name) - 1])
        else:
            raise ParameterError(_unknown_layer_message(name, available))
    return tuple(p for p in available if p in chosen)


def _unknown_layer_message(name: str, available: Sequence[str]) -> str:
    shown = ", ".join(available[:10]) + (" ..." if len(available) > 10 else "")
    return (
        f"The model has no layer with feature maps called {name!r}. Layers with feature maps "
        f"(4-D output): {shown}"
    )


def activation_bytes(info: ModelInfo, path: str) -> int:
    """Bytes of one image's float32 activation of layer ``path``."""
    shape = info.layer(path).output_shape
    return 4 * int(np.prod([d or 1 for d in shape]))


def layer_chunks(
    info: ModelInfo, layers: Sequence[str], max_bytes: int = CHUNK_BYTES
) -> tuple[tuple[str, ...], ...]:
    """Split ``layers`` (in model order) into consecutive groups of at most ``max_bytes`` of
    activations per image, so one forward pass never keeps a whole large network's maps
    (ResNet50: about 140 MB per image) in memory. A single larger layer is its own group."""
    chunks, current, size = [], [], 0
    for path in layers:
        need = activation_bytes(info, path)
        if current and size + need > max_bytes:
            chunks.append(tuple(current))
            current, size = [], 0
        current.append(path)
        size += need
    if current:
        chunks.append(tuple(current))
    return tuple(chunks)


def chunk_of(chunks: Sequence[Sequence[str]], path: str) -> tuple[str, ...]:
    """The chunk from :func:`layer_chunks` that holds ``path``."""
    for chunk in chunks:
        if path in chunk:
            return tuple(chunk)
    raise ParameterError(f"The layer {path!r} is not among the layers asked for.")


def layer_groups(info: ModelInfo, layers: Sequence[str] | None = None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Group feature-map layers by block for a picker.

    Where layer names carry a block (``block1_conv1``, ``conv2_block1_out``, ``block1a_bn``,
    ``stage_0``) layers are grouped by that prefix; layers before the first block form
    ``"stem"`` and later unnamed ones join the block before them. Otherwise, in graphs with
    merge layers (Inception's ``mixed0``), a group ends at each Concatenate/Add layer
    (``"up to mixed0"``); in plain stacks (names such as ``conv2d_1``) each convolution starts
    a group named after it, so a conv layer, its batch normalisation, activation and pooling
    stay together.

    Returns
    -------
    tuple of (group name, tuple of layer paths)
        In model order; every layer is in exactly one group.
    """
    paths = feature_map_layers(info) if layers is None else tuple(layers)
    if not paths:
        return ()
    names = {}
    for path in paths:
        head, _, leaf = path.rpartition("/")
        matches = list(_BLOCK.finditer(leaf))
        if matches:
            names[path] = (f"{head}/" if head else "") + leaf[: matches[-1].end()]
    groups: list[tuple[str, list[str]]] = []
    if names:
        for path in paths:
            name = names.get(path) or (groups[-1][0] if groups else "stem")
            if not groups or groups[-1][0] != name:
                groups.append((name, []))
            groups[-1][1].append(path)
    elif merges := {entry.path for entry in info.layers if entry.type in _MERGE_TYPES} & set(paths):
        # Inception-like graphs: the branches of a module end where they are merged.
        current: list[str] = []
        for path in paths:
            current.append(path)
            if path in merges:
                groups.append((f"up to {path}", current))
                current = []
        if current:
            groups.append((f"after {groups[-1][0][6:]}" if groups else "all", current))
    else:
        conv = {layer.path for layer in info.layers if layer.conv}
        for path in paths:
            if path in conv or not groups:
                groups.append((path, []))
            groups[-1][1].append(path)
    return tuple((name, tuple(members)) for name, members in groups)


def feature_maps(
    model: LoadedModel,
    image: ModelImage | LoadedImage,
    layers: str | Sequence[str] | None = None,
    *,
    progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FeatureMaps:
    """The activations of ``layers`` for one image, in one forward pass.

    Parameters
    ----------
    model : LoadedModel
        Not modified; a cached side model with one output per layer is used.
    image : ModelImage or LoadedImage
        A LoadedImage is first resized for the model (:meth:`LoadedModel.view`).
    layers : see :func:`resolve_layers`; ``None`` means every feature-map layer.
    progress : callable(fraction, message), optional
    should_stop : callable() -> bool, optional
        Checked before the forward pass; True raises :class:`~viz_core.errors.Cancelled`.

    Returns
    -------
    FeatureMaps
        One (h, w, c) float32 array per layer, in model order.
    """
    info = model.info
    paths = resolve_layers(info, layers)
    view = model.view(image) if isinstance(image, LoadedImage) else image
    if progress:
        progress(0.0, f"building a model with {len(paths)} outputs")
    side = model.side_model(paths)
    if should_stop is not None and should_stop():
        raise Cancelled("Computing the feature maps was stopped.")
    if progress:
        progress(0.2, "running the model on the image")
    outputs = side(model.batch([view]), training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    all_paths = feature_map_layers(info)
    result = tuple(
        LayerActivation(
            layer=path,
            index=all_paths.index(path) + 1,
            type=info.layer(path).type,
            values=np.ascontiguousarray(np.asarray(out)[0], dtype="float32"),
        )
        for path, out in zip(paths, outputs)
    )
    if progress:
        progress(1.0, "done")
    return FeatureMaps(model=model.identity, image=view.name, digest=view.digest, layers=result)


def channel_stats(values: np.ndarray, threshold: float = 0.0) -> ChannelStats:
    """Mean, max, min, fraction active, dead and constant flags of each channel.

    Parameters
    ----------
    values : np.ndarray
        (h, w, c) activation of one layer, or a :class:`LayerActivation`.
    threshold : float
        A position is active where the value is above it (0: after ReLU, "fired").
    """
    v = getattr(values, "values", values)
    v = np.asarray(v, dtype="float32")
    if v.ndim != 3:
        raise ParameterError(
            f"Channel statistics need an (h, w, c) activation; got shape {v.shape}."
        )
    flat = v.reshape(-1, v.shape[2])
    high = flat.max(axis=0)
    low = flat.min(axis=0)
    return ChannelStats(
        mean=flat.mean(axis=0, dtype="float64").astype("float32"),
        max=high.astype("float32"),
        min=low.astype("float32"),
        fraction_active=(flat > threshold).mean(axis=0).astype("float32"),
        dead=(high == 0) & (low == 0),
        constant=high == low,
        threshold=float(threshold),
    )


def file_stem(image_name: str) -> str:
    """``image_name`` as a file-name stem: letters (any script: ``猫`` stays), digits, ``-`` and
    ``_``; every other run of characters becomes one ``_``; ``image`` when nothing is left."""
    return re.sub(r"[^\w-]+", "_", str(image_name)).strip("_") or "image"


def export_name(image_name: str, index: int, layer: str, suffix: str = ".png") -> str:
    """File name as in the tutorial: ``cat_activations_1_conv2d.png``.

    ``image_name`` is the image's stem, ``index`` the 1-based layer index, ``layer`` the path
    (``/`` of nested layers becomes ``_``).
    """
    stem = file_stem(image_name)
    leaf = re.sub(r"[^A-Za-z0-9_-]+", "_", str(layer).replace("/", "_")).strip("_")
    return f"{stem}_activations_{int(index)}_{leaf}{suffix}"


def named_layers(maps: Sequence[FeatureMaps], names: Sequence[str] | None = None,
                 ) -> list[tuple[str, np.ndarray]]:
    """Every layer of every image with its export file name (:func:`export_name`), in order.

    Parameters
    ----------
    maps : sequence of FeatureMaps
    names : image stems to use in file names (default each ``FeatureMaps.image``).

    Returns
    -------
    list of (file name, (H, W, C) float32 activation)
    """
    return [(export_name(names[k] if names is not None else fm.image, act.index, act.layer),
             act.values)
            for k, fm in enumerate(maps) for act in fm.layers]

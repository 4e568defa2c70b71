"""A model ready for the techniques: the Keras model plus its name, identity, preprocessing,
labels and layer facts, with a cache of what is derived from it (side models, compiled steps).

The one type every technique takes. Where it comes from is the catalogue's job
(:mod:`viz_core.models.catalog`: built-ins and uploads) or :mod:`viz_core.models.in_memory`'s
(a model held in a notebook); a technique needs only this module.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import keras
import numpy as np

from viz_core.errors import ParameterError
from viz_core.inputs.intake import LoadedImage, ModelImage, model_view
from viz_core.models.graph import side_model
from viz_core.models.inspect import ModelInfo
from viz_core.models.preprocess import preprocess
from viz_core.runtime.cache import BoundedCache


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for the dashboard: the Keras model plus what is needed to use it.

    Attributes
    ----------
    model : keras.Model
        Never modified by this project; techniques build side models around it.
    name : str
        ``demo``, a built-in name, or ``upload``.
    title : str
        What users read.
    identity : str
        Content identity for caches (name + weights, or the uploaded file's SHA-256).
    weights : str
        ``bundled``, ``imagenet``, ``none`` or ``uploaded``.
    preprocessing : str
        Preprocessing name applied to pixels before the model.
    labels : tuple of str
        One name per class (2 for a single sigmoid unit: class 0, class 1).
    info : ModelInfo
    renamed_layers : tuple of (str, str)
        ``(name in the file, name here)`` for layers renamed on loading because TensorFlow
        cannot trace a layer called e.g. ``conv 1`` (see
        :func:`viz_core.models.inspect.make_names_scope_safe`); empty for most models.
    """

    model: keras.Model
    name: str
    title: str
    identity: str
    weights: str
    preprocessing: str
    labels: tuple[str, ...]
    info: ModelInfo
    renamed_layers: tuple[tuple[str, str], ...] = ()
    _derived: BoundedCache = field(
        default_factory=lambda: BoundedCache(max_entries=48, max_bytes=2**50), repr=False
    )

    @property
    def cache_key(self) -> str:
        return self.identity

    def derived(self, key, build):
        """Objects derived from this model (side models, compiled steps), built once.

        ``key`` must be hashable and name what is built; ``build()`` makes it on a miss.
        """
        return self._derived.get_or_compute(key, build)

    def side_model(self, taps=(), *, logits: bool = False, output: bool = False):
        """Cached :func:`viz_core.models.graph.side_model` of this model."""
        taps = tuple(taps)
        return self.derived(
            ("side_model", taps, logits, output),
            lambda: side_model(self.model, taps, logits=logits, output=output),
        )

    def view(self, image: LoadedImage) -> ModelImage:
        """The image resized for this model."""
        return model_view(image, self.info.input_shape)

    def batch(self, images: Sequence[ModelImage] | np.ndarray) -> np.ndarray:
        """Preprocessed model input, float32 (N, H, W, C), from images or pixels in [0, 255]."""
        if isinstance(images, np.ndarray):
            pixels = images if images.ndim == 4 else images[None]
        else:
            pixels = np.stack([img.pixels for img in images])
        return preprocess(self.preprocessing, pixels)

    def label(self, class_index: int) -> str:
        return self.labels[class_index]

    def class_index(self, name_or_index: str | int) -> int:
        """Resolve a class given by index (``3``, ``"3"``) or label (``"star"``)."""
        if isinstance(name_or_index, (int, np.integer)):
            index = int(name_or_index)
        elif str(name_or_index).strip().lstrip("-").isdigit():
            index = int(str(name_or_index).strip())
        else:
            wanted = str(name_or_index).strip().lower()
            matches = [i for i, lab in enumerate(self.labels) if lab.lower() == wanted]
            if not matches:
                raise ParameterError(
                    f"No class is called {name_or_index!r}; classes include "
                    f"{', '.join(self.labels[:8])}."
                )
            index = matches[0]
        if not 0 <= index < len(self.labels):
            raise ParameterError(
                f"Class index {index} is out of range; this model has classes 0 to "
                f"{len(self.labels) - 1}."
            )
        return index

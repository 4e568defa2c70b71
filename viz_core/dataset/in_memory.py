"""A dataset of images already in memory (a notebook's list of arrays or files).

:func:`images_dataset` wraps decoded images as a :class:`~viz_core.dataset.readers.Dataset`,
so the dataset engines (the neuron atlas, dataset runs) read them as they read a folder. The
reader is a small picklable class holding the images, so it travels to another process too.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Sequence

from viz_core.dataset.readers import Dataset, DatasetEntry, match_labels
from viz_core.errors import ParameterError
from viz_core.inputs.intake import LoadedImage


class MemoryReader:
    """Hands back one of the images by its path in the dataset."""

    def __init__(self, images: dict[str, LoadedImage]):
        self.images = images

    def __call__(self, path: str) -> LoadedImage:
        return self.images[path]


def _unique(names: Sequence[str]) -> list[str]:
    """Names made unique in order: a repeated ``cat`` becomes ``cat (2)``, ``cat (3)``..."""
    seen: Counter = Counter()
    out = []
    for name in names:
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def images_dataset(images: Sequence[LoadedImage], classes: Sequence[str], *,
                   labels: Sequence[str | None] | None = None,
                   name: str = "images") -> Dataset:
    """Decoded images as a dataset, in the order given.

    Parameters
    ----------
    images : sequence of LoadedImage
        At least one; each entry's path is the image's name (repeats numbered).
    classes : sequence of str
        The model's class names, which ``labels`` are matched against.
    labels : sequence of str or None, optional
        One label per image (None: that image has none); without labels, engines group
        images by predicted class.
    name : str
        The dataset's display name.

    Returns
    -------
    Dataset
        Layout ``"in memory"`` (``"unlabelled"`` without labels); its identity is a hash of
        the images' pixels and the labels, so caches tell two lists apart.

    Raises
    ------
    ParameterError
        No image, or labels of another length than the images.
    """
    images = list(images)
    if not images:
        raise ParameterError("A dataset needs at least one image; got none.")
    if labels is not None and len(labels) != len(images):
        raise ParameterError(f"Give one label per image: {len(images)} images, "
                             f"{len(labels)} labels.")
    paths = _unique([image.name or f"image {i}" for i, image in enumerate(images)])
    given = [None] * len(images) if labels is None else [
        None if label is None else str(label) for label in labels]
    indices, unknown = match_labels(given, classes)
    entries = tuple(DatasetEntry(p, label, index)
                    for p, label, index in zip(paths, given, indices))
    digest = hashlib.sha256()
    for image, label in zip(images, given):
        digest.update(f"{image.digest}:{label}\n".encode())
    layout = "unlabelled" if labels is None else "in memory"
    return Dataset(name, layout, entries, (), tuple(classes), tuple(unknown),
                   f"memory:{digest.hexdigest()}", MemoryReader(dict(zip(paths, images))))

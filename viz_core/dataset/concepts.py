"""CRAFT over a dataset: a class's images read from any dataset form, their concepts, kept on disk.

The images are the dataset's entries labelled with the class, or all of them when the dataset
has no labels (a folder of one class's pictures); at most ``limit`` of them, spread over the
dataset (:meth:`Dataset.subset`). They are read one at a time through the dataset's reader
(a bad file is skipped with its reason), held as the model sees them (uint8, its input size:
``limit`` x H x W x c bytes), then :func:`viz_core.methods.craft.craft` runs on them.

:func:`cached_concepts` keeps results on disk keyed by (model, dataset, class, layer, concepts,
Sobol designs, crops, seed, limit), as the neuron atlas does. :meth:`ClassConcepts.to_index`
is the JSON the ``concepts`` command prints (its files are written by the command).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from viz_core.dataset.readers import Dataset, SkippedFile
from viz_core.errors import Cancelled, ImageError, ParameterError
from viz_core.methods.craft import (DEFAULT_CONCEPTS, DEFAULT_DESIGNS, DEFAULT_TOP_CROPS,
                                    MAX_CONCEPTS, Craft, craft)
from viz_core.models.loaded import LoadedModel
from viz_core.runtime.cache import DiskCache

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

ProgressFn = Callable[[float, str], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True, eq=False)
class ClassConcepts:
    """A class's CRAFT concepts over images of a dataset.

    Attributes
    ----------
    craft : Craft
        Concepts most important first; image ``i`` of it is ``names[i]``.
    class_name : str
    dataset : str
    names : tuple of str
        Dataset paths of the images used, in dataset order.
    entries : np.ndarray
        (N,) int64 their positions in the dataset's entries.
    chosen_by : str
        ``"label"`` (images labelled with the class) or ``"all"`` (an unlabelled dataset).
    skipped : tuple of SkippedFile
        Files that could not be read.
    """

    craft: Craft
    class_name: str
    dataset: str
    names: tuple[str, ...]
    entries: np.ndarray
    chosen_by: str
    skipped: tuple[SkippedFile, ...] = ()

    def to_index(self) -> dict:
        """The command's JSON before its files are written: ``{class, layer, concepts: [{id,
        importance, crops: [], crop_sources: [{image, box, coefficient}], mean_map_png: None}],
        images: [{image, entry, maps_npy: None}], ...}``; the command fills in the file names
        (``crops``, ``mean_map_png``, ``maps_npy``)."""
        c = self.craft
        concepts = [{"id": k, "importance": float(c.importance[k]), "crops": [],
                     "crop_sources": [{"image": self.names[int(c.crop_boxes[j, 0])],
                                       "box": [int(v) for v in c.crop_boxes[j, 1:]],
                                       "coefficient": float(c.crop_coefficients[j, k])}
                                      for j in c.top_crops[k]],
                     "mean_map_png": None}
                    for k in range(len(c))]
        return {"class": self.class_name, "class_index": c.class_index, "layer": c.layer,
                "dataset": self.dataset, "chosen_by": self.chosen_by, "score": c.score,
                "reconstruction_error": c.reconstruction_error,
                "relative_error": c.relative_error, "designs": c.designs,
                "input_size": list(c.input_size), "seconds": c.seconds,
                "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped],
                "concepts": concepts,
                "images": [{"image": name, "entry": int(e), "maps_npy": None}
                           for name, e in zip(self.names, self.entries)]}

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"craft_{k}": v for k, v in self.craft.arrays().items()}
        out["run_text"] = np.asarray([self.class_name, self.dataset, self.chosen_by])
        out["names"] = np.asarray(self.names, dtype=str).reshape(-1)
        out["entries"] = self.entries
        out["skipped"] = np.asarray([[s.file, s.reason] for s in self.skipped],
                                    dtype=str).reshape(-1, 2)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ClassConcepts:
        name, dataset, chosen = (str(t) for t in arrays["run_text"])
        result = Craft.from_arrays({k[6:]: v for k, v in arrays.items()
                                    if k.startswith("craft_")})
        return cls(craft=result, class_name=name, dataset=dataset,
                   names=tuple(str(s) for s in arrays["names"]), entries=arrays["entries"],
                   chosen_by=chosen,
                   skipped=tuple(SkippedFile(str(f), str(r)) for f, r in arrays["skipped"]))


def class_entries(dataset: Dataset, class_index: int, limit: int) -> tuple[list[int], str]:
    """Positions of the class's images in ``dataset`` (all when unlabelled), at most ``limit``
    spread over them, and ``"label"`` or ``"all"``.

    Raises
    ------
    ParameterError
        A labelled dataset with no image of the class.
    """
    if dataset.labelled:
        picked = [i for i, e in enumerate(dataset.entries) if e.class_index == class_index]
        chosen = "label"
        if not picked:
            raise ParameterError(f"{dataset.name!r} has no image labelled with class "
                                 f"{dataset.classes[class_index]!r}.")
    else:
        picked, chosen = list(range(len(dataset.entries))), "all"
    if len(picked) > limit:
        step = len(picked) / limit
        picked = [picked[int(i * step)] for i in range(limit)]
    return picked, chosen


def check_concepts_options(model: LoadedModel, layer: str | None, concepts: int,
                           limit: int) -> str:
    """The layer path once the options are checked.

    Raises
    ------
    ParameterError
    """
    from viz_core.methods.checks import resolve_layer

    if not 2 <= int(concepts) <= MAX_CONCEPTS:
        raise ParameterError(f"The number of concepts must be 2 to {MAX_CONCEPTS}; "
                             f"got {concepts}.")
    if not 1 <= int(limit) <= MAX_LIMIT:
        raise ParameterError(f"CRAFT reads 1 to {MAX_LIMIT} images of a class; got {limit}.")
    return resolve_layer(model, layer)


def class_concepts(model: LoadedModel, dataset: Dataset, class_name: str | int,
                   layer: str | None = None, *, concepts: int = DEFAULT_CONCEPTS,
                   designs: int = DEFAULT_DESIGNS, top: int = DEFAULT_TOP_CROPS,
                   crop: int | None = None, seed: int = 0, limit: int = DEFAULT_LIMIT,
                   progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> ClassConcepts:
    """CRAFT of a class over its images in ``dataset``.

    Parameters
    ----------
    model : LoadedModel
    dataset : Dataset
        Class folders, CSV, ZIP or a sample; labels matched to the model's classes. Without
        labels every image is taken as one of the class.
    class_name : str or int
        A class name or index of the model.
    layer, concepts, designs, top, crop, seed
        As :func:`viz_core.methods.craft.craft`.
    limit : int
        At most this many images, 1 to :data:`MAX_LIMIT`, spread over the class's images.
    progress : callable(fraction, message) or None
        Reading takes the first tenth.
    should_stop : callable() -> bool or None

    Raises
    ------
    ParameterError
        Unknown class or layer, bad counts, no image of the class, no image readable.
    Cancelled
    """
    started = time.perf_counter()
    path = check_concepts_options(model, layer, concepts, limit)
    index = model.class_index(class_name)
    picked, chosen = class_entries(dataset, index, int(limit))
    pixels, kept, failed = [], [], []
    for n, position in enumerate(picked):
        if should_stop is not None and should_stop():
            raise Cancelled(f"CRAFT was stopped after reading {n} of {len(picked)} images.")
        entry = dataset.entries[position]
        try:
            pixels.append(model.view(dataset.load(entry)).pixels)
            kept.append(position)
        except ImageError as exc:
            failed.append(SkippedFile(entry.path, str(exc)))
        if progress is not None and n % 16 == 0:
            progress(0.1 * n / len(picked), f"reading image {n + 1} of {len(picked)}")
    if not pixels:
        raise ParameterError(f"None of the {len(picked)} images of {dataset.name!r} could be "
                             f"read; the first problem: {failed[0].reason}.")

    def later(fraction: float, message: str) -> None:
        if progress is not None:
            progress(0.1 + 0.9 * fraction, message)

    result = craft(model, np.clip(np.stack(pixels) + 0.5, 0, 255).astype(np.uint8), index,
                   path, concepts=concepts, designs=designs, top=top, crop=crop, seed=seed,
                   progress=later, should_stop=should_stop)
    result = _with_seconds(result, time.perf_counter() - started)
    return ClassConcepts(craft=result, class_name=model.labels[index], dataset=dataset.name,
                         names=tuple(dataset.entries[p].path for p in kept),
                         entries=np.asarray(kept, np.int64), chosen_by=chosen,
                         skipped=tuple(dataset.skipped) + tuple(failed))


def _with_seconds(result: Craft, seconds: float) -> Craft:
    from dataclasses import replace

    return replace(result, seconds=seconds)


def concepts_key(model: LoadedModel, dataset: Dataset, class_index: int, layer: str,
                 concepts: int, designs: int, top: int, crop: int | None, seed: int,
                 limit: int) -> tuple:
    """What names a CRAFT run in the cache."""
    return ("concepts", 1, model.identity, dataset.identity, int(class_index), layer,
            int(concepts), int(designs), int(top), None if crop is None else int(crop),
            int(seed), int(limit))


def cached_concepts(model: LoadedModel, dataset: Dataset, class_name: str | int,
                    layer: str | None = None, *, disk: DiskCache | None,
                    concepts: int = DEFAULT_CONCEPTS, designs: int = DEFAULT_DESIGNS,
                    top: int = DEFAULT_TOP_CROPS, crop: int | None = None, seed: int = 0,
                    limit: int = DEFAULT_LIMIT, **options) -> ClassConcepts:
    """:func:`class_concepts`, kept on ``disk`` so the same run again is read back instead of
    computed (``disk=None``: no cache)."""
    path = check_concepts_options(model, layer, concepts, limit)
    key = concepts_key(model, dataset, model.class_index(class_name), path, concepts, designs,
                       top, crop, seed, limit)
    if disk is not None:
        hit = disk.get(key)
        if hit is not None:
            return ClassConcepts.from_arrays(hit)
    run = class_concepts(model, dataset, class_name, path, concepts=concepts, designs=designs,
                         top=top, crop=crop, seed=seed, limit=limit, **options)
    if disk is not None:
        disk.put(key, run.arrays())
    return run

"""TCAV over image sets: a class's images from a dataset, concept images, random images.

* the class's images come from any dataset form :mod:`viz_core.dataset.readers` lists (class
  folders, a CSV, a ZIP, a sample): the images labelled with the class, or all of them when the
  dataset has no labels;
* the concept's images from a folder or a ZIP of images (labels, if any, are ignored);
* the random images from a folder or a ZIP, or drawn from the dataset itself.

Each set is bounded (:mod:`viz_core.methods.tcav_options`): of a larger one, images spread
evenly over it are read (the random pool: drawn at random, seeded), so a run stays within
minutes and its images within memory (kept as uint8 at the model's input size). Files that
cannot be read are skipped with their reason. :func:`tcav_run` reads the three sets and calls
:func:`viz_core.methods.tcav.tcav`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from viz_core.dataset.readers import Dataset, DatasetEntry, SampleReader, SkippedFile
from viz_core.errors import ImageError, ParameterError
from viz_core.methods.tcav import TcavResult, tcav
from viz_core.methods.tcav_options import (CLASS_IMAGES, CONCEPT_IMAGES,
                                           DEFAULT_CLASS_IMAGES, DEFAULT_CONCEPT_IMAGES,
                                           DEFAULT_RANDOM_IMAGES, DEFAULT_RUNS, RANDOM_IMAGES,
                                           RUNS)
from viz_core.models.loaded import LoadedModel
from viz_core.runtime.limits import SEED

ProgressFn = Callable[[float, str], None]

_READ_SHARE = 0.3  # of the progress bar: reading the images; the rest is TCAV
#: Built-in image sets that go with the shortcut demo model (generated scenes, 64 x 64).
EXAMPLES = {
    "tag": "the corner tag, on circles, squares and triangles",
    "plain": "plain scenes of the four shapes, no tag",
}
_EXAMPLE_SEEDS = {"tag": 3_600_000_000, "plain": 3_700_000_000}  # beyond training, held out
_EXAMPLE_COUNTS = {"tag": 24, "plain": 120}  # random sets need a pool several times their size


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images read from a dataset at the model's input size.

    Attributes
    ----------
    name : str
        The dataset's name.
    pixels : np.ndarray
        (N, H, W, C) uint8.
    paths : tuple of str
        Each image's path in the dataset.
    skipped : tuple of SkippedFile
        Files that could not be read, with the reason.
    """

    name: str
    pixels: np.ndarray
    paths: tuple[str, ...]
    skipped: tuple[SkippedFile, ...]

    def __len__(self) -> int:
        return len(self.paths)


def read_set(model: LoadedModel, data: Dataset, entries, *, progress: ProgressFn | None = None
             ) -> ImageSet:
    """The images of ``entries`` (of ``data``) as the model sees them; unreadable ones skipped."""
    h, w, c = model.info.input_shape
    pixels, paths, skipped = [], [], list(data.skipped)
    for i, entry in enumerate(entries):
        try:
            view = model.view(data.load(entry)).pixels
        except ImageError as exc:
            skipped.append(SkippedFile(entry.path, str(exc)))
            continue
        pixels.append(np.clip(np.rint(view), 0, 255).astype(np.uint8))
        paths.append(entry.path)
        if progress is not None and i % 16 == 15:
            progress((i + 1) / len(entries), f"read {i + 1} of {len(entries)} images")
    stacked = np.stack(pixels) if pixels else np.zeros((0, h, w, c), np.uint8)
    return ImageSet(data.name, stacked, tuple(paths), tuple(skipped))


def class_entries(data: Dataset, class_index: int, class_name: str) -> list:
    """The entries labelled ``class_index``, or all of them when ``data`` has no labels.

    Raises
    ------
    ParameterError
        The dataset has labels but none is the class.
    """
    if not data.labelled:
        return list(data.entries)
    chosen = [e for e in data.entries if e.class_index == class_index]
    if not chosen:
        raise ParameterError(f"No image of {data.name!r} is labelled {class_name!r}; TCAV scores "
                             "a class on its own images (or on all images of an unlabelled "
                             "dataset).")
    return chosen


def _spread(entries: list, count: int) -> list:
    """``count`` of ``entries``, evenly spread (classes and folders stay mixed)."""
    if len(entries) <= count:
        return entries
    picks = np.linspace(0, len(entries), count, endpoint=False).astype(int)
    return [entries[i] for i in picks]


def _drawn(entries: list, count: int, seed: int) -> list:
    """``count`` of ``entries`` drawn at random (seeded), in dataset order."""
    if len(entries) <= count:
        return entries
    picks = np.sort(np.random.default_rng(seed).choice(len(entries), count, replace=False))
    return [entries[i] for i in picks]


def example_images(name: str, classes, count: int | None = None) -> Dataset:
    """A built-in set of the shortcut demo's scenes, drawn when read: ``"tag"`` (the concept:
    the corner tag on shapes that are not stars) or ``"plain"`` (random images: every shape,
    no tag); ``count`` images (default 24 and 120).

    Raises
    ------
    ParameterError
        Unknown name.
    """
    from viz_core.demo.shapes import CLASS_NAMES
    from viz_core.demo.shortcut import SHORTCUT_CLASS

    if name not in EXAMPLES:
        raise ParameterError(f"Unknown example {name!r}; examples: {', '.join(EXAMPLES)}.")
    shapes = [c for c in CLASS_NAMES if c != SHORTCUT_CLASS] if name == "tag" else CLASS_NAMES
    count = _EXAMPLE_COUNTS[name] if count is None else int(count)
    draw = {}
    for i in range(int(count)):
        label = shapes[i % len(shapes)]
        draw[f"{label}_{i:03d}.png"] = (_EXAMPLE_SEEDS[name] + i, label, name == "tag")
    entries = tuple(DatasetEntry(path, None, None) for path in sorted(draw))
    return Dataset(name, "sample", entries, (), tuple(classes), (), f"tcav-example:{name}:{count}",
                   SampleReader("shortcut", draw))


@dataclass(frozen=True, eq=False)
class TcavRun:
    """A TCAV result with the image sets it was computed from.

    Attributes
    ----------
    result : TcavResult
    dataset, concept_source, random_source : str
        Names of the class's dataset, the concept's images and the random images (the
        dataset's name again when they were drawn from it).
    class_paths, concept_paths : tuple of str
        The images read.
    random_images : int
        Images in the random pool.
    skipped : tuple of SkippedFile
        Files of any of the sets that could not be read.
    """

    result: TcavResult
    dataset: str
    concept_source: str
    random_source: str
    class_paths: tuple[str, ...]
    concept_paths: tuple[str, ...]
    random_images: int
    skipped: tuple[SkippedFile, ...]

    def to_dict(self) -> dict:
        """``{class, layer, concept, score, p_value, significant, random_scores, ...}`` (the
        command's JSON) with the sets' names and the skipped files."""
        return {**self.result.to_dict(), "dataset": self.dataset,
                "random_source": self.random_source, "random_images": self.random_images,
                "skipped": [{"file": s.file, "reason": s.reason} for s in self.skipped]}


def check_tcav_options(*, runs: int, class_images: int, concept_images: int,
                       random_images: int, seed: int) -> None:
    """Raise :class:`ParameterError` for a count or seed out of range (before any image is
    read)."""
    RUNS.check(runs)
    CLASS_IMAGES.check(class_images)
    CONCEPT_IMAGES.check(concept_images)
    RANDOM_IMAGES.check(random_images)
    SEED.check(seed)


def tcav_run(model: LoadedModel, data: Dataset, class_index: int, concept: Dataset,
             random: Dataset | None = None, layer: str | None = None, *,
             runs: int = DEFAULT_RUNS,
             class_images: int = DEFAULT_CLASS_IMAGES,
             concept_images: int = DEFAULT_CONCEPT_IMAGES,
             random_images: int = DEFAULT_RANDOM_IMAGES, seed: int = 0,
             progress: ProgressFn | None = None) -> TcavRun:
    """TCAV of ``concept`` for a class of ``data`` at ``layer``.

    Parameters
    ----------
    model : LoadedModel
    data : Dataset
        Where the class's images come from (:func:`class_entries`).
    class_index : int
    concept : Dataset
        The concept's images (a folder or a ZIP listed by the readers; labels are ignored).
    random : Dataset or None
        The random images; None draws them from ``data`` (every class, seeded).
    layer : str or None
        Layer path; None means the last convolutional layer.
    runs : int
        Runs against different random sets, 2 to 50.
    class_images, concept_images, random_images : int
        At most this many images of each set are read.
    seed : int
    progress : callable(fraction, message) or None
        May raise :class:`~viz_core.errors.Cancelled` between steps.

    Raises
    ------
    ParameterError
        A count out of range, an unknown layer or class, no image of the class, or too few
        concept or random images that could be read.
    """
    from viz_core.methods.checks import resolve_layer

    check_tcav_options(runs=runs, class_images=class_images, concept_images=concept_images,
                       random_images=random_images, seed=seed)
    layer = resolve_layer(model, layer)
    class_index = model.class_index(class_index)
    class_name = model.label(class_index)
    report = progress or (lambda fraction, message: None)

    def part(start: float, end: float, what: str) -> ProgressFn:
        return lambda f, m: report((start + (end - start) * f) * _READ_SHARE, f"{what}: {m}")

    report(0.0, "reading the images")
    chosen = _spread(class_entries(data, class_index, class_name), class_images)
    shown = read_set(model, data, chosen, progress=part(0.0, 0.4, "class images"))
    ideas = read_set(model, concept, _spread(list(concept.entries), concept_images),
                     progress=part(0.4, 0.6, "concept images"))
    pool_source = data if random is None else random
    pool = read_set(model, pool_source, _drawn(list(pool_source.entries), random_images, seed),
                    progress=part(0.6, 1.0, "random images"))
    if len(shown) == 0:
        raise ParameterError(f"None of the images of {class_name!r} in {data.name!r} could be "
                             "read.")
    if len(ideas) < CONCEPT_IMAGES.low:
        raise ParameterError(f"TCAV needs at least {CONCEPT_IMAGES.low} concept images; "
                             f"{concept.name!r} gave {len(ideas)} readable images.")
    result = tcav(model, shown.pixels, ideas.pixels, pool.pixels, class_index, layer,
                  runs=runs, concept=concept.name, seed=seed,
                  progress=lambda f, m: report(_READ_SHARE + (1 - _READ_SHARE) * f, m))
    skipped = shown.skipped + ideas.skipped + (pool.skipped if random is not None else ())
    return TcavRun(result, data.name, concept.name, pool_source.name, shown.paths, ideas.paths,
                   len(pool), tuple(dict.fromkeys(skipped)))

"""Helpers shared by the commands: model, image and output arguments, checks, progress bar.

Importing this module is cheap (no NumPy, no TensorFlow): the commands' ``register`` functions
run for ``--help`` and for every argument error, which must answer before TensorFlow loads.
Everything a handler needs from the backend is imported inside the function that needs it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from viz_core.errors import ImageError, ModelError, ParameterError
# The choices the parser lists come from modules that import neither NumPy nor TensorFlow;
# the commands import them from here.
from viz_core.models.builtin_models import BUILTIN_NAMES
from viz_core.models.class_names import read_class_names
from viz_core.models.preprocess_names import PREPROCESSING_NAMES
from viz_core.render.choices import BLEND_HELP, BLENDS, COLORMAPS  # noqa: F401 (commands)
from viz_core.runtime.limits import IMAGES, OPACITY, Bound

if TYPE_CHECKING:
    from viz_core.models.catalog import LoadedModel
    from viz_core.inputs.intake import LoadedImage
    from viz_core.runtime.workbench import Workbench

DEFAULT_MODEL = "demo"
DEFAULT_PREPROCESS = "unit"
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


# -- argparse types ------------------------------------------------------------------------------
def bounded(bound: Bound) -> Callable[[str], float]:
    """An argparse ``type`` for a number in ``bound``: a bad value is argparse's own one-line
    error (exit status 2), in the words the backend would use."""
    def parse(text: str):
        try:
            value = int(text) if bound.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{bound.what} must be {bound.describe()}; got {text!r}.") from None
        try:
            return bound.check(value)
        except ParameterError as exc:
            raise _argument_error(exc) from None
    parse.__name__ = bound.what
    return parse


def checked(check: Callable[[str], object], what: str) -> Callable[[str], object]:
    """An argparse ``type`` made of a backend check (``check(text)`` returns the value or
    raises :class:`ParameterError`): a bad value is argparse's own one-line error (exit status
    2) while parsing, before TensorFlow loads, in the words the backend would use."""
    def parse(text: str):
        try:
            return check(text)
        except ParameterError as exc:
            raise _argument_error(exc) from None
    parse.__name__ = what
    return parse


def _argument_error(exc: ParameterError) -> argparse.ArgumentTypeError:
    # argparse writes "argument --flag: <message>": the sentence goes on in lower case
    message = str(exc)
    return argparse.ArgumentTypeError(message[:1].lower() + message[1:])


def input_file(what: str = "file") -> Callable[[str], str]:
    """An argparse ``type`` for a file to read: it must exist and be a readable file."""
    def parse(text: str) -> str:
        problem = file_problem(text, what)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return text
    parse.__name__ = what
    return parse


def file_problem(text: str, what: str = "file") -> str | None:
    """Why ``text`` is not a readable file, in a sentence, or None."""
    path = Path(text)
    if not text:
        return f"the {what} name is empty."
    if path.is_dir():
        return f"{text!r} is a folder, not a {what}."
    if not path.exists():
        return f"the {what} {text!r} does not exist."
    if not path.is_file():
        return f"{text!r} is not a regular file (a device or a pipe?); give a {what}."
    if not os.access(path, os.R_OK):
        return f"the {what} {text!r} cannot be read (no permission)."
    return None


def model_argument(text: str) -> str:
    """``--model``: a built-in model's name or an existing model file."""
    if text in BUILTIN_NAMES:  # a name wins over a file of that name in the current folder
        return text
    if os.sep in text or "/" in text or text.lower().endswith(MODEL_SUFFIXES) or \
            Path(text).exists():
        problem = file_problem(text, "model file")
        if problem:
            raise argparse.ArgumentTypeError(problem)
    else:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a built-in model ({', '.join(BUILTIN_NAMES)}) nor a file.")
    return text


def labels_argument(text: str) -> str:
    """``--labels``: an existing UTF-8 text file of class names (checked here, read later)."""
    try:
        read_labels(text)
    except ParameterError as exc:
        raise _argument_error(exc) from None
    return text


def read_labels(text: str) -> list[str]:
    """Class names from a UTF-8 text file, one per non-blank line.

    Raises
    ------
    ParameterError
        Not a readable file, larger than 1 MB, or not UTF-8 (the message names the line).
    """
    problem = file_problem(text, "labels file")
    if problem:
        raise ParameterError(problem[0].upper() + problem[1:])
    return list(read_class_names(text))


def output_folder(text: str) -> str:
    """``--out``: a folder that exists or can be made, and can be written into."""
    problem = folder_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def folder_problem(text: str) -> str | None:
    """Why files cannot be written into the folder ``text`` (made when missing), or None."""
    if not text:
        return "the output folder name is empty."
    path = Path(text)
    if path.exists() and not path.is_dir():
        return f"{text!r} is a file, not a folder to write into."
    existing = path
    while not existing.exists():  # the nearest existing ancestor decides
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        return (f"{text!r} cannot be made: {str(existing)!r} is a file, not a folder.")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write into {str(existing)!r} (no permission)."
    return None


# -- arguments -----------------------------------------------------------------------------------
def add_dataset_args(p) -> None:
    """The model and dataset options of the commands that read a whole dataset (``dataset``,
    ``atlas``, ``concepts``, ``tcav``): a model name or file with its weights, preprocessing and
    class names, and the images (opened by :func:`viz_core.dataset.listing.open_named`) with
    their labels."""
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="built-in model name, shortcut_demo, or a .keras/.h5 file "
                   f"(default: {DEFAULT_MODEL})")
    p.add_argument("--weights", default=None, choices=("imagenet", "none"),
                   help="weights of a Keras Applications model (default: imagenet)")
    p.add_argument("--preprocess", default=None, choices=PREPROCESSING_NAMES,
                   help="preprocessing of a model file (default: unit = x/255)")
    p.add_argument("--class-names", default=None, metavar="FILE",
                   help="text file with one class name per line, for a model file")
    p.add_argument("--offline", action="store_true", help="never try to download weights")
    p.add_argument("--data", required=True, metavar="DIR_OR_ZIP",
                   help="dataset folder, .zip file, sample:shapes / sample:shortcut, or "
                   "sample:NAME:COUNT (a sample's first COUNT scenes, as the pages draw them)")
    p.add_argument("--labels", dest="labels_csv", default=None, metavar="CSV",
                   help="CSV with rows filename,label (default: class folders, or one *.csv "
                   "at the dataset's top)")


def add_overlay_args(parser) -> None:
    """``--blend`` and ``--opacity``: how a heatmap's colour covers the image in an overlay."""
    parser.add_argument("--blend", default="heat", choices=BLENDS,
                        help="how the colour covers the image: " + "; ".join(
                            f"{k}: {v}" for k, v in BLEND_HELP.items()) + " (default heat)")
    parser.add_argument("--opacity", type=bounded(OPACITY), default=None,
                        help=f"the colour's opacity, {OPACITY.low:g} to {OPACITY.high:g}: at "
                        "the hottest point with --blend heat (default 1), everywhere with "
                        "--blend uniform (default 0.5)")


def add_model_args(parser) -> None:
    """``--model NAME|PATH --weights --preprocess --labels --offline``."""
    parser.add_argument("--model", default=DEFAULT_MODEL, type=model_argument,
                        help="built-in model name (list them with the 'models' command) or a "
                        f".keras/.h5 file (default: {DEFAULT_MODEL})")
    parser.add_argument("--weights", default=None, choices=("imagenet", "none"),
                        help="weights of a Keras Applications model (default: imagenet)")
    parser.add_argument("--preprocess", default=None, choices=PREPROCESSING_NAMES,
                        help="preprocessing of a model file (default: unit = x/255)")
    parser.add_argument("--labels", default=None, type=labels_argument, metavar="FILE",
                        help="UTF-8 text file with one class name per line, for a model file")
    parser.add_argument("--offline", action="store_true",
                        help="never try to download ImageNet weights")


def add_output_args(parser, *, needs_out: bool = True) -> None:
    if needs_out:
        parser.add_argument("--out", required=True, type=output_folder, metavar="FOLDER",
                            help="folder to write files into (made when missing)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TensorFlow's and the libraries' own log messages")
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--progress", action="store_true",
                       help="draw the progress line on stderr even when it is not a terminal")
    shown.add_argument("--quiet", action="store_true", help="no progress line")


def add_image_args(parser) -> None:
    parser.add_argument("--image", action="append", required=True, metavar="PATH",
                        type=input_file("image file"), help="image file (repeat for several)")


def is_model_file(args) -> bool:
    """Whether ``--model`` names a file (else it is a built-in name)."""
    return args.model not in BUILTIN_NAMES and Path(args.model).is_file()


def model_option_problem(args) -> str | None:
    """Why options given with ``--model`` do not apply to it, or None.

    Class names and preprocessing belong to a model file (a built-in model has its own);
    ImageNet weights belong to a built-in model."""
    if not hasattr(args, "model"):
        return None
    if is_model_file(args):
        if getattr(args, "weights", None) is not None:
            return (f"--weights does not apply to the model file {args.model!r}: its weights "
                    "are in the file.")
        return None
    given = [flag for flag, value in (("--labels", getattr(args, "labels", None)),
                                      ("--preprocess", getattr(args, "preprocess", None)))
             if value is not None]
    if given:
        return (f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} only to a "
                f"model file; the built-in model {args.model!r} has its own class names and "
                "preprocessing.")
    return None


def open_model(bench: Workbench, args) -> LoadedModel:
    """The model named by ``--model`` (a built-in name or a file path)."""
    problem = model_option_problem(args)
    if problem:
        raise ParameterError(problem[0].upper() + problem[1:])
    name = args.model
    if not is_model_file(args):
        if name not in BUILTIN_NAMES:
            raise ModelError(
                f"{name!r} is neither a built-in model ({', '.join(BUILTIN_NAMES)}) nor a file."
            )
        return bench.builtin_model(name, args.weights or "imagenet",
                                   allow_download=not getattr(args, "offline", False),
                                   progress=download_line(args))
    path = Path(name)
    labels = read_labels(args.labels) if args.labels else None
    return bench.uploaded_model(path.read_bytes(), path.name,
                                preprocessing=args.preprocess or DEFAULT_PREPROCESS,
                                labels=labels)


def check_images(paths) -> None:
    """Decode every image once before the model loads (and before TensorFlow is imported),
    so a file that is no image fails in a moment; the decoded pixels are not kept.

    Raises
    ------
    ImageError
        A path that is not a readable image file, with the reason.
    """
    from viz_core.inputs.intake import load_image

    if paths:
        IMAGES.check(len(paths))
    for p in paths:
        load_image(_image_bytes(p), Path(p).name)


def _image_bytes(p: str) -> bytes:
    from viz_core.inputs.intake import MAX_BYTES

    problem = file_problem(p, "image file")
    if problem:
        raise ImageError(problem[0].upper() + problem[1:])
    path = Path(p)
    if path.stat().st_size > MAX_BYTES:  # refused before reading it into memory
        raise ImageError(f"The image file {p!r} is {path.stat().st_size / 2**20:.0f} MB; "
                         f"up to {MAX_BYTES // 2**20} MB are accepted.")
    return path.read_bytes()


def open_images(bench: Workbench, paths) -> list[LoadedImage]:
    IMAGES.check(len(paths))
    return [bench.image(_image_bytes(p), Path(p).name) for p in paths]


def unique_stems(images: Sequence[LoadedImage], clean: Callable[[str], str] | None = None
                 ) -> list[str]:
    """File name stems of ``images``: their names (through ``clean`` when given, e.g. the
    ASCII-safe form a command writes), with ``_2``, ``_3``... added when two would be the same,
    also when they differ only in case (the export bundle names its input files the same way)."""
    taken: set[str] = set()
    stems = []
    for image in images:
        base = clean(image.name) if clean else image.name
        stem, n = base, 1
        while stem.casefold() in taken:
            n += 1
            stem = f"{base}_{n}"
        taken.add(stem.casefold())
        stems.append(stem)
    return stems


def out_dir(args) -> Path:
    problem = folder_problem(args.out)
    if problem:
        raise ParameterError(problem[0].upper() + problem[1:])
    folder = Path(args.out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ParameterError(f"The output folder {args.out!r} cannot be made: "
                             f"{exc.strerror or exc}.") from None
    return folder


def emit(args, payload: dict, lines: list[str]) -> None:
    """Print JSON (``--json``) or human-readable lines, on ``args.stdout`` when it is set (the
    export bundle's in-process run, so the server's ``sys.stdout`` is never swapped)."""
    stream = getattr(args, "stdout", None) or sys.stdout
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=None, default=_jsonable), file=stream)
    else:
        for line in lines:
            print(line, file=stream)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def progress_bar(args) -> TerminalProgress:
    """The progress line a command draws: on a terminal unless ``--json`` or ``--quiet``;
    anywhere with ``--progress``."""
    if getattr(args, "quiet", False):
        return TerminalProgress(enabled=False)
    if getattr(args, "progress", False):
        return TerminalProgress(always=True)
    return TerminalProgress(enabled=not getattr(args, "json", False))


def download_line(args) -> Callable[[int, int | None, float], None]:
    """A weights download's ``progress(done_bytes, total_bytes, seconds)`` drawn on the
    command's progress line (:func:`progress_bar`): size so far and time left."""
    from viz_core.models.downloads import describe_progress  # no TensorFlow there

    bar = progress_bar(args)

    def progress(done: int, total: int | None, seconds: float) -> None:
        fraction, text = describe_progress(done, total, seconds)
        bar(fraction or 0.0, f"weights: {text}")
    return progress


class TerminalProgress:
    """A ``progress(fraction, message)`` callback drawing a bar on stderr: only when stderr is
    a terminal, unless ``always``."""

    def __init__(self, enabled: bool = True, width: int = 30, *, always: bool = False):
        self.enabled = always or (enabled and sys.stderr.isatty())
        self.width = width

    def __call__(self, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        filled = int(round(max(0.0, min(1.0, fraction)) * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {fraction * 100:5.1f}% {message[:48]:<48}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

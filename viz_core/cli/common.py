"""Helpers shared by the commands: model and image arguments, output, progress bar."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

from ..catalog import BUILTIN_NAMES, LoadedModel
from ..errors import ImageError, ModelError, ParameterError
from ..intake import LoadedImage
from ..preprocess import PREPROCESSING_NAMES
from ..workbench import Workbench

DEFAULT_MODEL = "demo"


def add_model_args(parser) -> None:
    """``--model NAME|PATH --weights --preprocess --labels``."""
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"built-in name ({', '.join(BUILTIN_NAMES)}) or a .keras/.h5 file "
                        f"(default: {DEFAULT_MODEL})")
    parser.add_argument("--weights", default="imagenet", choices=("imagenet", "none"),
                        help="weights for Keras Applications (default: imagenet)")
    parser.add_argument("--preprocess", default="unit", choices=PREPROCESSING_NAMES,
                        help="preprocessing for a model file (default: unit = x/255)")
    parser.add_argument("--labels", default=None,
                        help="text file with one class name per line, for a model file")
    parser.add_argument("--offline", action="store_true",
                        help="never try to download ImageNet weights")


def add_output_args(parser, *, needs_out: bool = True) -> None:
    if needs_out:
        parser.add_argument("--out", required=True, help="folder to write files into")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def add_image_args(parser) -> None:
    parser.add_argument("--image", action="append", required=True, metavar="PATH",
                        help="image file (repeat for several)")


def open_model(bench: Workbench, args) -> LoadedModel:
    """The model named by ``--model`` (a built-in name or a file path)."""
    name = args.model
    if name in BUILTIN_NAMES:
        return bench.builtin_model(name, args.weights,
                                   allow_download=not getattr(args, "offline", False))
    path = Path(name)
    if not path.exists():
        raise ModelError(
            f"{name!r} is neither a built-in model ({', '.join(BUILTIN_NAMES)}) nor a file."
        )
    labels = None
    if args.labels:
        label_path = Path(args.labels)
        if not label_path.exists():
            raise ParameterError(f"The labels file {args.labels!r} does not exist.")
        labels = [line for line in label_path.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    return bench.uploaded_model(path.read_bytes(), path.name,
                                preprocessing=args.preprocess, labels=labels)


def open_images(bench: Workbench, paths) -> list[LoadedImage]:
    images = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise ImageError(f"The image file {p!r} does not exist.")
        images.append(bench.image(path.read_bytes(), path.name))
    return images


def unique_stems(images: Sequence[LoadedImage]) -> list[str]:
    """File name stems of ``images``: their names, with ``_2``, ``_3``... added when two
    images have the same name (the export bundle names its input files the same way)."""
    seen: dict[str, int] = {}
    stems = []
    for image in images:
        n = seen.get(image.name, 0)
        seen[image.name] = n + 1
        stems.append(image.name if n == 0 else f"{image.name}_{n + 1}")
    return stems


def out_dir(args) -> Path:
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
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


class TerminalProgress:
    """A ``progress(fraction, message)`` callback drawing a bar on stderr (silent with --json)."""

    def __init__(self, enabled: bool = True, width: int = 30):
        self.enabled = enabled and sys.stderr.isatty()
        self.width = width

    def __call__(self, fraction: float, message: str = "") -> None:
        if not self.enabled:
            return
        filled = int(round(max(0.0, min(1.0, fraction)) * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        sys.stderr.write(f"\r[{bar}] {fraction * 100:5.1f}% {message[:40]:<40}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

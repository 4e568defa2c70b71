"""Export bundles: every picture of a view, its parameters, and the command that remakes them.

A bundle is made by running the view's own command-line command in-process (with the
dashboard's workbench, so cached results are reused) on copies of the images, so the command
written into the bundle reproduces its pictures bit for bit. Layout of the ZIP::

    command.txt       python -m viz_core <command> ... --image input/<stem>.png --out pictures
    parameters.json   what the page showed (model, images, layer, class, method, display options)
    input/<stem>.png  the images, decoded (EXIF applied, alpha flattened), losslessly (none
                      for a view without images, such as filter patterns)
    model/...         an uploaded model file (and its class names), when the view used one
    pictures/...      everything the command wrote
    README.txt        how to reproduce
"""
from __future__ import annotations

import contextlib
import io
import json
import shlex
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

from .cli.common import unique_stems
from .errors import ParameterError
from .intake import LoadedImage
from .render import png_bytes

_README = """This bundle was exported from CNN Explorer.

pictures/ holds every picture of the view; parameters.json the settings that made them.
To make them again, from this folder, with the project installed:

    {command}
{images}"""
_IMAGES_NOTE = "\n(The images in input/ are the decoded pixels the dashboard used.)\n"
_FILES_NOTE = "\n(model/ holds the uploaded model file the dashboard used.)\n"


def bundle_command(command: str, options: Sequence[str],
                   images: Sequence[LoadedImage]) -> list[str]:
    """The argument list (after ``python -m viz_core``) a bundle records, with relative paths."""
    argv = [command, *map(str, options)]
    for stem in unique_stems(images):
        argv += ["--image", f"input/{stem}.png"]
    return argv + ["--out", "pictures"]


def export_bundle(
    command: str,
    options: Sequence[str],
    images: Sequence[LoadedImage],
    parameters: dict,
    bench=None,
    files: Mapping[str, bytes] | None = None,
) -> bytes:
    """Run ``python -m viz_core <command> <options>`` in-process and zip what it wrote.

    Parameters
    ----------
    command : str
        A command of :mod:`viz_core.cli` (``heatmap``, ``activations``, ``lime``...).
    options : sequence of str
        Its options except ``--image``, ``--out`` and ``--json``, e.g.
        ``["--model", "demo", "--class", "3"]``.
    images : sequence of LoadedImage
        Written losslessly as ``input/<stem>.png``; empty for a command without images
        (``filters``).
    parameters : dict
        JSON-serialisable description of the view, stored as ``parameters.json``.
    bench : Workbench or None
        Reused so the command answers from the dashboard's caches.
    files : mapping of str to bytes, optional
        More files the command reads, by relative path (e.g. ``{"model/model.keras": data}``
        for an uploaded model, named so in ``options``); stored in the bundle as they are.

    Returns
    -------
    bytes
        The ZIP archive.
    """
    from .cli import build_parser  # the CLI imports the techniques; only needed here

    relative = bundle_command(command, options, images)
    with tempfile.TemporaryDirectory(prefix="viz_bundle_") as tmp:
        root = Path(tmp)
        (root / "input").mkdir()
        for stem, image in zip(unique_stems(images), images):
            (root / "input" / f"{stem}.png").write_bytes(png_bytes(image.pixels))
        extra = dict(files or {})
        for name, data in extra.items():
            path = (root / name).resolve()
            if not name or Path(name).is_absolute() or root.resolve() not in path.parents:
                raise ParameterError(f"A bundle file must have a relative path; got {name!r}.")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        absolute = [str(root / a) if a.startswith("input/") or a == "pictures" or a in extra
                    else a for a in relative]
        args = build_parser().parse_args([*absolute, "--json"])
        with contextlib.redirect_stdout(io.StringIO()):
            status = args.handler(args, bench=bench)
        if status:
            raise ParameterError(f"The export command stopped with status {status}.")
        line = "python -m viz_core " + shlex.join(relative)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("command.txt", line + "\n")
            archive.writestr("parameters.json", json.dumps(parameters, indent=2, default=str))
            archive.writestr("README.txt", _README.format(
                command=line,
                images=(_IMAGES_NOTE if images else "") + (_FILES_NOTE if extra else "")))
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(root).as_posix())
        return buffer.getvalue()

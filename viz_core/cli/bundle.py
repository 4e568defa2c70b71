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

Option values are data, never options: a layer called ``-h`` or a class called
``--out=/tmp/x`` is written ``--layer=-h`` / ``--class=--out=/tmp/x`` and every word is
shell-quoted, so ``command.txt`` means what the page showed, and the command is parsed in-process
by a parser that raises :class:`~viz_core.errors.ParameterError` instead of exiting the process.
"""
from __future__ import annotations

import argparse
import io
import json
import shlex
import tempfile
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

from viz_core.cli.common import unique_stems
from viz_core.errors import ParameterError
from viz_core.inputs.intake import LoadedImage
from viz_core.render import png_bytes

_README = """This bundle was exported from CNN Explorer.

pictures/ holds every picture of the view; parameters.json the settings that made them.
To make them again, run command.txt from this folder with the project installed: the
project's Quickstart installs it into its .venv, so, from this folder,

    source /path/to/the/project/.venv/bin/activate
    {command}

(or `pip install cnn-explorer-*.whl` / `pip install /path/to/the/project` in any Python 3.11
environment). The pictures come out identical, byte for byte.
{images}"""
_IMAGES_NOTE = "\n(The images in input/ are the decoded pixels the dashboard used.)\n"
# what each folder of uploaded files holds, said only for the folders the bundle has
_FOLDER_NOTES = {"model": "model/ holds the uploaded model file (and its class names) the "
                          "dashboard used.",
                 "data": "data/ holds the uploaded dataset files (ZIP, labels CSV, image "
                         "sets) the dashboard used."}


def files_note(paths) -> str:
    """The README's line about the uploaded files' folders among ``paths`` ('' for none)."""
    folders = {str(p).split("/", 1)[0] for p in paths}
    said = [text for folder, text in _FOLDER_NOTES.items() if folder in folders]
    others = sorted(folders - set(_FOLDER_NOTES) - {""})
    if others:
        said.append(", ".join(f"{o}/" for o in others) + " holds files the command reads.")
    return "".join(f"\n({line})\n" for line in said)
# Options whose value is a path inside the bundle (made absolute for the in-process run).
# --data and --class-names: a dataset command's uploaded ZIP and an uploaded model's class names;
# --concept and --random: TCAV's concept and random images.
_PATH_OPTIONS = ("--image", "--out", "--model", "--labels", "--data", "--class-names",
                 "--concept", "--random")


class _RaisingParser(argparse.ArgumentParser):
    """An argument parser that raises instead of printing and ending the process.

    argparse's own parser calls ``sys.exit`` for ``-h`` and for every bad argument; inside the
    dashboard's server that would end the process for every user.
    """

    def exit(self, status=0, message=None):  # noqa: A003 (argparse's name)
        raise ParameterError(f"The export command could not be read: {message or 'exit'}")

    def error(self, message):
        raise ParameterError(f"The export command could not be read: {message}")

    def print_help(self, file=None):
        raise ParameterError("The export command could not be read: it asked for help.")


def _command_parser(command: str, parser_class=argparse.ArgumentParser):
    """The sub-parser of ``command`` (its options and which of them take a value)."""
    from viz_core.cli import build_parser  # the CLI imports the techniques; only needed here

    parser = build_parser(parser_class=parser_class)
    for action in parser._subparsers._group_actions:  # argparse keeps sub-parsers only here
        if command in action.choices:
            return parser, action.choices[command]
    raise ParameterError(f"{command!r} is not a command of python -m viz_core.")


def option_pairs(command: str, options: Sequence[str]) -> list[tuple[str, str | None]]:
    """Split a flat option list into ``(flag, value)`` pairs, ``value`` None for a switch.

    Which flags take a value is read from the command's own parser, so a value that looks like
    an option (``-h``, ``--out=/tmp/x``) is kept as the value of the flag before it.

    Raises
    ------
    ParameterError
        For a word that is not an option of ``command`` where a flag is expected, or a flag
        without its value.
    """
    _, sub = _command_parser(command)
    takes_value = {flag: action.nargs != 0
                   for action in sub._actions for flag in action.option_strings}
    pairs: list[tuple[str, str | None]] = []
    words = [str(word) for word in options]
    i = 0
    while i < len(words):
        flag = words[i]
        if flag not in takes_value:
            raise ParameterError(f"{flag!r} is not an option of the {command} command.")
        if not takes_value[flag]:
            pairs.append((flag, None))
            i += 1
            continue
        if i + 1 >= len(words):
            raise ParameterError(f"The option {flag} of the {command} command needs a value.")
        pairs.append((flag, words[i + 1]))
        i += 2
    return pairs


def _words(pairs: Sequence[tuple[str, str | None]]) -> list[str]:
    """Command-line words for ``pairs``: ``--flag value``, or ``--flag=value`` when the value
    could be read as an option (it starts with ``-``) or is empty."""
    words: list[str] = []
    for flag, value in pairs:
        if value is None:
            words.append(flag)
        elif value == "" or value.startswith("-"):
            words.append(f"{flag}={value}")
        else:
            words += [flag, value]
    return words


def _bundle_pairs(command: str, options: Sequence[str],
                  images: Sequence[LoadedImage]) -> list[tuple[str, str | None]]:
    pairs = option_pairs(command, options)
    pairs += [("--image", f"input/{stem}.png") for stem in unique_stems(images)]
    return pairs + [("--out", "pictures")]


def bundle_command(command: str, options: Sequence[str],
                   images: Sequence[LoadedImage]) -> list[str]:
    """The argument list (after ``python -m viz_core``) a bundle records, with relative paths;
    ``shlex.join`` of it is a shell command that passes every value through unchanged."""
    return [command, *_words(_bundle_pairs(command, options, images))]


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
        Its options except ``--image``, ``--out`` and ``--json``, as flags each followed by its
        value (switches alone), e.g. ``["--model", "demo", "--class", "3", "--negative"]``.
        Values are taken as they are, whatever they look like.
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

    Raises
    ------
    ParameterError
        For options the command does not take, or when the command stops with an error. The
        process is never ended, whatever the values.
    """
    pairs = _bundle_pairs(command, options, images)
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
        local = [(flag, str(root / value))
                 if flag in _PATH_OPTIONS and value is not None
                 and (flag in ("--image", "--out") or value in extra)
                 else (flag, value) for flag, value in pairs]
        parser, _ = _command_parser(command, parser_class=_RaisingParser)
        args = parser.parse_args([command, *_words(local), "--json"])
        args.stdout = io.StringIO()  # the command's report is not needed; sys.stdout untouched
        status = args.handler(args, bench=bench)
        if status:
            raise ParameterError(f"The export command stopped with status {status}.")
        line = "python -m viz_core " + shlex.join(bundle_command(command, options, images))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("command.txt", line + "\n")
            archive.writestr("parameters.json", json.dumps(parameters, indent=2, default=str))
            archive.writestr("README.txt", _README.format(
                command=line,
                images=(_IMAGES_NOTE if images else "") + files_note(extra or ())))
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                archive.write(path, path.relative_to(root).as_posix())
        return buffer.getvalue()

"""The command line: ``python -m viz_core <command> ...`` (installed: ``cnn-explorer``).

The same calls as the dashboard, with files and JSON out. Every command takes ``--json`` and
then prints exactly one JSON object on stdout. Bad input ends with exit status 2 and one line
``error: ...`` on stderr, never a traceback. Each command lives in its own module with
``register(subparsers)``.

Start-up is lazy: ``--help`` imports no command module, and a command's module is imported
only when that command is asked for; its ``register`` builds the parser without TensorFlow
(choices come from modules without NumPy: ``viz_core.models.builtin_models``,
``viz_core.render.choices``...), so argument errors are answered before TensorFlow loads (it
loads, quietly, just before the command runs).

Modules:
    common       arguments, checks and the progress bar shared by the commands
    basic        ``models``, ``info``, ``predict``
    activations  ``activations``: feature-map grids and ``.npy`` arrays
    filters      ``filters``: filter patterns as a grid and one PNG per filter
    heatmap      ``heatmap``: class heatmaps as overlays, ``.npy`` and JSON
    methods      ``methods``: the registry of explanation methods
    metrics      ``metrics``: the registry of metrics
    lime         ``lime``: superpixels and LIME explanations
    evaluate     ``evaluate`` (pointing game), ``compare``, ``sanity``
    dataset      ``dataset``: a model over a folder, ZIP or sample of images
    atlas        ``atlas``: each unit's top and bottom images over a dataset (neuron atlas)
    concepts     ``concepts``: CRAFT concepts of a class over a dataset
    tcav         ``tcav``: TCAV score of a concept (images) for a class at a layer
    unit         ``unit``: the arithmetic of one output number of a layer (lesson mode)
    app          ``app``: start the dashboard
    bundle       export bundles: a view's pictures, parameters and the command remaking them
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from viz_core.errors import VizError

# Command -> (module defining it, one-line help), in the order ``--help`` lists them. The help
# texts are the ones the modules register (a test keeps them equal).
COMMANDS = {
    "models": ("basic", "list the built-in models"),
    "info": ("basic", "describe a model: input, output kind, layers"),
    "predict": ("basic", "top classes for images"),
    "activations": ("activations", "feature maps: one grid PNG and one .npy per image and layer"),
    "filters": ("filters", "filter patterns: what each filter of a layer responds to "
                "(gradient ascent)"),
    "heatmap": ("heatmap", "class heatmaps: Grad-CAM, Grad-CAM++, Score-CAM, saliency..."),
    "methods": ("methods", "list the explanation methods: names, families, parameters and "
                "their defaults"),
    "metrics": ("metrics", "list the metrics of explanation maps: names, which way is "
                "better, papers"),
    "lime": ("lime", "LIME: which superpixels carried the prediction"),
    "evaluate": ("evaluate", "pointing game: does each method's strongest point hit the shape?"),
    "compare": ("evaluate", "several explanation methods side by side, with faithfulness "
                "curves"),
    "sanity": ("evaluate", "sanity check: do the maps change when the model's layers are "
               "random?"),
    "dataset": ("dataset", "a model over a folder or ZIP of images: accuracy, heatmaps, "
                "shortcut finder"),
    "atlas": ("atlas", "neuron atlas: each channel's top and bottom images from a dataset, "
              "class selectivity"),
    "concepts": ("concepts", "CRAFT concepts: what a model found in a class's images, with "
                 "importance and maps"),
    "tcav": ("tcav", "TCAV: does a class's score rise along a concept (images you give) at "
             "a layer?"),
    "unit": ("unit", "the arithmetic of one output number of a layer: patch, kernel, "
             "products, sum, bias"),
    "app": ("app", "start the dashboard (streamlit run on the installed app)"),
}
DESCRIPTION = ("See inside convolutional networks: export feature maps, filter patterns, "
               "class heatmaps and LIME explanations as files.")


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors on one line, ``error: ...`` (no usage block), exit status 2."""

    def error(self, message):
        message = " ".join(str(message).split()).rstrip(".")  # one line, whatever the value
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def _program() -> str:
    name = os.path.basename(sys.argv[0] or "")
    return "cnn-explorer" if name.startswith("cnn-explorer") else "python -m viz_core"


def _asked_command(argv) -> str | None:
    # The top-level parser has no option that takes a value: the first word that is not an
    # option names the command.
    return next((word for word in argv if not word.startswith("-")), None)


def build_parser(parser_class=argparse.ArgumentParser, *, command: str | None = None,
                 prog: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser; ``parser_class`` (inherited by the sub-parsers) lets the
    export bundle parse with one that raises instead of ending the process.

    With ``command`` given, only the module defining it is imported (the other commands are
    listed by name; ``""`` imports none); with None, every command's module is."""
    parser = parser_class(prog=prog or _program(), description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if command is None:
        wanted = dict.fromkeys(module for module, _ in COMMANDS.values())
    else:
        wanted = [COMMANDS[command][0]] if command in COMMANDS else []
    for module in wanted:
        full = f"{__name__}.{module}"
        if importlib.util.find_spec(full) is not None:
            importlib.import_module(full).register(commands)
    for name, (_, text) in COMMANDS.items():  # the rest: names and help only
        if name not in commands.choices:
            commands.add_parser(name, help=text, add_help=False)
    return parser


def quiet_libraries() -> None:
    """Load TensorFlow with its start-up logs silenced (:mod:`viz_core.runtime.quiet`) and quiet the
    libraries' Python logs and warnings: a command's stderr is its own error line."""
    import warnings

    from viz_core.runtime.quiet import import_tensorflow_quietly, quiet_library_logs

    warnings.simplefilter("ignore")
    import_tensorflow_quietly()
    quiet_library_logs()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(OneLineParser, command=_asked_command(argv) or "")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the help or its one-line error
        return int(exc.code or 0)
    from viz_core.cli.common import check_images, model_option_problem

    problem = model_option_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        check_images(getattr(args, "image", None) or ())  # before TensorFlow: fails fast
        if getattr(args, "needs_tensorflow", True) and not getattr(args, "verbose", False):
            quiet_libraries()
        return int(args.handler(args) or 0)
    except VizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

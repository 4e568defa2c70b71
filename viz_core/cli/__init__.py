"""The command line: ``python -m viz_core <command> ...``.

Every command takes ``--json`` and then prints exactly one JSON object on stdout. Bad input
ends with exit status 2 and one line ``error: ...`` on stderr, never a traceback.
Each command lives in its own module with ``register(subparsers)``.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from ..errors import VizError

# Modules that define commands, in the order ``--help`` lists them.
COMMAND_MODULES = ("basic", "activations", "filters", "heatmap", "lime", "evaluate")


def build_parser(parser_class=argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The command line's parser; ``parser_class`` (inherited by the sub-parsers) lets the
    export bundle parse with one that raises instead of ending the process."""
    parser = parser_class(
        prog="python -m viz_core",
        description="See inside convolutional networks: export feature maps, filter patterns, "
        "class heatmaps and LIME explanations as files.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        full = f"{__name__}.{name}"
        if importlib.util.find_spec(full) is None:
            continue
        importlib.import_module(full).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed "usage ... error: ..."
        return int(exc.code or 0)
    try:
        return int(args.handler(args) or 0)
    except VizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130

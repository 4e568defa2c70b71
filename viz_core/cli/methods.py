"""Command ``methods``: the registry of explanation methods (:mod:`viz_core.methods.registry`).

``python -m viz_core methods --json`` prints ``[{"name", "title", "family", "params":
{name: default}}]``, one entry per registered method, in the registry's order. No TensorFlow
is loaded.
"""
from __future__ import annotations

import json
import sys

from viz_core.methods import registry as methods

HELP = "list the explanation methods: names, families, parameters and their defaults"


def register(commands) -> None:
    p = commands.add_parser(
        "methods", help=HELP,
        description="List every explanation method the heatmap, compare, sanity and evaluate "
        "commands accept, with its family (layer, pixel-gradient, perturbation, relevance) and its "
        "parameters' defaults and ranges.")
    p.add_argument("--json", action="store_true",
                   help="print one JSON list [{name, title, family, params: {name: default}}]")
    p.set_defaults(handler=cmd_methods, needs_tensorflow=False)


def cmd_methods(args) -> int:
    out = getattr(args, "stdout", None) or sys.stdout
    if args.json:
        print(json.dumps(methods.as_json()), file=out)
        return 0
    for spec in methods.specs():
        params = ", ".join(f"{p.name}={p.default if p.default is not None else 'None'} "
                           f"({p.low} to {p.high})" for p in spec.params) or "no parameters"
        print(f"{spec.name:<22} {spec.title} · {spec.family} · {params}", file=out)
    return 0

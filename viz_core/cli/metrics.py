"""Command ``metrics``: the registry of metrics (:mod:`viz_core.metrics.registry`).

``python -m viz_core metrics --json`` prints ``[{"name", "title", "direction", "paper",
"params": {name: default}}]``, one entry per registered metric, in the registry's order
(``direction`` is ``"higher"`` or ``"lower"``: which way is better). No TensorFlow is loaded.
"""
from __future__ import annotations

import json
import sys

from viz_core.metrics import registry as metrics

HELP = "list the metrics of explanation maps: names, which way is better, papers"


def register(commands) -> None:
    p = commands.add_parser(
        "metrics", help=HELP,
        description="List every metric the compare command reports for each method's map "
        "(and the Compare methods page shows), with which way is better, its paper and its "
        "parameters' defaults.")
    p.add_argument("--json", action="store_true",
                   help="print one JSON list [{name, title, direction, paper, params}]")
    p.set_defaults(handler=cmd_metrics, needs_tensorflow=False)


def cmd_metrics(args) -> int:
    out = getattr(args, "stdout", None) or sys.stdout
    if args.json:
        print(json.dumps(metrics.as_json()), file=out)
        return 0
    width = max(len(s.name) for s in metrics.specs())
    for spec in metrics.specs():
        params = ", ".join(f"{name}={value}" for name, value in spec.defaults().items())
        print(f"{spec.name:<{width}}  {spec.arrow} {spec.title} · {spec.direction} is better · "
              f"{spec.paper}" + (f" · {params}" if params else ""), file=out)
    return 0

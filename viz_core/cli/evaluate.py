"""Command ``evaluate``: the pointing game on freshly generated shape scenes.

``python -m viz_core evaluate --model demo --methods gradcam,scorecam --scenes 20 --json``
prints ``{"model", "scenes", "seed", "shapes_per_scene", "tolerance", "methods": [{"method",
"hits", "total", "hit_rate"}]}``.
"""
from __future__ import annotations

from ..faithfulness import MAP_METHODS, check_methods, method_title
from ..pointing import (
    DEFAULT_METHODS,
    DEFAULT_SCENES,
    DEFAULT_TOLERANCE,
    POINTING_FIRST_SEED,
    pointing_game,
)
from ..workbench import Workbench
from .common import TerminalProgress, add_model_args, add_output_args, emit, open_model


def register(commands) -> None:
    p = commands.add_parser(
        "evaluate", help="pointing game: does each method's strongest point hit the shape?",
        description="Draw fresh shape scenes with known boxes, explain each shape's class with "
        "every method and count a hit when the map's maximum lies inside the shape's box "
        "(widened by --tolerance pixels). Needs a model with the shape classes, such as demo.")
    add_model_args(p)
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma-separated methods from {', '.join(MAP_METHODS)} "
                   f"(default: {','.join(DEFAULT_METHODS)})")
    p.add_argument("--scenes", type=int, default=DEFAULT_SCENES,
                   help=f"number of scenes (default {DEFAULT_SCENES})")
    p.add_argument("--seed", type=int, default=POINTING_FIRST_SEED,
                   help="first scene seed; scene i uses seed + i (default: outside the demo "
                   "model's training seeds)")
    p.add_argument("--shapes", type=int, default=1,
                   help="shapes per scene, 1 to 4, each of another class (default 1)")
    p.add_argument("--tolerance", type=int, default=DEFAULT_TOLERANCE,
                   help=f"pixels the boxes are widened by, 0 to 20 (default {DEFAULT_TOLERANCE})")
    add_output_args(p, needs_out=False)
    p.set_defaults(handler=cmd_evaluate)


def cmd_evaluate(args) -> int:
    methods = check_methods(args.methods.split(","), MAP_METHODS)
    bench = Workbench()
    model = open_model(bench, args)
    result = pointing_game(model, methods, scenes=args.scenes, seed=args.seed,
                           shapes=args.shapes, tolerance=args.tolerance,
                           progress=TerminalProgress(enabled=not args.json))
    trials = result.scenes * result.shapes_per_scene
    width = max(len(method_title(s.method)) for s in result.scores)
    lines = [f"Pointing game on {model.title}: {result.scenes} scenes (seeds {result.seed} to "
             f"{result.seed + result.scenes - 1}), {trials} shapes, boxes widened by "
             f"{result.tolerance} px"]
    lines += [f"  {method_title(s.method):<{width}}  {s.hits:>4} / {s.total:<4}  "
              f"{s.hit_rate:6.1%}" for s in result.scores]
    emit(args, result.as_dict(), lines)
    return 0

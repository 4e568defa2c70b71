"""Command ``filters``: filter patterns of one layer as a grid PNG and one PNG per filter.

    python -m viz_core filters --model vgg16 --layer block3_conv1 --filters 0:64 --out f/ --json

writes ``block3_conv1_fast_grid.png`` and ``block3_conv1_fast_filter_007.png``...; results are
kept in the disk cache (``$CNN_VIZ_CACHE``, default ``~/.cache/cnn_viz``), so asking again is
instant, also in a later run.
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from viz_core.errors import ParameterError
from viz_core.runtime.limits import (
    FILTER_COUNT,
    FILTER_INDEX,
    FILTER_PER_ROW,
    FILTER_SIZE,
    FILTER_STEPS,
    SEED,
    filter_indices,
)
from viz_core.cli.common import (
    add_model_args,
    add_output_args,
    bounded,
    emit,
    open_model,
    out_dir,
    progress_bar,
)
from viz_core.features.filter_options import DEFAULT_SIZE, DEFAULT_STEPS, METHOD_HELP, METHODS

if TYPE_CHECKING:
    from viz_core.runtime.workbench import Workbench


def filter_selection(text: str) -> str:
    """``--filters``: ``0:64`` or ``1,4,9``, checked for size before any list is made (a
    range such as ``0:1000000000`` would take gigabytes as a tuple)."""
    try:
        chosen = filter_indices(text)
    except ParameterError as exc:
        message = str(exc)
        raise argparse.ArgumentTypeError(f"{message[0].lower()}{message[1:]}") from None
    # a range's ends bound all of it; a list's every index is checked
    indices = chosen if isinstance(chosen, tuple) else (chosen[0], chosen[-1]) if chosen else ()
    try:
        FILTER_COUNT.check(len(chosen))
        for index in indices:
            FILTER_INDEX.check(index)
    except ParameterError as exc:
        message = str(exc).rstrip(".")
        raise argparse.ArgumentTypeError(f"{message[0].lower()}{message[1:]} in {text!r}") \
            from None
    return text


def register(commands) -> None:
    p = commands.add_parser(
        "filters",
        help="filter patterns: what each filter of a layer responds to (gradient ascent)",
        description="Gradient ascent in input space: for each chosen filter, the picture that "
        "raises its mean activation most. Writes a grid PNG and one PNG per filter.",
    )
    add_model_args(p)
    p.add_argument("--layer", required=True, help="layer name, e.g. block3_conv1 or base/conv_b")
    p.add_argument("--filters", default=None, type=filter_selection,
                   help="a range like 0:64 (end excluded) or a list like 1,4,9 (default: the "
                   "first 64)")
    p.add_argument("--method", default="fast", choices=METHODS,
                   help="; ".join(f"{k}: {v}" for k, v in METHOD_HELP.items()))
    p.add_argument("--steps", type=bounded(FILTER_STEPS), default=None,
                   help="gradient-ascent steps (default: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_STEPS.items()) + ")")
    p.add_argument("--size", type=bounded(FILTER_SIZE), default=DEFAULT_SIZE,
                   help=f"side of each pattern in pixels, {FILTER_SIZE.low} to "
                   f"{FILTER_SIZE.high} (default {DEFAULT_SIZE})")
    p.add_argument("--per-row", type=bounded(FILTER_PER_ROW), default=8,
                   help=f"patterns per grid row, 1 to {FILTER_PER_ROW.high} (default 8)")
    p.add_argument("--seed", type=bounded(SEED), default=0,
                   help="seed of the noisy starts (default 0)")
    p.add_argument("--no-cache", action="store_true", help="compute again, ignore the disk cache")
    add_output_args(p)
    p.set_defaults(handler=cmd_filters)


def _file_stem(layer: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in layer.replace("/", "__"))


def _number(value: float) -> float | None:
    """A JSON-safe number: NaN (no ratio, flat pattern) becomes null; 4 significant digits."""
    value = float(value)
    return None if value != value else float(f"{value:.4g}")


def cmd_filters(args, bench: Workbench | None = None) -> int:
    from viz_core.features.filters import filter_count, filter_patterns, parse_filters
    from viz_core.render import png_bytes
    from viz_core.render.filter_grid import pattern_grid, with_alpha
    from viz_core.runtime.workbench import Workbench

    FILTER_PER_ROW.check(args.per_row)
    SEED.check(args.seed)
    if args.filters:
        filter_selection(args.filters)
    bench = bench or Workbench()
    model = open_model(bench, args)
    count = filter_count(model, args.layer)
    chosen = parse_filters(args.filters) if args.filters else tuple(range(min(64, count)))
    progress = progress_bar(args)
    result = filter_patterns(
        model, args.layer, chosen, method=args.method, steps=args.steps, size=args.size,
        seed=args.seed, disk=None if args.no_cache else bench.disk, progress=progress,
    )
    folder = out_dir(args)
    stem = f"{_file_stem(args.layer)}_{result.method}"
    width = max(3, len(str(count - 1)))
    rows, lines = [], []
    for position in range(len(result)):
        item = result.item(position)
        path = folder / f"{stem}_filter_{item.index:0{width}d}.png"
        picture = item.pattern if item.alpha is None else with_alpha(item.pattern, item.alpha)
        path.write_bytes(png_bytes(picture))
        rows.append({"index": item.index, "activation": item.activation, "dead": item.dead,
                     "robustness": _number(item.robustness),
                     "spectral_slope": _number(item.spectral_slope), "png": str(path)})
        lines.append(f"{path}  activation {item.activation:.4g}  robustness "
                     f"{item.robustness:.2f}  spectral slope {item.spectral_slope:.2f}"
                     + ("  (dead)" if item.dead else ""))
    grid = pattern_grid(result.patterns, columns=args.per_row, dead=result.dead,
                        alpha=result.alpha)
    grid_path = folder / f"{stem}_grid.png"
    grid_path.write_bytes(png_bytes(grid.image))
    source = "from the cache" if result.from_cache else f"in {result.seconds:.1f} s"
    summary = {key: _number(value) for key, value in result.summary().items()}
    lines.insert(0, f"{grid_path}  {len(result)} filters of {args.layer} ({result.method}, "
                 f"{result.steps} steps, {result.size} px, {source}); medians: activation "
                 f"{summary['activation']}, robustness {summary['robustness']}, spectral "
                 f"slope {summary['spectral_slope']}")
    payload = {
        "layer": args.layer,
        "method": result.method,
        "steps": result.steps,
        "size": result.size,
        "canvas": result.canvas,
        "seconds": round(result.seconds, 3),
        "from_cache": result.from_cache,
        "png": str(grid_path),
        "transparency": result.alpha is not None,
        "summary": summary,
        "filters": rows,
    }
    emit(args, payload, lines)
    return 0

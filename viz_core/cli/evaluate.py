"""Commands that judge explanations: ``evaluate`` (pointing game), ``compare`` and ``sanity``.

``python -m viz_core evaluate --model demo --methods gradcam,scorecam --scenes 20 --json``
prints ``{"model", "scenes", "seed", "shapes_per_scene", "tolerance", "methods": [{"method",
"hits", "total", "hit_rate"}]}``.

``compare`` writes, per image, each method's picture as the Compare methods page draws it
(``<image>_<method>_<class>.png``) and map (``.npy``), and the deletion / insertion curves and
rank-agreement matrix (``<image>_faithfulness_<class>.json``); each method's row holds every
registered metric (:mod:`viz_core.metrics.registry`) under its registry name, as the page
shows them.

``sanity`` writes, per image, every method's map at every randomisation step as the Sanity check
page draws it (``<image>_sanity_<method>_step<i>.png``) and the similarities and verdicts
(``<image>_sanity_<class>.json``).
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

from viz_core.methods import registry
from viz_core.metrics import registry as metric_registry
from viz_core.metrics.registry import BASELINES, DEFAULT_BASELINE, DEFAULT_CURVE_STEPS
from viz_core.metrics.choices import (
    DEFAULT_METRIC, DEFAULT_SCENES, DEFAULT_SEED, DEFAULT_THRESHOLD, DEFAULT_TOLERANCE,
    EDGE_CONTROL, METRICS, POINTING_FIRST_SEED)
from viz_core.render.choices import SHOW
from viz_core.runtime.limits import SIMILARITY_THRESHOLD
from viz_core.cli.common import (
    COLORMAPS,
    TerminalProgress,
    add_image_args,
    add_model_args,
    add_output_args,
    add_overlay_args,
    bounded,
    checked,
    emit,
    open_images,
    open_model,
    out_dir,
    unique_stems,
)

if TYPE_CHECKING:
    from viz_core.runtime.workbench import Workbench



# The method lists, from the registry (as maps.map_methods / compare_methods,
# pointing.default_methods and sanity.sanity_methods / default_methods make them, which a test
# keeps equal), without importing TensorFlow.
def map_methods() -> tuple[str, ...]:
    return registry.names()


def sanity_methods() -> tuple[str, ...]:
    return map_methods() + (EDGE_CONTROL,)


def _backend():
    """The modules that compute (they import TensorFlow), loaded when a command runs."""
    import numpy as np

    from viz_core.metrics import pointing
    from viz_core.metrics import sanity
    from viz_core.methods.heatmap import top_classes
    from viz_core.render import png_bytes
    from viz_core.models.targets import Target
    from viz_core.runtime.workbench import Workbench

    return np, pointing, sanity, top_classes, png_bytes, Target, Workbench


def register(commands) -> None:
    _register_evaluate(commands)
    _register_compare(commands)
    _register_sanity(commands)


def _methods_arg(parser, default, allowed) -> None:
    """``--methods a,b``: checked while parsing (before TensorFlow loads) by the registry's
    check, the one the backend runs (:func:`viz_core.methods.registry.check_names`); the value is the
    tuple of names, duplicates removed (argparse passes the text default through it too)."""
    def method_list(text: str) -> tuple[str, ...]:
        return registry.check_names(text.split(","), allowed)

    parser.add_argument("--methods", default=",".join(default),
                        type=checked(method_list, "method list"),
                        help=f"comma-separated methods from {', '.join(allowed)} "
                        f"(default: {','.join(default)})")


def _tag(method: str) -> str:
    return method.replace("+", "p")  # file-name friendly: gradcam++ -> gradcampp



def _class_of(model, view, args) -> int:
    if args.target is None:
        from viz_core.methods.heatmap import top_classes

        return top_classes(model, view, 1)[0][0]
    return model.class_index(args.target)


# --------------------------------------------------------------------------------------------
# evaluate: the pointing game
# --------------------------------------------------------------------------------------------
def _register_evaluate(commands) -> None:
    p = commands.add_parser(
        "evaluate", help="pointing game: does each method's strongest point hit the shape?",
        description="Draw fresh shape scenes with known boxes, explain each shape's class with "
        "every method and count a hit when the map's maximum lies inside the shape's box "
        "(widened by --tolerance pixels). Needs a model with the shape classes, such as demo.")
    add_model_args(p)
    _methods_arg(p, registry.names(), map_methods())
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


def cmd_evaluate(args, bench: Workbench | None = None) -> int:
    from viz_core.metrics.maps import method_title

    _, pointing, _, _, _, _, Workbench = _backend()
    pointing_game = pointing.pointing_game
    methods = args.methods  # checked while parsing
    bench = bench or Workbench()
    model = open_model(bench, args)
    result = bench.run(pointing_game, model, methods=methods, scenes=args.scenes,
                       seed=args.seed, shapes=args.shapes, tolerance=args.tolerance,
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


# --------------------------------------------------------------------------------------------
# compare: maps side by side, deletion / insertion, agreement
# --------------------------------------------------------------------------------------------
def _register_compare(commands) -> None:
    p = commands.add_parser(
        "compare", help="several explanation methods side by side, with faithfulness curves",
        description="Explain one class with several methods (each with its own default "
        "settings), draw the maps as the Compare methods page does, and measure how faithful "
        "each is: deletion / insertion curves of the class probability as the most important "
        "pixels are removed or revealed, and Spearman rank agreement between the maps.")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--class", dest="target", default=None, metavar="CLASS",
                   help="class index or name (default: the most probable class)")
    _methods_arg(p, registry.default_names(), map_methods())
    p.add_argument("--steps", type=int, default=DEFAULT_CURVE_STEPS,
                   help=f"points on each deletion / insertion curve (default "
                        f"{DEFAULT_CURVE_STEPS})")
    p.add_argument("--baseline", default=DEFAULT_BASELINE, choices=BASELINES,
                   help=f"what removed pixels become (default {DEFAULT_BASELINE})")
    p.add_argument("--colormap", default="viridis", choices=COLORMAPS,
                   help="colour map of the pictures (default viridis)")
    add_overlay_args(p)
    p.add_argument("--show", default="overlay", choices=SHOW,
                   help="overlay on the image, or the map alone (default overlay)")
    add_output_args(p)
    p.set_defaults(handler=cmd_compare)


def cmd_compare(args, bench: Workbench | None = None) -> int:
    from viz_core.metrics.agreement import rank_agreement
    from viz_core.metrics.evaluation import map_metrics
    from viz_core.metrics.faithfulness import deletion_insertion
    from viz_core.metrics.maps import method_title
    from viz_core.render.compare import compare_picture
    from viz_core.runtime.compared import compared_map

    np, _, _, _, png_bytes, Target, Workbench = _backend()
    methods = args.methods  # checked while parsing, as --opacity
    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    folder = out_dir(args)
    progress = TerminalProgress(enabled=not args.json)
    results, lines = [], []
    for path, image, stem in zip(args.image, images, unique_stems(images)):
        view = model.view(image)
        k = _class_of(model, view, args)
        target = Target(k, "logit")
        rows, maps = [], {}
        for method in methods:
            heat = compared_map(bench, model, view, target, method, progress=progress)
            maps[method] = heat
            curves = bench.run(deletion_insertion, model, view, k, heat, steps=args.steps,
                               baseline=args.baseline, progress=progress)
            png = folder / f"{stem}_{_tag(method)}_{k}.png"
            npy = folder / f"{stem}_{_tag(method)}_{k}.npy"
            png.write_bytes(png_bytes(compare_picture(image.pixels, heat, show=args.show,
                                                      opacity=args.opacity,
                                                      colormap=args.colormap,
                                                      blend=args.blend)))
            np.save(npy, heat)
            # every registered metric, keyed by its name (the curves' two come from the cache)
            scores = bench.run(map_metrics, model, view, target, method,
                               settings={"steps": args.steps, "baseline": args.baseline},
                               run=bench.run, progress=progress)
            rows.append({"method": method, "deletion_auc": curves.deletion_auc,
                         "insertion_auc": curves.insertion_auc,
                         "deletion": curves.deletion, "insertion": curves.insertion,
                         "png": str(png), "npy": str(npy), **scores.as_dict()})
        random = bench.run(deletion_insertion, model, view, k,
                           np.zeros(model.info.input_shape[:2], dtype="float32"),
                           steps=args.steps, baseline=args.baseline, progress=progress)
        agreement = (rank_agreement({m: maps[m] for m in methods}).matrix
                     if len(methods) > 1 else np.ones((1, 1), dtype="float32"))
        record = {
            "image": path, "class_index": k, "label": model.label(k),
            "baseline": args.baseline, "steps": args.steps, "fractions": random.fractions,
            "methods": rows,
            "random_order": {"deletion_auc": random.deletion_auc,
                             "insertion_auc": random.insertion_auc,
                             "deletion": random.deletion, "insertion": random.insertion},
            "agreement": {"methods": list(methods),
                          "spearman": [[None if np.isnan(v) else float(v) for v in row]
                                       for row in agreement]},
        }
        summary = folder / f"{stem}_faithfulness_{k}.json"
        summary.write_text(json.dumps(record, default=_plain, indent=1))
        record["json"] = str(summary)
        results.append(record)
        lines.append(f"{path}: {model.label(k)!r} ({k}), removed pixels {args.baseline}, "
                     f"{args.steps} steps -> {summary}")
        width = max(len("Random order"), *(len(method_title(m)) for m in methods))
        lines += [f"  {method_title(r['method']):<{width}}  deletion AUC "
                  f"{r['deletion_auc']:.3f}  insertion AUC {r['insertion_auc']:.3f}\n"
                  f"  {'':<{width}}  " + "  ".join(
                      f"{spec.column} {spec.formatted(r[spec.name])}"
                      for spec in metric_registry.specs()
                      if spec.name not in ("deletion_auc", "insertion_auc"))
                  for r in rows]
        lines.append(f"  {'Random order':<{width}}  deletion AUC {random.deletion_auc:.3f}  "
                     f"insertion AUC {random.insertion_auc:.3f}")
    emit(args, {"results": results}, lines)
    return 0


def _plain(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


# --------------------------------------------------------------------------------------------
# sanity: cascading randomisation
# --------------------------------------------------------------------------------------------
def _register_sanity(commands) -> None:
    p = commands.add_parser(
        "sanity", help="sanity check: do the maps change when the model's layers are random?",
        description="Re-initialise the model's weighted layers one by one from the output "
        "down (on a copy) and redraw every method's map after each step. A method whose map "
        "stays above --threshold similarity to the original at every step is flagged: it does "
        "not explain the model. 'edges' (a Sobel filter of the image) is the control that "
        "must be flagged.")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--class", dest="target", default=None, metavar="CLASS",
                   help="class index or name (default: the most probable class)")
    _methods_arg(p, registry.default_names() + (EDGE_CONTROL,), sanity_methods())
    p.add_argument("--layers", type=int, default=None,
                   help="how many weighted layers to randomise, from the top (default: all)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED,
                   help=f"seed of the random weights (default {DEFAULT_SEED})")
    p.add_argument("--metric", default=DEFAULT_METRIC, choices=METRICS,
                   help=f"similarity the flag uses (default {DEFAULT_METRIC})")
    p.add_argument("--threshold", type=bounded(SIMILARITY_THRESHOLD), default=DEFAULT_THRESHOLD,
                   help="flag when the similarity stays above this, "
                   f"{SIMILARITY_THRESHOLD.low:g} to {SIMILARITY_THRESHOLD.high:g} "
                   f"(default {DEFAULT_THRESHOLD})")
    p.add_argument("--colormap", default="viridis", choices=COLORMAPS,
                   help="colour map of the pictures (default viridis)")
    add_output_args(p)
    p.set_defaults(handler=cmd_sanity)


def cmd_sanity(args, bench: Workbench | None = None) -> int:
    from viz_core.render.compare import sanity_picture

    np, _, sanity, _, png_bytes, Target, Workbench = _backend()
    cascading_randomisation, fast_params = sanity.cascading_randomisation, sanity.fast_params
    flag_rule, sanity_title = sanity.flag_rule, sanity.method_title
    methods = args.methods  # checked while parsing, as --threshold
    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    folder = out_dir(args)
    progress = TerminalProgress(enabled=not args.json)
    results, lines = [], []
    for path, image, stem in zip(args.image, images, unique_stems(images)):
        view = model.view(image)
        k = _class_of(model, view, args)
        report = bench.run(cascading_randomisation, model, view, Target(k), methods=methods,
                           steps=args.layers, params=fast_params(methods), seed=args.seed,
                           progress=progress)
        similarity = report.similarity(args.metric)
        flagged = flag_rule(similarity, args.threshold)
        pictures = []
        for m, method in enumerate(report.methods):
            for step in range(report.steps + 1):
                png = folder / f"{stem}_sanity_{_tag(method)}_step{step}.png"
                png.write_bytes(png_bytes(sanity_picture(report, method, step, args.colormap)))
                pictures.append(str(png))
        record = {
            "image": path, "class_index": k, "label": report.label,
            "layers": list(report.layers), "seed": report.seed, "metric": args.metric,
            "threshold": args.threshold, "probability": report.probability,
            "methods": [{"method": method, "flagged": flagged[m],
                         "spearman": report.spearman[:, m], "ssim": report.ssim[:, m]}
                        for m, method in enumerate(report.methods)],
        }
        summary = folder / f"{stem}_sanity_{k}.json"
        summary.write_text(json.dumps(record, default=_plain, indent=1))
        record["json"] = str(summary)
        record["pictures"] = pictures
        results.append(record)
        lines.append(f"{path}: {report.label!r} ({k}), {report.steps} layers randomised from "
                     f"the top ({', '.join(report.layers)}) -> {summary}")
        for m, method in enumerate(report.methods):
            verdict = "FLAGGED: does not explain the model" if flagged[m] else "passes"
            lines.append(f"  {sanity_title(method)}: lowest {args.metric} "
                         f"{float(np.min(similarity[1:, m])):.2f} -> {verdict}")
    emit(args, {"results": results}, lines)
    return 0

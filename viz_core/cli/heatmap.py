"""Command ``heatmap``: class heatmaps (Grad-CAM family) as overlay PNGs, ``.npy`` and JSON.

For each image and class it writes ``<image>_<method>_<class>.png`` (the heatmap blended over
the original image, at the original resolution) and ``<image>_<method>_<class>.npy`` (the
heatmap, float32 in [0, 1], at the model's input resolution).
"""
from __future__ import annotations

import argparse

from viz_core.methods import registry as methods
from viz_core.runtime.limits import HEAT_THRESHOLD
from viz_core.cli.common import (
    COLORMAPS,
    TerminalProgress,
    add_image_args,
    add_model_args,
    add_output_args,
    add_overlay_args,
    bounded,
    emit,
    open_images,
    open_model,
    out_dir,
    unique_stems,
)

SCORE_KINDS = ("logit", "probability")  # viz_core.models.targets.SCORE_KINDS, without TensorFlow


def _bounded(kind: str, low, high, flag: str, above_low: bool = False):
    """An argparse ``type`` for one method parameter: a number of ``kind`` in [low, high]
    (``(low, high]`` when ``above_low``)."""
    def convert(text: str):
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            word = "a whole number" if kind == "int" else "a number"
            raise argparse.ArgumentTypeError(f"takes {word}; got {text!r}") from None
        low_ok = value > low if above_low else value >= low
        if not (low_ok and value <= high):  # NaN fails both
            span = f"above {low}, up to {high}" if above_low else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {span}; got {text}")
        return value

    convert.__name__ = kind  # what argparse names in "invalid int value"
    return convert


def method_flags(names=None) -> dict[str, list[tuple[str, "methods.ParamSpec"]]]:
    """The parameters of every registered method (or of those ``names``) by name:
    ``{name: [(method, ParamSpec), ...]}``.

    One flag serves every method with a parameter of that name (``--seed`` for SmoothGrad
    and RISE); its range is the union of theirs, and the registry checks each method's own.
    """
    flags: dict[str, list] = {}
    for spec in methods.specs():
        if names is not None and spec.name not in names:
            continue
        for param in spec.params:
            flags.setdefault(param.name, []).append((spec.name, param))
    return flags


def add_method_flags(parser, names=None) -> None:
    """One ``--flag`` per method parameter (:func:`method_flags`), stored as ``param_<name>``."""
    for name, owners in method_flags(names).items():
        kinds = {p.kind for _, p in owners}
        kind = "int" if kinds == {"int"} else "float"
        low = min(p.low for _, p in owners)
        high = max(p.high for _, p in owners)
        flag = owners[0][1].flag
        # the low end is excluded only when it is for every method taking the flag
        above_low = all(p.above_low and p.low == low for _, p in owners)
        text = "; ".join(
            f"{method}: {p.help} ({p.low} to {p.high}, default "
            f"{p.default if p.default is not None else p.none_means})" for method, p in owners)
        parser.add_argument(flag, dest=f"param_{name}", type=_bounded(kind, low, high, flag, above_low),
                            default=None, metavar=kind.upper(), help=text)


def given_params(args, names=None) -> dict:
    """The method parameters given on the command line, ``{name: value}``.

    Only flags the user gave are passed on, so a flag the chosen method does not take is
    reported (by the registry) instead of silently ignored.
    """
    return {name: getattr(args, f"param_{name}") for name in method_flags(names)
            if getattr(args, f"param_{name}", None) is not None}


def register(commands) -> None:
    p = commands.add_parser(
        "heatmap", help="class heatmaps: Grad-CAM, Grad-CAM++, Score-CAM, saliency...",
        description="Show where an image holds evidence for a class: writes the heatmap over "
        "the original image (PNG), the heatmap itself (.npy, float32 in [0, 1] at the model's "
        "input size) and, with --json, one JSON object describing both.")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--class", dest="classes", action="append", default=None, metavar="CLASS",
                   help="class index or name to explain (repeat for several; default: the most "
                   "probable class)")
    p.add_argument("--method", default="gradcam", choices=methods.names(),
                   help="how the map is made (default gradcam): "
                   + ", ".join(f"{s.name} ({s.title})" for s in methods.specs()))
    p.add_argument("--layer", default=None,
                   help="layer for the layer methods ("
                   + ", ".join(methods.names("layer")) + "), e.g. block5_conv3 or "
                   "vgg16/block5_conv3 (default: the last convolutional layer)")
    p.add_argument("--score", default="logit", choices=SCORE_KINDS,
                   help="differentiate the class logit (default, as the Grad-CAM paper) or its "
                   "probability (as the R tutorial)")
    p.add_argument("--colormap", default="viridis", choices=COLORMAPS,
                   help="colour map of the overlay (default viridis)")
    add_overlay_args(p)
    p.add_argument("--threshold", type=bounded(HEAT_THRESHOLD), default=0.0,
                   help=f"heat below this ({HEAT_THRESHOLD.low:g} to {HEAT_THRESHOLD.high:g}) is "
                   "not coloured (default 0)")
    add_method_flags(p)
    add_output_args(p)
    p.set_defaults(handler=cmd_heatmap)



def cmd_heatmap(args, bench=None) -> int:
    import numpy as np

    from viz_core.methods.heatmap import class_heatmap, top_classes
    from viz_core.render import overlay_heatmap, png_bytes
    from viz_core.models.targets import Target
    from viz_core.runtime.workbench import Workbench

    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    params = given_params(args)
    progress = TerminalProgress(enabled=not args.json)
    folder = out_dir(args)
    tag = args.method.replace("+", "p")  # file-name friendly: gradcam++ -> gradcampp
    results, lines = [], []
    for path, image, stem in zip(args.image, images, unique_stems(images)):
        view = model.view(image)
        if args.classes:
            indices = [model.class_index(c) for c in args.classes]
        else:
            indices = [top_classes(model, view, 1)[0][0]]
        for k in dict.fromkeys(indices):  # each class once, in the order given
            result = bench.run(class_heatmap, model, view, Target(k, args.score),
                               method=args.method, layer=args.layer, progress=progress,
                               **params)
            overlay = overlay_heatmap(image.pixels, result.heatmap, opacity=args.opacity,
                                      colormap=args.colormap, threshold=args.threshold,
                                      blend=args.blend)
            png_path = folder / f"{stem}_{tag}_{k}.png"
            npy_path = folder / f"{stem}_{tag}_{k}.npy"
            png_path.write_bytes(png_bytes(overlay))
            np.save(npy_path, result.heatmap)
            row = {
                "image": path,
                "method": result.method,
                "layer": result.layer,
                "class_index": result.class_index,
                "label": result.label,
                "probability": result.probability,
                "score": result.score,
                "score_kind": result.score_kind,
                "params": dict(result.params),
                "peak": list(result.peak),
                "png": str(png_path),
                "npy": str(npy_path),
            }
            if result.attribution_sum is not None:
                row["attribution_sum"] = result.attribution_sum
                row["score_difference"] = result.score_difference
                if result.score_difference is not None:
                    # SHAP's values share out f(x) - f(baseline): that is the score they explain
                    row["class_score"] = result.score
                    row["score"] = result.score_difference
            results.append(row)
            note = "  (no positive evidence: the map is empty)" if result.empty else ""
            lines.append(f"{path}: {methods.title(result.method)} of {result.label!r} "
                         f"({result.class_index}, p = {result.probability:.2%}) at "
                         f"{result.layer} -> {png_path}{note}")
    emit(args, {"results": results}, lines)
    return 0

"""Command ``heatmap``: class heatmaps (Grad-CAM family) as overlay PNGs, ``.npy`` and JSON.

For each image and class it writes ``<image>_<method>_<class>.png`` (the heatmap blended over
the original image, at the original resolution) and ``<image>_<method>_<class>.npy`` (the
heatmap, float32 in [0, 1], at the model's input resolution).
"""
from __future__ import annotations

import numpy as np

from ..cam import METHOD_TITLES, METHODS, class_heatmap, top_classes
from ..errors import ParameterError
from ..render import COLORMAPS, overlay_heatmap, png_bytes
from ..targets import SCORE_KINDS, Target
from ..workbench import Workbench
from .common import (
    TerminalProgress,
    add_image_args,
    add_model_args,
    add_output_args,
    emit,
    open_images,
    open_model,
    out_dir,
    unique_stems,
)

# command-line flag -> class_heatmap parameter (only flags the user gave are passed on, so a
# flag the chosen method does not take is reported instead of silently ignored)
_METHOD_FLAGS = {
    "max_channels": "max_channels",
    "samples": "samples",
    "noise": "noise",
    "seed": "seed",
    "steps": "steps",
    "baseline": "baseline",
}


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
    p.add_argument("--method", default="gradcam", choices=METHODS,
                   help="how the map is made (default gradcam)")
    p.add_argument("--layer", default=None,
                   help="layer for gradcam/gradcam++/scorecam, e.g. block5_conv3 or "
                   "vgg16/block5_conv3 (default: the last convolutional layer)")
    p.add_argument("--score", default="logit", choices=SCORE_KINDS,
                   help="differentiate the class logit (default, as the Grad-CAM paper) or its "
                   "probability (as the R tutorial)")
    p.add_argument("--colormap", default="viridis", choices=COLORMAPS,
                   help="colour map of the overlay (default viridis)")
    p.add_argument("--opacity", type=float, default=0.5,
                   help="heatmap opacity in the overlay, 0 to 1 (default 0.5)")
    p.add_argument("--threshold", type=float, default=0.0,
                   help="heat below this (0 to 1) is not coloured (default 0)")
    p.add_argument("--max-channels", dest="max_channels", type=int, default=None,
                   help="scorecam: score only this many channels (default: all)")
    p.add_argument("--samples", type=int, default=None,
                   help="smoothgrad: noisy copies to average (default 25)")
    p.add_argument("--noise", type=float, default=None,
                   help="smoothgrad: noise as a fraction of the pixel range (default 0.15)")
    p.add_argument("--seed", type=int, default=None, help="smoothgrad: random seed (default 0)")
    p.add_argument("--steps", type=int, default=None,
                   help="integrated_gradients: steps from the baseline (default 64)")
    p.add_argument("--baseline", type=float, default=None,
                   help="integrated_gradients: baseline pixel value, 0 = black (default 0)")
    add_output_args(p)
    p.set_defaults(handler=cmd_heatmap)



def cmd_heatmap(args, bench: Workbench | None = None) -> int:
    if not 0.0 <= args.threshold <= 1.0:
        raise ParameterError(f"--threshold must be between 0 and 1; got {args.threshold}.")
    if not 0.0 <= args.opacity <= 1.0:
        raise ParameterError(f"--opacity must be between 0 and 1; got {args.opacity}.")
    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    params = {param: getattr(args, flag) for flag, param in _METHOD_FLAGS.items()
              if getattr(args, flag) is not None}
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
                                      colormap=args.colormap, threshold=args.threshold)
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
            results.append(row)
            note = "  (no positive evidence: the map is empty)" if result.empty else ""
            lines.append(f"{path}: {METHOD_TITLES[result.method]} of {result.label!r} "
                         f"({result.class_index}, p = {result.probability:.2%}) at "
                         f"{result.layer} -> {png_path}{note}")
    emit(args, {"results": results}, lines)
    return 0

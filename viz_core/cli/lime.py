"""Command ``lime``: superpixels and LIME explanations as PNG, ``.npy`` and JSON files."""
from __future__ import annotations

from typing import TYPE_CHECKING

from viz_core.errors import ParameterError
from viz_core.runtime.limits import (
    COMPACTNESS,
    LIME_FEATURES,
    LIME_PICTURE_SIDE,
    LIME_SAMPLES,
    LIME_SCALE,
    SEED,
    SUPERPIXELS,
)
from viz_core.cli.common import (
    add_image_args,
    add_model_args,
    add_output_args,
    bounded,
    emit,
    open_images,
    open_model,
    out_dir,
    progress_bar,
    unique_stems,
)
from viz_core.methods.lime_options import ALGORITHMS, HIDE_COLOURS, PAGE_DEFAULTS, STABILITY_K
from viz_core.render.choices import RESTS, STYLES

if TYPE_CHECKING:
    from viz_core.runtime.workbench import Workbench



def register(commands) -> None:
    p = commands.add_parser(
        "lime", help="LIME: which superpixels carried the prediction",
        description="Cut each image into superpixels, hide random sets of them, and fit lime's "
        "linear model: writes the explanation PNG per class, the segments as .npy, and the "
        "superpixel weights.")
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--class", dest="classes", action="append", default=None, metavar="CLASS",
                   help="class index or name to explain (repeat for several; default: the two "
                   "most probable classes, as the tutorial's n_labels = 2)")
    p.add_argument("--samples", type=bounded(LIME_SAMPLES), default=1000,
                   help="perturbed images to run through the model (default 1000, as lime's "
                   f"n_permutations; the dashboard starts at {PAGE_DEFAULTS['samples']}, for "
                   f"speed; {LIME_SAMPLES.low} to {LIME_SAMPLES.high})")
    p.add_argument("--superpixels", type=bounded(SUPERPIXELS),
                   default=PAGE_DEFAULTS["n_superpixels"],
                   help=f"target number of superpixels, {SUPERPIXELS.low} to {SUPERPIXELS.high} "
                   f"(default {PAGE_DEFAULTS['n_superpixels']})")
    p.add_argument("--compactness", type=bounded(COMPACTNESS),
                   default=PAGE_DEFAULTS["compactness"],
                   help="superpixel compactness, the tutorial's weight (default "
                   f"{PAGE_DEFAULTS['compactness']:g})")
    p.add_argument("--algorithm", default=PAGE_DEFAULTS["algorithm"], choices=ALGORITHMS,
                   help=f"superpixel algorithm (default {PAGE_DEFAULTS['algorithm']})")
    p.add_argument("--hide", default=PAGE_DEFAULTS["hide"], choices=HIDE_COLOURS,
                   help=f"what hidden superpixels become (default {PAGE_DEFAULTS['hide']}; the "
                   "tutorial used white)")
    p.add_argument("--features", type=bounded(LIME_FEATURES), default=5,
                   help="superpixels shown in the PNG (default 5)")
    p.add_argument("--negative", action="store_true",
                   help="show superpixels against the class too (red)")
    p.add_argument("--style", default="outline", choices=STYLES,
                   help="how the PNG shows the superpixels (default outline)")
    p.add_argument("--rest", default="keep", choices=RESTS,
                   help="the rest of the image in the PNG: keep, dim or hide (default keep)")
    p.add_argument("--scale", type=bounded(LIME_SCALE), default=1,
                   help=f"enlarge the PNGs by this whole factor, up to {LIME_SCALE.high} "
                   "(default 1: the model's size)")
    p.add_argument("--stability", action="store_true",
                   help=f"also run seeds S+1 and S+2 and report how much the top {STABILITY_K} "
                   "superpixels agree (Jaccard)")
    p.add_argument("--seed", type=bounded(SEED), default=0, help="random seed (default 0)")
    add_output_args(p)
    p.set_defaults(handler=cmd_lime)



def cmd_lime(args, bench: Workbench | None = None) -> int:
    import numpy as np

    from viz_core.methods.lime import (
        default_classes,
        explanation_plane,
        explanation_stability,
        fit_explanation,
        perturbed_predictions,
        stability_seeds,
    )
    from viz_core.render import png_bytes
    from viz_core.render.lime_view import enlarge, explanation_picture, superpixel_boundaries
    from viz_core.methods.superpixels import superpixels
    from viz_core.runtime.workbench import Workbench

    for bound, value in ((LIME_FEATURES, args.features), (LIME_SCALE, args.scale),
                         (SEED, args.seed)):
        bound.check(value)  # samples, superpixels, compactness: checked where they are used
    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    # Resolve class names before any model work, so a typo fails at once.
    wanted = [model.class_index(c) for c in args.classes] if args.classes else None
    folder = out_dir(args)
    progress = progress_bar(args)
    seeds = stability_seeds(args.seed) if args.stability else (args.seed,)
    results, lines = [], []
    side = max(model.info.input_shape[:2]) * args.scale
    if side > LIME_PICTURE_SIDE:
        raise ParameterError(
            f"--scale {args.scale} would draw {side}-pixel pictures of this model's "
            f"{max(model.info.input_shape[:2])}-pixel input; up to {LIME_PICTURE_SIDE} pixels "
            f"per side, so --scale {max(1, LIME_PICTURE_SIDE // (side // args.scale))} at most.")
    for path, image, stem in zip(args.image, images, unique_stems(images)):
        view = model.view(image)
        segmentation = bench.run(superpixels, view, algorithm=args.algorithm,
                                 n_superpixels=args.superpixels,
                                 compactness=args.compactness, seed=args.seed)
        runs = [bench.run(perturbed_predictions, model, view, segmentation,
                          samples=args.samples, hide=args.hide, seed=s, progress=progress)
                for s in seeds]
        classes = wanted or default_classes(runs[0])
        explanations = [fit_explanation(model, run, classes) for run in runs]
        explanation = explanations[0]
        segments_path = folder / f"{stem}_segments.npy"
        np.save(segments_path, segmentation.segments)
        boundaries_path = folder / f"{stem}_superpixels.png"
        boundaries_path.write_bytes(png_bytes(superpixel_boundaries(
            enlarge(view.display, args.scale, smooth=True),
            enlarge(segmentation.segments, args.scale))))
        lines.append(f"{path}: {segmentation.count} superpixels ({args.algorithm}), "
                     f"{args.samples} samples -> {boundaries_path}")
        for row, k in enumerate(explanation.class_indices):
            plane = explanation_plane(explanation, k, style=args.style,
                                      num_features=args.features, negative=args.negative)
            picture = explanation_picture(explanation.image, plane, style=args.style,
                                          rest=args.rest, scale=args.scale)
            png_path = folder / f"{stem}_lime_{k}.png"
            png_path.write_bytes(png_bytes(picture))
            weights = explanation.weights[row]
            result = {
                "image": path,
                "class_index": int(k),
                "label": explanation.labels[row],
                "probability": float(explanation.probabilities[row]),
                "r2": float(explanation.r2[row]),
                "png": str(png_path),
                "segments_npy": str(segments_path),
                "superpixels_png": str(boundaries_path),
                "superpixels": segmentation.count,
                "samples": explanation.samples,
                "seed": explanation.seed,
                "hide": explanation.hide,
                "weights": {str(i): float(w) for i, w in enumerate(weights)},
            }
            order = np.argsort(-weights, kind="stable")[:3]
            top = ", ".join(f"#{i} {weights[i]:+.3f}" for i in order)
            line = (f"  {explanation.labels[row]} ({k}): p={explanation.probabilities[row]:.2f}"
                    f" R2={explanation.r2[row]:.2f} top superpixels {top} -> {png_path}")
            if args.stability:
                check = explanation_stability(explanations, k, STABILITY_K)
                result["stability"] = {"k": check.k, "seeds": list(check.seeds),
                                       "top_sets": [list(t) for t in check.top_sets],
                                       "mean_jaccard": check.mean_jaccard}
                line += f"; top-{check.k} agreement over seeds {check.mean_jaccard:.2f}"
            results.append(result)
            lines.append(line)
    emit(args, {"results": results}, lines)
    return 0

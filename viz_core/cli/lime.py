"""Command ``lime``: superpixels and LIME explanations as PNG, ``.npy`` and JSON files."""
from __future__ import annotations

import numpy as np

from ..lime_explain import (
    DEFAULT_HIDE,
    HIDE_COLOURS,
    default_classes,
    evidence_mask,
    fit_explanation,
    perturbed_predictions,
    weight_map,
)
from ..render import png_bytes
from ..render.lime_view import evidence_image, superpixel_boundaries, weights_image
from ..superpixels import ALGORITHMS, superpixels
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
)


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
    p.add_argument("--samples", type=int, default=1000,
                   help="perturbed images to run through the model (default 1000)")
    p.add_argument("--superpixels", type=int, default=35,
                   help="target number of superpixels (default 35)")
    p.add_argument("--compactness", type=float, default=10.0,
                   help="superpixel compactness, the tutorial's weight (default 10)")
    p.add_argument("--algorithm", default="slic", choices=ALGORITHMS,
                   help="superpixel algorithm (default slic)")
    p.add_argument("--hide", default=DEFAULT_HIDE, choices=HIDE_COLOURS,
                   help=f"what hidden superpixels become (default {DEFAULT_HIDE}; the tutorial "
                   "used white)")
    p.add_argument("--features", type=int, default=5,
                   help="superpixels shown in the PNG (default 5)")
    p.add_argument("--negative", action="store_true",
                   help="show superpixels against the class too (red)")
    p.add_argument("--style", default="outline", choices=("outline", "fill", "weights"),
                   help="how the PNG shows the superpixels (default outline)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_output_args(p)
    p.set_defaults(handler=cmd_lime)


def _stems(images) -> list[str]:
    """File name stems, made unique when two images have the same name."""
    seen: dict[str, int] = {}
    stems = []
    for image in images:
        n = seen.get(image.name, 0)
        seen[image.name] = n + 1
        stems.append(image.name if n == 0 else f"{image.name}_{n + 1}")
    return stems


def cmd_lime(args) -> int:
    bench = Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    # Resolve class names before any model work, so a typo fails at once.
    wanted = [model.class_index(c) for c in args.classes] if args.classes else None
    folder = out_dir(args)
    progress = TerminalProgress(enabled=not args.json)
    results, lines = [], []
    for path, image, stem in zip(args.image, images, _stems(images)):
        view = model.view(image)
        segmentation = bench.run(superpixels, view, algorithm=args.algorithm,
                                 n_superpixels=args.superpixels,
                                 compactness=args.compactness, seed=args.seed)
        predictions = bench.run(perturbed_predictions, model, view, segmentation,
                                samples=args.samples, hide=args.hide, seed=args.seed,
                                progress=progress)
        classes = wanted or default_classes(predictions)
        explanation = fit_explanation(model, predictions, classes)
        segments_path = folder / f"{stem}_segments.npy"
        np.save(segments_path, segmentation.segments)
        boundaries_path = folder / f"{stem}_superpixels.png"
        boundaries_path.write_bytes(png_bytes(superpixel_boundaries(view.display,
                                                                    segmentation.segments)))
        lines.append(f"{path}: {segmentation.count} superpixels ({args.algorithm}), "
                     f"{args.samples} samples -> {boundaries_path}")
        for row, k in enumerate(explanation.class_indices):
            if args.style == "weights":
                picture = weights_image(view.display, weight_map(explanation, k))
            else:
                mask = evidence_mask(explanation, k, num_features=args.features,
                                     positive_only=not args.negative)
                picture = evidence_image(view.display, mask, style=args.style)
            png_path = folder / f"{stem}_lime_{k}.png"
            png_path.write_bytes(png_bytes(picture))
            weights = explanation.weights[row]
            results.append({
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
                "weights": {str(i): float(w) for i, w in enumerate(weights)},
            })
            order = np.argsort(-weights, kind="stable")[:3]
            top = ", ".join(f"#{i} {weights[i]:+.3f}" for i in order)
            lines.append(f"  {explanation.labels[row]} ({k}): p={explanation.probabilities[row]:.2f}"
                         f" R2={explanation.r2[row]:.2f} top superpixels {top} -> {png_path}")
    emit(args, {"results": results}, lines)
    return 0

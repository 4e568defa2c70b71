"""Command ``dataset``: a model over a whole folder, ZIP or sample of images.

``python -m viz_core dataset --model demo --data DIR_OR_ZIP [--labels CSV] [--method NAME
[--layer L] [method flags]] [--clusters auto|K] [--batch-size N] [--engine local|ray
[--ray-address ADDRESS] [--ray-workers N]] --out OUT --json`` writes, in OUT:

* ``maps/<n>_<path>.npy``: each image's heatmap of its predicted class by ``--method`` (any
  layer, pixel-gradient or relevance-propagation method, Grad-CAM by default), float32 in [0, 1] at the model's input
  size (what ``heatmap --method NAME`` gives for that image);
* ``clusters/<class>_<id>.png``: each heatmap cluster (SpRAy) as its mean map beside up to six
  member images with their maps;
* ``mean_<class>.png``: where the model looks for each predicted class, on average;
* ``summary.json``: the JSON object printed with ``--json``: ``{"images", "skipped": [{"file",
  "reason"}], "classes", "accuracy", "confusion", "results": [{"image", "label", "predicted",
  "class_index", "probability", "correct", "npy", "cluster"}], "clusters": [{"class", "id",
  "size", "png", "corner_share", "corner", "flagged"}], "method", "layer", "params", ...}``.

``--data sample:shapes`` and ``sample:shortcut`` are the built-in generated datasets (the second
goes with ``--model shortcut_demo``); ``sample:NAME:COUNT`` is a sample's first COUNT scenes, as the
Dataset page draws them (its export bundle's command).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from viz_core.cli.common import bounded
from viz_core.runtime.limits import BATCH_SIZE, CLUSTERS, DATASET_LIMIT, RAY_WORKERS

HELP = "a model over a folder or ZIP of images: accuracy, heatmaps, shortcut finder"
ENGINES = ("local", "ray")


def dataset_methods() -> tuple[str, ...]:
    """:func:`viz_core.methods.registry.dataset_names` (the registry imports no TensorFlow,
    so ``--help`` and parsing stay fast)."""
    from viz_core.methods import registry as methods

    return methods.dataset_names()


def register(commands) -> None:
    from viz_core.cli.common import add_dataset_args, output_folder
    from viz_core.cli.heatmap import add_method_flags
    from viz_core.methods import registry as methods

    p = commands.add_parser(
        "dataset", help=HELP,
        description="Predict and explain every image of a dataset (class folders, a flat "
        "folder with a labels CSV, or no labels; a folder or a ZIP), then cluster each class's "
        "heatmaps to find shortcuts. Writes maps, cluster pictures and summary.json.")
    add_dataset_args(p)
    names = dataset_methods()
    p.add_argument("--method", default="gradcam", choices=names,
                   help="heatmap method (default gradcam): " + ", ".join(
                       f"{n} ({methods.title(n)})" for n in names) + "; layer and "
                   "pixel-gradient methods run in batches, Score-CAM, AblationCAM and LRP one "
                   "image at a time")
    p.add_argument("--layer", default=None,
                   help="layer for the layer methods (default: last conv layer)")
    p.add_argument("--clusters", default="auto", type=_clusters,
                   help="heatmap clusters per class: auto (eigengap) or a number 1-12")
    p.add_argument("--engine", default="local", choices=ENGINES,
                   help="where batches run: local (in this process, the default) or ray (Ray "
                   "Data actors, each loading the model once; needs the ray extra)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="a running Ray cluster for --engine ray (default: RAY_ADDRESS, else a "
                   "local Ray started for this run)")
    p.add_argument("--ray-workers", type=bounded(RAY_WORKERS), default=2, metavar="N",
                   help="actors for --engine ray, one model each (default 2)")
    p.add_argument("--batch-size", type=bounded(BATCH_SIZE), default=32,
                   help=f"images per batch, {BATCH_SIZE.low} to {BATCH_SIZE.high} (default 32)")
    p.add_argument("--limit", type=bounded(DATASET_LIMIT), default=None,
                   help="use only this many images, spread over the dataset")
    p.add_argument("--out", required=True, type=output_folder, metavar="FOLDER",
                   help="folder to write files into (made when missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show TensorFlow's and the libraries' own log messages")
    add_method_flags(p, names)
    p.set_defaults(handler=cmd_dataset)


def _model(args, bench=None):
    """The model of ``--model`` (``shortcut_demo`` included) from ``bench`` (the dashboard's,
    for an export bundle) or from a workbench of this run's own."""
    from viz_core.errors import ParameterError
    from viz_core.runtime.workbench import Workbench
    from viz_core.cli.common import open_model

    if bench is None:
        bench = Workbench(allow_download=not args.offline)
    if args.model == "shortcut_demo":
        if args.class_names or args.preprocess or args.weights:
            raise ParameterError("--class-names, --preprocess and --weights do not apply to the "
                                 "built-in shortcut_demo model.")
        return bench.builtin_model("shortcut_demo", "imagenet")
    forwarded = argparse.Namespace(**vars(args))
    forwarded.labels = args.class_names
    return open_model(bench, forwarded)


def _recipe(args):
    """How each Ray worker loads the same model as this process."""
    from viz_core.dataset.ray_engine import ModelRecipe
    from viz_core.cli.common import DEFAULT_PREPROCESS, is_model_file, read_labels

    if args.model == "shortcut_demo" or not is_model_file(args):
        return ModelRecipe(builtin=args.model, weights=args.weights or "imagenet",
                           allow_download=not args.offline)
    path = Path(args.model)
    return ModelRecipe(file_bytes=path.read_bytes(), filename=path.name,
                       preprocessing=args.preprocess or DEFAULT_PREPROCESS,
                       labels=tuple(read_labels(args.class_names)) if args.class_names else None)


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")[:40] or "class"


def _tile(image: np.ndarray, heat: np.ndarray | None, side: int) -> np.ndarray:
    from PIL import Image

    from viz_core.render import apply_colormap, overlay_heatmap
    from viz_core.maps import resize_map

    if image is None:
        return apply_colormap(resize_map(heat, side, side), "viridis")
    picture = image if heat is None else overlay_heatmap(image, heat)
    return np.asarray(Image.fromarray(picture).resize((side, side), Image.Resampling.BILINEAR))


def cluster_picture(mean_map: np.ndarray, images: list, maps: list, side: int = 112,
                    gap: int = 4) -> np.ndarray:
    """(side, k * (side + gap), 3) uint8: the mean map, then each member image under its map."""
    tiles = [_tile(None, mean_map, side)] + [_tile(im, m, side) for im, m in zip(images, maps)]
    strip = np.full((side, len(tiles) * (side + gap) - gap, 3), 255, np.uint8)
    for i, tile in enumerate(tiles):
        strip[:, i * (side + gap): i * (side + gap) + side] = tile
    return strip


def _clusters(text: str) -> str:
    """``--clusters``: ``auto`` or a whole number in :data:`CLUSTERS`, checked while parsing."""
    if text == "auto":
        return text
    try:
        bounded(CLUSTERS)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"is auto or a whole number from {CLUSTERS.low} to {CLUSTERS.high}; got {text!r}"
        ) from None
    return text


def cmd_dataset(args, bench=None) -> int:
    """Run the dataset command (its model from ``bench``, the dashboard's, for an export
    bundle); a run that fails removes the output folder it made (or the ``maps/`` folder it
    made in an existing one), so no half-written run is left behind."""
    made = [p for p in (Path(args.out), Path(args.out) / "maps") if not p.exists()]
    try:
        return _run_dataset(args, bench)
    except BaseException:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        raise


def _run_dataset(args, bench=None) -> int:
    from viz_core.dataset.engine import run_dataset
    from viz_core.dataset.listing import open_named
    from viz_core.errors import ParameterError
    from viz_core.render import apply_colormap, png_bytes
    from viz_core.maps import resize_map
    from viz_core.dataset.shortcuts import find_shortcuts
    from viz_core.cli.common import TerminalProgress, emit, out_dir
    from viz_core.cli.heatmap import given_params

    if args.engine == "ray":
        from viz_core.dataset.ray_engine import import_ray
        import_ray()  # before any work: without Ray, one line saying how to install it
    elif args.ray_address:
        raise ParameterError("--ray-address goes with --engine ray.")
    model = _model(args, bench)
    data = open_named(args.data, model.labels, labels_csv=args.labels_csv)
    if args.limit is not None:
        data = data.subset(args.limit)
    folder = out_dir(args)
    progress = TerminalProgress(enabled=not args.json)
    params = given_params(args, dataset_methods())
    if args.engine == "ray":
        from viz_core.dataset.ray_engine import run_dataset_ray
        run = run_dataset_ray(model, _recipe(args), data, batch_size=args.batch_size,
                              layer=args.layer, method=args.method, full_maps_dir=folder / "maps",
                              address=args.ray_address, workers=args.ray_workers,
                              progress=progress, params=params)
    else:
        run = run_dataset(model, data, batch_size=args.batch_size, layer=args.layer,
                          method=args.method, full_maps_dir=folder / "maps", progress=progress,
                          params=params)
    report = find_shortcuts(run.maps, run.predicted, run.classes, clusters=args.clusters)
    (folder / "clusters").mkdir(exist_ok=True)
    index = {entry.path: entry for entry in data.entries}
    cluster_rows = []
    for cluster in report.clusters:
        images = [model.view(data.load(index[run.paths[i]])).display for i in cluster.examples]
        maps = [run.maps[i] for i in cluster.examples]
        name = folder / "clusters" / f"{_stem(cluster.label)}_{cluster.id}.png"
        name.write_bytes(png_bytes(cluster_picture(cluster.mean_map, images, maps)))
        cluster_rows.append({"class": cluster.label, "id": cluster.id, "size": cluster.size,
                             "png": str(name), "corner_share": round(cluster.corner_share, 4),
                             "corner": cluster.corner, "flagged": cluster.flagged})
    means = {}
    for k, mean in run.mean_maps().items():
        name = folder / f"mean_{_stem(run.classes[k])}.png"
        peak = float(mean.max())
        heat = mean / peak if peak > 0 else mean
        name.write_bytes(png_bytes(apply_colormap(resize_map(heat, 112, 112), "viridis")))
        means[run.classes[k]] = str(name)
    confusion = run.confusion()
    results = []
    for i, path in enumerate(run.paths):
        labelled = bool(run.labelled[i])
        results.append({
            "image": path, "label": run.labels[i],
            "predicted": run.classes[int(run.predicted[i])],
            "class_index": int(run.predicted[i]),
            "probability": round(float(run.confidence[i]), 6),
            "correct": bool(run.correct[i]) if labelled else None,
            "npy": run.map_files[i], "cluster": int(report.assignments[i]),
        })
    payload = {
        "model": model.name, "dataset": data.name, "layout": data.layout,
        "images": len(run), "skipped": [{"file": s.file, "reason": s.reason}
                                        for s in run.skipped],
        "unknown_labels": [{"label": label, "images": count}
                           for label, count in run.unknown_labels],
        "classes": list(run.classes),
        "accuracy": None if run.accuracy is None else round(run.accuracy, 6),
        "confusion": None if confusion is None else confusion.tolist(),
        "method": run.method, "layer": run.layer, "params": dict(run.params),
        "seconds": round(run.seconds, 2),
        "results": results, "clusters": cluster_rows, "mean_maps": means,
    }
    (folder / "summary.json").write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    accuracy = "no labels" if run.accuracy is None else f"accuracy {run.accuracy:.1%}"
    lines = [f"{len(run)} images of {data.name} ({accuracy}), {len(run.skipped)} skipped, "
             f"{run.seconds:.1f} s; files in {folder}"]
    for row in cluster_rows:
        mark = "  <- evidence in the " + row["corner"] + " corner" if row["flagged"] else ""
        lines.append(f"  {row['class']} cluster {row['id']}: {row['size']} images, corner "
                     f"share {row['corner_share']:.2f}{mark}")
    emit(args, payload, lines)
    if run.skipped and not args.json:
        print(f"{len(run.skipped)} file(s) skipped; see summary.json", file=sys.stderr)
    return 0

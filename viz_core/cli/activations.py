"""Command ``activations``: every channel of every layer as grid PNGs plus raw ``.npy`` arrays.

    python -m viz_core activations --model demo --image cat.png --layers all --out maps/ --json

writes ``cat_activations_1_conv2d.png`` (the tutorial's names) and ``..._1_conv2d.npy`` (the raw
(h, w, c) float32 activation) per image and layer.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from viz_core.runtime.limits import ACTIVATION_PER_ROW, ACTIVATION_TILE
from viz_core.cli.common import (
    COLORMAPS,
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
from viz_core.render.choices import ORDERS, SCALES

if TYPE_CHECKING:
    from viz_core.runtime.workbench import Workbench


def register(commands) -> None:
    p = commands.add_parser(
        "activations",
        help="feature maps: one grid PNG and one .npy per image and layer",
        description="Run the model once per image and save every channel of each chosen layer "
        "as a grid (PNG) and the raw activation (.npy, float32, shape [h, w, c]).",
    )
    add_model_args(p)
    add_image_args(p)
    p.add_argument("--layers", default="all",
                   help="comma-separated layer names or 1-based indices, or 'all' (default: all "
                   "layers with feature maps)")
    p.add_argument("--per-row", type=bounded(ACTIVATION_PER_ROW), default=16,
                   help=f"channels per row, 1 to {ACTIVATION_PER_ROW.high} (default 16)")
    p.add_argument("--cmap", default="viridis", choices=COLORMAPS,
                   help="colour map (default viridis; the tutorial uses terrain)")
    p.add_argument("--tile", type=bounded(ACTIVATION_TILE), default=None,
                   help=f"tile size in pixels, {ACTIVATION_TILE.low} to {ACTIVATION_TILE.high} "
                   "(default: the feature map's own size)")
    p.add_argument("--scale", default="channel", choices=SCALES,
                   help="channel: each channel to its own range (default); layer: one range")
    p.add_argument("--sort", default="index", choices=ORDERS,
                   help="channel order: index (default) or mean activation, highest first")
    add_output_args(p)
    p.set_defaults(handler=cmd_activations)


def cmd_activations(args, bench: Workbench | None = None) -> int:
    import numpy as np

    from viz_core.features.activations import (
        channel_stats,
        export_name,
        feature_maps,
        file_stem,
        layer_chunks,
        resolve_layers,
    )
    from viz_core.render import png_bytes
    from viz_core.render.montage import montage
    from viz_core.runtime.workbench import Workbench

    per_row = ACTIVATION_PER_ROW.check(args.per_row)
    tile = None if args.tile is None else ACTIVATION_TILE.check(args.tile)
    bench = bench or Workbench()
    model = open_model(bench, args)
    images = open_images(bench, args.image)
    layers = resolve_layers(model.info, args.layers)
    folder = out_dir(args)
    progress = progress_bar(args)
    chunks = layer_chunks(model.info, layers)
    steps, done = len(images) * len(chunks), 0
    results, lines = [], []
    # one stem per image, after the file-name cleaning, so two images never share a file
    for path, image, stem in zip(args.image, images, unique_stems(images, clean=file_stem)):
        view = model.view(image)
        for chunk in chunks:
            maps = feature_maps(model, view, chunk)
            for act in maps.layers:
                grid = montage(act.values, per_row=per_row, tile=tile,
                               scale=args.scale, colormap=args.cmap, sort=args.sort)
                png = folder / export_name(stem, act.index, act.layer, ".png")
                npy = folder / export_name(stem, act.index, act.layer, ".npy")
                png.write_bytes(png_bytes(grid.image))
                np.save(npy, act.values)
                stats = channel_stats(act.values)
                results.append({
                    "image": path,
                    "layer": act.layer,
                    "index": act.index,
                    "type": act.type,
                    "shape": list(act.shape),
                    "png": str(png),
                    "npy": str(npy),
                    "channel_mean": [float(m) for m in stats.mean],
                    "dead_channels": [int(k) for k in np.flatnonzero(stats.dead)],
                })
                lines.append(f"{png}  {act.layer} {act.shape[0]}x{act.shape[1]}x{act.shape[2]}"
                             + (f", {int(stats.dead.sum())} dead" if stats.dead.any() else ""))
            done += 1
            progress(done / steps, f"{stem}: {chunk[-1]}")
    emit(args, {"results": results}, lines)
    return 0

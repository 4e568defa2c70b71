"""Command ``atlas``: what each channel of a layer responds to, shown with a dataset's images.

``python -m viz_core atlas --model M --data DIR_OR_ZIP_OR_SAMPLE[:COUNT] --layer L [--k 8]
[--channels 0:64] [--score max|mean] [--engine local|ray [--ray-address ADDRESS]
[--ray-workers N]] --out DIR --json`` writes, in DIR:

* ``crops/c<channel>_top<i>.png`` and ``..._bottom<i>.png``: the receptive-field box around
  the channel's maximum in each exemplar (the model's view of the image, enlarged to at least
  64 px when the field is smaller);
* ``atlas.json``: the object printed with ``--json``: ``{layer, images, channels: [{channel,
  top: [{image, activation, position: [y, x], box: [x0, y0, x1, y1], crop_png}], bottom,
  mean_by_class, selective_for, selectivity, histogram}], ...}``; ``activation`` is the
  channel's spatial maximum in that image, ``position`` is in the layer's grid, ``box`` in
  input pixels (``x1``, ``y1`` exclusive).

Results are kept in the disk cache (``CNN_VIZ_CACHE``), keyed by the model, layer, dataset, k,
score and channels, so running the same atlas again only writes the files.
"""
from __future__ import annotations

import json

HELP = "neuron atlas: each channel's top and bottom images from a dataset, class selectivity"


def _whole(what: str, low: int, high: int | None):
    """A backend-style check of a whole number from ``low`` to ``high`` (None: no top)."""
    def check(text: str) -> int:
        from viz_core.errors import ParameterError

        span = f"{low} to {high}" if high is not None else f"at least {low}"
        try:
            value = int(text)
        except ValueError:
            raise ParameterError(f"{what} must be a whole number, {span}; got {text!r}.") from None
        if value < low or (high is not None and value > high):
            raise ParameterError(f"{what} must be {span}; got {value}.")
        return value
    return check


def register(commands) -> None:
    from viz_core.cli.common import add_dataset_args, bounded, checked, output_folder
    from viz_core.runtime.limits import RAY_WORKERS

    p = commands.add_parser(
        "atlas", help=HELP,
        description="For each channel of a layer: the k images of a dataset that excite it "
        "most and least, the receptive-field crop around each maximum, a histogram and how "
        "selective the channel is for a class. Writes crops and atlas.json.")
    add_dataset_args(p)
    p.add_argument("--layer", default=None, help="layer (default: last conv layer)")
    p.add_argument("--k", "--top", dest="k", default=8,
                   type=checked(_whole("k", 1, 64), "k"),
                   help="top and bottom images per channel, 1-64 (default 8)")
    p.add_argument("--channels", default=None, metavar="RANGE",
                   help="channels, e.g. 0:64 or 3,7 (default: all)")
    p.add_argument("--score", default="max", choices=("max", "mean"),
                   help="rank images by the channel's spatial maximum (default) or mean")
    p.add_argument("--batch-size", default=32,
                   type=checked(_whole("The batch size", 1, 512), "batch size"), help="images per batch (default 32)")
    p.add_argument("--limit", default=None,
                   type=checked(_whole("The limit", 1, None), "limit"),
                   help="use only this many images, spread over the dataset")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="where batches run: local (in this process, the default) or ray (Ray "
                   "Data actors, each loading the model once; needs the ray extra)")
    p.add_argument("--ray-address", default=None, metavar="ADDRESS",
                   help="a running Ray cluster for --engine ray (default: RAY_ADDRESS, else a "
                   "local Ray started for this run)")
    p.add_argument("--ray-workers", "--workers", dest="ray_workers", default=2,
                   type=bounded(RAY_WORKERS), metavar="N",
                   help="actors for --engine ray, one model each (default 2)")
    p.add_argument("--no-cache", action="store_true", help="compute again, ignore the disk cache")
    p.add_argument("--out", required=True, type=output_folder, metavar="FOLDER",
                   help="folder to write files into (made when missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show TensorFlow's and the libraries' own log messages")
    p.set_defaults(handler=cmd_atlas)


def write_atlas(atlas, model, dataset, folder) -> dict:
    """Write the crops and ``atlas.json`` into ``folder``; returns the index written."""
    from viz_core.dataset.atlas import exemplar_pixels
    from viz_core.render import png_bytes
    from viz_core.render.atlas import crop_picture

    index = atlas.to_index()
    wanted = [e["entry"] for unit in index["channels"] for which in ("top", "bottom")
              for e in unit[which]]
    pixels = exemplar_pixels(model, dataset, wanted)
    crops = folder / "crops"
    crops.mkdir(exist_ok=True)
    for unit in index["channels"]:
        for which in ("top", "bottom"):
            for i, entry in enumerate(unit[which]):
                name = crops / f"c{unit['channel']:04d}_{which}{i}.png"
                name.write_bytes(png_bytes(crop_picture(pixels[entry["entry"]], entry["box"])))
                entry["crop_png"] = str(name)
    (folder / "atlas.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return index


def _model_on(bench, args):
    """The model of ``--model`` from ``bench`` (the dashboard's, for an export bundle), or from
    a workbench of this run's own."""
    from viz_core.cli.dataset import _model

    return _model(args, bench)


def cmd_atlas(args, bench=None) -> int:
    from viz_core.cli.common import TerminalProgress, emit, out_dir
    from viz_core.dataset.atlas import cached_atlas
    from viz_core.dataset.listing import open_named
    from viz_core.runtime.cache import DiskCache, default_cache_dir

    if args.engine == "ray":
        from viz_core.dataset.ray_engine import import_ray
        import_ray()  # before any work: without Ray, one line saying how to install it
    elif args.ray_address:
        from viz_core.errors import ParameterError
        raise ParameterError("--ray-address goes with --engine ray.")
    model = _model_on(bench, args)
    data = open_named(args.data, model.labels, labels_csv=args.labels_csv)  # sample:NAME:COUNT
    if args.limit is not None:
        data = data.subset(args.limit)
    folder = out_dir(args)
    disk = (None if args.no_cache else bench.disk if bench is not None
            else DiskCache(default_cache_dir()))
    runner = None
    if args.engine == "ray":
        from functools import partial

        from viz_core.cli.dataset import _recipe
        from viz_core.dataset.atlas_ray import neuron_atlas_ray
        runner = partial(neuron_atlas_ray, recipe=_recipe(args), address=args.ray_address,
                         workers=args.ray_workers)
    atlas = cached_atlas(model, data, args.layer, disk=disk, k=args.k, score=args.score,
                         channels=args.channels, batch_size=args.batch_size, runner=runner,
                         progress=TerminalProgress(enabled=not args.json))
    index = write_atlas(atlas, model, data, folder)
    index["model"] = model.name
    selectivity = sorted(index["channels"], key=lambda u: -u["selectivity"])[:5]
    lines = [f"{atlas.images} images of {data.name}, layer {atlas.layer}, {len(atlas)} channels, "
             f"k={atlas.k}; files in {folder}"]
    for unit in selectivity:
        top = unit["top"][0] if unit["top"] else {"image": "-", "activation": 0.0}
        lines.append(f"  channel {unit['channel']}: selective for {unit['selective_for']} "
                     f"({unit['selectivity']:.2f}); top image {top['image']} "
                     f"({top['activation']:.3g})")
    emit(args, index, lines)
    return 0

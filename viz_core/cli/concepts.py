"""Command ``concepts``: what a model found in a class's images (CRAFT concepts).

``python -m viz_core concepts --model M --data D --class C [--layer L] [--concepts K]
--out DIR --json`` reads the images of ``D`` labelled ``C`` (all of them when ``D`` has no
labels; ``sample:NAME:COUNT`` is a sample's first COUNT scenes, as the page draws them),
finds K concepts at the layer and writes, in DIR:

* ``crops/concept<k>_<i>.png``: concept k's best crops, the most typical first;
* ``concept<k>_mean_map.png``: its map averaged over the images;
* ``maps/image_<n>.npy``: a (K, H, W) float32 array per image at the model's input size, one
  map per concept in the order of ``concepts``;
* ``concepts.json``: the object printed with ``--json``: ``{class, layer, concepts: [{id,
  importance, crops: [png], crop_sources, mean_map_png}], images: [{image, maps_npy}],
  relative_error, ...}``; importances are Sobol total indices normalised to sum to 1, most
  important first.

Results are kept in the disk cache (``CNN_VIZ_CACHE``), keyed by the model, dataset, class,
layer and options, so running the same command again only writes the files.
"""
from __future__ import annotations

import json

from viz_core.runtime.limits import SEED, Bound

HELP = "CRAFT concepts: what a model found in a class's images, with importance and maps"
# the backend's ranges (viz_core.methods.craft, viz_core.dataset.concepts; a test keeps them
# equal), here without NumPy so a bad value is refused before TensorFlow loads
CONCEPTS = Bound("the number of concepts", 2, 32)
DESIGNS = Bound("the number of Sobol designs", 2, 4096)
TOP_CROPS = Bound("the number of crops per concept", 1, 64)
IMAGES = Bound("the number of images of the class", 1, 1000)


def register(commands) -> None:
    from viz_core.cli.common import add_dataset_args, bounded, output_folder

    p = commands.add_parser(
        "concepts", help=HELP,
        description="CRAFT (Fel et al., CVPR 2023): crops of a class's images, their "
        "activations at a layer factorised into a few concepts (NMF), each concept's "
        "importance for the class (Sobol total indices) and where it sits in each image. "
        "Writes crops, mean maps, one .npy of maps per image and concepts.json.")
    add_dataset_args(p)
    p.add_argument("--class", dest="class_name", required=True, metavar="C",
                   help="the class explained: a name or an index of the model's classes")
    p.add_argument("--layer", default=None,
                   help="a layer after a ReLU (default: the last conv layer)")
    p.add_argument("--concepts", default=10, type=bounded(CONCEPTS),
                   help="number of concepts, 2-32 (default 10)")
    p.add_argument("--designs", default=32, type=bounded(DESIGNS),
                   help="Sobol points per matrix; each image costs designs x (concepts + 2) "
                   "passes through the layers after the cut (default 32)")
    p.add_argument("--top", default=8, type=bounded(TOP_CROPS),
                   help="crops shown per concept (default 8)")
    p.add_argument("--limit", default=100, type=bounded(IMAGES),
                   help="at most this many images of the class, spread over the dataset "
                   "(default 100)")
    p.add_argument("--seed", default=0, type=bounded(SEED),
                   help="seeds the factorisation and the Sobol points (default 0)")
    p.add_argument("--no-cache", action="store_true", help="compute again, ignore the disk cache")
    p.add_argument("--out", required=True, type=output_folder, metavar="FOLDER",
                   help="folder to write files into (made when missing)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show TensorFlow's and the libraries' own log messages")
    p.set_defaults(handler=cmd_concepts)


def write_concepts(run, folder, model_name: str | None = None) -> dict:
    """Write the crops, mean maps, per-image maps and ``concepts.json`` of a
    :class:`~viz_core.dataset.concepts.ClassConcepts` into ``folder``; returns the index
    (with ``model`` when ``model_name`` is given)."""
    import numpy as np

    from viz_core.render import png_bytes
    from viz_core.render.concepts import crop_tile, mean_map_picture

    index, craft = run.to_index(), run.craft
    if model_name is not None:
        index["model"] = model_name
    crops, maps = folder / "crops", folder / "maps"
    crops.mkdir(exist_ok=True)
    maps.mkdir(exist_ok=True)
    for k, concept in enumerate(index["concepts"]):
        for i, pixels in enumerate(craft.top_crop_pixels[k]):
            name = crops / f"concept{k}_{i}.png"
            name.write_bytes(png_bytes(crop_tile(pixels)))
            concept["crops"].append(str(name))
        name = folder / f"concept{k}_mean_map.png"
        name.write_bytes(png_bytes(mean_map_picture(craft.mean_map(k))))
        concept["mean_map_png"] = str(name)
    for n, image in enumerate(index["images"]):
        name = maps / f"image_{n:04d}.npy"
        np.save(name, craft.maps(n).astype(np.float32))
        image["maps_npy"] = str(name)
    (folder / "concepts.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    return index


def cmd_concepts(args, bench=None) -> int:
    from viz_core.cli.atlas import _model_on
    from viz_core.cli.common import TerminalProgress, emit, out_dir
    from viz_core.dataset.concepts import cached_concepts
    from viz_core.dataset.listing import open_named
    from viz_core.runtime.cache import DiskCache, default_cache_dir

    model = _model_on(bench, args)  # the dashboard's workbench in an export bundle's run
    model.class_index(args.class_name)  # an unknown class is refused before the images are read
    data = open_named(args.data, model.labels, labels_csv=args.labels_csv)  # sample:NAME:COUNT
    folder = out_dir(args)
    disk = (None if args.no_cache else bench.disk if bench is not None
            else DiskCache(default_cache_dir()))
    run = cached_concepts(model, data, args.class_name, args.layer, disk=disk,
                          concepts=args.concepts, designs=args.designs, top=args.top,
                          seed=args.seed, limit=args.limit,
                          progress=TerminalProgress(enabled=not args.json))
    index = write_concepts(run, folder, model.name)
    lines = [f"{run.craft.images} images of {run.class_name} from {data.name}, layer "
             f"{run.craft.layer}: {len(run.craft)} concepts leave out "
             f"{100 * run.craft.relative_error:.0f}% of the activations; files in {folder}"]
    for concept in index["concepts"]:
        source = concept["crop_sources"][0]
        lines.append(f"  concept {concept['id']}: importance {concept['importance']:.2f}, "
                     f"best crop from {source['image']} at {source['box']}")
    emit(args, index, lines)
    return 0

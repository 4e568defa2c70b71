"""Command ``tcav``: does a class's score rise along a concept's direction at a layer?

``python -m viz_core tcav --model M --data D --concept DIR --random DIR [--random-runs 10]
--class C [--layer L] --json`` prints ``{class, layer, concept, score, p_value, significant,
random_scores, concept_scores, cav_accuracies, mean_derivative, images, concept_images,
random_set_size, random_images, dataset, random_source, skipped, ...}``.

``--data`` gives the class's images in any dataset form (class folders, a CSV, a ZIP, a
sample): the images labelled C, or all of them when unlabelled. ``--concept`` is a folder or a
ZIP of images showing the concept; ``--random`` a folder or ZIP of random images (left out, they
are drawn from ``--data``). ``score`` is the mean over the runs of the fraction of the class's
images whose score rises along the concept; ``random_scores`` the same with random images in
the concept's place; ``p_value`` a two-sided t-test of the two, ``significant`` below 0.05.
"""
from __future__ import annotations

import json

from viz_core.cli.common import bounded
from viz_core.methods.tcav_options import (CLASS_IMAGES, CONCEPT_IMAGES, DEFAULT_CLASS_IMAGES,
                                           DEFAULT_CONCEPT_IMAGES, DEFAULT_RANDOM_IMAGES,
                                           DEFAULT_RUNS, RANDOM_IMAGES, RUNS)
from viz_core.runtime.limits import SEED

HELP = ("TCAV: does a class's score rise along a concept (images you give) at "
        "a layer?")


def register(commands) -> None:
    from viz_core.cli.common import add_dataset_args, add_output_args, output_folder

    p = commands.add_parser(
        "tcav", help=HELP,
        description="Testing with Concept Activation Vectors (Kim et al. 2018): a linear "
        "classifier tells the concept's images from random images at a layer; the TCAV score "
        "is the fraction of the class's images whose score rises in that direction, tested "
        "against random directions over several runs. It counts directions, not sizes.")
    add_dataset_args(p)
    p.add_argument("--class", dest="class_name", required=True, metavar="C",
                   help="the class to score: a name or an index")
    p.add_argument("--concept", required=True, metavar="DIR_OR_ZIP",
                   help="folder or .zip of images that show the concept")
    p.add_argument("--random", default=None, metavar="DIR_OR_ZIP",
                   help="folder or .zip of random images (default: drawn from --data)")
    p.add_argument("--random-runs", type=bounded(RUNS), default=DEFAULT_RUNS, metavar="N",
                   help=f"runs against different random sets, {RUNS.low} to {RUNS.high} "
                   f"(default {DEFAULT_RUNS})")
    p.add_argument("--layer", default=None, help="layer (default: last conv layer)")
    p.add_argument("--images", type=bounded(CLASS_IMAGES), default=DEFAULT_CLASS_IMAGES,
                   metavar="N", help="at most this many of the class's images, spread over the "
                   f"dataset (default {DEFAULT_CLASS_IMAGES})")
    p.add_argument("--concept-images", type=bounded(CONCEPT_IMAGES),
                   default=DEFAULT_CONCEPT_IMAGES, metavar="N",
                   help=f"at most this many concept images (default {DEFAULT_CONCEPT_IMAGES})")
    p.add_argument("--random-images", type=bounded(RANDOM_IMAGES),
                   default=DEFAULT_RANDOM_IMAGES, metavar="N",
                   help="random images drawn for the random sets (default "
                   f"{DEFAULT_RANDOM_IMAGES})")
    p.add_argument("--seed", type=bounded(SEED), default=0,
                   help="seeds the random sets and the classifiers (default 0)")
    add_output_args(p, needs_out=False)
    p.add_argument("--out", default=None, type=output_folder, metavar="FOLDER",
                   help="also write tcav.json (the --json object) into this folder")
    p.set_defaults(handler=cmd_tcav)


def cmd_tcav(args, bench=None) -> int:
    from viz_core.cli.atlas import _model_on
    from viz_core.cli.common import emit, out_dir, progress_bar
    from viz_core.dataset.listing import open_named
    from viz_core.dataset.readers import open_dataset
    from viz_core.dataset.tcav_run import tcav_run

    model = _model_on(bench, args)  # the dashboard's workbench in an export bundle's run
    data = open_named(args.data, model.labels, labels_csv=args.labels_csv)  # sample:NAME:COUNT
    concept = open_dataset(args.concept, model.labels)
    random = None if args.random is None else open_dataset(args.random, model.labels)
    run = tcav_run(model, data, args.class_name, concept, random, args.layer,
                   runs=args.random_runs, class_images=args.images,
                   concept_images=args.concept_images, random_images=args.random_images,
                   seed=args.seed, progress=progress_bar(args))
    r = run.result
    verdict = "significant" if r.significant else "not significant"
    lines = [
        f"TCAV of {r.concept!r} for {r.class_name!r} at {r.layer}: {r.score:.2f} "
        f"(random directions: {r.random_score:.2f}), p = {r.p_value:.3g}, {verdict} at 0.05",
        f"  {r.images} class images of {run.dataset}, {r.concept_images} concept images, "
        f"{len(r.random_scores)} runs with random sets of {r.random_set_size} from "
        f"{run.random_images} images of {run.random_source}",
        "  the score counts the images whose class score rises along the concept, not by how "
        f"much (mean derivative {float(r.derivatives.mean()):.3g})",
    ]
    if run.skipped:
        lines.append(f"  {len(run.skipped)} files skipped, e.g. {run.skipped[0].file}: "
                     f"{run.skipped[0].reason}")
    payload = {**run.to_dict(), "model": model.name}
    if args.out is not None:
        (out_dir(args) / "tcav.json").write_text(json.dumps(payload, indent=1) + "\n",
                                                 encoding="utf-8")
    emit(args, payload, lines)
    return 0

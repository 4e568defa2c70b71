"""Write the sample gallery of generated scenes: ``python -m viz_core.demo.gallery [--out DIR]``.

Writes one PNG per entry of ``GALLERY`` and ``samples.json`` describing each file: its title, the
seed/classes/clutter that re-draw it, and each shape's label, class index and box. The result is
committed under ``assets/samples/``; ``viz_core.inputs.samples`` serves it to the app.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from viz_core.demo.shapes import draw_scene
from viz_core.paths import ASSETS

DEFAULT_OUT = ASSETS / "samples"
INDEX_FILE = "samples.json"
# Far from every training, validation and held-out seed of viz_core.demo.train.
GALLERY_FIRST_SEED = 3_000_000_000


@dataclass(frozen=True)
class GalleryEntry:
    """One gallery picture: file stem, user-facing title, the shapes it shows and its clutter."""

    name: str
    title: str
    classes: tuple[str, ...]
    clutter: float = 1.0


GALLERY: tuple[GalleryEntry, ...] = (
    GalleryEntry("circle", "Circle", ("circle",)),
    GalleryEntry("square", "Square", ("square",)),
    GalleryEntry("triangle", "Triangle", ("triangle",)),
    GalleryEntry("star", "Star", ("star",)),
    GalleryEntry("circle_and_star", "Circle and star", ("circle", "star")),
    GalleryEntry("square_and_triangle", "Square and triangle", ("square", "triangle")),
    GalleryEntry("triangle_heavy_clutter", "Triangle in heavy clutter", ("triangle",), clutter=2.5),
    GalleryEntry("all_four_shapes", "All four shapes", ("circle", "square", "triangle", "star")),
    GalleryEntry("plain_square", "Square on a plain background", ("square",), clutter=0.0),
)


def write_gallery(out_dir: Path = DEFAULT_OUT) -> list[dict]:
    """Draw every ``GALLERY`` entry into ``out_dir`` as PNG and write ``samples.json``.

    Entry k is drawn with scene seed ``GALLERY_FIRST_SEED + k``, so the output is identical on
    every run.

    Returns
    -------
    list of dict
        The records written to ``samples.json``, one per PNG.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for k, entry in enumerate(GALLERY):
        scene = draw_scene(GALLERY_FIRST_SEED + k, entry.classes, entry.clutter)
        file_name = f"{entry.name}.png"
        Image.fromarray(scene.image).save(out_dir / file_name, optimize=True)
        records.append(
            {
                "file": file_name,
                "name": entry.name,
                "title": entry.title,
                "seed": scene.seed,
                "classes": list(entry.classes),
                "clutter": entry.clutter,
                "shapes": [
                    {"label": shape.label, "class_index": shape.class_index, "box": list(shape.box)}
                    for shape in scene.shapes
                ],
            }
        )
    (out_dir / INDEX_FILE).write_text(json.dumps(records, indent=2) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m viz_core.demo.gallery", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output directory (default: assets/samples)"
    )
    args = parser.parse_args(argv)
    records = write_gallery(args.out)
    print(f"wrote {len(records)} scenes and {INDEX_FILE} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

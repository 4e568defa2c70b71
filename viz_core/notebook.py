"""Results as pictures in a notebook: the drawing half of :mod:`viz_core.api`.

The API's results draw themselves in Jupyter through this module (``_repr_png_`` and
``_repr_html_``); :func:`show` draws any result, the lower-level ones too, with options::

    import viz_core as vc

    model = vc.load_model("demo")
    vc.show(vc.explain(model, "assets/samples/circle_and_star.png"), colormap="magma")

``show`` returns a Pillow image, which Jupyter draws (Pillow images have ``_repr_png_``); for
several pictures (feature maps of several layers, LIME of several classes) it displays them
in order when IPython is there. Drawing uses :mod:`viz_core.render`, so a notebook shows what
the dashboard shows. Nothing here computes a result.
"""
from __future__ import annotations

import base64
import html as _html
from typing import Sequence

import numpy as np
from PIL import Image

from viz_core.errors import ParameterError

GRID_COLUMNS = 4


def picture(result, image=None, *, colormap: str = "viridis", opacity: float | None = None,
            blend: str = "heat"):
    """``result`` drawn as (H, W, 3) uint8 RGB arrays, one per picture (a list).

    ``result`` is an :class:`viz_core.api.Explanation` (its map over its image, at the image's
    size), a ``ClassHeatmap`` (over ``image``, a ``LoadedImage``, when given), a
    ``FeatureMaps`` (one grid per layer), a ``FilterPatterns`` (one grid), a
    ``LimeExplanation`` (one picture per explained class) or an image array. ``opacity``
    and ``blend`` are those of :func:`viz_core.render.overlay_heatmap` (by default the colour
    follows the heat: the photo is untouched where the map is 0).
    """
    from viz_core.render import apply_colormap, overlay_heatmap

    if hasattr(result, "map") and hasattr(result, "image"):
        return [overlay_heatmap(result.image, result.map, opacity=opacity, colormap=colormap,
                                blend=blend)]
    if hasattr(result, "heatmap"):
        if image is None:
            return [apply_colormap(np.asarray(result.heatmap), colormap)]
        return [overlay_heatmap(image.pixels, result.heatmap, opacity=opacity,
                                colormap=colormap, blend=blend)]
    if hasattr(result, "layers") and hasattr(result, "paths"):
        from viz_core.render.montage import montage

        return [montage(act.values, colormap=colormap).image for act in result.layers]
    if hasattr(result, "patterns"):
        from viz_core.render.filter_grid import pattern_grid

        alpha = getattr(result, "alpha", None)  # transparency of the methods that have it
        extra = {} if alpha is None else {"alpha": alpha}
        return [pattern_grid(result.patterns, dead=result.dead, **extra).image]
    if hasattr(result, "class_indices") and hasattr(result, "segments"):
        from viz_core.methods.lime import explanation_plane
        from viz_core.render.lime_view import explanation_picture

        return [explanation_picture(result.image, explanation_plane(result, k))
                for k in result.class_indices]
    if hasattr(result, "contract") and hasattr(result, "model_activation"):  # lesson mode
        from viz_core.render.lesson import unit_picture

        return [unit_picture(result)]
    if isinstance(result, np.ndarray) and result.ndim in (2, 3):
        return [result if result.dtype == np.uint8 else apply_colormap(result, colormap)]
    raise ParameterError(f"show() draws explanations, heatmaps, feature maps, filter patterns "
                         f"and LIME explanations; got {type(result).__name__}.")


def grid(explanations: Sequence, *, columns: int = GRID_COLUMNS, colormap: str = "viridis",
         opacity: float | None = None, blend: str = "heat") -> np.ndarray:
    """Explanations side by side, row by row: each map over its image as the model sees it.

    Returns
    -------
    np.ndarray
        (rows * (H + 4) + 4, columns * (W + 4) + 4, 3) uint8 RGB, with (H, W) the maps' size
        (the model's input size) and 4-pixel white gaps.
    """
    from viz_core.inputs.intake import resize_for_model
    from viz_core.render import overlay_heatmap
    from viz_core.render.filter_grid import pattern_grid

    tiles = []
    for item in explanations:
        height, width = item.map.shape
        seen = np.clip(resize_for_model(item.image, height, width, 3) + 0.5, 0, 255)
        tiles.append(overlay_heatmap(seen.astype("uint8"), item.map, opacity=opacity,
                                     colormap=colormap, blend=blend))
    return pattern_grid(np.stack(tiles), columns=columns).image


def html(result, captions: Sequence[str] = (), **options) -> str:
    """The pictures of ``result`` (:func:`picture`) as HTML, each with its caption above it."""
    from viz_core.render import png_bytes

    parts = []
    for k, pixels in enumerate(picture(result, **options)):
        data = base64.b64encode(png_bytes(pixels)).decode("ascii")
        caption = _html.escape(str(captions[k])) if k < len(captions) else ""
        parts.append(f'<figure style="display:inline-block;margin:4px">'
                     f'<figcaption>{caption}</figcaption>'
                     f'<img src="data:image/png;base64,{data}"/></figure>')
    return "<div>" + "".join(parts) + "</div>"


def metrics_table(evaluations: Sequence) -> str:
    """Evaluations (:class:`viz_core.api.Evaluation`) as an HTML table: one row per image, one
    column per metric, titled with its arrow (which way is better) and in its number format."""
    from viz_core.metrics import registry

    names = list(dict.fromkeys(name for e in evaluations for name in e.values))
    specs = [registry.get(name) for name in names]
    head = "".join(f"<th>{_html.escape(s.column)}</th>" for s in specs)
    rows = []
    for e in evaluations:
        cells = "".join(f"<td>{s.formatted(e.values.get(s.name))}</td>" for s in specs)
        method = f" ({_html.escape(e.method)})" if e.method else ""
        rows.append(f"<tr><td>{_html.escape(e.name)}</td><td>{_html.escape(e.label)}{method}"
                    f"</td>{cells}</tr>")
    return (f"<table><tr><th>image</th><th>class</th>{head}</tr>{''.join(rows)}</table>")


def show(result, image=None, **options):
    """``result`` as a Pillow image (Jupyter draws it); several pictures are displayed one
    after the other when IPython is there, and returned as a list. A list of explanations is
    one grid."""
    if isinstance(result, list) and result and all(hasattr(r, "map") for r in result):
        return Image.fromarray(grid(result, **options))
    pictures = [Image.fromarray(p) for p in picture(result, image, **options)]
    if len(pictures) == 1:
        return pictures[0]
    try:
        from IPython.display import display
    except ImportError:  # outside IPython: hand the pictures back
        return pictures
    for p in pictures:
        display(p)
    return pictures


ATLAS_CARDS = 32  # units drawn in a notebook; the rest are in the result's arrays


def atlas_html(atlas, pixels: dict, cards: int = ATLAS_CARDS) -> str:
    """A neuron atlas (:class:`viz_core.dataset.atlas.Atlas`) as HTML unit cards, one row per
    unit: its number, most selective class and selectivity (with a bar), then its top
    exemplars cropped to the receptive field around the maximum.

    ``pixels`` is ``{entry: (H, W, 3) uint8}``, the exemplars as the model sees them
    (:func:`viz_core.dataset.atlas.exemplar_pixels`); the first ``cards`` units are drawn.
    """
    from viz_core.render import png_bytes
    from viz_core.render.atlas import crop_picture

    selective, selectivity = atlas.selective_for, atlas.selectivity
    rows = []
    for r, channel in enumerate(atlas.channels[:cards]):
        crops = []
        for e in atlas.exemplars(int(channel), "top"):
            data = base64.b64encode(png_bytes(crop_picture(pixels[e["entry"]], e["box"])))
            title = _html.escape(f"{e['image']}: {e['activation']:.3g} at {e['position']}")
            crops.append(f'<img title="{title}" style="height:64px;margin:1px;'
                         f'image-rendering:pixelated" src="data:image/png;base64,'
                         f'{data.decode("ascii")}"/>')
        favourite = atlas.classes[selective[r]] if selective[r] >= 0 else "none"
        share = float(np.clip(selectivity[r], 0, 1))
        rows.append(
            f'<tr><td style="white-space:nowrap"><b>unit {int(channel)}</b><br/>'
            f'{_html.escape(favourite)} · {selectivity[r]:.2f}<div style="width:80px;'
            f'height:6px;background:#ddd"><div style="width:{share * 100:.0f}%;height:6px;'
            f'background:#e45756"></div></div></td><td>{"".join(crops)}</td></tr>')
    more = len(atlas.channels) - min(cards, len(atlas.channels))
    tail = f"<p>… and {more} more units (in the result's arrays).</p>" if more > 0 else ""
    head = _html.escape(f"{atlas.layer}: {len(atlas)} units over {atlas.images} images of "
                        f"{atlas.dataset}, top {atlas.k} by {atlas.score}; classes by "
                        f"{atlas.grouped_by}")
    return f"<div><p>{head}</p><table>{''.join(rows)}</table>{tail}</div>"


def _img(pixels: np.ndarray, title: str = "", height: int = 64) -> str:
    from viz_core.render import png_bytes

    data = base64.b64encode(png_bytes(pixels)).decode("ascii")
    return (f'<img title="{_html.escape(title)}" style="height:{height}px;margin:1px;'
            f'image-rendering:pixelated" src="data:image/png;base64,{data}"/>')


def concepts_html(run) -> str:
    """CRAFT concepts (:class:`viz_core.dataset.concepts.ClassConcepts`) as HTML rows, most
    important first: the concept's number in its colour, its importance (with a bar), its best
    crops, and its map averaged over the images."""
    from viz_core.render.concepts import concept_colour, crop_tile, mean_map_picture

    craft = run.craft
    rows = []
    for k in range(len(craft)):
        crops = "".join(_img(crop_tile(p), f"crop {i} of concept {k}")
                        for i, p in enumerate(craft.top_crop_pixels[k]))
        share = float(np.clip(craft.importance[k], 0, 1))
        colour = "#%02x%02x%02x" % concept_colour(k)
        rows.append(
            f'<tr><td style="white-space:nowrap"><b>concept {k}</b> '
            f'<span style="color:{colour}">■</span><br/>importance {share:.2f}'
            f'<div style="width:80px;height:6px;background:#ddd"><div style="width:'
            f'{share * 100:.0f}%;height:6px;background:{colour}"></div></div></td>'
            f'<td>{crops}</td><td>{_img(mean_map_picture(craft.mean_map(k)), "mean map")}'
            f'</td></tr>')
    head = _html.escape(f"{run.class_name} at {craft.layer}: {len(craft)} concepts over "
                        f"{craft.images} images of {run.dataset}; they leave out "
                        f"{100 * craft.relative_error:.0f}% of the crops' activations; "
                        f"importance of the class's {craft.score} (Sobol total indices)")
    return (f"<div><p>{head}</p><table><tr><th>concept</th><th>best crops</th>"
            f"<th>mean map</th></tr>{''.join(rows)}</table></div>")


def tcav_html(result) -> str:
    """A TCAV result (:class:`viz_core.methods.tcav.TcavResult`) as a small summary: the score
    against the random directions', the p-value, whether it is significant, each run's
    scores."""
    verdict = "significant" if result.significant else "not significant"
    runs = ", ".join(f"{s:.2f}" for s in result.concept_scores)
    randoms = ", ".join(f"{s:.2f}" for s in result.random_scores)
    cells = [("TCAV score", f"{result.score:.2f}"),
             ("random directions", f"{float(np.mean(result.random_scores)):.2f}"),
             ("p-value", f"{result.p_value:.3g} ({verdict} at 0.05)"),
             ("concept runs", runs), ("random runs", randoms)]
    body = "".join(f"<tr><th style='text-align:left'>{_html.escape(a)}</th>"
                   f"<td>{_html.escape(b)}</td></tr>" for a, b in cells)
    head = _html.escape(f"{result.concept!r} for {result.class_name!r} at {result.layer}: "
                        f"{result.images} class images, {result.concept_images} concept images")
    note = ("The score counts the class's images whose score rises along the concept, not by "
            "how much.")
    return f"<div><p>{head}</p><table>{body}</table><p><i>{note}</i></p></div>"

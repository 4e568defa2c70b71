"""Learner notes: a short "what am I looking at" for each page, in plain words, about the
model, layer and class on screen right now. Names (model, layer, class) are shown literally."""
from __future__ import annotations

import streamlit as st

from viz_core.models.catalog import LoadedModel

from .text import literal

_KIND = {
    "softmax": "picks one class out of {n}: its scores pass through a softmax so they add up to 1",
    "binary": "has one output unit: the probability p of class 1, and 1 - p for class 0",
    "multilabel": "has {n} independent yes/no outputs (several can be true at once)",
    "linear": "outputs {n} raw scores",
}


_COUNT = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def _depth(model: LoadedModel, layer: str) -> str:
    conv = list(model.info.conv_layers)
    spatial = list(model.info.spatial_layers)
    order = conv if layer in conv else spatial
    if layer not in order or len(order) < 3:
        return ""
    position = order.index(layer) / max(1, len(order) - 1)
    if position < 0.34:
        return ("It is an early layer: its channels react to simple things such as edges, "
                "colours and small textures.")
    if position < 0.67:
        return ("It is a middle layer: its channels combine edges into corners, curves and "
                "repeating patterns.")
    return ("It is a deep layer: its channels react to large parts of objects, and its maps "
            "are coarse because the image has been shrunk by pooling.")


def overview(model: LoadedModel) -> str:
    h, w, c = model.info.input_shape
    kind = _KIND[model.info.output_kind].format(n=model.info.num_classes)
    return (f"**{literal(model.title)}** looks at a {h}×{w} picture with {c} colour "
            f"channel{'s' if c > 1 else ''}. The table lists its layers in the order the picture "
            f"flows through them: {len(model.info.conv_layers)} of them are convolutions, which "
            f"slide small filters over the picture. The model {kind}. The bar chart shows its "
            f"{_COUNT.get(min(5, model.info.num_classes), 'five')} most likely answers for the "
            "chosen image.")


def feature_maps(model: LoadedModel, layer: str) -> str:
    return (f"Each small square is one channel of layer **{literal(layer)}** of {literal(model.title)}: a map of "
            "where in the image that channel's filter found its pattern (bright = strong). "
            f"{_depth(model, layer)} Dark, empty squares are channels that found nothing in "
            "this image.")


def filters(model: LoadedModel, layer: str) -> str:
    return (f"Each tile is a picture made up to excite one filter of layer **{literal(layer)}** as much "
            "as possible, starting from grey noise and following the gradient. It shows what "
            f"that filter looks for, not a real photo. {_depth(model, layer)}")


def heatmaps(model: LoadedModel, label: str, method: str, layer: str | None) -> str:
    where = f" (computed at layer **{literal(layer)}**)" if layer else ""
    return (f"The colours show which parts of the image made {literal(model.title)} say "
            f"**{literal(label)}**, according to **{method}**{where}: warm or bright areas pushed the "
            "score of that class up. Compare two classes: a good explanation moves to the "
            "object of each class.")


def lime(model: LoadedModel, label: str) -> str:
    return ("LIME cuts the image into superpixels (patches of similar colour), hides random "
            f"sets of them and watches how the probability of **{literal(label)}** from {literal(model.title)} "
            "changes. The highlighted patches are the ones whose presence raised that "
            "probability the most. The fit (R²) tells how well this simple story matches the "
            "model's answers.")


def show(text: str, where=None) -> None:
    """Draw a note as a collapsed "What am I looking at?" box, in ``where`` (the page's
    :attr:`ui.page.Page.note` place) or here."""
    box = where.container() if where is not None else st.container()
    with box, st.expander("What am I looking at?", icon=":material/school:"):
        st.markdown(text)


def compare(model: LoadedModel) -> str:
    return ("Each picture is one method's answer to the same question: which pixels made "
            f"{literal(model.title)} choose this class? The curves test the answers: delete the pixels a "
            "method ranks highest and a faithful map makes the probability fall fast (low "
            "deletion area); reveal them first and it rises fast (high insertion area). The "
            "matrix shows how much the methods agree (1 = same ranking of pixels).")


def sanity(model: LoadedModel) -> str:
    return (f"The check replaces the learned weights of {literal(model.title)} with random ones, layer "
            "by layer from the top, and redraws every map. A method that really explains the "
            "model must change as the model is destroyed; one whose map stays the same (like "
            "the edge detector control) only shows the image, not the model. Guided "
            "Backpropagation is the classic case (Adebayo et al. 2018): its sharp maps show "
            "what the ReLUs let through, mostly edges, so they hardly change when the output "
            "layer is random (the demo model's star: SSIM 0.98 "
            "against 0.77 for the plain gradient and 0.22 for Grad-CAM). The pointing "
            "game counts how often a map's strongest point lands on the right shape.")

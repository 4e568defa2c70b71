"""Pictures of superpixels and LIME explanations: uint8 RGB in, uint8 RGB out.

numpy, Pillow and scikit-image only (borders with ``skimage.segmentation``); no plotting library.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from scipy.ndimage import binary_erosion
from skimage.segmentation import mark_boundaries

from viz_core.errors import ParameterError
from viz_core.runtime.limits import MASK_OPACITY
from viz_core.render.choices import REST_HELP, RESTS, STYLE_HELP, STYLES  # noqa: F401
from viz_core.render.images import overlay_heatmap

SUPPORT_COLOUR = (0, 200, 83)  # green: supports the class (lime's convention)
OPPOSE_COLOUR = (229, 57, 53)  # red: speaks against it
BOUNDARY_COLOUR = (255, 221, 0)
BOUNDARY_CHOICES = (BOUNDARY_COLOUR, (0, 229, 255), (255, 0, 200), (255, 255, 255), (0, 0, 0))


def _image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ParameterError(
            f"Expected an (H, W, 3) uint8 RGB image; got shape {img.shape}, dtype {img.dtype}."
        )
    return img


def _check_same_size(img: np.ndarray, plane: np.ndarray, what: str) -> None:
    if plane.shape != img.shape[:2]:
        raise ParameterError(
            f"The {what} is {plane.shape[1]}x{plane.shape[0]} but the image is "
            f"{img.shape[1]}x{img.shape[0]}."
        )


def contrasting_colour(image: np.ndarray, segments: np.ndarray) -> tuple[int, int, int]:
    """The colour from :data:`BOUNDARY_CHOICES` farthest from every superpixel's mean colour,
    so borders stay visible on a yellow shape as on a blue sky."""
    img = _image(image).reshape(-1, 3).astype("float64")
    flat = np.asarray(segments).ravel()
    count = int(flat.max()) + 1
    sizes = np.maximum(np.bincount(flat, minlength=count), 1)
    means = np.stack([np.bincount(flat, weights=img[:, c], minlength=count) / sizes
                      for c in range(3)], axis=1)
    choices = np.asarray(BOUNDARY_CHOICES, dtype="float64")
    nearest = np.linalg.norm(means[None, :, :] - choices[:, None, :], axis=2).min(axis=1)
    return BOUNDARY_CHOICES[int(np.argmax(nearest))]


def superpixel_boundaries(
    image: np.ndarray,
    segments: np.ndarray,
    *,
    colour: tuple[int, int, int] | None = None,
) -> np.ndarray:
    """The image with superpixel borders drawn (``skimage.segmentation.mark_boundaries``).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
    segments : (H, W) int
    colour : RGB of the borders, each 0..255, or None for :func:`contrasting_colour`

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB.
    """
    img = _image(image)
    _check_same_size(img, np.asarray(segments), "segmentation")
    if colour is None:
        colour = contrasting_colour(img, segments)
    marked = mark_boundaries(img, segments, color=tuple(c / 255.0 for c in colour), mode="inner")
    return np.clip(marked * 255.0 + 0.5, 0, 255).astype("uint8")


def _rest(img: np.ndarray, selected: np.ndarray, rest: str) -> np.ndarray:
    if rest not in RESTS:
        raise ParameterError(f"Unknown background display {rest!r}; choose one of {', '.join(RESTS)}.")
    out = img.astype("float32")
    if rest == "dim":
        out = np.where(selected[..., None], out, out * 0.4 + 255.0 * 0.6)  # 60% towards white
    elif rest == "hide":
        out = np.where(selected[..., None], out, 128.0)
    return out


def evidence_image(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    style: str = "outline",
    rest: str = "keep",
    opacity: float = 0.45,
    width: int = 2,
) -> np.ndarray:
    """Superpixels chosen by an evidence mask, drawn over the image.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
        The image as the model sees it.
    mask : (H, W) int
        1 where superpixels support the class, -1 where they oppose it, 0 elsewhere
        (:func:`viz_core.methods.lime.evidence_mask`).
    style : {"outline", "fill"}
        Outline the chosen superpixels, or tint them.
    rest : {"keep", "dim", "hide"}
        What the rest of the image looks like.
    opacity : float in [0, 1]
        Strength of the tint (``fill``).
    width : int >= 1
        Thickness of the outline in pixels, drawn inside the chosen region.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB.
    """
    img = _image(image)
    m = np.asarray(mask)
    _check_same_size(img, m, "mask")
    if style not in ("outline", "fill"):
        raise ParameterError(f"Unknown style {style!r} for an evidence mask; choose outline or fill.")
    opacity = MASK_OPACITY.check(opacity)
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or width < 1:
        raise ParameterError(f"The outline width must be a whole number >= 1; got {width!r}.")
    out = _rest(img, m != 0, rest)
    for sign, colour in ((1, SUPPORT_COLOUR), (-1, OPPOSE_COLOUR)):
        region = m == sign
        if not region.any():
            continue
        paint = np.asarray(colour, dtype="float32")
        if style == "fill":
            out[region] = out[region] * (1.0 - opacity) + paint * opacity
        # The border of the region (not of each superpixel in it), ``width`` pixels inside it.
        size = 2 * width + 1  # eroding with this square removes `width` pixels
        edge = region & ~binary_erosion(region, structure=np.ones((size, size), bool),
                                        border_value=0)
        out[edge] = paint
    return np.clip(out + 0.5, 0, 255).astype("uint8")


def weights_image(
    image: np.ndarray,
    weights01: np.ndarray,
    *,
    opacity: float = 0.55,
    colormap: str = "rdbu_r",
) -> np.ndarray:
    """Every superpixel coloured by its weight (:func:`viz_core.methods.lime.weight_map`).

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
    weights01 : (H, W) float in [0, 1], 0.5 = no effect
    opacity : float in [0, 1]
    colormap : str
        A diverging map from :data:`viz_core.render.COLORMAPS`.

    Returns
    -------
    np.ndarray
        (H, W, 3) uint8 RGB.
    """
    img = _image(image)
    _check_same_size(img, np.asarray(weights01), "weight map")
    # uniform: 0.5 means "no effect" here, so the heat blend would half-hide neutral regions
    return overlay_heatmap(img, weights01, opacity=opacity, colormap=colormap, blend="uniform")


def display_factor(height: int, width: int, target: int = 450) -> int:
    """A whole enlargement factor so the longer side is about ``target`` pixels (at least 1)."""
    return max(1, int(round(target / max(height, width, 1))))


def enlarge(values: np.ndarray, factor: int, *, smooth: bool = False) -> np.ndarray:
    """Enlarge an image or a label map by a whole factor, so thin borders drawn afterwards stay
    crisp on screen.

    Parameters
    ----------
    values : (H, W) or (H, W, 3) array
        Label maps (segments, masks) are repeated (nearest neighbour); ``smooth=True`` resizes
        a uint8 RGB image bilinearly with Pillow instead.
    factor : int >= 1

    Returns
    -------
    np.ndarray
        (H * factor, W * factor[, 3]), same dtype.
    """
    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise ParameterError(f"The enlargement factor must be a whole number >= 1; got {factor!r}.")
    arr = np.asarray(values)
    if factor == 1:
        return arr
    if smooth:
        img = Image.fromarray(_image(arr))
        size = (arr.shape[1] * factor, arr.shape[0] * factor)
        return np.asarray(img.resize(size, Image.Resampling.BILINEAR))
    return np.repeat(np.repeat(arr, factor, axis=0), factor, axis=1)


def explanation_picture(
    image: np.ndarray,
    plane: np.ndarray,
    *,
    style: str = "outline",
    rest: str = "keep",
    scale: int = 1,
) -> np.ndarray:
    """The picture of one explained class, as the page, the command line and the notebook draw it.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB
        The image as the model sees it (``LimeExplanation.image``).
    plane : (H, W) array
        What :func:`viz_core.methods.lime.explanation_plane` returns for ``style``: the evidence
        mask (int, 1 supports, -1 opposes, 0 not shown) for ``outline`` and ``fill``, the weight
        map (float in [0, 1], 0.5 no effect) for ``weights``.
    style : {"outline", "fill", "weights"}
        See :data:`STYLE_HELP`.
    rest : {"keep", "dim", "hide"}
        Ignored by ``weights``.
    scale : int >= 1
        Whole enlargement (outlines stay ``scale + 1`` pixels wide).

    Returns
    -------
    np.ndarray
        (H * scale, W * scale, 3) uint8 RGB.
    """
    if style not in STYLES:
        raise ParameterError(f"Unknown style {style!r}; choose one of {', '.join(STYLES)}.")
    big = enlarge(image, scale, smooth=True)
    if style == "weights":
        return weights_image(big, enlarge(plane, scale))
    return evidence_image(big, enlarge(plane, scale), style=style, rest=rest, width=scale + 1)

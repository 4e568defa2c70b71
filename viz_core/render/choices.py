"""The names of the picture options a user chooses, with what each does: colour maps, how a
montage scales and orders its maps, how LIME's picture shows superpixels and the rest.

Plain data with no NumPy import, so the command line lists the choices while parsing, before
NumPy or TensorFlow loads; the modules that draw import them from here.
"""
from __future__ import annotations

COLORMAPS = ("viridis", "magma", "inferno", "plasma", "cividis", "gray", "terrain", "jet",
             "turbo", "coolwarm", "rdbu_r")

# montage: one colour scale per channel or one for the whole layer; channels by index or mean
SCALES = ("channel", "layer")
ORDERS = ("index", "mean")

STYLES = ("outline", "fill", "weights")
STYLE_HELP = {
    "outline": "outline the shown superpixels (R lime's default display)",
    "fill": "tint the shown superpixels",
    "weights": "every superpixel coloured by its weight (red supports, blue opposes)",
}
# Compare and Sanity: each map over the image, or the map alone
SHOW = ("overlay", "heatmap")

# how a heatmap's colour covers the photo in an overlay
BLENDS = ("heat", "uniform")
BLEND_HELP = {
    "heat": "the colour's opacity follows the heat: the photo untouched where the map is 0, "
            "fully coloured at the top",
    "uniform": "the same opacity everywhere (as the R tutorial and pytorch-grad-cam blend)",
}

RESTS = ("keep", "dim", "hide")
REST_HELP = {
    "keep": "the rest of the image as it is",
    "dim": "the rest of the image faded",
    "hide": "the rest of the image grey",
}

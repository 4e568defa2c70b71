"""Features: what a layer computes and what one of its units responds to. Feature maps show the
activations of a layer for an image; filter patterns and feature visualisation make the picture
a filter responds to most, by gradient ascent from noise.

Modules:
    activations     feature maps of chosen layers for one image, per-channel statistics
    filters         filter patterns: the entry point, its results and their disk cache
    ascent          the ascent itself: layer cut, receptive field, classic and fast runs
    feature_vis     the ``fourier`` and ``maco`` runs: ascent with a natural-image prior
    filter_choice   which layers and filters can be drawn, each request checked
    filter_options  the choices: methods, steps, sizes (plain data, no NumPy)
"""

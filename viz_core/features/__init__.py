"""Features: what a layer computes and what one of its units responds to. Feature maps show the
activations of a layer for an image; filter patterns and feature visualisation make the picture
a filter responds to most, by gradient ascent from noise; the unit arithmetic (lesson mode)
writes out how one output number of a layer is computed.

Modules:
    activations         feature maps of chosen layers for one image, per-channel statistics
    filters             filter patterns: the entry point, its results and their disk cache
    ascent              the ascent itself: layer cut, receptive field, classic and fast runs
    feature_vis         the ``fourier`` and ``maco`` runs: ascent with a natural-image prior
    filter_choice       which layers and filters can be drawn, each request checked
    filter_options      the choices: methods, steps, sizes (plain data, no NumPy)
    arithmetic          one output number of a layer on the user's model and image: finds the
                        layer, runs the model, hands the numbers to arithmetic_layers
    arithmetic_layers   each kind of layer's sums from its input, output and weights
    arithmetic_math     windows, padding and activation functions, in NumPy
    arithmetic_results  the results: one frozen dataclass per kind of layer, with its JSON
    arithmetic_sandbox  the convolution sandbox: a toy grid and kernel, no model
"""

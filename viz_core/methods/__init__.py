"""Methods: the explanation methods, listed in one registry, and their kernels.

``registry`` is the one list of methods (name, family, parameters with ranges, cost, compute
function as ``"module:function"``); it imports no TensorFlow. ``heatmap`` holds the result type
:class:`ClassHeatmap` and the entry points: ``class_heatmap`` (one image, cached steps),
``class_heatmaps`` (many images, batched: the dataset engine, the demo's evaluation and the
public API use it) and ``top_classes``. The kernels sit by family: ``layer`` (Grad-CAM,
Grad-CAM++, LayerCAM, HiResCAM, XGradCAM, EigenCAM on stacks of activations; Score-CAM and
AblationCAM), ``pixel`` (saliency, SmoothGrad, Integrated Gradients on stacks of images),
``perturbation`` (occlusion, RISE) and ``lime`` with ``superpixels``. Underneath: ``scores``
(the differentiated score as coefficients, one compiled step for every class), ``steps`` (the
model split at a layer, compiled steps, per-model caches), ``context`` (``MethodContext`` and
``PixelBatch``, what methods that run the model themselves get) and ``checks`` (layer, image and
parameter checks at the boundary).

Concepts, beside the heatmaps and on the same model cut: ``craft`` (CRAFT: a class's crops
factorised into concepts, their Sobol importance and maps) and ``tcav`` (TCAV: concept
activation vectors, scores against random runs, the t-test), with ``tcav_options`` (TCAV's
bounds and defaults as plain data, checked by the command line before NumPy loads).
"""

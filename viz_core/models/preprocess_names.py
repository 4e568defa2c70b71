"""The names of the input preprocessings and what each does, in words.

Plain data with no NumPy or Keras import, so the command line lists the choices of
``--preprocess`` while parsing, before TensorFlow loads; :mod:`viz_core.models.preprocess`
holds the functions.
"""
from __future__ import annotations

PREPROCESSING_NAMES = ("none", "unit", "symmetric", "caffe", "torch")
PREPROCESSING_HELP = {
    "none": "pixels as they are, 0..255 (models that scale inside, e.g. EfficientNet, ConvNeXt)",
    "unit": "x / 255, so 0..1 (as the tutorial does)",
    "symmetric": "x / 127.5 - 1, so -1..1 (MobileNet, Inception, Xception)",
    "caffe": "RGB to BGR, minus the ImageNet mean (VGG, ResNet)",
    "torch": "x / 255, minus mean, divided by std per channel (DenseNet)",
}

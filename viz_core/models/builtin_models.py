"""The built-in models: names, titles, input sizes, preprocessing, where their weights come from.

A table of plain data, with no NumPy or TensorFlow import, so the command line can list the
models and check ``--model`` while parsing, before TensorFlow loads; :mod:`viz_core.models.catalog`
loads them.
"""
from __future__ import annotations

from dataclasses import dataclass

from viz_core.errors import ParameterError

WEIGHT_CHOICES = ("imagenet", "none")


@dataclass(frozen=True)
class BuiltinModel:
    """A model the dashboard knows by name.

    Attributes
    ----------
    name : str
        Short name used in the UI, the URL and the command line, e.g. ``"vgg16"``.
    title : str
        What users read, e.g. ``"VGG16 (ImageNet)"``.
    input_size : (H, W)
    preprocessing : str
        One of :data:`viz_core.models.preprocess_names.PREPROCESSING_NAMES`.
    constructor : str
        Name of the ``keras.applications`` function; empty for the bundled models.
    weights_file : str
        File Keras stores ImageNet weights under, in ``$KERAS_HOME/models``.
    weights_url, weights_hash : str
        Where Keras downloads that file from and its MD5 or SHA-256, exactly as the Keras
        Application passes them to ``keras.utils.get_file`` (``tests/test_downloads.py``
        checks them against the installed Keras); the hash is empty where Keras has none.
    weights_mb : int
        The file's size in MB as keras.io lists it, to say what a download costs before it
        starts.
    loader : str
        ``"module:function"`` that loads a bundled model trained by its own module, imported
        when the model is asked for (so the catalogue imports no demo module); empty for the
        demo model and the Keras Applications, which the catalogue loads itself.
    """

    name: str
    title: str
    input_size: tuple[int, int]
    preprocessing: str
    constructor: str = ""
    weights_file: str = ""
    weights_url: str = ""
    weights_hash: str = ""
    weights_mb: int = 0
    loader: str = ""

    @property
    def bundled(self) -> bool:
        """Whether the model ships with the project (no Keras Application, no weights choice)."""
        return not self.constructor


_KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"
BUILTIN_MODELS: tuple[BuiltinModel, ...] = (
    BuiltinModel("demo", "Demo: shapes CNN", (150, 150), "unit"),
    # the Dataset page's "shortcut scenes" are explained by this model, trained (and loaded)
    # by viz_core.demo.shortcut
    BuiltinModel("shortcut_demo", "Shortcut demo: CNN that cheats", (64, 64), "unit",
                 loader="viz_core.demo.shortcut:load_shortcut_model"),
    BuiltinModel("vgg16", "VGG16", (224, 224), "caffe", "VGG16",
                 "vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5",
                 "64373286793e3c8b2b4e3219cbf3544b", 528),
    BuiltinModel("vgg19", "VGG19", (224, 224), "caffe", "VGG19",
                 "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5",
                 "cbe5617147190e668d6c5d5026f83318", 549),
    BuiltinModel("resnet50", "ResNet50", (224, 224), "caffe", "ResNet50",
                 "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                 "2cb95161c43110f7111970584f804107", 98),
    BuiltinModel("mobilenet_v2", "MobileNetV2", (224, 224), "symmetric", "MobileNetV2",
                 "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                 _KERAS_WEIGHTS
                 + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
                 "", 14),
    BuiltinModel("efficientnet_b0", "EfficientNetB0", (224, 224), "none", "EfficientNetB0",
                 "efficientnetb0.h5",
                 "https://storage.googleapis.com/keras-applications/efficientnetb0.h5",
                 "902e53a9f72be733fc0bcb005b3ebbac", 29),
    BuiltinModel("inception_v3", "InceptionV3", (299, 299), "symmetric", "InceptionV3",
                 "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS
                 + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
                 "9a0d58056eeedaa3f26cb7ebd46da564", 92),
    BuiltinModel("densenet121", "DenseNet121", (224, 224), "torch", "DenseNet121",
                 "densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5",
                 "9d60b8095a5708f2dcce2bca79d332c7", 33),
    BuiltinModel("xception", "Xception", (299, 299), "symmetric", "Xception",
                 "xception_weights_tf_dim_ordering_tf_kernels.h5",
                 _KERAS_WEIGHTS + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5",
                 "0a58e3b7378bc2990ea3b43d5981f1f6", 88),
    BuiltinModel("convnext_tiny", "ConvNeXtTiny", (224, 224), "none", "ConvNeXtTiny",
                 "convnext_tiny.h5", _KERAS_WEIGHTS + "convnext/convnext_tiny.h5",
                 "8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff", 110),
)
BUILTIN_NAMES = tuple(m.name for m in BUILTIN_MODELS)


def builtin(name: str) -> BuiltinModel:
    """The built-in model called ``name``; :class:`ParameterError` naming the choices if none is."""
    for spec in BUILTIN_MODELS:
        if spec.name == name:
            return spec
    raise ParameterError(f"Unknown model {name!r}; built-in models: {', '.join(BUILTIN_NAMES)}.")

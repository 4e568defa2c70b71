"""Model catalogue and inspection: built-ins (random weights), nested, binary, 1-channel,
uploaded .h5/.keras files, refused Lambda layers, ImageNet weights from a Keras cache."""
from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from tests.conftest import nested_cnn, tiny_cnn
from viz_core.models import catalog
from viz_core.models.catalog import imagenet_labels, load_builtin_model, load_uploaded_model
from viz_core.errors import ModelError, ParameterError, UnsafeModelError, WeightsUnavailableError
from viz_core.models.inspect import inspect_model


@pytest.mark.slow  # builds ImageNet-size models
@pytest.mark.parametrize(
    "name,size,last_conv,n_conv",
    [
        ("vgg16", 224, "block5_conv3", 13),
        ("resnet50", 224, "conv5_block3_3_conv", 53),
        ("mobilenet_v2", 224, "Conv_1", 52),
        ("efficientnet_b0", 224, "top_conv", 81),
    ],
)
def test_builtin_models_with_random_weights(name, size, last_conv, n_conv):
    loaded = load_builtin_model(name, "none", allow_download=False)
    info = loaded.info
    assert info.input_shape == (size, size, 3)
    assert info.output_kind == "softmax" and info.num_classes == 1000
    assert info.last_conv_layer == last_conv
    assert len(info.conv_layers) == n_conv
    assert loaded.labels[281] == "tabby" and len(loaded.labels) == 1000
    assert loaded.identity == f"{name}@none:{catalog.RANDOM_WEIGHTS_SEED}"


@pytest.mark.slow  # builds ImageNet-size models
def test_random_weights_are_seeded():
    a = load_builtin_model("mobilenet_v2", "none", allow_download=False)
    b = load_builtin_model("mobilenet_v2", "none", allow_download=False)
    wa = a.model.get_layer("Conv1").get_weights()[0]
    wb = b.model.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(wa, wb)


def test_imagenet_labels_are_offline_and_in_keras_order():
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert labels[0] == "tench" and labels[285] == "Egyptian cat" and labels[999] == "toilet tissue"


@pytest.mark.slow  # builds ImageNet-size models
def test_nested_transfer_model_layers_are_named_by_path():
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(64, 64, 3))
    model = keras.Sequential([keras.Input((64, 64, 3)), base, keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    info = inspect_model(model)
    paths = [layer.path for layer in info.layers]
    assert "vgg16/block5_conv3" in paths and "vgg16" in paths
    assert info.last_conv_layer == "vgg16/block5_conv3"
    assert info.layer("vgg16/block5_conv3").output_shape == (4, 4, 512)
    assert info.output_kind == "binary" and info.num_classes == 2
    assert "vgg16/block1_pool" in info.spatial_layers and "vgg16" not in info.spatial_layers


def test_output_kinds_and_one_channel():
    assert inspect_model(tiny_cnn(activation="softmax")).output_kind == "softmax"
    assert inspect_model(tiny_cnn(classes=1, activation="sigmoid")).output_kind == "binary"
    assert inspect_model(tiny_cnn(classes=5, activation="sigmoid")).output_kind == "multilabel"
    assert inspect_model(tiny_cnn(activation=None)).output_kind == "linear"
    # a separate Softmax layer at the end is a softmax output too
    scores = tiny_cnn(activation=None)
    with_layer = keras.Sequential([keras.Input(scores.input_shape[1:]), *scores.layers,
                                   keras.layers.Softmax()])
    assert inspect_model(with_layer).output_kind == "softmax"
    grey = inspect_model(tiny_cnn(size=28, channels=1))
    assert grey.input_shape == (28, 28, 1)
    assert grey.conv_layers == ("conv_a", "conv_b")
    assert grey.layer("pool_a").output_shape == (14, 14, 4)


def test_model_without_conv_layers_is_refused():
    dense = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ModelError, match="no convolutional layers"):
        inspect_model(dense)


def test_non_image_and_multi_input_models_are_refused():
    vec = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="image input"):
        inspect_model(vec)
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    two = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Flatten()(
        keras.layers.Conv2D(2, 3)(keras.layers.Add()([a, b])))))
    with pytest.raises(ModelError, match="2 inputs"):
        inspect_model(two)
    five = keras.Sequential([keras.Input((8, 8, 5)), keras.layers.Conv2D(2, 3),
                             keras.layers.Flatten(), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="5 channels"):
        inspect_model(five)


def test_upload_keras_and_h5_round_trip(tmp_path):
    model = tiny_cnn(classes=2)
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    for suffix in ("keras", "h5"):
        path = tmp_path / f"m.{suffix}"
        model.save(path)
        loaded = load_uploaded_model(path.read_bytes(), f"my model.{suffix}",
                                     preprocessing="unit", labels=["cat", "dog"])
        assert loaded.labels == ("cat", "dog")
        assert loaded.info.last_conv_layer == "conv_b"
        np.testing.assert_allclose(loaded.model(x / 255.0), model(x / 255.0), atol=1e-6)
        assert loaded.class_index("dog") == 1 and loaded.class_index("0") == 0


def test_upload_nested_h5_keeps_nested_paths(tmp_path):
    path = tmp_path / "nested.h5"
    nested_cnn().save(path)
    info = load_uploaded_model(path.read_bytes(), "nested.h5").info
    assert info.last_conv_layer == "base/conv_b"
    assert info.output_kind == "binary"


def test_wrong_number_of_labels(tmp_path):
    path = tmp_path / "m.keras"
    tiny_cnn(classes=3).save(path)
    with pytest.raises(ParameterError, match="2 class names but the model has 3"):
        load_uploaded_model(path.read_bytes(), "m.keras", labels=["a", "b"])


def test_lambda_layer_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned.txt"
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)
    # If this lambda ever ran during loading, the marker file would appear.
    target = str(marker)
    x = keras.layers.Lambda(lambda t: (open(target, "w").write("ran"), t)[1])(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    for suffix in ("keras", "h5"):
        path = tmp_path / f"evil.{suffix}"
        model.save(path)
        if marker.exists():
            marker.unlink()  # saving traced the lambda once; loading must not
        with pytest.raises(UnsafeModelError, match="Lambda"):
            load_uploaded_model(path.read_bytes(), f"evil.{suffix}")
        assert not marker.exists()


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty"),
        (b"hello world", "not a Keras model"),
        (b"PK\x03\x04garbage" * 10, "damaged"),
        (b"\x89HDF\r\n\x1a\n" + b"\x00" * 64, "could not be read"),
    ],
    ids=["empty", "text", "bad zip", "truncated h5"],
)
def test_bad_model_files(data, message):
    with pytest.raises(ModelError, match=message):
        load_uploaded_model(data, "x.keras")


def test_zip_that_is_not_a_keras_archive(tmp_path):
    import zipfile
    path = tmp_path / "z.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", "hello")
    with pytest.raises(ModelError, match="not a Keras model"):
        load_uploaded_model(path.read_bytes(), "z.keras")


def test_missing_imagenet_weights_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsUnavailableError) as info:
        load_builtin_model("vgg16", "imagenet", allow_download=False)
    text = str(info.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in text
    assert str(tmp_path / "models") in text


@pytest.mark.slow  # builds ImageNet-size models
def test_imagenet_weights_found_in_keras_cache(tmp_path, monkeypatch):
    """A weights file the test writes into a temporary Keras cache is found and used."""
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(99)
    donor = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    cache = tmp_path / "models"
    cache.mkdir()
    with h5py.File(cache / catalog.builtin("mobilenet_v2").weights_file, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, donor)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    loaded = load_builtin_model("mobilenet_v2", "imagenet", allow_download=False)
    assert loaded.identity == "mobilenet_v2@imagenet"
    np.testing.assert_array_equal(loaded.model.get_layer("Conv1").get_weights()[0],
                                  donor.get_layer("Conv1").get_weights()[0])


def test_unknown_builtin():
    with pytest.raises(ParameterError, match="Unknown model 'alexnet'"):
        load_builtin_model("alexnet")

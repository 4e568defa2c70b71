"""Hostile and bad input: a catalogue of files, each one bytes in and a message out.

Images go through :func:`viz_core.inputs.intake.load_image`, models through
:func:`viz_core.models.catalog.load_uploaded_model`. Every refusal is a :class:`VizError` whose message
says what is wrong; every accepted oddity (16-bit, CMYK, EXIF rotation...) is checked on its
pixels. Files that carry code prove that the code did not run (the file it would create does
not exist), and files that would make Keras allocate gigabytes are refused before Keras is
asked to load them. The last tests drive the app itself with bad uploads and check that it
keeps working.
"""
from __future__ import annotations

import io
import json
import resource
import struct
import tempfile
import textwrap
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import keras
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from tests.conftest import nested_cnn, tiny_cnn
from tests.images import encode, png_with_declared_size
from viz_core.models import catalog
from viz_core.models.catalog import DEMO_MODEL_FILE, load_uploaded_model
from viz_core.errors import ImageError, ModelError, ParameterError, UnsafeModelError, VizError
from viz_core.inputs.intake import load_image

ROOT = Path(__file__).resolve().parent.parent
# Pillow warns about the 100-megapixel header before our own check refuses it.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


# ---------------------------------------------------------------------------------------------
# Building the files
# ---------------------------------------------------------------------------------------------
@dataclass
class Ctx:
    """What a builder may use: a private folder (for marker files) and pytest's monkeypatch."""

    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def marker(self) -> Path:
        """A file that only code from the hostile file would create."""
        return self.tmp / "code_ran.txt"



def noise(width=64, height=48, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))



def jpeg_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(noise(32, 32), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5: sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (32, 32)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
    data = bytearray(encode(Image.new("RGB", (32, 32)), "BMP"))
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


def png_bad_crc() -> bytes:
    data = bytearray(encode(noise(), "PNG"))
    data[29] ^= 0xFF  # inside the IHDR checksum
    return bytes(data)


def png_text_bomb() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * 20_000_000, zip=True)  # 20 MB of text in a few kB
    return encode(Image.new("RGB", (32, 32)), "PNG", pnginfo=info)


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:], duration=50,
                   **({"lossless": True} if fmt == "WEBP" else {}))
    return buffer.getvalue()


def exif_rotated() -> bytes:
    img = Image.new("RGB", (32, 16), (255, 0, 0))
    img.paste((0, 0, 255), (16, 0, 32, 16))  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    return encode(img, "JPEG", exif=exif, quality=95)


def palette_with_transparency() -> bytes:
    img = Image.new("P", (20, 20), 0)
    img.putpalette([0, 0, 255] + [255, 255, 0] * 255)
    img.putpixel((3, 3), 1)
    return encode(img, "PNG", transparency=0)


def grey16() -> bytes:
    arr = np.zeros((20, 20), dtype=np.uint16)
    arr[0, 0], arr[0, 1] = 65535, 32768
    return encode(Image.fromarray(arr), "PNG")


def float_tiff(values: np.ndarray) -> bytes:
    return encode(Image.fromarray(values.astype(np.float32), mode="F"), "TIFF")


# ---------------------------------------------------------------------------------------------
# The image catalogue
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageCase:
    id: str
    make: Callable[[], bytes]
    error: str | None = None  # a refusal: part of the message
    check: Callable | None = None  # an accepted oddity: check(LoadedImage)
    name: str | None = None  # the uploaded file's name (default "<id>.png")


def _check_16bit(img):
    assert img.source_mode.startswith("I;16")
    assert tuple(img.pixels[0, 0]) == (255, 255, 255)
    assert tuple(img.pixels[0, 1]) == (128, 128, 128)  # 32768 / 65535 * 255 = 127.5 -> 128
    assert tuple(img.pixels[5, 5]) == (0, 0, 0)


def _check_cmyk(img):
    assert img.source_mode == "CMYK"
    assert np.abs(img.pixels[10, 10].astype(int) - (255, 0, 255)).max() <= 3  # magenta


def _check_palette(img):
    assert img.source_mode == "P"
    assert tuple(img.pixels[0, 0]) == (255, 255, 255)  # transparent index: white
    assert tuple(img.pixels[3, 3]) == (255, 255, 0)


def _check_first_frame(img):
    assert img.pixels.shape == (32, 32, 3)
    r, g, b = img.pixels[16, 16].astype(int)
    assert r > 200 and b < 50  # the first (red) frame, not the blue one


def _check_exif(img):
    assert img.pixels.shape == (32, 16, 3)  # portrait after rotation
    assert img.pixels[2, 8, 0] > 200 and img.pixels[2, 8, 2] < 60  # red half now on top
    assert img.pixels[29, 8, 2] > 200 and img.pixels[29, 8, 0] < 60


def _check_float_unit(img):
    assert img.source_mode == "F"
    assert tuple(img.pixels[0, 0]) == (128, 128, 128)  # 0.5 of [0, 1] -> 127.5 -> 128
    assert tuple(img.pixels[1, 0]) == (255, 255, 255)


def _check_float_nan(img):
    assert tuple(img.pixels[0, 0]) == (0, 0, 0)  # NaN becomes 0, not garbage
    assert tuple(img.pixels[0, 1]) == (255, 255, 255)  # the largest finite value, 1000.0
    assert tuple(img.pixels[0, 2]) == (128, 128, 128)  # 500 / 1000


def _check_polyglot(img):
    # The HTML/JS appended after the image data is ignored; the pixels are the PNG's.
    assert img.pixels.shape == (20, 20, 3) and tuple(img.pixels[5, 5]) == (0, 128, 0)


def _check_name(img):
    assert img.name == "passwd"  # only the stem survives; it is never used as a path
    assert tuple(img.pixels[0, 0]) == (0, 128, 0)


def _check_min_size(img):
    assert img.size == (16, 16)


def _float_nan_values():
    values = np.full((20, 20), 500.0, dtype=np.float32)
    values[0, 0], values[0, 1] = np.nan, 1000.0
    return values


def _float_unit_values():
    values = np.full((20, 20), 0.5, dtype=np.float32)
    values[1, 0] = 1.0
    return values


GREEN = Image.new("RGB", (20, 20), (0, 128, 0))

IMAGE_CASES = [
    ImageCase("empty", lambda: b"", "is empty (0 bytes)"),
    ImageCase("truncated_png", lambda: encode(noise(), "PNG")[:200], "damaged or incomplete"),
    ImageCase("truncated_jpeg", lambda: encode(noise(), "JPEG")[:600], "damaged or incomplete"),
    ImageCase("html_renamed_png", lambda: b"<!DOCTYPE html><html><script>alert(1)</script></html>",
              "is a web page (HTML), not a supported image"),
    ImageCase("svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
              "is an SVG drawing, not a supported image"),
    ImageCase("svg_with_xml_header", lambda: b'<?xml version="1.0"?>\n<svg></svg>',
              "is an SVG or XML document"),
    ImageCase("pdf", lambda: b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "is a PDF document"),
    ImageCase("one_by_one", lambda: encode(Image.new("RGB", (1, 1)), "PNG"),
              "is only 1x1 pixels; it needs to be at least 16x16"),
    ImageCase("fifteen_wide", lambda: encode(Image.new("RGB", (15, 16)), "PNG"),
              "is only 15x16 pixels"),
    ImageCase("png_bomb_20000", lambda: png_with_declared_size(20000, 20000),
              "a possible decompression bomb"),
    ImageCase("png_100_megapixels", lambda: png_with_declared_size(10000, 10000),
              "is 10000x10000 pixels (100 megapixels); the limit is 50 megapixels"),
    ImageCase("jpeg_bomb", lambda: jpeg_declaring(60000, 60000), "a possible decompression bomb"),
    ImageCase("gif_bomb", lambda: gif_declaring(65535, 65535), "a possible decompression bomb"),
    ImageCase("bmp_bomb", lambda: bmp_declaring(100000, 100000), "a possible decompression bomb"),
    ImageCase("png_bad_checksum", png_bad_crc, "is a damaged PNG image"),
    ImageCase("gif_truncated", lambda: encode(noise(32, 32), "GIF")[:30], "is a damaged GIF image"),
    ImageCase("png_text_bomb", png_text_bomb, "Decompressed data too large"),
    ImageCase("ico", lambda: encode(Image.new("RGB", (32, 32)), "ICO"),
              "is an icon (ICO), not a supported image"),
    ImageCase("photoshop", lambda: b"8BPS\x00\x01" + b"\x00" * 100, "is a Photoshop document"),
    ImageCase("heic", lambda: b"\x00\x00\x00\x18ftypheic" + b"\x00" * 100, "is a HEIC photo"),
    ImageCase("keras_model_as_image", lambda: b"PK\x03\x04" + b"\x00" * 100,
              "is a ZIP archive (perhaps a model file?)"),
    ImageCase("h5_model_as_image", lambda: b"\x89HDF\r\n\x1a\n" + b"\x00" * 100,
              "is an HDF5 file (perhaps a model file?)"),
    ImageCase("text", lambda: b"just some notes\nabout cats\n", "is a text file"),
    ImageCase("random_bytes", lambda: bytes(range(256)) * 4, "is not an image Pillow can read"),
    ImageCase("over_50_mb", lambda: b"\x89PNG\r\n\x1a\n" + bytes(51 * 2**20),
              "is 51 MB; images up to 50 MB are accepted"),
    # accepted oddities: the pixels must come out right
    ImageCase("grey_16_bit", grey16, check=_check_16bit),
    ImageCase("cmyk_jpeg", lambda: encode(Image.new("CMYK", (20, 20), (0, 255, 0, 0)), "JPEG",
                                          quality=100), check=_check_cmyk),
    ImageCase("palette_transparency", palette_with_transparency, check=_check_palette),
    ImageCase("animated_gif", lambda: animated("GIF"), check=_check_first_frame),
    ImageCase("animated_webp", lambda: animated("WEBP"), check=_check_first_frame),
    ImageCase("exif_rotated", exif_rotated, check=_check_exif),
    ImageCase("float_tiff_unit_range", lambda: float_tiff(_float_unit_values()),
              check=_check_float_unit),
    ImageCase("float_tiff_nan", lambda: float_tiff(_float_nan_values()), check=_check_float_nan),
    ImageCase("png_with_html_appended",
              lambda: encode(GREEN, "PNG") + b"<html><script>alert(1)</script></html>",
              check=_check_polyglot),
    ImageCase("path_in_name", lambda: encode(GREEN, "PNG"), check=_check_name,
              name="../../etc/passwd.png"),
    ImageCase("sixteen_square", lambda: encode(Image.new("RGB", (16, 16)), "PNG"),
              check=_check_min_size),
]


@pytest.mark.parametrize("case", IMAGE_CASES, ids=[c.id for c in IMAGE_CASES])
def test_image_catalogue(case: ImageCase):
    data = case.make()
    name = case.name or f"{case.id}.png"
    if case.error is None:
        case.check(load_image(data, name))
        return
    with pytest.raises(ImageError) as info:
        load_image(data, name)
    text = str(info.value)
    assert case.error in text
    assert f"'{case.id}'" in text  # the message names the file the user sent


# ---------------------------------------------------------------------------------------------
# Model files
# ---------------------------------------------------------------------------------------------
def saved(model, tmp: Path, suffix: str = "keras") -> bytes:
    path = tmp / f"built.{suffix}"
    model.save(path)
    return path.read_bytes()


def rezip(data: bytes, *, config=None, extra: dict | None = None, drop=(),
          replace: dict | None = None) -> bytes:
    """A .keras archive rebuilt with an edited config.json and/or other members."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            if info.filename in drop:
                continue
            content = source.read(info.filename)
            if info.filename == "config.json" and config is not None:
                content = config(content.decode()).encode() if callable(config) else config
            if replace and info.filename in replace:
                content = replace[info.filename]
            target.writestr(info.filename, content)
        for name, content in (extra or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def edit_config(edit: Callable[[dict], None]) -> Callable[[str], str]:
    def apply(text: str) -> str:
        config = json.loads(text)
        edit(config)
        return json.dumps(config)
    return apply


def layer_configs(config: dict) -> list[dict]:
    return config["config"]["layers"]


def with_lambda(ctx: Ctx):
    """A model whose Lambda layer creates ``ctx.marker`` whenever it runs."""
    target = str(ctx.marker)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3)(inputs)
    x = keras.layers.Lambda(lambda t: (open(target, "w").write("ran"), t)[1])(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))


def lambda_file(ctx: Ctx, suffix: str) -> bytes:
    data = saved(with_lambda(ctx), ctx.tmp, suffix)
    ctx.marker.unlink(missing_ok=True)  # saving traced the lambda once; loading must not
    return data


def evil_module(ctx: Ctx) -> bytes:
    """A config naming a Python module whose import would create ``ctx.marker``."""
    module = f"p8_evil_{ctx.tmp.name.replace('-', '_')}"
    (ctx.tmp / f"{module}.py").write_text(textwrap.dedent(f"""
        open({str(ctx.marker)!r}, "w").write("imported")
        def boom(x):
            return x
    """))
    ctx.monkeypatch.syspath_prepend(str(ctx.tmp))

    def edit(config):
        layer_configs(config)[1]["config"]["activation"] = {
            "module": module, "class_name": "function", "config": "boom",
            "registered_name": "boom"}
    return rezip(saved(tiny_cnn(size=16), ctx.tmp), config=edit_config(edit))


def keras_function(ctx: Ctx) -> bytes:
    """A config that names keras.utils.get_file as a layer's activation (a download)."""
    def edit(config):
        layer_configs(config)[1]["config"]["activation"] = {
            "module": "keras.utils", "class_name": "function", "config": "get_file",
            "registered_name": "function"}
    return rezip(saved(tiny_cnn(size=16), ctx.tmp), config=edit_config(edit))


def tfsm_layer(ctx: Ctx) -> bytes:
    def edit(config):
        layer_configs(config)[2] = {
            "module": "keras.layers", "class_name": "TFSMLayer", "registered_name": None,
            "config": {"name": "tfsm", "filepath": "/etc", "call_endpoint": "serve"}}
    return rezip(saved(tiny_cnn(size=16), ctx.tmp), config=edit_config(edit))


class Doubler(keras.layers.Layer):
    """A custom layer the app does not know (deliberately not registered)."""

    def call(self, x):
        return x * 2.0


def custom_layer(ctx: Ctx, suffix: str) -> bytes:
    inputs = keras.Input((16, 16, 3))
    x = Doubler(name="doubler")(keras.layers.Conv2D(2, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)))
    return saved(model, ctx.tmp, suffix)


def functional(inputs, outputs):
    return keras.Model(inputs, outputs)


def no_conv(ctx):
    return saved(keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Flatten(),
                                   keras.layers.Dense(2, activation="softmax")]), ctx.tmp)


def conv_model(shape, ctx, suffix="keras"):
    return saved(keras.Sequential([keras.Input(shape), keras.layers.Conv2D(2, 1),
                                   keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(2)]), ctx.tmp, suffix)


def five_d_input(ctx):
    return saved(keras.Sequential([keras.Input((4, 16, 16, 3)), keras.layers.Conv3D(2, 1),
                                   keras.layers.GlobalAveragePooling3D(),
                                   keras.layers.Dense(2)]), ctx.tmp)


def vector_input(ctx):
    return saved(keras.Sequential([keras.Input((10,)), keras.layers.Dense(2)]), ctx.tmp)


def multi_input(ctx):
    a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3)(keras.layers.Add()([a, b]))
    return saved(functional([a, b], keras.layers.Dense(2)(keras.layers.Flatten()(x))), ctx.tmp)


def multi_output(ctx):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
    return saved(functional(inputs, [keras.layers.Dense(2)(x), keras.layers.Dense(3)(x)]),
                 ctx.tmp)


def segmentation(ctx):
    inputs = keras.Input((16, 16, 3))
    return saved(functional(inputs, keras.layers.Conv2D(2, 1)(inputs)), ctx.tmp)


def too_many_classes(ctx):
    return saved(keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(1, 1),
                                   keras.layers.GlobalAveragePooling2D(),
                                   keras.layers.Dense(60_000)]), ctx.tmp)


def huge_input(ctx):
    """A (100000, 100000, 3) input before Flatten and Dense: 240 GB of weights if built."""
    small = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(4, 3, padding="same"),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    return rezip(saved(small, ctx.tmp), config=lambda text: text.replace(
        "[null, 32, 32, 3]", "[null, 100000, 100000, 3]").replace(
        "[null, 4096]", "[null, 40000000000]"))


def huge_activation(ctx):
    """Tiny weights, but one image becomes 3 GB, then 8 GB, of activations inside the model."""
    return saved(keras.Sequential([keras.Input((64, 64, 3)), keras.layers.UpSampling2D(256),
                                   keras.layers.Conv2D(8, 1), keras.layers.GlobalMaxPooling2D(),
                                   keras.layers.Dense(2)]), ctx.tmp)


def huge_dense(ctx):
    """A Dense layer with 400 million units after 6 channels: 11 GB of weights in a few kB."""
    def edit(config):
        layer_configs(config)[-1]["config"]["units"] = 400_000_000
    return rezip(saved(tiny_cnn(size=16), ctx.tmp), config=edit_config(edit))


def many_layers(ctx):
    layer = {"module": "keras.layers", "class_name": "ReLU", "config": {}, "registered_name": None}
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": "s", "layers": [layer] * 6000}}
    return rezip(saved(tiny_cnn(size=16), ctx.tmp), config=json.dumps(config).encode())


def h5_with(ctx, add: Callable[[h5py.File], None]) -> bytes:
    path = ctx.tmp / "edited.h5"
    tiny_cnn(size=16).save(path)
    with h5py.File(path, "a") as h5:
        add(h5)
    return path.read_bytes()


def shape_bomb(h5):
    # 40 GB declared, nothing stored: reading it would fill memory with the fill value.
    h5["model_weights"].create_dataset("bomb", shape=(100_000, 100_000), dtype="f4",
                                       chunks=(1000, 1000))


def external_storage(h5):
    # The dataset's bytes live in another file of the server: here this test file.
    h5["model_weights"].create_dataset("leak", shape=(64,), dtype="u1",
                                       external=[(__file__, 0, 64)])


def external_link(h5):
    h5["model_weights/elsewhere"] = h5py.ExternalLink("/etc/other_model.h5", "/")


def weights_only(ctx):
    path = ctx.tmp / "only.weights.h5"
    tiny_cnn(size=16).save_weights(path)
    return path.read_bytes()


def keras_weights_bomb(ctx):
    data = saved(tiny_cnn(size=16), ctx.tmp)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        weights = archive.read("model.weights.h5")
    path = ctx.tmp / "weights.h5"
    path.write_bytes(weights)
    with h5py.File(path, "a") as h5:
        shape_bomb_group = h5.require_group("model_weights")
        shape_bomb_group.create_dataset("bomb", shape=(100_000, 100_000), dtype="f4",
                                        chunks=(1000, 1000))
    return rezip(data, replace={"model.weights.h5": path.read_bytes()})


def zip_bomb(ctx):
    """64 MB of zeros in 64 kB, next to a real model."""
    data = saved(tiny_cnn(size=16), ctx.tmp)
    out = io.BytesIO(data)
    with zipfile.ZipFile(out, "a", zipfile.ZIP_DEFLATED) as archive, \
            archive.open("assets/padding.bin", "w", force_zip64=True) as member:
        block = bytes(2**20)
        for _ in range(64):
            member.write(block)
    return out.getvalue()


def zip_declaring(size: int, ctx) -> bytes:
    """A real model archive whose directory claims one member is ``size`` bytes unpacked."""
    data = bytearray(rezip(saved(tiny_cnn(size=16), ctx.tmp), extra={"assets/x.bin": b"x"}))
    central = data.rindex(b"PK\x01\x02")  # the last entry: assets/x.bin
    data[central + 24: central + 28] = struct.pack("<I", size)
    return bytes(data)


def zip_slip(ctx):
    return rezip(saved(tiny_cnn(size=16), ctx.tmp), extra={"../../evil.txt": b"owned"})


def truncated(ctx, suffix):
    data = saved(tiny_cnn(size=16), ctx.tmp, suffix)
    return data[: len(data) // 2]


def mismatched_weights(ctx):
    small = saved(tiny_cnn(size=16, classes=3), ctx.tmp)
    other = saved(tiny_cnn(size=16, classes=5), ctx.tmp)
    with zipfile.ZipFile(io.BytesIO(other)) as archive:
        weights = archive.read("model.weights.h5")
    return rezip(small, replace={"model.weights.h5": weights})


@dataclass(frozen=True)
class ModelCase:
    id: str
    make: Callable[[Ctx], bytes]
    error: str
    kind: type = ModelError
    name: str = "model.keras"
    before_keras: bool = False  # refused before Keras is asked to load anything
    code_marker: bool = False  # the file holds code that would create ctx.marker


MODEL_CASES = [
    ModelCase("empty", lambda ctx: b"", "The model file is empty (0 bytes)", before_keras=True),
    ModelCase("text_renamed_keras", lambda ctx: b"hello world\n", "is not a Keras model",
              before_keras=True),
    ModelCase("image_renamed_keras", lambda ctx: encode(GREEN, "PNG"), "is not a Keras model",
              before_keras=True),
    ModelCase("truncated_h5", lambda ctx: truncated(ctx, "h5"), ".h5 file could not be read",
              name="model.h5", before_keras=True),
    ModelCase("truncated_keras", lambda ctx: truncated(ctx, "keras"), ".keras file is damaged",
              before_keras=True),
    ModelCase("zip_not_keras",
              lambda ctx: rezip(saved(tiny_cnn(size=16), ctx.tmp), drop=("config.json",)),
              "not a Keras model (no config.json inside)", before_keras=True),
    ModelCase("zip_bomb", zip_bomb, "looks like a decompression bomb", before_keras=True),
    ModelCase("zip_declares_3_gb", lambda ctx: zip_declaring(3 * 2**30, ctx),
              "would unpack to 3,072 MB", before_keras=True),
    ModelCase("zip_slip", zip_slip, "'../../evil.txt', which points outside the archive",
              before_keras=True),
    ModelCase("lambda_keras", lambda ctx: lambda_file(ctx, "keras"), "Python Lambda layer",
              kind=UnsafeModelError, before_keras=True, code_marker=True),
    ModelCase("lambda_h5", lambda ctx: lambda_file(ctx, "h5"), "Python Lambda layer",
              kind=UnsafeModelError, name="model.h5", before_keras=True, code_marker=True),
    ModelCase("config_imports_module", evil_module, "custom layer or function",
              before_keras=True, code_marker=True),
    ModelCase("config_calls_get_file", keras_function, "'get_file', which is not a Keras "
              "activation", kind=UnsafeModelError, before_keras=True),
    ModelCase("tfsm_layer", tfsm_layer, "TFSMLayer", kind=UnsafeModelError, before_keras=True),
    ModelCase("unknown_custom_layer_keras", lambda ctx: custom_layer(ctx, "keras"),
              "custom layer or function this app does not know ('Doubler'", before_keras=True),
    ModelCase("unknown_custom_layer_h5", lambda ctx: custom_layer(ctx, "h5"),
              "custom layer or function this app does not know", name="model.h5",
              before_keras=True),
    ModelCase("no_conv_layers", no_conv, "no convolutional layers"),
    ModelCase("input_7_channels", lambda ctx: conv_model((16, 16, 7), ctx), "7 channels"),
    ModelCase("input_3_by_400", lambda ctx: conv_model((3, 400, 1), ctx),
              "expects 3x400 images; sizes from 8 to 1024"),
    ModelCase("input_5d_video", five_d_input, "input has shape (4, 16, 16, 3); an image input"),
    ModelCase("input_vector", vector_input, "input has shape (10,); an image input"),
    ModelCase("multi_input", multi_input, "The model has 2 inputs"),
    ModelCase("multi_output", multi_output, "outputs have shapes [(2,), (3,)]"),
    ModelCase("segmentation_output", segmentation, "one vector of class scores"),
    ModelCase("too_many_classes", too_many_classes, "60000 units; between 1 and 50,000"),
    ModelCase("huge_input_shape", huge_input,
              "input of shape (100000, 100000, 3), far larger than the 1024x1024",
              before_keras=True),
    ModelCase("huge_dense_layer", huge_dense, "declares 2,800 million weights", before_keras=True),
    ModelCase("huge_intermediate_activation", huge_activation,
              "layer 'up_sampling2d' outputs 16384×16384×3 values per image (3.0 GB)"),
    ModelCase("too_many_layers", many_layers, "more than 5,000 layers", before_keras=True),
    ModelCase("h5_shape_bomb", lambda ctx: h5_with(ctx, shape_bomb),
              "(dataset 'model_weights/bomb') would unpack to 38,147 MB", name="model.h5",
              before_keras=True),
    ModelCase("keras_weights_shape_bomb", keras_weights_bomb,
              "weights file (dataset 'model_weights/bomb')", before_keras=True),
    ModelCase("h5_external_storage", lambda ctx: h5_with(ctx, external_storage),
              "stores 'model_weights/leak' outside the file", name="model.h5", before_keras=True),
    ModelCase("h5_external_link", lambda ctx: h5_with(ctx, external_link),
              "links to another file ('/etc/other_model.h5')", name="model.h5",
              before_keras=True),
    ModelCase("h5_weights_only", weights_only, "holds only weights, not a whole model",
              name="model.h5", before_keras=True),
    ModelCase("config_not_json",
              lambda ctx: rezip(saved(tiny_cnn(size=16), ctx.tmp), config=b"{not json"),
              "configuration is not valid JSON", before_keras=True),
    ModelCase("config_nested_100000_deep",
              lambda ctx: rezip(saved(tiny_cnn(size=16), ctx.tmp), config=b"[" * 100_000),
              "configuration is not valid JSON", before_keras=True),
    ModelCase("config_is_a_list",
              lambda ctx: rezip(saved(tiny_cnn(size=16), ctx.tmp), config=b"[1, 2]"),
              "not a Keras model configuration", before_keras=True),
    ModelCase("weights_missing",
              lambda ctx: rezip(saved(tiny_cnn(size=16), ctx.tmp), drop=("model.weights.h5",)),
              "could not be read"),
    ModelCase("weights_of_another_model", mismatched_weights, "could not be read"),
]


@pytest.fixture
def keras_spy(monkeypatch):
    """Records every call to ``keras.models.load_model`` (and still loads)."""
    calls = []
    real = keras.models.load_model

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(keras.models, "load_model", spy)
    return calls


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c.id for c in MODEL_CASES])
def test_model_catalogue(case: ModelCase, tmp_path, monkeypatch, keras_spy):
    ctx = Ctx(tmp_path, monkeypatch)
    data = case.make(ctx)
    if case.before_keras:
        # If a check failed and Keras built this model, it could allocate gigabytes: stop here.
        monkeypatch.setattr(keras.models, "load_model", _refuse_to_load(keras_spy))
    with pytest.raises(case.kind) as info:
        load_uploaded_model(data, case.name)
    assert case.error in str(info.value)
    if case.before_keras:
        assert keras_spy == [], "Keras was asked to load a file the checks should refuse"
    if case.code_marker:
        assert not ctx.marker.exists(), "code from the uploaded file ran on the server"


def _refuse_to_load(calls):
    def refuse(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("load_model must not be reached for this file")
    return refuse


def test_catalogue_has_at_least_30_cases():
    assert len(IMAGE_CASES) + len(MODEL_CASES) >= 30
    assert len({c.id for c in IMAGE_CASES}) == len(IMAGE_CASES)
    assert len({c.id for c in MODEL_CASES}) == len(MODEL_CASES)


def test_keras_alone_would_have_run_the_lambda(tmp_path):
    """The Lambda marker is a real proof: loading with safe mode off does create the file."""
    ctx = Ctx(tmp_path, None)
    path = tmp_path / "evil.keras"
    path.write_bytes(lambda_file(ctx, "keras"))
    assert not ctx.marker.exists()
    keras.models.load_model(path, compile=False, safe_mode=False)
    assert ctx.marker.read_text() == "ran"


def test_huge_model_is_refused_without_a_big_allocation(tmp_path, monkeypatch, keras_spy):
    """Counting 2,800 million declared weights must not allocate them (11 GB)."""
    data = huge_dense(Ctx(tmp_path, monkeypatch))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux
    with pytest.raises(ModelError, match="2,800 million weights"):
        load_uploaded_model(data, "huge.keras")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200
    assert keras_spy == []


def test_a_good_model_with_a_hostile_name_loads_and_the_name_is_no_path(tmp_path):
    data = saved(tiny_cnn(size=16, classes=2), tmp_path)
    escape = tmp_path / "escaped.keras"
    loaded = load_uploaded_model(data, f"../../../{escape}", labels=["cat", "dog"])
    assert loaded.labels == ("cat", "dog")
    assert loaded.info.last_conv_layer == "conv_b"
    assert not escape.exists()
    assert "/" not in loaded.title and ".." not in loaded.title.replace("...", "")


def test_nested_transfer_model_still_loads_after_all_checks(tmp_path):
    """The checks must not refuse the usual legitimate upload."""
    for suffix in ("keras", "h5"):
        info = load_uploaded_model(saved(nested_cnn(size=32), tmp_path, suffix),
                                   f"transfer.{suffix}").info
        assert info.last_conv_layer == "base/conv_b"
        assert info.output_kind == "binary"


@pytest.mark.parametrize("make", [
    lambda ctx: saved(tiny_cnn(size=16), ctx.tmp),
    lambda ctx: lambda_file(ctx, "keras"),
    lambda ctx: truncated(ctx, "h5"),
    zip_bomb,
], ids=["good", "lambda", "truncated_h5", "zip_bomb"])
def test_uploads_leave_no_temporary_files_and_never_touch_the_project(make, tmp_path,
                                                                       monkeypatch):
    build = tmp_path / "build"
    build.mkdir()
    data = make(Ctx(build, monkeypatch))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made = []
    real_mkdtemp = tempfile.mkdtemp

    def recording_mkdtemp(*args, **kwargs):
        made.append(Path(real_mkdtemp(*args, **kwargs)))
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", recording_mkdtemp)
    try:
        load_uploaded_model(data, "../../upload.keras")
    except VizError:
        pass
    assert made, "the upload was not written to a private temporary folder"
    for folder in made:
        assert not folder.resolve().is_relative_to(ROOT)
    assert list(scratch.iterdir()) == []  # the private folder (and Keras' own) are gone
    assert not (ROOT / "upload.keras").exists()


def test_upload_size_limits_are_configured():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == catalog.MAX_MODEL_BYTES // 2**20


def test_wrong_number_of_class_names_is_a_parameter_error(tmp_path):
    with pytest.raises(ParameterError, match="2 class names but the model has 3"):
        load_uploaded_model(saved(tiny_cnn(size=16), tmp_path), "m.keras", labels=["a", "b"])


# ---------------------------------------------------------------------------------------------
# The app keeps working after bad input
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def app(monkeypatch):
    """The app on a tiny seeded model standing in for the demo model (fast, and independent of
    the real demo model)."""
    from streamlit.testing.v1 import AppTest

    import viz_core.runtime.workbench
    from tests.conftest import wrap
    from ui.state import workbench

    loaded = wrap(tiny_cnn(size=48, classes=4), labels=["circle", "square", "triangle", "star"],
                  name="demo")
    monkeypatch.setattr(viz_core.runtime.workbench, "load_builtin_model",
                        lambda name, weights="imagenet", **kw: loaded)
    workbench.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    yield at
    workbench.clear()


def rerun(at):
    """Run the app again (the sidebar is drawn on every run, on every page)."""
    at.run()
    return at


def sidebar_errors(at) -> list[str]:
    return [e.value for e in at.sidebar.error]


BAD_UPLOADS = [
    ("page.png", b"<!DOCTYPE html><html><body>not a picture</body></html>", "a web page (HTML)"),
    ("half.png", encode(noise(), "PNG")[:200], "damaged or incomplete"),
    ("bomb.png", png_with_declared_size(20000, 20000), "decompression bomb"),
    ("drawing.png", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "an SVG drawing"),
    ("empty.png", b"", "is empty"),
]


def test_app_keeps_working_after_bad_uploads(app, tmp_path):
    at = app
    at.sidebar.selectbox(key="image").set_value("upload")
    rerun(at)
    uploader = at.sidebar.file_uploader(key="image_file")
    assert uploader.proto.max_upload_size_mb == 50  # the per-widget limit
    for name, data, message in BAD_UPLOADS:
        at.sidebar.file_uploader(key="image_file").set_value((name, data, "image/png"))
        rerun(at)
        assert not at.exception, name
        errors = sidebar_errors(at)
        assert len(errors) == 1 and message in errors[0], (name, errors)
        assert "Choose or upload an image" in at.info[0].value  # the page waits, no traceback

    # a good upload after the bad ones works: the page shows the model's top classes
    picture = encode(Image.new("RGB", (64, 64), (250, 250, 250)), "PNG")
    at.sidebar.file_uploader(key="image_file").set_value(("ok.png", picture, "image/png"))
    rerun(at)
    assert not at.exception and not sidebar_errors(at)
    assert at.title[0].value == "Overview"
    assert '"circle (0)"' in at.get("plotly_chart")[0].proto.spec  # labels of the top-5 chart

    # a model file with code in it: refused, nothing ran, the page explains
    ctx = Ctx(tmp_path, None)
    evil = lambda_file(ctx, "keras")
    at.sidebar.selectbox(key="model").set_value("upload")
    rerun(at)
    model_uploader = at.sidebar.file_uploader(key="model_file")
    assert model_uploader.proto.max_upload_size_mb == catalog.MAX_MODEL_BYTES // 2**20
    model_uploader.set_value(("evil.keras", evil, "application/octet-stream"))
    rerun(at)
    assert not at.exception
    assert any("Lambda" in e for e in sidebar_errors(at)), sidebar_errors(at)
    assert not ctx.marker.exists()
    assert "Choose a model in the sidebar" in at.info[0].value

    at.sidebar.file_uploader(key="model_file").set_value(
        ("half.h5", truncated(ctx, "h5"), "application/octet-stream"))
    rerun(at)
    assert not at.exception
    assert any("could not be read" in e for e in sidebar_errors(at)), sidebar_errors(at)

    # back to the built-in model and a sample: the pages render again
    at.sidebar.selectbox(key="model").set_value("demo")
    at.sidebar.selectbox(key="image").set_value("circle")
    rerun(at)
    assert not at.exception and not sidebar_errors(at)
    assert [m.value for m in at.metric][:1] == ["48×48×3"]
    for page in ("pages/feature_maps.py", "pages/heatmaps.py"):
        at.switch_page(page).run()
        assert not at.exception, page
        assert not at.error, (page, [e.value for e in at.error])


@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
def test_the_demo_model_file_passes_every_check_as_an_upload():
    """The bundled model, uploaded as a user would, is accepted and identical to the built-in."""
    from viz_core.models.catalog import load_demo_model

    uploaded = load_uploaded_model(DEMO_MODEL_FILE.read_bytes(), "shapes_cnn.keras",
                                   labels=["circle", "square", "triangle", "star"])
    builtin = load_demo_model()
    assert uploaded.info.layers == builtin.info.layers
    x = np.random.default_rng(0).uniform(0, 1, (1, *builtin.info.input_shape)).astype("float32")
    np.testing.assert_allclose(uploaded.model(x), builtin.model(x), atol=1e-6)

"""Image intake: table-driven bad inputs (bytes in, message out) and mode conversions."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.images import encode, png_with_declared_size
from viz_core.errors import ImageError
from viz_core.inputs.intake import image_from_array, load_image, model_view, resize_for_model




RGB = Image.new("RGB", (40, 30), (10, 200, 30))

BAD_IMAGES = [
    ("empty", b"", "is empty"),
    ("truncated png", encode(RGB, "PNG")[:60], "damaged or incomplete"),
    ("truncated jpeg", encode(Image.effect_noise((64, 64), 50).convert("RGB"), "JPEG")[:400],
     "damaged or incomplete"),
    ("html renamed .png", b"<!DOCTYPE html><html><body>hi</body></html>", "a web page (HTML)"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>',
     "an SVG drawing"),
    ("xml svg", b'<?xml version="1.0"?><svg></svg>', "an SVG or XML document"),
    ("pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "a PDF document"),
    ("text", b"just some notes\nabout cats\n", "a text file"),
    ("random bytes", bytes(range(256)) * 4, "not an image Pillow can read"),
    ("keras model zip", b"PK\x03\x04" + b"\x00" * 100, "ZIP archive"),
    ("1x1", encode(Image.new("RGB", (1, 1)), "PNG"), "only 1x1 pixels"),
    ("decompression bomb", png_with_declared_size(20000, 20000), "megapixels"),
    ("pillow bomb limit", png_with_declared_size(40000, 40000), "megapixels"),
]


@pytest.mark.parametrize("case,data,message", BAD_IMAGES, ids=[c[0] for c in BAD_IMAGES])
def test_bad_images_get_a_clear_message(case, data, message):
    with pytest.raises(ImageError) as info:
        load_image(data, f"upload/{case}.png")
    text = str(info.value)
    assert message in text
    assert f"'{case.replace('.', '_')}" in text or "empty" in text or case in text


def test_user_file_name_is_cleaned_not_used_as_path():
    image = load_image(encode(RGB, "PNG"), "../../etc/pass wd.png")
    assert image.name == "pass wd"
    assert image.pixels.shape == (30, 40, 3)
    assert tuple(image.pixels[0, 0]) == (10, 200, 30)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"])
def test_supported_formats_decode(fmt):
    img = Image.new("RGB", (32, 24), (200, 40, 40))
    out = load_image(encode(img, fmt), f"x.{fmt.lower()}")
    assert out.pixels.shape == (24, 32, 3)
    assert out.pixels.dtype == np.uint8
    r, g, b = out.pixels[12, 16].astype(int)
    assert abs(r - 200) <= 6 and abs(g - 40) <= 6 and abs(b - 40) <= 6  # lossy formats


def test_alpha_is_composited_over_white():
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    img.putpixel((5, 5), (255, 0, 0, 255))
    img.putpixel((6, 6), (255, 0, 0, 128))
    px = load_image(encode(img, "PNG")).pixels
    assert tuple(px[0, 0]) == (255, 255, 255)
    assert tuple(px[5, 5]) == (255, 0, 0)
    assert tuple(px[6, 6]) == (255, 127, 127)


def test_palette_with_transparency_becomes_white():
    img = Image.new("P", (20, 20), 0)
    img.putpalette([0, 0, 255] + [255, 255, 0] * 255)
    img.putpixel((3, 3), 1)
    data = encode(img, "PNG", transparency=0)
    out = load_image(data)
    assert out.source_mode == "P"
    assert tuple(out.pixels[0, 0]) == (255, 255, 255)
    assert tuple(out.pixels[3, 3]) == (255, 255, 0)


def test_cmyk_and_grey_modes():
    cmyk = Image.new("CMYK", (20, 20), (0, 255, 0, 0))  # no cyan, full magenta
    assert tuple(load_image(encode(cmyk, "JPEG", quality=100)).pixels[10, 10]) == pytest.approx(
        (255, 0, 255), abs=3)
    grey = Image.new("L", (20, 20), 77)
    assert tuple(load_image(encode(grey, "PNG")).pixels[4, 4]) == (77, 77, 77)
    la = Image.new("LA", (20, 20), (0, 0))
    assert tuple(load_image(encode(la, "PNG")).pixels[4, 4]) == (255, 255, 255)


def test_16_bit_grey_is_scaled_to_8_bit():
    arr = np.zeros((20, 20), dtype=np.uint16)
    arr[0, 0], arr[0, 1] = 65535, 32768
    img = Image.fromarray(arr)
    out = load_image(encode(img, "PNG"))
    assert out.source_mode.startswith("I")
    assert out.pixels[0, 0, 0] == 255
    assert out.pixels[0, 1, 0] == 128
    assert out.pixels[5, 5, 0] == 0


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    px = load_image(buffer.getvalue()).pixels
    assert px[10, 10, 0] > 200 and px[10, 10, 2] < 50


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (32, 16), (255, 0, 0))
    img.paste((0, 0, 255), (16, 0, 32, 16))  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    px = load_image(encode(img, "JPEG", exif=exif, quality=95)).pixels
    assert px.shape == (32, 16, 3)  # portrait after rotation
    assert px[2, 8, 0] > 200 and px[2, 8, 2] < 60  # the left (red) half is now on top
    assert px[29, 8, 2] > 200 and px[29, 8, 0] < 60


def test_resize_keeps_original_and_makes_grey_for_one_channel():
    arr = np.zeros((60, 80, 3), dtype=np.uint8)
    arr[:, :40] = (255, 0, 0)
    image = image_from_array(arr, "half red")
    view = model_view(image, (30, 40, 1))
    assert view.original.shape == (60, 80, 3)
    assert view.pixels.shape == (30, 40, 1) and view.pixels.dtype == np.float32
    # Pillow's luminance: L = 0.299 R + 0.587 G + 0.114 B
    assert view.pixels[15, 5, 0] == pytest.approx(0.299 * 255, abs=1.0)
    assert view.pixels[15, 35, 0] == 0.0
    assert view.display.shape == (30, 40, 3)
    rgb = resize_for_model(arr, 30, 40, 3)
    assert tuple(rgb[15, 5]) == (255.0, 0.0, 0.0)


def test_identity_is_content():
    a = load_image(encode(RGB, "PNG"), "a.png")
    b = load_image(encode(RGB, "PNG"), "b.png")
    c = load_image(encode(Image.new("RGB", (40, 30), 0), "PNG"), "a.png")
    assert a.digest == b.digest != c.digest

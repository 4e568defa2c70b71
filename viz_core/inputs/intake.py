"""Image intake: bytes from a file or an upload become a validated RGB array.

Every way a file can be wrong becomes an :class:`~viz_core.errors.ImageError` whose message
says what is wrong in the user's words. Decoding is Pillow's; we only restrict the formats
and check sizes before pixels are decoded (decompression bombs).
"""
from __future__ import annotations

import hashlib
import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from viz_core.errors import ImageError

SUPPORTED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")
SUPPORTED_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif")
MAX_PIXELS = 50_000_000  # a 50-megapixel photo; larger is refused before decoding
MIN_SIDE = 16
MAX_BYTES = 50 * 1024 * 1024

_SIGNATURES = (
    (b"<?xml", "an SVG or XML document"),
    (b"<svg", "an SVG drawing"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (perhaps a model file?)"),
    (b"\x89HDF", "an HDF5 file (perhaps a model file?)"),
    (b"8BPS", "a Photoshop document"),
    (b"%!PS", "a PostScript document"),
    (b"\x00\x00\x01\x00", "an icon (ICO)"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
)
# Files that start like a supported format but that Pillow cannot open: damaged, not foreign.
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
# ISO media files (HEIC, AVIF): "ftyp" at byte 4, then the brand.
_ISO_BRANDS = {b"heic": "a HEIC photo", b"heix": "a HEIC photo", b"mif1": "a HEIF image",
               b"avif": "an AVIF image", b"avis": "an AVIF image"}


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image as the user sees it.

    Attributes
    ----------
    pixels : np.ndarray
        (H, W, 3) uint8 RGB, EXIF orientation applied, transparency flattened over white.
    name : str
        Display name (the file stem), never used as a path.
    digest : str
        SHA-256 of the file bytes: the image's identity in caches.
    source_format : str
        Pillow's format name, e.g. ``"PNG"``.
    source_mode : str
        Pillow's mode before conversion, e.g. ``"P"``, ``"CMYK"``, ``"I;16"``.
    """

    pixels: np.ndarray
    name: str
    digest: str
    source_format: str
    source_mode: str

    @property
    def cache_key(self) -> str:
        return self.digest

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def _describe_non_image(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    for signature, what in _SIGNATURES:
        if head.startswith(signature.lower()) or data.startswith(signature):
            return what
    if data[4:8] == b"ftyp" and data[8:12] in _ISO_BRANDS:
        return _ISO_BRANDS[data[8:12]]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "a damaged WebP image"
    if head.startswith(b"<!doctype html") or head.startswith(b"<html"):
        return "a web page (HTML)"
    text = all(32 <= b < 127 or b in (9, 10, 13) for b in head[:256])
    for signature, name in _IMAGE_SIGNATURES:
        if data.startswith(signature) and not text:
            return f"a damaged {name} image"
    if text:
        return "a text file"
    return "not an image Pillow can read"


def _to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Convert any supported Pillow mode to (H, W, 3) uint8 RGB."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit, 32-bit and float grey: scale the file's range to 0..255 (NaN and inf as 0).
        values = np.nan_to_num(np.asarray(img, dtype="float64"), nan=0.0, posinf=0.0,
                               neginf=0.0)
        peak = float(values.max()) if values.size else 0.0
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F" and 0.0 <= float(values.min()) and peak <= 1.0:
            top = 1.0  # float images in [0, 1], as scientific TIFFs are usually stored
        else:
            top = peak if peak > 255 else 255.0
        grey = np.clip(values / max(top, 1e-12) * 255.0 + 0.5, 0, 255).astype("uint8")
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))


def load_image(data: bytes, name: str = "image", *, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode image bytes into an RGB array, or explain why not.

    Parameters
    ----------
    data : bytes
        The whole file.
    name : str
        Display name; only its stem is kept and it is never used as a path.
    max_pixels : int
        Largest width x height accepted; checked from the header before decoding.

    Returns
    -------
    LoadedImage
        ``pixels`` is (H, W, 3) uint8 RGB.

    Raises
    ------
    ImageError
        Empty, too large, truncated, unsupported or not an image.
    """
    display = _display_name(name)
    if not data:
        raise ImageError(f"The file '{display}' is empty (0 bytes).")
    if len(data) > MAX_BYTES:
        raise ImageError(
            f"The file '{display}' is {len(data) / 2**20:.0f} MB; images up to "
            f"{MAX_BYTES // 2**20} MB are accepted."
        )
    try:
        # Pillow's own bomb check warns from 89 megapixels; ours refuses from the header, before
        # any pixel is decoded. (No warnings.catch_warnings here: it is not thread-safe.)
        img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"The image '{display}' is {width}x{height} pixels "
                f"({width * height / 1e6:.0f} megapixels); the limit is "
                f"{max_pixels / 1e6:.0f} megapixels. Please make it smaller."
            )
        if min(width, height) < MIN_SIDE:
            raise ImageError(
                f"The image '{display}' is only {width}x{height} pixels; it needs to be at "
                f"least {MIN_SIDE}x{MIN_SIDE}."
            )
        source_format, source_mode = img.format or "?", img.mode
        img.seek(0)  # animated GIF/WebP/TIFF: the first frame
        img.load()
        img = ImageOps.exif_transpose(img)
        pixels = _to_rgb_uint8(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"The image '{display}' declares a huge size (a possible decompression bomb); "
            f"the limit is {max_pixels / 1e6:.0f} megapixels."
        ) from None
    except UnidentifiedImageError:
        what = _describe_non_image(data)
        if what.startswith("not "):
            raise ImageError(
                f"The file '{display}' is {what}. Use PNG, JPEG, WebP, BMP, TIFF or GIF."
            ) from None
        if what.startswith("a damaged"):
            raise ImageError(
                f"The file '{display}' is {what}: it is damaged or incomplete and cannot be "
                "decoded. Save it again or export it as PNG."
            ) from None
        raise ImageError(
            f"The file '{display}' is {what}, not a supported image. "
            f"Use PNG, JPEG, WebP, BMP, TIFF or GIF."
        ) from None
    except MemoryError:
        raise ImageError(
            f"The image '{display}' is too large to decode on this server; please make it "
            "smaller."
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        raise ImageError(
            f"The image '{display}' is damaged or incomplete and cannot be decoded ({exc})."
        ) from None
    return LoadedImage(
        pixels=np.ascontiguousarray(pixels, dtype="uint8"),
        name=display,
        digest=hashlib.sha256(data).hexdigest(),
        source_format=source_format,
        source_mode=source_mode,
    )


def image_from_array(pixels: np.ndarray, name: str = "array") -> LoadedImage:
    """Wrap an existing (H, W, 3) or (H, W) uint8 array as a :class:`LoadedImage`."""
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ImageError(
            f"Expected an (H, W, 3) uint8 array; got shape {arr.shape} and dtype {arr.dtype}."
        )
    arr = np.ascontiguousarray(arr)
    return LoadedImage(
        pixels=arr,
        name=_display_name(name),
        digest=hashlib.sha256(arr.tobytes() + str(arr.shape).encode()).hexdigest(),
        source_format="array",
        source_mode="RGB",
    )


def resize_for_model(pixels: np.ndarray, height: int, width: int, channels: int) -> np.ndarray:
    """Resize an RGB image to the model's input size, in pixel units.

    Pillow's bilinear resize with reducing gap is used (not scikit-image) because it is fast on
    large photos and matches what ``keras.utils.load_img`` users expect.

    Parameters
    ----------
    pixels : (H0, W0, 3) uint8 RGB.
    height, width : model input size.
    channels : 1 (luminance, Pillow's ``L`` conversion) or 3.

    Returns
    -------
    np.ndarray
        (height, width, channels) float32 in [0, 255].
    """
    pixels = np.asarray(pixels, dtype="uint8")
    if channels == 3 and pixels.shape[:2] == (height, width):
        return pixels.astype("float32")  # already the model's size: Pillow would copy it twice
    img = Image.fromarray(pixels, mode="RGB")
    if channels == 1:
        img = img.convert("L")
    if img.size != (width, height):
        img = img.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(img, dtype="float32")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _display_name(name: str) -> str:
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    cleaned = "".join(c if c.isalnum() or c in "-_ " else "_" for c in stem).strip()
    return cleaned[:64] or "image"


@dataclass(frozen=True, eq=False)
class ModelImage:
    """An image as one model sees it, plus the original for overlays.

    Attributes
    ----------
    original : np.ndarray
        (H0, W0, 3) uint8 RGB at the uploaded resolution.
    pixels : np.ndarray
        (H, W, C) float32 in [0, 255], resized to the model input; C is 1 or 3.
    name : str
        Display name.
    digest : str
        Identity of the source image.
    """

    original: np.ndarray
    pixels: np.ndarray
    name: str
    digest: str

    @property
    def cache_key(self) -> tuple:
        return (self.digest, self.pixels.shape)

    @property
    def display(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB of what the model sees (grey repeated for 1-channel models)."""
        arr = np.clip(self.pixels + 0.5, 0, 255).astype("uint8")
        return np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr


def model_view(image: LoadedImage, input_shape: tuple[int, int, int]) -> ModelImage:
    """Resize ``image`` for a model whose input is ``(H, W, C)``."""
    height, width, channels = input_shape
    return ModelImage(
        original=image.pixels,
        pixels=resize_for_model(image.pixels, height, width, channels),
        name=image.name,
        digest=image.digest,
    )

"""What the app sent to the browser, for AppTests: the files it stored and plotly's arrays."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage


def capture_media(patch, store: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """Keep the bytes of every image and download the app registers, by file id, in ``store``
    (a new dict by default); ``patch`` is a ``pytest.MonkeyPatch``."""
    store = {} if store is None else store
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, data, mimetype, kind, filename=None):
        file_id = original(self, data, mimetype, kind, filename)
        store[file_id] = data
        return file_id

    patch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    return store


def file_of(media: dict[str, bytes], url: str) -> bytes:
    """The bytes behind a media URL such as ``/media/<id>.png``."""
    return media[url.rsplit("/", 1)[-1].split(".")[0]]


def png_of(media: dict[str, bytes], url: str) -> np.ndarray:
    """The picture behind a media URL, (H, W, 3) uint8 RGB."""
    return np.asarray(Image.open(io.BytesIO(file_of(media, url))).convert("RGB"))


def values(data) -> np.ndarray:
    """Plotly's JSON of an array: nested lists, or ``{"dtype", "bdata", "shape"}`` (base64,
    plotly >= 6; ``shape`` only for 2-D arrays)."""
    if isinstance(data, dict):
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        if "shape" in data:
            array = array.reshape([int(d) for d in str(data["shape"]).split(",")])
        return array
    return np.asarray(data, dtype="float64")

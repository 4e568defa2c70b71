"""What the app sent to the browser, for AppTests: the files it stored and plotly's arrays."""
from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage


def capture_media(patch, store: dict | None = None) -> dict:
    """Keep the bytes of every image and download the app registers, by file id, in ``store``
    (a new dict by default), and the callable of every download made on click (deferred);
    ``patch`` is a ``pytest.MonkeyPatch``."""
    store = {} if store is None else store
    original = MemoryMediaFileStorage.load_and_get_id
    original_deferred = MediaFileManager.add_deferred

    def capture(self, data, mimetype, kind, filename=None):
        file_id = original(self, data, mimetype, kind, filename)
        store[file_id] = data
        return file_id

    def capture_deferred(self, data_callable, *args, **kwargs):
        file_id = original_deferred(self, data_callable, *args, **kwargs)
        store[file_id] = data_callable
        return file_id

    patch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    patch.setattr(MediaFileManager, "add_deferred", capture_deferred)
    return store


def file_of(media: dict, where) -> bytes:
    """The bytes behind a media URL such as ``/media/<id>.png``, or behind a download button
    (an AppTest element): its stored file, or what its callable makes, as a click would."""
    if isinstance(where, str):
        return media[where.rsplit("/", 1)[-1].split(".")[0]]
    proto = where.proto
    if proto.HasField("deferred_file_id"):
        data = media[proto.deferred_file_id]()
        return data.encode() if isinstance(data, str) else bytes(data)
    return file_of(media, proto.url)


def png_of(media: dict, where) -> np.ndarray:
    """The picture behind a media URL or a download button, (H, W, 3) uint8 RGB."""
    return np.asarray(Image.open(io.BytesIO(file_of(media, where))).convert("RGB"))


def values(data) -> np.ndarray:
    """Plotly's JSON of an array: nested lists, or ``{"dtype", "bdata", "shape"}`` (base64,
    plotly >= 6; ``shape`` only for 2-D arrays)."""
    if isinstance(data, dict):
        array = np.frombuffer(base64.b64decode(data["bdata"]), dtype=data["dtype"])
        if "shape" in data:
            array = array.reshape([int(d) for d in str(data["shape"]).split(",")])
        return array
    return np.asarray(data, dtype="float64")

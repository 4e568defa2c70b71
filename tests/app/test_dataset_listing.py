"""The Dataset page lists an uploaded ZIP in the job queue, once per upload (issue 30: it was
parsed in the page's thread, again on every rerun), and shows a strip of the dataset's images
before a run (issue 28: no picture until the run)."""
from __future__ import annotations

import io
import struct
import threading
import zipfile

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.images import encode
from viz_core.dataset import listing as listing_module
from viz_core.dataset import readers
from viz_core.dataset.listing import UploadedZip, list_sample, list_upload
from viz_core.models.catalog import DEMO_MODEL_FILE
from viz_core.runtime.workbench import Workbench

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
NAMES = ("circle/a.png", "circle/b.png", "square/c.png", "star/d.png", "triangle/e.png")


def archive(names=NAMES, size=(40, 30)) -> bytes:
    """Images of ``size`` (w, h), each one grey level, plus a README that is not an image."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for i, name in enumerate(names):
            out.writestr(name, encode(Image.new("RGB", size, (30 * i,) * 3), "PNG"))
        out.writestr("README.txt", b"not an image")
    return buffer.getvalue()


def claims_entries(count: int) -> bytes:
    """A tiny ZIP whose end record says it holds ``count`` entries (at most 65,535)."""
    data = bytearray(archive(NAMES[:1]))
    at = data.rfind(b"PK\x05\x06")
    data[at + 8:at + 12] = struct.pack("<HH", count, count)
    return bytes(data)


def count_opens(monkeypatch) -> list:
    """Each call to :func:`readers.open_zip` from now on, as (the upload's name, the thread's
    name), in the returned list (the pages' listings share this test's helpers)."""
    calls = []
    real = readers.open_zip

    def counted(*args, **kwargs):
        calls.append((kwargs.get("name"), threading.current_thread().name))
        return real(*args, **kwargs)

    monkeypatch.setattr(readers, "open_zip", counted)
    return calls


@pytest.fixture
def page(monkeypatch):
    from ui.state import workbench

    calls = count_opens(monkeypatch)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/dataset.py").run()
    at.radio(key="ds_source").set_value("upload").run()
    assert not at.exception, at.exception
    yield at, calls
    workbench.clear()


def listings(bench) -> list:
    return [key for key in bench.results._items
            if key[0] == f"{list_upload.__module__}.{list_upload.__qualname__}"]


def test_an_upload_is_listed_once_in_the_job_queue_and_counts_its_images(page):
    from ui.state import workbench

    at, calls = page
    at.file_uploader(key="ds_zip_file").set_value(("shapes.zip", archive(),
                                                   "application/zip")).run()
    assert not at.exception, at.exception
    at.run()
    at.run()
    # once across three reruns, and not in the page's own thread
    assert len(calls) == 1 and calls[0][0] == "shapes.zip"
    assert calls[0][1].startswith("heavy-job-"), calls
    assert len(listings(workbench())) == 1
    assert any("dataset shapes · 5 images · layout: class folders" in c.value
               for c in at.caption)
    # before a run: the strip of the five images (the README is not one), the button above
    (strip,) = [e for e in at.get("image") if e.captions]
    assert sorted(c.replace("\u200b", "") for c in strip.captions) == sorted(NAMES)
    assert [b.label for b in at.button if b.key == "ds_run"] == ["Run on the dataset"]


def test_a_refused_upload_says_why_on_every_rerun_and_is_opened_once(page):
    """An archive that declares 60,000 entries is refused from its end record, before it is
    parsed; the refusal is kept, so a rerun says it again without reading it again."""
    at, calls = page
    at.file_uploader(key="ds_zip_file").set_value(("huge.zip", claims_entries(60_000),
                                                   "application/zip")).run()
    assert not at.exception, at.exception
    expected = ("The archive 'huge.zip' has 60,000 entries (0.0 MB of names and sizes); the "
                "limit is 2,000 images. It was not opened.")
    assert [e.value for e in at.error] == [expected]
    at.run()
    assert [e.value for e in at.error] == [expected] and len(calls) == 1
    assert not [b for b in at.button if b.key == "ds_run"]


def test_a_sample_shows_a_strip_of_its_images_before_a_run():
    from ui.state import workbench

    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/dataset.py").run()
    at.select_slider(key="ds_count").set_value(24).run()
    assert not at.exception, at.exception
    data = readers.sample_dataset("shapes", ("circle", "square", "star", "triangle"), count=24)
    (strip,) = [e for e in at.get("image") if e.captions]
    # eight of the 24 scenes, every third, so the four classes are mixed
    captions = [c.replace("\u200b", "") for c in strip.captions]  # break points
    assert captions == [data.entries[3 * i].path for i in range(8)]
    assert {c.split("/")[0] for c in captions} == {"circle", "square", "star", "triangle"}
    assert [b.label for b in at.button if b.key == "ds_run"] == ["Run on the dataset"]
    workbench.clear()


def test_thumbnails_are_the_images_made_small(tmp_path):
    """Each thumbnail keeps its image's aspect with the longest side at 112 px (never
    enlarged); a grey image stays the same grey."""
    bench = Workbench(disk_dir=tmp_path)
    classes = ("circle", "square", "star", "triangle")
    big = bench.run(list_upload, UploadedZip.of(archive(size=(224, 160)), "big.zip"), classes)
    assert [t.shape for t in big.thumbnails] == [(80, 112, 3)] * 5
    assert [int(t[40, 56, 0]) for t in big.thumbnails] == [0, 30, 60, 90, 120]
    small = list_upload(UploadedZip.of(archive(size=(40, 30)), "small.zip"), classes)
    assert [t.shape for t in small.thumbnails] == [(30, 40, 3)] * 5
    sample = list_sample("shapes", classes, 24)
    scene = sample.dataset.load(sample.dataset.entries[0]).pixels
    assert scene.shape == (150, 150, 3) and sample.thumbnails[0].shape == (112, 112, 3)
    # a bilinear reduction keeps the mean colour within a grey level
    assert np.abs(scene.mean(axis=(0, 1)) - sample.thumbnails[0].mean(axis=(0, 1))).max() < 1.5
    # the cache holds the upload's bytes in the entry's size
    assert bench.results.total_bytes >= len(big.upload.archive)
    assert listing_module.SIDE == 112


def test_an_uploads_key_is_its_content_not_its_bytes():
    one = UploadedZip.of(b"zip bytes", "a.zip")
    assert one.cache_key == (UploadedZip.of(b"zip bytes", "a.zip").digest, "a.zip")
    assert UploadedZip.of(b"zip bytes", "a.zip", b"a.png,circle\n").digest != one.digest
    assert UploadedZip.of(b"zip bytez", "a.zip").digest != one.digest


def test_a_sample_with_a_count_names_the_pages_first_scenes():
    from viz_core.dataset.listing import open_named
    from viz_core.errors import ParameterError

    classes = ("circle", "square", "star", "triangle")
    named = open_named("sample:shapes:24", classes)
    assert [e.path for e in named.entries] == [
        e.path for e in readers.sample_dataset("shapes", classes, count=24).entries]
    assert len(open_named("sample:shapes", classes)) == readers.SAMPLE_SIZES["shapes"] == 240
    with pytest.raises(ParameterError, match="sample:NAME:COUNT, e.g. sample:shapes:48; got "
                                             "'sample:shapes:many'"):
        open_named("sample:shapes:many", classes)
    with pytest.raises(ParameterError, match="the sample 'sample:shapes:24' has its own labels"):
        open_named("sample:shapes:24", classes, labels_csv="labels.csv")

"""The Dataset page's upload: a labels CSV over the limit is refused with one message, and an
upload is listed once, not again on every rerun (issue 30: a 4,000,000-row CSV was parsed on
each rerun, 30 s each)."""
from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.images import encode
from viz_core.dataset import readers
from viz_core.models.catalog import DEMO_MODEL_FILE

pytestmark = pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")


def archive() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for i, name in enumerate(("circle/a.png", "square/b.png", "star/c.png")):
            out.writestr(name, encode(Image.new("RGB", (24, 24), (40 * i,) * 3), "PNG"))
    return buffer.getvalue()


@pytest.fixture
def page(monkeypatch):
    calls = []
    real = readers.open_zip

    def counted(*args, **kwargs):
        calls.append(kwargs.get("name"))
        return real(*args, **kwargs)

    monkeypatch.setattr(readers, "open_zip", counted)
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/dataset.py").run()
    at.radio(key="ds_source").set_value("upload").run()
    assert not at.exception, at.exception
    return at, calls


def test_an_upload_is_listed_once_across_reruns(page):
    at, calls = page
    at.file_uploader(key="ds_zip_file").set_value(("shapes.zip", archive(),
                                                   "application/zip")).run()
    assert not at.exception, at.exception
    assert any("dataset shapes · 3 images · layout: class folders" in c.value
               for c in at.caption)
    at.run()
    at.run()
    assert calls == ["shapes.zip"]


def test_a_labels_csv_over_the_limit_is_refused_once_with_its_size(page):
    at, calls = page
    at.file_uploader(key="ds_zip_file").set_value(("flat.zip", archive(), "application/zip"))
    at.file_uploader(key="ds_csv_file").set_value(
        ("labels.csv", b"a.png,circle\n" * (700_000), "text/csv")).run()  # 8.7 MB
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        "The labels CSV has 8.68 MB; a labels CSV may have up to 8 MB."]
    at.run()
    assert calls == ["flat.zip"] and len(at.error) == 1

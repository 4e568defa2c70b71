"""Issue 28, finding 1: the Dataset page's "Open ... in the other pages" keeps an uploaded model
(its file, class names and preprocessing) and opens the row's image with it; it used to switch
to the demo model, as ``st.switch_page`` carries no widget values from the browser."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_cnn
from tests.images import encode


def pets_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for i, name in enumerate(("cat/a.png", "dog/b.png", "cat/c.png")):
            out.writestr(name, encode(Image.new("RGB", (24, 24), (60 * i, 20, 200 - 60 * i)),
                                      "PNG"))
    return buffer.getvalue()


def choose_row(at, row: int) -> None:
    """Select a row of the table as the browser would send it (AppTest cannot click one)."""
    (table,) = [e for e in at.get("dataframe") if e.proto.id.endswith("ds_table")]
    states = at._tree.get_widget_states()
    widget = states.widgets.add()
    widget.id = table.proto.id
    widget.string_value = json.dumps({"selection": {"rows": [row], "columns": [], "cells": []}})
    at._run(states)


def test_a_row_opens_with_the_uploaded_model_its_names_and_preprocessing(tmp_path):
    from ui.state import workbench

    path = tmp_path / "pets.keras"
    tiny_cnn(size=40, classes=2, seed=2).save(path)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        ("pets.keras", path.read_bytes(), "application/octet-stream"))
    at.sidebar.text_area(key="model_labels").set_value("cat\ndog").run()
    at.sidebar.selectbox(key="model_preprocessing").set_value("symmetric").run()
    at.switch_page("pages/dataset.py").run()
    at.radio(key="ds_source").set_value("upload").run()
    at.file_uploader(key="ds_zip_file").set_value(("pets.zip", pets_zip(),
                                                   "application/zip")).run()
    at.button(key="ds_run").click().run()
    assert not at.exception, at.exception
    choose_row(at, 2)  # rows: cat/a.png, cat/c.png, dog/b.png
    (button,) = [b for b in at.button if b.key == "ds_open_go"]
    assert button.label == "Open dog/b.png in the other pages"
    button.click().run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Class heatmaps"
    assert (at.session_state["model"], at.session_state["model_preprocessing"],
            at.session_state["model_labels"], at.session_state["image"]) == (
        "upload", "symmetric", "cat\ndog", "dataset")
    named = sorted(o.split(" · ")[0] for o in at.radio(key="cam_class").options[:2])
    assert named == ["cat (0)", "dog (1)"]
    assert any("Uploaded: pets.keras say" in m.value for m in at.markdown)
    # the sidebar's uploader says which file is used; the next click keeps it
    assert any(c.value.startswith("Using pets.keras, uploaded before") for c in at.sidebar.caption)
    at.switch_page("pages/overview.py").run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Uploaded: pets.keras"
    (picture,) = [img for img in at.get("image") if img.captions]
    assert picture.captions[0] == "b: 24×24 px, resized to 40×40"
    opened = at.session_state["_dataset_image"][1]
    assert opened.pixels[0, 0].tolist() == [60, 20, 140]
    np.testing.assert_array_equal(opened.pixels, np.full((24, 24, 3), (60, 20, 140)))
    workbench.clear()

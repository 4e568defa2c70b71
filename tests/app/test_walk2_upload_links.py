"""Issue 28, finding 3: a link made with an uploaded model or image names the file
(``model=upload&model_name=pets.keras``), and opening it asks for that file and keeps the rest
of the view for when it is uploaded; it used to open the demo model and a circle, silently."""
from __future__ import annotations

from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_cnn
from tests.images import encode


def param(at, key):
    value = at.query_params.get(key)
    return value[0] if isinstance(value, list) else value


def test_a_view_with_uploads_is_linked_by_the_files_names(tmp_path):
    from ui.state import workbench

    path = tmp_path / "pets.keras"
    tiny_cnn(size=40, classes=3, seed=2).save(path)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    at.sidebar.file_uploader(key="model_file").set_value(
        ("pets.keras", path.read_bytes(), "application/octet-stream")).run()
    at.sidebar.selectbox(key="image").set_value("upload").run()
    at.sidebar.file_uploader(key="image_file").set_value(
        ("dog.png", encode(Image.new("RGB", (30, 30), (200, 90, 10)), "PNG"), "image/png")).run()
    at.sidebar.selectbox(key="second").set_value("square").run()
    assert not at.exception, at.exception
    assert {k: param(at, k) for k in at.query_params} == {
        "model": "upload", "model_name": "pets.keras", "image": "upload",
        "image_name": "dog.png", "second": "square"}
    workbench.clear()


def test_a_link_naming_uploads_asks_for_them_and_keeps_the_view(tmp_path):
    from ui.state import workbench

    path = tmp_path / "pets.keras"
    tiny_cnn(size=40, classes=3, seed=2).save(path)
    workbench.clear()
    at = AppTest.from_file("../../app.py", default_timeout=240)
    link = {"model": "upload", "model_name": "pets.keras", "image": "upload",
            "image_name": "dog.png", "cam_layer": "conv_a", "cam_colormap": "magma"}
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/heatmaps.py").run()
    assert not at.exception, at.exception
    assert [i.value for i in at.info] == [
        "This view was made with an uploaded model, **pets.keras**: upload that file in the "
        "sidebar (Model) to see it. The rest of the view is kept until then."]
    assert at.sidebar.selectbox(key="model").value == "upload"
    assert not any("Demo" in s.value for s in at.subheader)
    at.run()  # the link stays whole while the file is awaited
    assert {k: param(at, k) for k in link} == link
    at.sidebar.file_uploader(key="model_file").set_value(
        ("pets.keras", path.read_bytes(), "application/octet-stream")).run()
    assert [i.value for i in at.info] == [
        "This view was made with an uploaded image, **dog.png**: upload that file in the "
        "sidebar (Image) to see it. The rest of the view is kept until then."]
    at.sidebar.file_uploader(key="image_file").set_value(
        ("dog.png", encode(Image.new("RGB", (30, 30), (200, 90, 10)), "PNG"), "image/png")).run()
    assert not at.exception, at.exception
    assert not at.info
    assert (at.selectbox(key="cam_layer").value, at.selectbox(key="cam_colormap").value) == (
        "conv_a", "magma")
    workbench.clear()


def test_choosing_upload_without_a_link_asks_for_a_file():
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.sidebar.selectbox(key="model").set_value("upload").run()
    assert [i.value for i in at.info] == ["Upload a model file in the sidebar."]


def test_a_dataset_image_is_linked_as_a_file_to_upload():
    """Another session has not the dataset: the link asks for the image's file by name
    (it used to say image=dataset, which opened the first sample, silently)."""
    from viz_core.inputs.intake import load_image

    opened = load_image(encode(Image.new("RGB", (30, 30), (20, 90, 200)), "PNG"), "b.png")
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.session_state["_dataset_image"] = ("dog/b.png", opened)
    at.session_state["image"] = "dataset"
    at.run()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="image").value == "dataset"
    assert {k: param(at, k) for k in at.query_params} == {
        "model": "demo", "image": "upload", "image_name": "dog/b.png"}

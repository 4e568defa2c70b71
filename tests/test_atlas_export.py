"""The Neuron atlas page's export bundle: its options name the page's atlas exactly."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from ui.atlas_export import LABELS_CSV, atlas_options, zip_name
from viz_core.cli.bundle import export_bundle, option_pairs
from viz_core.models.catalog import DEMO_MODEL_FILE


def test_an_upload_and_an_uploaded_models_class_names_become_atlas_options():
    words = atlas_options(["--model", "model/model.keras", "--preprocess", "unit",
                           "--labels", "model/labels.txt"], "upload", layer="conv_b", k=6,
                          score="mean", upload_name="my scenes (1).zip", with_labels=True)
    assert option_pairs("atlas", words) == [
        ("--model", "model/model.keras"), ("--preprocess", "unit"),
        ("--class-names", "model/labels.txt"), ("--data", "data/my_scenes_1.zip"),
        ("--labels", LABELS_CSV), ("--layer", "conv_b"), ("--k", "6"), ("--score", "mean")]


def test_zip_names_stay_inside_the_data_folder():
    assert zip_name("../../etc/passwd.zip") == "data/etc_passwd.zip"
    assert zip_name("...zip") == "data/dataset.zip"
    assert zip_name("shapes.ZIP") == "data/shapes.zip"


@pytest.mark.skipif(not DEMO_MODEL_FILE.exists(), reason="demo model not built")
def test_the_bundle_of_a_sample_is_the_atlas_the_page_built(bench):
    """The page builds its atlas through the disk cache; the bundle's command, run on the same
    workbench, reads that very atlas back (same numbers, same recorded build time)."""
    from viz_core.dataset.atlas import cached_atlas
    from viz_core.dataset.readers import sample_dataset

    model = bench.builtin_model("demo")
    layer = model.info.last_conv_layer
    shown = cached_atlas(model, sample_dataset("shapes", model.labels, count=8), layer,
                         disk=bench.disk, k=2, score="max")
    options = atlas_options(["--model", "demo"], "shapes", layer=layer, k=2, score="max",
                            count=8)
    data = export_bundle("atlas", options, [], {"page": "Neuron atlas"}, bench=bench)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        index = json.loads(archive.read("pictures/atlas.json"))
        line = archive.read("command.txt").decode()
    assert "--data sample:shapes:8" in line
    assert index["seconds"] == shown.seconds and index["images"] == 8
    unit = index["channels"][5]
    assert [e["entry"] for e in unit["top"]] == shown.entries[shown.top_refs[5]].tolist() and [
        e["activation"] for e in unit["top"]] == pytest.approx(shown.top_values[5].tolist())

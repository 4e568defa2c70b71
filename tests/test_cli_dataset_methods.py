"""``dataset --method NAME`` gives, for each image, the map ``heatmap --method NAME`` gives (the
same kernels through :func:`viz_core.methods.heatmap.class_heatmaps`), run in-process."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from viz_core.cli import main
from viz_core.demo.shapes import draw_scene
from viz_core.methods import registry


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dataset_methods")
    for seed in range(3):
        Image.fromarray(draw_scene(100 + seed).image).save(folder / f"scene_{seed}.png")
    return folder


def _json(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


@pytest.mark.parametrize("method, flags", [
    ("gradcam", []), ("layercam", []), ("xgradcam", []), ("eigencam", []),
    ("saliency", []), ("smoothgrad", ["--samples", "4", "--seed", "3"]),
    ("integrated_gradients", ["--steps", "8"]),
    ("lrp_composite", []),  # relevance propagation: one image at a time in the same engine
])
def test_dataset_maps_equal_heatmap_maps(method, flags, scenes, tmp_path, capsys):
    summary = _json(["dataset", "--model", "demo", "--data", str(scenes), "--method", method,
                     *flags, "--batch-size", "2", "--clusters", "1", "--out",
                     str(tmp_path / "d"), "--json"], capsys)
    assert summary["method"] == method and len(summary["results"]) == 3
    assert summary["layer"] == ("conv2d_4" if registry.uses_layer(method) else "input")
    for row in summary["results"]:
        single = _json(["heatmap", "--model", "demo", "--image", str(scenes / row["image"]),
                        "--method", method, *flags, "--out", str(tmp_path / "h"), "--json"],
                       capsys)["results"][0]
        assert single["class_index"] == row["class_index"]
        assert single["params"] == summary["params"]
        np.testing.assert_allclose(np.load(row["npy"]), np.load(single["npy"]), atol=1e-4)


def test_a_method_outside_the_dataset_list_or_a_foreign_flag_is_refused(scenes, tmp_path,
                                                                       capsys):
    assert main(["dataset", "--model", "demo", "--data", str(scenes), "--method", "rise",
                 "--out", str(tmp_path), "--json"]) == 2
    assert "invalid choice: 'rise'" in capsys.readouterr().err
    assert main(["dataset", "--model", "demo", "--data", str(scenes), "--method", "gradcam",
                 "--samples", "4", "--out", str(tmp_path), "--json"]) == 2
    assert "does not take a parameter 'samples'" in capsys.readouterr().err


@pytest.mark.parametrize("flag, value, words", [
    ("--batch-size", "0", "the number of images per batch must be a whole number from 1 to 512; got 0"),
    ("--limit", "0", "the number of images used must be a whole number from 1 to 10000000"),
    ("--clusters", "13", "is auto or a whole number from 1 to 12; got '13'"),
    ("--ray-workers", "0", "the number of Ray workers must be a whole number from 1 to 1024"),
])
def test_run_sizes_are_refused_while_parsing(flag, value, words, scenes, tmp_path, capsys,
                                             monkeypatch):
    """Checked by argparse before any model loads: the model loader is never called."""
    import viz_core.cli.dataset as command

    monkeypatch.setattr(command, "_model", lambda args: pytest.fail("the model was loaded"))
    out = tmp_path / "out"
    assert main(["dataset", "--data", str(scenes), flag, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not out.exists()


def test_a_failed_run_leaves_no_output_folder_behind(scenes, tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert main(["dataset", "--data", str(scenes), "--layer", "no_such_layer",
                 "--out", str(out)]) == 2
    assert "no_such_layer" in capsys.readouterr().err
    assert not out.exists()  # made for the run, removed when it failed
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main(["dataset", "--data", str(scenes), "--layer", "no_such_layer",
                 "--out", str(kept)]) == 2
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]  # no empty maps/ left

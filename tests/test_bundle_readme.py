"""A bundle's README names only the folders of uploaded files it has (a data ZIP used to be
called "the uploaded model file")."""
from __future__ import annotations

from viz_core.cli.bundle import files_note


def test_the_readme_says_what_each_folder_of_uploads_holds():
    assert files_note([]) == ""
    model = files_note(["model/model.keras", "model/labels.txt"])
    assert model == ("\n(model/ holds the uploaded model file (and its class names) the "
                     "dashboard used.)\n")
    data = files_note(["data/scenes.zip", "data/labels.csv"])
    assert "data/ holds the uploaded dataset files" in data and "model/" not in data
    both = files_note(["data/scenes.zip", "model/model.h5"])
    assert both.index("model/") < both.index("data/")  # one line each, model first
    assert files_note(["concept/a.png"]) == "\n(concept/ holds files the command reads.)\n"

"""The Dataset page's plan: the dataset run (the job), the shortcut finder over it (drawn by the
page), and the ``dataset`` command that makes both again (the export bundle's)."""
from __future__ import annotations

from typing import Sequence

from viz_core.dataset.engine import DEFAULT_BATCH_SIZE, run_dataset
from viz_core.dataset.shortcuts import find_shortcuts
from viz_core.runtime.plan import Plan, ResultOf, Step

from .atlas_export import data_options
from .export import model_options


def dataset_options(model, source: str, *, method: str, count: int | None = None,
                    upload_name: str | None = None, with_labels: bool = False) -> list[str]:
    """The ``dataset`` command's options for the page's settings.

    ``source`` is ``"shapes"`` or ``"shortcut"`` (a sample's first ``count`` scenes, as the
    page draws them) or ``"upload"`` (``data/<name>.zip`` in the bundle, with ``data/labels.csv``
    when a labels CSV came beside it). An uploaded model's class names are ``--class-names``
    there, as ``--labels`` is the dataset's CSV.
    """
    if source == "shortcut":  # the shortcut model is the page's own, whatever the sidebar says
        words = ["--model", "shortcut_demo"]
    else:
        words = ["--class-names" if w == "--labels" else w for w in model_options(model)]
    words += data_options(source, count=count, upload_name=upload_name, with_labels=with_labels)
    return words + ["--method", method, "--batch-size", str(DEFAULT_BATCH_SIZE)]


def run_plan(model, data, options: Sequence[str], *, method: str) -> Plan:
    """The run over ``data`` (the job the button queues): predictions and ``method``'s
    heatmaps of every image."""
    # no title: the bar's own label ("Explaining the dataset") says what the one step makes
    run = Step(run_dataset, (model, data), {"batch_size": DEFAULT_BATCH_SIZE, "method": method})
    return Plan((run,), "dataset", tuple(options))


def view_plan(plan: Plan, clusters) -> Plan:
    """``plan`` and the shortcut finder over its maps (light: the page's own run makes it);
    the command's ``--clusters`` is the page's."""
    run = plan.steps[0]
    shortcuts = Step(find_shortcuts, (ResultOf(run, "maps"), ResultOf(run, "predicted"),
                                      ResultOf(run, "classes")), {"clusters": clusters},
                     title="Shortcut finder")
    return Plan((*plan.steps, shortcuts), plan.command,
                (*plan.options, "--clusters", str(clusters)))

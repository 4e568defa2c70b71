"""A page's plan (viz_core.runtime.plan): one object names the calls that the page draws, the
job queue runs, the cache is asked about and the bundle's command repeats."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viz_core.runtime.plan import Plan, ResultOf, Step
from viz_core.runtime.workbench import Workbench

CALLS: list[str] = []


@dataclass(frozen=True)
class Made:
    heatmap: np.ndarray


def make_map(size: int, value: float, progress=None) -> Made:
    CALLS.append(f"map {size} {value}")
    if progress is not None:
        progress(0.5, "half")
    return Made(np.full((size, size), value, dtype="float32"))


def total(heat: np.ndarray, scale: float = 1.0) -> float:  # takes no progress
    CALLS.append("total")
    return float(heat.sum()) * scale


def plan_of(bench_dir, value=0.25):
    first = Step(make_map, (4, value), title="Map")
    second = Step(total, (ResultOf(first, "heatmap"),), {"scale": 2.0}, title="Sum")
    return first, second, Plan((first, second), "demo", ("--value", value))


def test_a_plan_runs_its_pending_steps_in_order_with_one_progress(tmp_path):
    CALLS.clear()
    bench = Workbench(disk_dir=tmp_path)
    first, second, plan = plan_of(tmp_path)
    assert plan.pending(bench) == (first, second) and not plan.ready(bench)
    seen = []
    plan.run(bench, lambda fraction, message: seen.append((fraction, message)))
    # the map reports half way through the first of two steps: a quarter of the plan
    assert seen == [(0.25, "Map: half"), (1.0, "done")]
    assert CALLS == ["map 4 0.25", "total"]
    assert plan.ready(bench) and plan.pending(bench) == ()
    made, summed = plan.results(bench)
    assert summed == 4 * 4 * 0.25 * 2.0 == 8.0  # the second step took the first's heatmap
    np.testing.assert_array_equal(made.heatmap, np.full((4, 4), 0.25, "float32"))
    assert CALLS == ["map 4 0.25", "total"]  # read back from the cache, not computed again
    assert plan.cli() == ["demo", "--value", "0.25"]


def test_a_later_step_is_pending_until_the_step_it_takes_is_ready(tmp_path):
    CALLS.clear()
    bench = Workbench(disk_dir=tmp_path)
    first, second, plan = plan_of(tmp_path)
    assert second.needs() == (first,)
    first.result(bench)
    assert first.ready(bench) and not second.ready(bench)
    assert plan.pending(bench) == (second,)
    plan.run(bench)
    assert CALLS == ["map 4 0.25", "total"]


def test_identical_plans_share_one_key_and_a_changed_argument_does_not(tmp_path):
    a, b, c = (plan_of(tmp_path)[2], plan_of(tmp_path)[2], plan_of(tmp_path, value=0.5)[2])
    assert a.key() == b.key() and hash(a.key()) == hash(b.key())
    assert a.key() != c.key()
    # the key names the second step by the first's key, not by its (not yet made) result
    assert a.steps[1].key()[1][0][:2] == ("result of", a.steps[0].key())


def test_a_step_whose_result_is_stored_elsewhere_is_ready_and_not_run_again(tmp_path):
    """A function with its own disk cache (the neuron atlas): ``stored()`` says it would read
    the result back, so the plan is ready and its job has nothing to do."""
    CALLS.clear()
    bench = Workbench(disk_dir=tmp_path)
    on_disk = {"yes": False}
    step = Step(make_map, (2, 1.0), stored=lambda: on_disk["yes"])
    plan = Plan((step,))
    assert not plan.ready(bench)
    on_disk["yes"] = True
    assert plan.ready(bench) and plan.pending(bench) == ()
    plan.run(bench)
    assert CALLS == []


def named_map(size: int, progress=None) -> Made:
    if progress is not None:
        progress(0.5, "Map: half")  # a function that names itself in its messages
    return Made(np.zeros((size, size), dtype="float32"))


def test_a_message_that_names_its_step_is_not_named_twice(tmp_path):
    seen = []
    Plan((Step(named_map, (2,), title="Map"),)).run(
        Workbench(disk_dir=tmp_path), lambda fraction, message: seen.append(message))
    assert seen == ["Map: half", "done"]

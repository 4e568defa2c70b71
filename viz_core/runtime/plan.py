"""A page's plan: the backend calls that make what it shows, named once.

A page goes *settings -> plan -> render*. The plan names each call (function and arguments) and
the command line that redoes it; the page asks it whether its results are ready, the job queue
runs it (its :meth:`Plan.key` names the job, so identical plans of several sessions share one
job), the cache lookup and the export bundle's ``command.txt`` use the same object, so they
cannot drift apart (pages used to rebuild a call's arguments in several places to find a
finished job's result in the cache).

Nothing here imports Streamlit.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from viz_core.runtime.cache import content_key

Progress = Callable[[float, str], None]

# Arguments that steer how work is reported or cached, not what it computes (as the workbench)
_NOT_IN_KEY = frozenset({"progress", "should_stop", "run"})


@dataclass(frozen=True, eq=False)
class ResultOf:
    """A step's argument that is an earlier step's result (or one of its attributes): the
    deletion curve of a map made by the step before it, say.

    Attributes
    ----------
    step : Step
    attribute : str
        The result's attribute to pass (``"heatmap"``); empty: the result itself.
    """

    step: "Step"
    attribute: str = ""

    def value(self, bench) -> Any:
        result = self.step.result(bench)
        return getattr(result, self.attribute) if self.attribute else result

    def key(self) -> tuple:
        return ("result of", self.step.key(), self.attribute)


def _keyed(value) -> Any:
    return value.key() if isinstance(value, ResultOf) else value


@dataclass(frozen=True, eq=False)
class Step:
    """One cached backend call: ``function(*args, **kwargs)`` through a workbench.

    Attributes
    ----------
    function : callable
        A backend function (``viz_core...``); its result is cached by the workbench.
    args : tuple
        Positional arguments (models, images, arrays: keyed by content).
    kwargs : Mapping[str, Any]
        Keyword arguments; ``progress`` and ``should_stop`` are passed by :meth:`result`.
        An argument given as :class:`ResultOf` is an earlier step's result.
    title : str
        What the step makes, in the user's words ("Grad-CAM curves"), for progress messages.
    stored : callable or None
        ``stored() -> bool`` for a function that keeps its results elsewhere too (a disk
        cache, as the neuron atlas does): whether it would read this one back at once, so the
        step is ready although the workbench does not hold it.
    """

    function: Callable[..., Any]
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    stored: Callable[[], bool] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    def key(self) -> tuple:
        """The step's content key (the same the workbench's result cache uses)."""
        keyed = {k: _keyed(v) for k, v in self.kwargs.items() if k not in _NOT_IN_KEY}
        return (f"{self.function.__module__}.{self.function.__qualname__}",
                content_key(tuple(_keyed(a) for a in self.args)), content_key(keyed))

    def needs(self) -> tuple["Step", ...]:
        """The earlier steps whose results this one takes."""
        return tuple(v.step for v in (*self.args, *self.kwargs.values())
                     if isinstance(v, ResultOf))

    def _resolved(self, bench) -> tuple[tuple, dict]:
        args = tuple(a.value(bench) if isinstance(a, ResultOf) else a for a in self.args)
        kwargs = {k: v.value(bench) if isinstance(v, ResultOf) else v
                  for k, v in self.kwargs.items()}
        return args, kwargs

    def ready(self, bench) -> bool:
        """Whether ``bench`` (a :class:`~viz_core.runtime.workbench.Workbench`) has the result
        (and so the results it takes)."""
        if self.stored is not None and self.stored():
            return True
        if not all(step.ready(bench) for step in self.needs()):
            return False
        args, kwargs = self._resolved(bench)
        return bench.is_cached(self.function, *args, **kwargs)

    def result(self, bench, progress: Progress | None = None) -> Any:
        """The step's result through ``bench``'s cache (computed when missing, and so the
        results it takes)."""
        args, kwargs = self._resolved(bench)
        takes = progress is not None and "progress" in inspect.signature(self.function).parameters
        extra = {"progress": progress} if takes else {}
        return bench.run(self.function, *args, **kwargs, **extra)


@dataclass(frozen=True, eq=False)
class Plan:
    """What one view of a page shows: its steps, in order, and the command that redoes them.

    Attributes
    ----------
    steps : tuple of Step
        The backend calls, in the order they are run (a later step may reuse an earlier
        one's cached result).
    command : str
        The ``python -m viz_core`` command that makes the same pictures ("compare"); empty
        for a view with no command.
    options : tuple of str
        That command's options (``("--model", "demo", "--class", "3")``).
    """

    steps: tuple[Step, ...]
    command: str = ""
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", tuple(self.steps))
        object.__setattr__(self, "options", tuple(str(o) for o in self.options))

    def key(self) -> tuple:
        """A content key naming the whole plan: the job queue's key for it."""
        return ("plan",) + tuple(step.key() for step in self.steps)

    def pending(self, bench) -> tuple[Step, ...]:
        """The steps whose results ``bench`` does not hold yet."""
        return tuple(step for step in self.steps if not step.ready(bench))

    def ready(self, bench) -> bool:
        """Whether every step's result is in ``bench``'s cache (the page can draw it)."""
        return not self.pending(bench)

    def run(self, bench, progress: Progress | None = None) -> None:
        """Compute the pending steps through ``bench``; ``progress(fraction, message)`` gets
        the share of those steps done (0 to 1) and the running step's own message."""
        todo = self.pending(bench)
        for n, step in enumerate(todo):
            report = None
            if progress is not None:
                def report(fraction, message, n=n, step=step):
                    named = not step.title or str(message).startswith(step.title)
                    progress((n + fraction) / len(todo),
                             message if named else f"{step.title}: {message}")
            step.result(bench, report)
        if progress is not None:
            progress(1.0, "done")

    def results(self, bench) -> list:
        """Every step's result, in order, through ``bench``'s cache."""
        return [step.result(bench) for step in self.steps]

    def cli(self) -> list[str]:
        """The command's words after ``python -m viz_core``."""
        return [self.command, *self.options] if self.command else []


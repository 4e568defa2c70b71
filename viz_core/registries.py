"""What the method and metric registries share: an ordered table of specs by name, and compute
functions named as ``"module:function"`` strings so a registry imports no TensorFlow.

Each registry (:mod:`viz_core.methods.registry`, :mod:`viz_core.metrics.registry`) is the one
list of its kind; pages, command-line flags, tables and tests are built from it.
"""
from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Callable, Generic, Iterator, Mapping, Protocol, Sequence, TypeVar

from viz_core.errors import ParameterError


class Named(Protocol):
    name: str


Spec = TypeVar("Spec", bound=Named)


def resolve(compute: Callable | str) -> Callable:
    """``compute`` itself when callable, else the function a ``"module:function"`` names
    (imported now)."""
    if callable(compute):
        return compute
    module, _, name = str(compute).partition(":")
    return getattr(importlib.import_module(module), name)


def checked_params(kind: str, name: str, title: str, specs: Sequence,
                   params: Mapping | None) -> dict:
    """``params`` of the ``kind`` ("method", "metric") ``name`` checked against its parameter
    ``specs`` (each with ``name``, ``default`` and ``check(value, owner)``), defaults filled in.

    Raises
    ------
    ParameterError
        A parameter it does not take (the message lists those it takes), or a bad value.
    """
    params = dict(params or {})
    known = [p.name for p in specs]
    for given in params:
        if given not in known:
            takes = ", ".join(known) or "no parameters"
            raise ParameterError(f"The {kind} {name!r} does not take a parameter {given!r}; "
                                 f"it takes {takes}.")
    return {p.name: p.check(params.get(p.name, p.default), title) for p in specs}


class Registry(Generic[Spec]):
    """Specs by name, in the order they were registered.

    ``kind`` names an entry in messages ("method", "metric").
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._specs: dict[str, Spec] = {}

    def register(self, spec: Spec, *, replace: bool = False) -> Spec:
        """Add ``spec`` (listed after the entries already there).

        Raises
        ------
        ParameterError
            An entry of that name exists (unless ``replace``).
        """
        if spec.name in self._specs and not replace:
            raise ParameterError(f"A {self.kind} called {spec.name!r} is already registered.")
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> None:
        """Remove an entry (tests use :meth:`registered` instead)."""
        self._specs.pop(name, None)

    @contextmanager
    def registered(self, spec: Spec) -> Iterator[Spec]:
        """``with registered(spec):`` the entry is in the registry, and removed afterwards."""
        self.register(spec)
        try:
            yield spec
        finally:
            self.unregister(spec.name)

    def get(self, name: str) -> Spec:
        """The spec of ``name``.

        Raises
        ------
        ParameterError
            No such entry; the message lists the known ones.
        """
        try:
            return self._specs[str(name)]
        except KeyError:
            raise ParameterError(f"Unknown {self.kind} {name!r}; choose one of "
                                 f"{', '.join(self._specs)}.") from None

    def lookup(self, name: str) -> Spec | None:
        """The spec of ``name``, or None."""
        return self._specs.get(name)

    def specs(self) -> tuple[Spec, ...]:
        return tuple(self._specs.values())

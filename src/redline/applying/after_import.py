"""Run code right after a module is first imported, without importing it now.

Keras fixes its backend when ``keras`` is first imported, from ``KERAS_BACKEND`` as it is at that moment. A script
that pins its own backend (``os.environ["KERAS_BACKEND"] = "tensorflow"`` before ``import keras``, as keras.io
examples do) must therefore be the one that imports keras first: redline's patches of ``Model.fit`` and
``Model.compile`` wait for that import instead of making it. ``keras.config.set_backend`` removes keras from
``sys.modules`` and imports it again, a new ``keras.Model`` with it: the hooks run again on each later import, so the
patches follow the backend the script switched to.

A watched import runs with Python's cyclic garbage collector paused (``gc.disable()``, then put back as it was):
importing TensorFlow creates hundreds of thousands of objects that all live on, and the collections they set off
free nothing. Measured on a 2-core Zen 4 VM: ``import keras`` on TensorFlow 3.4-3.5 CPU-s with the collector
paused against 4.0-4.4 s with it running (~1,000 collections during the import, 0.8-1.0 s of them); on JAX 1.9
against 2.1 s; the peak memory 2.5 MB higher. Reference counting frees as always; the cycles an import leaves are
collected after it.
"""

from __future__ import annotations

import gc
import importlib.abc
import importlib.util
import sys
import time
from typing import Callable


class _Loader(importlib.abc.Loader):
    """The module's own loader, then the hooks."""

    def __init__(self, inner, finder):
        self.inner, self.finder = inner, finder

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        collecting = gc.isenabled()  # False inside another watched import (keras imports tensorflow), or the user's
        gc.disable()
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            self.inner.exec_module(module)
        finally:
            self.finder.spans.append((t0, time.perf_counter(), time.thread_time() - c0))
            if collecting:
                gc.enable()
        for hook in list(self.finder.hooks):  # the finder stays: a later import (after set_backend) runs them again
            hook(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the module's real spec through the other finders and wraps its loader. It stays: Python asks it again
    only where the module is not in ``sys.modules`` (a first import, or one after the module was removed from it), and
    a probe such as ``importlib.util.find_spec("keras")`` (TensorFlow makes one) imports nothing."""

    def __init__(self, name: str):
        self.name, self.hooks, self.busy, self.spans = name, [], False, []

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name or self.busy:
            return None
        self.busy = True  # the lookup below asks every finder again, this one included
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self.busy = False
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Loader(spec.loader, self)
        return spec


def when_imported(name: str, hook: Callable) -> None:
    """Call ``hook(module)`` once ``name`` is imported (now, if it already is, else right after its first import),
    and again after each later import of it (``keras.config.set_backend`` imports keras anew)."""
    finder = next((f for f in sys.meta_path if isinstance(f, _Finder) and f.name == name), None)
    if finder is None:
        finder = _Finder(name)
        sys.meta_path.insert(0, finder)
    finder.hooks.append(hook)
    module = sys.modules.get(name)
    if module is not None:
        hook(module)


def clock(name: str) -> None:
    """Time ``name``'s imports from now on (import_seconds), running nothing after them."""
    when_imported(name, lambda module: None)


def import_seconds(name: str, start: float, end: float) -> float:
    """Seconds of the ``time.perf_counter()`` span [start, end] spent importing ``name`` (its own module and all it
    imports), as timed since clock() or when_imported() of it: 0.0 where it was not imported then, or not watched."""
    return sum((max(0.0, min(end, t1) - max(start, t0)) for t0, t1, _ in _spans(name)), 0.0)


def import_cpu_seconds(name: str) -> float:
    """CPU seconds the importing thread spent in ``name``'s imports since clock() or when_imported() of it: what the
    import costs whatever else the machine runs. Its wall time (import_seconds) reads longer beside other busy
    processes (TensorFlow's on a 2-core VM: 3.4-4.4 s alone and 4.8-4.9 s beside two busy processes, its CPU time
    3.3-3.6 s either way), and longer still in a process stopped meanwhile."""
    return sum((cpu for _, _, cpu in _spans(name)), 0.0)


def _spans(name: str) -> list[tuple[float, float, float]]:
    finder = next((f for f in sys.meta_path if isinstance(f, _Finder) and f.name == name), None)
    return finder.spans if finder else []


def pending(name: str) -> bool:
    """Hooks are waiting for ``name``'s first import."""
    return name not in sys.modules and any(isinstance(f, _Finder) and f.name == name for f in sys.meta_path)


__all__ = ["clock", "import_cpu_seconds", "import_seconds", "pending", "when_imported"]

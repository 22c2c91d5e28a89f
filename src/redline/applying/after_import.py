"""Run code right after a module is first imported, without importing it now.

Keras fixes its backend when ``keras`` is first imported, from ``KERAS_BACKEND`` as it is at that moment. A script
that pins its own backend (``os.environ["KERAS_BACKEND"] = "tensorflow"`` before ``import keras``, as keras.io
examples do) must therefore be the one that imports keras first: redline's patches of ``Model.fit`` and
``Model.compile`` wait for that import instead of making it.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Callable


class _Loader(importlib.abc.Loader):
    """The module's own loader, then the hooks."""

    def __init__(self, inner, finder):
        self.inner, self.finder = inner, finder

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        self.inner.exec_module(module)
        if self.finder in sys.meta_path:  # imported: the finder's work is done
            sys.meta_path.remove(self.finder)
        hooks, self.finder.hooks = list(self.finder.hooks), []
        for hook in hooks:
            hook(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the module's real spec through the other finders and wraps its loader. It stays until the module is
    executed: a probe such as ``importlib.util.find_spec("keras")`` (TensorFlow makes one) imports nothing."""

    def __init__(self, name: str):
        self.name, self.hooks, self.busy = name, [], False

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
    """Call ``hook(module)`` once ``name`` is imported: now if it already is, else right after its first import."""
    module = sys.modules.get(name)
    if module is not None:
        hook(module)
        return
    for finder in sys.meta_path:
        if isinstance(finder, _Finder) and finder.name == name:
            finder.hooks.append(hook)
            return
    finder = _Finder(name)
    finder.hooks.append(hook)
    sys.meta_path.insert(0, finder)


def pending(name: str) -> bool:
    """Hooks are waiting for ``name``'s first import."""
    return any(isinstance(f, _Finder) and f.name == name for f in sys.meta_path)


__all__ = ["pending", "when_imported"]

"""Where a script picks its Keras backend itself, recorded in a trial process (tuning/harness.py): an
``os.environ["KERAS_BACKEND"] = ...`` line before keras is imported, or ``keras.config.set_backend(...)``, which
imports keras anew on that backend. With ``force`` (a trial of another backend, measured against the script's line),
the line is ignored."""

from __future__ import annotations

import os
import sys

#: packages importing keras itself imports: what their own import code sets in the environment (TensorFlow's
#: TF2_BEHAVIOR, JAX's TF_CPP_MIN_LOG_LEVEL default, ...) a spare's early import of keras sets the same way
KERAS_IMPORTS = frozenset({"keras", "tensorflow", "tf_keras", "jax", "jaxlib", "torch", "h5py"})


def _set_by_keras_imports() -> bool:
    """True where the environment variable being set (or deleted) now is set by the import code of a package that
    importing keras imports too, not by the script: the caller (past os' own frames and the watch below) is such a
    package, or a module imported while one of them was being imported (protobuf under TensorFlow)."""
    def top(frame) -> str:
        return str(frame.f_globals.get("__name__") or "").split(".")[0]

    f = sys._getframe(2)
    while f is not None and (top(f) in ("os", "_collections_abc") or f.f_code.co_filename == __file__):
        f = f.f_back
    if f is None or top(f) in KERAS_IMPORTS:  # set by such a package's own code
        return f is not None
    imported = False  # the setter's module reached through the import machinery, from such a package's import
    g = f.f_back
    while g is not None:
        if top(g) in KERAS_IMPORTS:
            return imported
        imported = imported or top(g) == "importlib"
        g = g.f_back
    return False


def watch_backend(force: bool, force_onednn: bool = False) -> dict:
    """Record where the script sets KERAS_BACKEND itself (``os.environ[...] = ...`` before keras is imported: later it
    has no effect); with ``force``, ignore it, so the trial's backend is measured against the script's line (shown as
    advice, never applied). ``setdefault`` is a default, not a pin: it gives way to a backend already set, as it does
    under ``python script.py``. The same for TF_ENABLE_ONEDNN_OPTS before TensorFlow is imported (a line many scripts
    carry to silence TensorFlow's oneDNN message), ignored with ``force_onednn``."""
    seen = {"pinned": None, "line": None, "ignored": False, "env": set(), "onednn": None, "onednn_at": None}
    env_type = type(os.environ)
    setitem, setdefault, delitem = env_type.__setitem__, env_type.setdefault, env_type.__delitem__
    state = {"default": False}

    def __setitem__(self, key, value):
        if self is os.environ and "keras" not in sys.modules and not _set_by_keras_imports():  # what a spare's early
            seen["env"].add(str(key))  # import of keras would not see
        if self is os.environ and key == "KERAS_BACKEND" and not state["default"] and "keras" not in sys.modules:
            frame = sys._getframe(1)
            seen["pinned"], seen["line"] = str(value), f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
            if force:
                seen["ignored"] = True
                return
        if (self is os.environ and key == "TF_ENABLE_ONEDNN_OPTS" and not state["default"]
                and "tensorflow" not in sys.modules and not _set_by_keras_imports()):
            frame = sys._getframe(1)
            seen["onednn"], seen["onednn_at"] = str(value), f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
            if force_onednn:
                return
        setitem(self, key, value)

    def setdefault_(self, key, value=None):
        state["default"] = True
        try:
            return setdefault(self, key, value)
        finally:
            state["default"] = False

    def __delitem__(self, key):
        if self is os.environ and "keras" not in sys.modules and not _set_by_keras_imports():
            seen["env"].add(str(key))
        delitem(self, key)

    env_type.__setitem__, env_type.setdefault, env_type.__delitem__ = __setitem__, setdefault_, __delitem__
    return seen


def watch_set_backend(keras, seen: dict, force: bool) -> None:
    """``keras.config.set_backend`` recorded as the script's pin, where ``seen`` (watch_backend's) keeps it; with
    ``force``, it changes nothing. Called on each import of keras (the call imports keras anew: the hooks of
    applying/after_import.py run again, and watch the new module's function)."""
    from keras.src.utils import backend_utils

    original = backend_utils.set_backend
    if getattr(original, "__redline_watched__", False):
        return

    def set_backend(backend):
        frame = sys._getframe(1)
        seen["pinned"], seen["line"] = str(backend), f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        if force:
            seen["ignored"] = True
            return None
        return original(backend)

    set_backend.__redline_watched__ = True
    backend_utils.set_backend = set_backend
    for module in (getattr(keras, "config", None), getattr(keras, "utils", None)):
        if getattr(module, "set_backend", None) is original:
            module.set_backend = set_backend


__all__ = ["KERAS_IMPORTS", "watch_backend", "watch_set_backend"]

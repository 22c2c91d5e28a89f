"""Thread counts a script sets itself, as the folklore articles tell it to: ``tf.config.threading.set_intra_op_
parallelism_threads(16)`` / ``set_inter_op_...`` (often a core count copied from another machine), or
``os.environ["TF_NUM_INTRAOP_THREADS"] = ...`` before TensorFlow starts (``OMP_NUM_THREADS`` sizes no pool of
TensorFlow's: it is not one of them).

Such a line wins over the thread counts a trial process gives TensorFlow through the environment, so a thread
candidate would measure the script as written under another name. The trial records where the script sets them;
with ``force`` (a thread candidate measured against the script's line, as advice) it ignores the script's calls and
variables, so the candidate's own counts, or TensorFlow's defaults, are what is measured.
"""

from __future__ import annotations

import os
import sys

#: the variables through which a script sets TensorFlow's thread counts
THREAD_VARS = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
SETTERS = {"set_intra_op_parallelism_threads": "intra", "set_inter_op_parallelism_threads": "inter"}


REDLINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # redline's package folder


def _where() -> str:
    """file:line of the script's call: the first frame out of redline's own wrappers."""
    frame = sys._getframe(1)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(REDLINE_DIR + os.sep):
        frame = frame.f_back
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}" if frame else "?"


def watch(force: bool) -> dict:
    """Record the script's own thread settings (``seen["at"]``: its first such line, ``seen["set"]``: name -> value);
    with ``force`` ignore them. Installs on os.environ now and on ``tf.config.threading`` once TensorFlow is imported."""
    from ..applying.after_import import when_imported

    seen = {"at": None, "set": {}, "ignored": False}

    def note(name, value):
        seen["set"][name] = value
        seen["at"] = seen["at"] or _where()
        seen["ignored"] = seen["ignored"] or force

    env_type = type(os.environ)
    setitem = env_type.__setitem__

    def __setitem__(self, key, value):
        if self is os.environ and key in THREAD_VARS and "tensorflow" not in sys.modules:  # later: no effect
            note(key, str(value))
            if force:
                return
        setitem(self, key, value)

    env_type.__setitem__ = __setitem__

    def patch(tf):
        module = tf.config.threading
        for name, short in SETTERS.items():
            original = getattr(module, name)

            def setter(n, *a, _original=original, _short=short, **kw):
                note(_short, n)
                if not force:
                    return _original(n, *a, **kw)
                return None

            setattr(module, name, setter)

    when_imported("tensorflow", patch)
    return seen


__all__ = ["REDLINE_DIR", "SETTERS", "THREAD_VARS", "watch"]

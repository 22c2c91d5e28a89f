"""A dtype policy a script sets itself, as GPU tutorials and the mixed-precision articles tell it to:
``keras.mixed_precision.set_global_policy("mixed_float16")`` (or ``keras.config.set_dtype_policy``, or the same through
``tf.keras``). Copied onto a CPU with no float16 arithmetic, that one line can make every step several times slower.

Such a line wins over the policy a precision trial sets when Keras is imported, so a precision candidate would
measure the script as written under another name. The trial records where the script sets its policy and which;
with ``force`` (a precision candidate measured against the script's line, as advice) it ignores the script's calls,
so the candidate's own policy, or Keras' default float32, is what is measured.

Every public alias ends in one call, ``global_state.set_global_attribute("dtype_policy", ...)``: the watch wraps
that, and counts a call only where code outside Keras and redline called ``set_dtype_policy`` itself: Keras' own
getter sets the default on first use, and a precision trial's own call is not the script's.
"""

from __future__ import annotations

import os
import sys

from .threads_pin import REDLINE_DIR


def _script_frame(frame, keras_dir: str):
    """The frame of the script's call: the code that called Keras' ``set_dtype_policy`` itself (any public alias of
    it), or None where Keras called it (its getter sets the default float32 on first use, inside the script's first
    layer) or redline did (a precision trial's policy, set once keras is imported)."""
    outermost = None
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(keras_dir + os.sep):
        outermost, frame = frame, frame.f_back
    if (frame is None or outermost is None or outermost.f_code.co_name != "set_dtype_policy"
            or os.path.abspath(frame.f_code.co_filename).startswith(REDLINE_DIR + os.sep)):
        return None
    return frame


def _name(policy) -> str:
    return str(getattr(policy, "name", policy))


def watch(force: bool) -> dict:
    """Record the script's own dtype policy (``seen["at"]``: file:line of its first such call, ``seen["set"]``: the
    policy's name, its last); with ``force`` ignore those calls. Installs once the script imports keras."""
    from ..applying.after_import import when_imported

    seen = {"at": None, "set": None, "ignored": False}

    def patch(keras):
        try:
            from keras.src.backend.common import global_state
        except ImportError:  # a Keras laid out otherwise: the script's policy is not watched, and stands
            return
        keras_dir = os.path.dirname(os.path.abspath(keras.__file__))
        original = global_state.set_global_attribute

        def set_global_attribute(name, value, *a, **kw):
            frame = _script_frame(sys._getframe(1), keras_dir) if name == "dtype_policy" else None
            if frame is not None:
                seen["at"] = seen["at"] or f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
                seen["set"] = _name(value)
                if force:
                    seen["ignored"] = True
                    return None
            return original(name, value, *a, **kw)

        global_state.set_global_attribute = set_global_attribute

    when_imported("keras", patch)
    return seen


__all__ = ["watch"]

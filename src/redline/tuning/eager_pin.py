"""``tf.config.run_functions_eagerly(True)``, left in a script from a debugging session (TensorFlow's debugging guides
tell users to call it): on the TensorFlow backend every ``tf.function``, Keras' train step among them, then runs op by
op. It is the script's own choice, as ``compile(run_eagerly=True)`` is: the trial notes where the script made the call
(``watch``), the measurement reports it with the script's compile arguments (tuning/measure.py), and the in-process
stage measures the graph against it, as advice (tuning/inprocess.py), switching the flag between its candidates
(``set_eager``): a traced ``tf.function`` reads the flag at each call, so nothing is traced again.
"""

from __future__ import annotations

import sys

from .threads_pin import _where

KNOB = "run_functions_eagerly"


def watch() -> None:
    """Record where the script turns TensorFlow's functions eager, once it imports TensorFlow: the line is kept on
    the wrapper (``tf.config.run_functions_eagerly.redline_at``), the call itself goes through."""
    from ..applying.after_import import when_imported

    def patch(tf):
        original = tf.config.run_functions_eagerly

        def run_functions_eagerly(run_eagerly):
            if run_eagerly and run_functions_eagerly.redline_at is None:
                run_functions_eagerly.redline_at = _where()
            return original(run_eagerly)

        run_functions_eagerly.redline_at = None
        run_functions_eagerly.redline_original = original
        tf.config.run_functions_eagerly = run_functions_eagerly

    when_imported("tensorflow", patch)


def eager() -> bool | None:
    """Whether TensorFlow runs its functions eagerly now; None where TensorFlow is not imported."""
    tf = sys.modules.get("tensorflow")
    return bool(tf.config.functions_run_eagerly()) if tf is not None and hasattr(tf, "config") else None


def where() -> str | None:
    """file:line of the script's call, where the watch saw one."""
    tf = sys.modules.get("tensorflow")
    return getattr(getattr(getattr(tf, "config", None), KNOB, None), "redline_at", None)


def set_eager(value: bool) -> None:
    """TensorFlow's flag set, past the watch (a candidate's switch is not the script's call)."""
    fn = sys.modules["tensorflow"].config.run_functions_eagerly
    getattr(fn, "redline_original", fn)(bool(value))


__all__ = ["KNOB", "eager", "set_eager", "watch", "where"]

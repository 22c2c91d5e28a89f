"""Processes the script forks while JAX runs: a ``keras.utils.PyDataset`` with ``use_multiprocessing=True`` (its
workers forked by multiprocessing's default start method on Linux up to Python 3.13), or the script's own fork Pool.

JAX is multithreaded, and a fork copies the locks its threads hold: Python warns at each such fork that "this will
likely lead to a deadlock", and Keras' PyDataset workers hang under JAX on GPUs (keras-team/keras#20619). Under
TensorFlow, the script's own backend, the same script ran; a backend candidate that makes it fork under JAX is
dropped with the reason (tuning/passes.py), whatever it measured: a tuned run must finish where the script finishes.
"""

from __future__ import annotations

import os
import sys


def watch() -> dict:
    """Count the forks made while keras runs on JAX (``seen["forks"]``), from now on."""
    seen = {"forks": 0}

    def before():
        keras = sys.modules.get("keras")
        try:
            backend = keras.backend.backend() if keras is not None else None
        except AttributeError:  # keras half imported: no backend yet
            backend = None
        if backend == "jax":
            seen["forks"] += 1

    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=before)
    return seen


def reason(forks: int) -> str:
    """Why a candidate whose trial forked under JAX is not chosen."""
    return (f"the script forked {forks} process(es) while JAX ran (a PyDataset with use_multiprocessing=True, or its "
            "own multiprocessing with the fork start method): Python warns that a fork of JAX's threads will likely "
            "deadlock, and PyDataset workers hang under JAX on GPUs (keras-team/keras#20619); not chosen (the script "
            "as written does not fork under JAX)")


__all__ = ["reason", "watch"]

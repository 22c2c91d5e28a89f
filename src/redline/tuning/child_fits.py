"""Fits the script makes in processes it starts: a sweep of learning rates over a ``multiprocessing.Pool``, one
``fit`` per worker. A trial measures the fits of the script's own process; a child's ``fit`` runs as the script wrote
it (not cut short, not measured: its results are the script's), and says so on the trial's output, so that a script
whose fits all run in children is told as such, not as one that "ended without calling Model.fit".

A forked child inherits the trial's own ``fit`` patch (the harness sees the other process id and calls tell() and the
original fit); a spawned child (a fresh interpreter) gets watch() from the trial's sitecustomize
(tuning/child_site/).
"""

from __future__ import annotations

import functools
import os

#: the harness's phase-line prefix (tuning/harness.py): a child's line goes to the trial's output, as the harness's do
PHASE = "REDLINE-PHASE "
#: the phase a child's fit reports
CHILD_FIT = "child-fit"
#: why a trial whose script fitted only in its children has nothing to measure
MESSAGE = ("its Model.fit calls run in processes the script starts (multiprocessing or a Python subprocess), none in "
           "its own process: tune measures the fits of the script's own process")

_told: set = set()


def tell() -> None:
    """Say once per process, on the trial's output, that a child process called fit."""
    if os.getpid() in _told:
        return
    _told.add(os.getpid())
    os.write(1, f"{PHASE}{CHILD_FIT}\n".encode())


def mark(keras) -> None:
    """Keras' fit, in a spawned child: tell(), then fit as written."""
    original = keras.Model.fit

    @functools.wraps(original)
    def fit(*args, **kwargs):
        tell()
        return original(*args, **kwargs)

    keras.Model.fit = fit


def watch() -> None:
    """In a spawned child of a trial (its sitecustomize): mark() once the script imports keras."""
    from ..applying.after_import import when_imported

    when_imported("keras", mark)


__all__ = ["CHILD_FIT", "MESSAGE", "PHASE", "mark", "tell", "watch"]

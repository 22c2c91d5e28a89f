"""Fits the script makes in processes it starts: a sweep of learning rates over a ``multiprocessing.Pool``, one
``fit`` per worker, or a driver that runs ``python train_one.py --lr ...`` in a subprocess for each. A trial measures
the fits of the script's own process; a child's ``fit`` is not measured, and runs cut short as the completion trial
cuts one (tuning/completion.py: one epoch of a few steps): run as written, a sweep of an hour ran whole in the first
trial (and again after it, under `run --tune`), only to learn that nothing in it could be measured. The child tells
the trial (a file the trial names), so that a script whose fits all run in children is told as such, not as one that
"ended without calling Model.fit", and a child that is a Python script of its own (not a multiprocessing worker)
gives its command line, the one to tune instead.

A forked child inherits the trial's own ``fit`` patch (the harness sees the other process id and calls cut_fit());
a spawned child (a fresh interpreter) gets watch() from the trial's sitecustomize (tuning/child_site/).
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import sys

#: the file (JSON lines) where a trial's children say that they fit: set by the trial for the processes it starts. A
#: file, not the trial's output: a driver that captures its subprocess's output (`capture_output=True`, to read its
#: result) would have hidden a line there, and read it as its own
ENV = "REDLINE_CHILD_FITS"
#: why a trial whose script fitted only in its children has nothing to measure
MESSAGE = ("its Model.fit calls run in processes the script starts (multiprocessing or a Python subprocess), none in "
           "its own process: tune measures the fits of the script's own process")

_told: set = set()


def listen(folder: str, environ=os.environ) -> None:
    """In the trial: the processes its script starts from now on tell() a file in ``folder`` (redline's own)."""
    environ[ENV] = os.path.join(folder, f"child-fits-{os.getpid()}.jsonl")


def heard(environ=os.environ) -> list:
    """In the trial, at its end: one entry per child process that called fit, its command line where it was a Python
    script of its own, else None; empty where none did (or listen() was not called)."""
    try:
        with open(environ.get(ENV) or "", encoding="utf-8") as f:
            return [json.loads(line)["argv"] for line in f if line.strip()]
    except FileNotFoundError:
        return []


def tell(own_script: bool = False) -> None:
    """In a child of a trial, once per process: it called fit (with its command line, where ``own_script``)."""
    path = os.environ.get(ENV)
    if not path or os.getpid() in _told:
        return
    _told.add(os.getpid())
    line = json.dumps({"pid": os.getpid(), "argv": list(sys.argv) if own_script else None}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())  # one write, appended: children telling at once do not mix their lines
    finally:
        os.close(fd)


def _own_script() -> bool:
    """This spawned process runs a Python script of its own (`subprocess.run([sys.executable, "train_one.py", ...])`),
    not a multiprocessing worker (which carries its parent's argv)."""
    import multiprocessing

    return multiprocessing.parent_process() is None and bool(sys.argv and sys.argv[0] not in ("", "-c"))


def say(children: list) -> str:
    """MESSAGE, and where a child was a script of its own (heard()), which one to tune."""
    argv = next((a for a in children if a), None)
    if not argv:
        return MESSAGE
    return f"{MESSAGE}; tune the one a process runs, e.g. redline tune {shlex.join(argv)}"


def cut_fit(original, own_script: bool = False):
    """``original`` (Keras' fit) as a child of a trial calls it: tell(), then the fit cut short."""
    from .completion import FIT_ARGS, run_cut

    @functools.wraps(original)
    def fit(model, *args, **kwargs):
        tell(own_script)
        return run_cut(original, model, {**dict(zip(FIT_ARGS, args)), **kwargs})

    return fit


def mark(keras) -> None:
    """Keras' fit, in a spawned child: cut_fit()."""
    keras.Model.fit = cut_fit(keras.Model.fit, _own_script())


def watch() -> None:
    """In a spawned child of a trial (its sitecustomize): mark() once the script imports keras."""
    from ..applying.after_import import when_imported

    when_imported("keras", mark)


__all__ = ["ENV", "MESSAGE", "cut_fit", "heard", "listen", "mark", "say", "tell", "watch"]

"""The trial process's lines to its parent (tuning/trials.py reads them), and a spare's gate.

A trial process writes its progress and its result on stdout, each on a line of its own among whatever the script
prints: PHASE lines say where it is ("ready", "measuring", "figures", "measured", ...), a MARK line carries a
result (the last one stands). A spare (tuning/spares.py) imports keras, says "ready", and reads its trial from the
pipe GATE names.
"""

from __future__ import annotations

import importlib
import json
import os
import sys


MARK = "REDLINE-TRIAL "
ENV = "REDLINE_TRIAL"
#: begins a line that tells the parent where the trial is: "ready" (a spare, keras imported, waiting for its trial),
#: "measuring" (from here on, nothing else may take the machine's CPU time)
PHASE = "REDLINE-PHASE "
#: a spare's pipe: it reads its trial from there (tuning/spares.py)
GATE = "REDLINE_TRIAL_GATE"


def emit(result: dict) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, ("\n" + MARK + json.dumps(result, default=str) + "\n").encode())  # a line of its own, whatever the
    # script printed last without a newline (the TF tutorials' EpochDots: a dot an epoch, end="")


def phase(name: str) -> None:
    sys.stdout.flush()
    os.write(1, ("\n" + PHASE + name + "\n").encode())


def gate(spec: dict) -> None:
    """A spare: import keras now, under the backend its script will fix (then the environment as it was), say so, and
    wait for the trial on the gate's pipe; end where the pipe closes without one (the tune needed no such trial)."""
    fd = int(os.environ.pop(GATE))
    if sys.platform.startswith("linux"):  # maybe stopped while it waits (tuning/spares.py): it ends with its parent
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != spec.get("parent", os.getppid()):  # the parent ended before that took hold
        os._exit(0)
    had = os.environ.get("KERAS_BACKEND")
    if spec.get("backend"):
        os.environ["KERAS_BACKEND"] = spec["backend"]
    importlib.import_module("keras")  # what every trial of the script imports first, whatever it trains
    if had is None:
        os.environ.pop("KERAS_BACKEND", None)
    else:
        os.environ["KERAS_BACKEND"] = had
    phase("ready")
    with os.fdopen(fd) as pipe:
        line = pipe.readline()
    if not line.strip():
        os._exit(0)
    os.environ[ENV] = line.strip()


def finish(result: dict, code: int = 0) -> None:
    from ..applying.iterator_release import installed, stats
    from .child_fits import heard as children_fitted

    if installed():  # what the release thread took off the epoch loop in this trial (a wait python would have had)
        result = {**result, "released": stats()}
    told = children_fitted() if result.get("status") == "no-fit" else None
    if told:  # it did fit, in processes it started
        result = {**result, "child_fits": told}
    emit(result)
    os._exit(code)  # the script's own training is not needed: end here, without running its clean-up


__all__ = ["ENV", "GATE", "MARK", "PHASE", "emit", "finish", "gate", "phase"]

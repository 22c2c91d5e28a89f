"""Imported by Python at the start of every process a trial's script starts (multiprocessing's spawn and forkserver
children, a Python subprocess): this folder is first on their PYTHONPATH (tuning/sandbox_children.py). Such a child
is a fresh interpreter, without the sandbox the trial installed in itself, and a spawn child runs the script's
top-level code again: a script's `logging.basicConfig(filename="train.log")` left an empty train.log in the user's
folder after a tune. The trial's sandbox (REDLINE_SANDBOX) is installed here too, and a fit the child makes is told to
the trial (tuning/child_fits.py); then whatever sitecustomize this one hides is imported, as Python would have."""

import importlib
import importlib.util
import json
import os
import sys


def _sandbox() -> None:
    spec = os.environ.get("REDLINE_SANDBOX")
    if not spec:
        return
    try:
        from redline.tuning.sandbox import install
    except ImportError:  # another Python, without redline: not kept off (tune names any file that changed afterwards)
        return
    box = json.loads(spec)
    install(box["scratch"], box["protect"])
    from redline.tuning.child_fits import watch

    watch()  # a fit here is the script's own, in a process it started: the trial is told (tuning/child_fits.py)


def _hidden() -> None:
    """The sitecustomize further down the path (a distribution's own), imported as Python would have imported it."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = sys.path[:]
    sys.path[:] = [p for p in path if os.path.abspath(p or os.curdir) != here]
    mine = sys.modules.pop("sitecustomize", None)
    try:
        if importlib.util.find_spec("sitecustomize") is not None:
            importlib.import_module("sitecustomize")
        elif mine is not None:
            sys.modules["sitecustomize"] = mine
    finally:
        sys.path[:] = path


_sandbox()
_hidden()

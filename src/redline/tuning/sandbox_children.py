"""The trial's sandbox (tuning/sandbox.py) in the processes its script starts.

A forked child inherits the sandbox with the rest of the process. A spawned or forkserver child (multiprocessing's
``spawn`` context, Python 3.14's default ``forkserver`` on Linux, a Python subprocess) is a fresh interpreter: the
sandbox is not in it, and a spawn child runs the script's top-level code again (as ``__mp_main__``), so what that
code writes went to the user's folder. The trial puts ``child_site/`` first on the PYTHONPATH its children inherit,
with the sandbox's folders in REDLINE_SANDBOX: Python imports its ``sitecustomize`` at start, which installs the same
sandbox (the same scratch, so what a child writes the trial reads, and the reverse) and then imports any
sitecustomize it hides. Only trials do this; `redline run`'s children write where they always write.
"""

from __future__ import annotations

import json
import os

SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "child_site")
ENV = "REDLINE_SANDBOX"


#: the longest temporary folder a forkserver's socket fits under: AF_UNIX paths end at 104 bytes (macOS; 108 on
#: Linux), and multiprocessing adds 32 ("/pymp-XXXXXXXX/listener-XXXXXXXX")
SOCKET_ROOM = 70


def inherit(scratch: str, protect) -> None:
    """Children started from now on install the sandbox (``scratch``, ``protect``) too. The temporary files of this
    process and its children go to a folder in the scratch, which ends with the trial: a trial cut short at its
    decision left TensorFlow's autograph sources (removed only at a normal exit) and the script's own temporary
    folders in the machine's, one per trial. Where that folder's path is too long for a forkserver's socket, TMPDIR
    stays, unless it lies in a protected folder (TMPDIR=./tmp): autograph wrote the modules it generates into the
    sandbox's shadow and imported them from TMPDIR, and the trial failed ("Using a symbolic tf.Tensor as a Python
    bool")."""
    import tempfile

    os.environ[ENV] = json.dumps({"scratch": scratch, "protect": list(protect)})
    rest = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = SITE + (os.pathsep + rest if rest else "")
    temp, mine = os.path.realpath(tempfile.gettempdir()), os.path.join(scratch, ".trial-tmp")
    if len(os.fsencode(mine)) <= SOCKET_ROOM or any(temp == r or temp.startswith(r + os.sep)
                                                   for r in map(os.path.realpath, protect)):
        os.makedirs(mine, exist_ok=True)
        os.environ["TMPDIR"] = tempfile.tempdir = mine


def with_trial(env, environ=os.environ):
    """A child's own environment (``subprocess.run(..., env={"PATH": ...})``) with the trial's variables added: the
    sandbox, the children's word to the trial (tuning/child_fits.py) and this folder first on its PYTHONPATH. Without
    them, a driver's `python train_one.py` children ran whole, wrote their models into the user's folder, and the
    trial said the script never called fit."""
    from .child_fits import ENV as TOLD

    if env is None or ENV not in environ:
        return env
    env = dict(env)
    for key in (ENV, TOLD):
        if key in environ:
            env.setdefault(key, environ[key])
    rest = env.get("PYTHONPATH")
    if SITE not in (rest or "").split(os.pathsep):
        env["PYTHONPATH"] = SITE + (os.pathsep + rest if rest else "")
    return env


def carry() -> None:
    """In a trial: every ``subprocess.Popen`` given an environment of its own gets the trial's variables too
    (with_trial); one given none inherits them already."""
    import functools
    import subprocess

    original = subprocess.Popen.__init__

    @functools.wraps(original)
    def init(self, *args, **kwargs):
        if kwargs.get("env") is not None:
            kwargs["env"] = with_trial(kwargs["env"])
        original(self, *args, **kwargs)

    subprocess.Popen.__init__ = init


__all__ = ["ENV", "SITE", "carry", "inherit", "with_trial"]

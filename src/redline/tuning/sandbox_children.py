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


def inherit(scratch: str, protect, environ=os.environ) -> None:
    """Children started from now on install the sandbox (``scratch``, ``protect``) too."""
    environ[ENV] = json.dumps({"scratch": scratch, "protect": list(protect)})
    rest = environ.get("PYTHONPATH")
    environ["PYTHONPATH"] = SITE + (os.pathsep + rest if rest else "")


__all__ = ["ENV", "SITE", "inherit"]

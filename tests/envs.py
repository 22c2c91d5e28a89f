"""A Python where some packages are really not installed: the test venv's site-packages, less those packages.

The interpreter runs with -S (no site-packages of its own) and a folder of links to every entry of this
one's site-packages except the named packages' modules and metadata, so both `import NAME` and
`importlib.metadata.version(NAME)` fail as on a machine that never installed them.
"""

import atexit
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
_made = {}


def site_without(missing) -> str:
    key = tuple(sorted(missing))
    if key not in _made:
        purelib = sysconfig.get_paths()["purelib"]
        folder = tempfile.mkdtemp(prefix="redline-site-without-" + "-".join(key) + "-")
        for entry in os.listdir(purelib):
            if entry.endswith(".pth") or any(entry.lower().startswith(m) for m in key):
                continue
            os.symlink(os.path.join(purelib, entry), os.path.join(folder, entry))
        _made[key] = folder
        atexit.register(shutil.rmtree, folder, True)  # its links only: rmtree does not follow them
    return _made[key]


def python_without(missing, args, env=None, timeout=120, cwd=None):
    """Run this interpreter with ``args`` where the ``missing`` packages are not installed."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("KERAS_BACKEND", "TF_CONFIG", "PYTHONPATH", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                         "TF_NUM_INTEROP_THREADS")}
    with tempfile.TemporaryDirectory(prefix="redline-keras-home-") as home:
        full = {**base, "PYTHONPATH": os.pathsep.join([site_without(missing), SRC]), "TF_CPP_MIN_LOG_LEVEL": "2",
                "KERAS_HOME": home, **(env or {})}
        return subprocess.run([sys.executable, "-S", *args], capture_output=True, text=True, env=full, timeout=timeout,
                              cwd=cwd)

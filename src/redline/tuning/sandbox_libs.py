"""Inside a trial process: the libraries that write files past Python's ``open`` as the sandbox (tuning/sandbox.py)
wraps it: ``h5py.File`` (Keras weights and checkpoints), SQLite databases (``sqlite3.connect``, and SQLAlchemy's,
Optuna's and MLflow's through it), and the modules that kept their own reference to ``open`` (numpy's text files,
tarfile, bz2)."""

from __future__ import annotations

import functools
import os

from ..applying.after_import import when_imported


def install(sb, original_open, opener) -> None:
    """Each library, once the script imports it, writes through the sandbox ``sb``: ``opener`` in place of the
    ``original_open`` it kept."""
    when_imported("h5py", lambda h5py: _h5py(h5py, sb))
    when_imported("sqlite3", lambda sqlite3: _sqlite(sqlite3, sb))
    when_imported("numpy", lambda np: _numpy_text(original_open, opener))
    for name, attr in OWN_OPEN:
        when_imported(name, lambda module, _a=attr: _repoint(module, _a, original_open, opener))


def _numpy_text(original, opener) -> None:
    """np.savetxt / loadtxt / genfromtxt open a plain file with the io.open numpy kept a reference to at its import
    (numpy.lib._datasource), past the sandbox's: a script's predictions.csv was rewritten in the user's folder by every
    trial. That reference becomes the sandbox's."""
    try:
        from numpy.lib import _datasource
    except ImportError:  # a numpy without it: nothing to redirect
        return
    openers = getattr(getattr(_datasource, "_file_openers", None), "_file_openers", None)
    if isinstance(openers, dict) and openers.get(None) is original:
        openers[None] = opener


#: standard modules that open files through builtins.open as they imported it (``from builtins import open as ...``):
#: tarfile.open and bz2 (which tarfile.open tries on every read) wrote to and read from the user's folder
OWN_OPEN = (("tarfile", "bltn_open"), ("bz2", "_builtin_open"))


def _repoint(module, attr: str, original, opener) -> None:
    """``module.attr``, the io.open it took at its import, becomes the sandbox's."""
    if getattr(module, attr, None) is original:
        setattr(module, attr, opener)


def _h5py(h5py, sb) -> None:
    original = h5py.File.__init__

    @functools.wraps(original)
    def __init__(self, name, mode="r", *args, **kwargs):
        writing = any(c in str(mode) for c in "wax+")
        return original(self, sb.path(name, writing, writing and str(mode) in ("a", "r+")), mode, *args, **kwargs)

    h5py.File.__init__ = __init__


def _sqlite(sqlite3, sb) -> None:
    """``sqlite3.connect(path)`` (and ``sqlite3.dbapi2.connect``, which SQLAlchemy calls) on a copy of the database in
    the shadow: SQLite writes natively, and a script that recorded each run's result in runs.db beside it got a row
    from every completion trial. A ``file:`` URI keeps its query (``?mode=ro``); ``:memory:`` stays in memory."""
    import sys

    original = sqlite3.connect

    @functools.wraps(original)
    def connect(database, *args, **kwargs):
        if isinstance(database, (str, bytes, os.PathLike)):
            name = os.fsdecode(os.fspath(database))
            if kwargs.get("uri") and name.startswith("file:"):
                path, sep, query = name[5:].partition("?")
                if path and path != ":memory:":
                    writing = "mode=ro" not in query
                    database = "file:" + os.fsdecode(sb.path(path, writing, writing)) + sep + query
            elif name and name != ":memory:":
                database = sb.path(name, True, True)  # the database as it was, then the trial's own writes
        return original(database, *args, **kwargs)

    sqlite3.connect = connect
    dbapi2 = sys.modules.get("sqlite3.dbapi2")
    if dbapi2 is not None and dbapi2.connect is original:
        dbapi2.connect = connect

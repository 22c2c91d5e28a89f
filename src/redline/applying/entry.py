"""How the user's script runs as ``__main__``: a file, as ``python train.py`` runs it (its folder first on
``sys.path``), or a module, as ``python -m pkg.train`` runs it (its package imported first, so its relative imports
work; the working directory first on ``sys.path``). One place for `redline run` and the trial processes.

A trial process learns that its script is a module from MODULE_ENV, which `redline tune` / `run --tune` set for the
processes they start; the variable is taken out of the environment before the script runs.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import os
import runpy
import shlex
import sys
import types
import zipfile

from ..errors import UsageError

#: the module name `redline tune -m NAME` gives its trial processes (their script is NAME's file)
MODULE_ENV = "REDLINE_RUN_MODULE"


def resolve(name: str, search=None) -> str:
    """The file ``python -m name`` runs: ``name.py``, or ``name/__main__.py`` for a package, under the working
    directory, then the folders of ``sys.path`` (``search`` instead, where given). Found without importing anything:
    a package's ``__init__`` may import TensorFlow, which must come after the plan. UsageError where there is none."""
    if name.endswith(".py"):  # `python -m train.py` fails the same way: the module's name has no .py
        module = name[:-3].replace(os.sep, ".").strip(".")
        raise UsageError(f"-m {name!r} names a file, not a module: give -m {module}, or the file {name} without -m")
    parts = name.split(".")
    if not name or not all(p.isidentifier() for p in parts):
        raise UsageError(f"-m {name!r} is not a module name; give one as `python -m` takes it, "
                         "e.g. redline run -m pkg.train")
    folders = [os.getcwd(), *(p for p in sys.path if p)] if search is None else list(search)
    for base in folders:
        path = os.path.join(base, *parts)
        for candidate in (path + ".py", os.path.join(path, "__main__.py")):
            if os.path.isfile(candidate):
                return os.path.abspath(candidate)
    raise UsageError(f"-m {name!r}: no module of that name under {os.getcwd()} or the installed packages (looked for "
                     f"{os.path.join(*parts)}.py and {os.path.join(*parts, '__main__.py')}); run it from the folder "
                     "`python -m` would, or give the script's path instead of -m")


def module_for(script: str, environ=os.environ) -> str | None:
    """In a trial process: the module name its tune gave (MODULE_ENV, then taken out of ``environ``: the script and
    its children do not see it) where it names ``script``'s file; None for a script run as a file."""
    name = environ.pop(MODULE_ENV, None)
    if not name:
        return None
    try:
        same = os.path.realpath(resolve(name)) == os.path.realpath(script)
    except UsageError:
        return None
    return name if same else None


@contextlib.contextmanager
def children_run_module(module: str | None):
    """While it lasts, the processes started (trial processes, launched workers) run ``module`` as `python -m` does:
    MODULE_ENV set for them (nothing where ``module`` is None), taken out again afterwards."""
    if module:
        os.environ[MODULE_ENV] = module
    try:
        yield
    finally:
        if module:
            os.environ.pop(MODULE_ENV, None)


def prepare(script: str, args, module: str | None = None) -> None:
    """``sys.argv`` and ``sys.path`` as Python sets them for the script."""
    sys.argv = [script, *args]
    sys.path.insert(0, os.getcwd() if module else os.path.dirname(os.path.abspath(script)))


def execute(script: str, module: str | None = None) -> None:
    """Run the script as ``__main__`` (after prepare()). Its ``__file__`` is an absolute path, as Python (3.9 and
    later) gives a script it runs (``os.chdir(os.path.dirname(__file__))`` works); ``sys.argv[0]`` stays as given."""
    if module:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return
    path = os.path.abspath(script)
    if path.endswith((".pyc", ".pyo")) or zipfile.is_zipfile(path):  # compiled code, a zip application: runpy's way
        runpy.run_path(script, run_name="__main__")
        return
    # as runpy.run_path runs a file, but for its names: runpy makes __file__ (and the code's file name) the path as
    # given and sets sys.argv[0] to it; Python gives the absolute path to the first two and leaves the third as given
    with io.open_code(path) as f:
        code = compile(f.read(), path, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __loader__=None, __package__=None, __spec__=None,
                         __builtins__=builtins)
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main  # pickling (a spawn child) finds the script's functions here, as under python
    try:
        exec(code, main.__dict__)  # noqa: S102  (the user's own script, which is what `run` runs)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def package_hint(script: str, exc: BaseException, command: str = "run") -> str | None:
    """Where a script run as a file fails on a relative import (``from .model import build``: "attempted relative import
    with no known parent package"), the -m form that runs it as its package expects; None otherwise."""
    if not isinstance(exc, ImportError) or "no known parent package" not in str(exc):
        return None
    folder, parts = os.path.dirname(os.path.abspath(script)), [os.path.splitext(os.path.basename(script))[0]]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, name = os.path.split(folder)
        parts.insert(0, name)
    if len(parts) == 1:
        return None  # not inside a package: -m would not help
    return (f"redline: {os.path.basename(script)} is part of the package {'.'.join(parts[:-1])}: run it as a module, "
            f"from {folder}: redline {command} -m {'.'.join(parts)}")


def script_traceback(tb):
    """``tb`` from the script's own first frame on: without the frames of redline and runpy (and a console script)
    that ran it, as ``python train.py`` shows a traceback. ``tb`` as given where the script's frame is not in it."""
    seen, at, ran = tb, None, False
    while seen is not None:
        code = seen.tb_frame.f_code
        if code is execute.__code__:
            at, ran = seen.tb_next, True
        seen = seen.tb_next
    if ran and at is None:  # raised in execute itself: the script's SyntaxError, before any of its code ran
        return None  # shown as python shows it: the file, the line and the caret, no traceback
    while at is not None and at.tb_next is not None and "runpy" in at.tb_frame.f_code.co_filename:
        at = at.tb_next  # -m, and compiled code run as runpy runs it
    return at if at is not None else tb


def print_script_error(exc: BaseException) -> None:
    """``exc``'s traceback on stderr from the script's own first frame on (script_traceback)."""
    import traceback

    traceback.print_exception(type(exc), exc, script_traceback(exc.__traceback__))


def show_uncaught_from_the_script() -> None:
    """From here on, an exception the script leaves uncaught is shown by ``sys.excepthook`` from the script's own first
    frame on. Python's handling stays as it is: the exit status 1 (a KeyboardInterrupt's 130), the atexit handlers; a
    hook the script sets itself replaces this one, as it replaces Python's. For `redline run`, whose process is the
    script's."""
    before = sys.excepthook

    def hook(kind, exc, tb):
        tb = script_traceback(tb)
        if isinstance(exc, BaseException):
            exc.__traceback__ = tb  # Python's own hook shows the exception's traceback, not the one it is given
        before(kind, exc, tb)

    sys.excepthook = hook


def shown(script: str, module: str | None = None) -> str:
    """The script as the user gives it on a command line."""
    return f"-m {module}" if module else script


def with_args(said: str, args=()) -> str:
    """``said`` (the script as shown()) and the script's own arguments, shell-quoted: what a command redline suggests
    must name, since the arguments key a tuned choice."""
    return " ".join([said, *map(shlex.quote, args or ())])


__all__ = ["MODULE_ENV", "children_run_module", "execute", "module_for", "package_hint", "prepare", "print_script_error",
           "resolve", "script_traceback", "show_uncaught_from_the_script", "shown", "with_args"]

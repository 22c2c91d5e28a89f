"""The user's files a tuned choice also rests on, beside the script: its own modules (``from model import
build_model``) and the settings files it reads (``config.json``). A choice measured on one model stays valid only
while those say what they said: an edit to ``model.py`` that adds a layer of ``tf.*`` ops makes a saved JAX choice
fail at the script's first line that builds the model, and a ``batch_size`` changed in ``config.json`` is another
workload.

Two sides: seen() in the trial process (which of the user's files the script imported or read), fingerprints() and
changed() where a choice is saved and looked up (tuning/cache.py). A module is fingerprinted as the script is
(tuning/workload.py: comments, prints, epochs, learning rate and verbose may change); a JSON or TOML settings file
with the values of those same names taken out; any other file byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

#: settings files, by suffix: where the script reads one of these from its folders, the choice rests on it
SETTINGS = (".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf")
#: larger files of those kinds are data (annotations, vocabularies), not settings: not kept
MAX_BYTES = 1 << 20


def _excluded(path: str) -> bool:
    """Installed code (a virtual environment inside the project folder included), and hidden folders' files."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if any(path.startswith(p + os.sep) for p in prefixes):
        return True
    parts = path.split(os.sep)
    return any(p in ("site-packages", "dist-packages", "__pycache__") or p.startswith(".") for p in parts[:-1])


def _under(path: str, roots) -> bool:
    return any(path.startswith(r + os.sep) for r in roots)


#: what marks a project's top folder: the user's code may live anywhere under it (``src/mypkg/model.py`` beside
#: ``scripts/train.py``, installed in development mode)
PROJECT_MARKS = (".git", "pyproject.toml", "setup.py", "setup.cfg")


def project_root(script: str) -> str | None:
    """The nearest folder at or above ``script``'s that holds one of PROJECT_MARKS; None where none does."""
    folder = os.path.dirname(os.path.realpath(script))
    while True:
        if any(os.path.exists(os.path.join(folder, m)) for m in PROJECT_MARKS):
            return folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def seen(script: str, roots, reads=(), modules=None) -> list[str]:
    """The files besides ``script`` that this process imported as Python modules or read as settings (``reads``: the
    paths the sandbox saw opened for reading) under the folders ``roots`` (the script's and the working directory) or
    the script's project (project_root()), installed packages left out: real paths, sorted."""
    top = project_root(script)
    roots = [os.path.realpath(r) for r in [*roots, *([top] if top else [])]]
    me, found = os.path.realpath(script), set()
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # redline itself (an editable install)
    for module in list((sys.modules if modules is None else modules).values()):
        name = getattr(module, "__file__", None)
        if isinstance(name, str) and name.endswith(".py"):
            found.add(os.path.realpath(name))
    for path in reads:
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
        if real.lower().endswith(SETTINGS) and os.path.isfile(real) and os.path.getsize(real) <= MAX_BYTES:
            found.add(real)
    return sorted(p for p in found if p != me and _under(p, roots) and not _excluded(p)
                  and not p.startswith(here + os.sep))


def _neutral(value):
    """A settings file's values with those of workload.NEUTRAL's names (epochs, learning rate, verbose) taken out."""
    from .workload import NEUTRAL

    if isinstance(value, dict):
        return {k: (None if str(k).lower() in NEUTRAL else _neutral(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_neutral(v) for v in value]
    return value


def fingerprint(path: str) -> str | None:
    """What of ``path`` can change a training step's cost, as a digest; None where it cannot be read."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    lower = path.lower()
    try:
        if lower.endswith(".py"):
            from .workload import fingerprint as code

            return "code:" + code(data)
        if lower.endswith(".json"):
            data = json.dumps(_neutral(json.loads(data)), sort_keys=True).encode()
        elif lower.endswith(".toml"):
            import tomllib

            data = json.dumps(_neutral(tomllib.loads(data.decode())), sort_keys=True, default=str).encode()
    except (ValueError, SyntaxError, UnicodeDecodeError):  # not parsed as its kind: compared byte for byte
        pass
    return hashlib.sha256(data).hexdigest()


def fingerprints(paths) -> dict:
    """{path: fingerprint} of the files a choice rests on, taken where it is saved."""
    return {p: fingerprint(p) for p in paths or ()}


def changed(saved: dict, script: str) -> str | None:
    """Which of the files a saved choice rests on (fingerprints() then) says something else now, in words; None where
    none does."""
    base = os.path.dirname(os.path.abspath(script))
    for path, was in sorted((saved or {}).items()):
        now = fingerprint(path)
        if now == was:
            continue
        shown = os.path.relpath(path, base) if path.startswith(base + os.sep) else path
        lower = path.lower()
        what = "imported by the script" if lower.endswith(".py") else "read by the script"
        if now is None:
            return f"{shown} ({what}) is gone or unreadable since it was tuned"
        beyond = ("comments, prints, epochs, learning rate or verbose" if lower.endswith(".py") else
                  "the values of epochs, learning rate or verbose" if lower.endswith((".json", ".toml")) else None)
        return f"{shown} ({what}) changed since it was tuned" + (f" beyond {beyond}" if beyond else "")
    return None


__all__ = ["changed", "fingerprint", "fingerprints", "seen"]

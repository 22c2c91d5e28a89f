"""Files redline writes for the user: checked before any long work, and never written over unless redline wrote them.

check_output() runs before a measurement starts, so a bad path costs nothing; a
file that exists is replaced only when it is of the kind about to be written
(a run record over a run record, a report over a report redline wrote), so
nothing of the user's is lost.
"""

from __future__ import annotations

import json
import os

from .errors import UsageError

#: put in the <head> of every HTML report, so redline knows its own pages.
HTML_MARK = '<meta name="generator" content="redline report">'


def _first_line(path: str, limit: int = 1 << 16) -> bytes:
    with open(path, "rb") as f:
        return f.readline(limit)


def is_run_record(path: str) -> bool:
    """A redline run record (its header line), or an empty file (nothing to lose)."""
    try:
        line = _first_line(path)
        if not line.strip():
            return os.path.getsize(path) == 0
        head = json.loads(line)
    except (OSError, ValueError):
        return False
    return isinstance(head, dict) and head.get("type") == "header" and str(head.get("schema", "")).startswith("redline.run/")


def is_html_report(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return HTML_MARK.encode() in f.read(4096)
    except OSError:
        return False


def _json_of_schema(path: str, prefix: str) -> bool:
    """A JSON object whose schema starts with ``prefix``, or an empty file (nothing to lose)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return os.path.isfile(path) and os.path.getsize(path) == 0
    return isinstance(data, dict) and str(data.get("schema", "")).startswith(prefix)


def is_bench_results(path: str) -> bool:
    return _json_of_schema(path, "redline.bench/")


def is_tune_results(path: str) -> bool:
    return _json_of_schema(path, "redline.tune/")


def check_output(path, what: str, kind: str, replaceable=None) -> str:
    """Fail now, with one line, if ``path`` cannot take the ``kind`` of file about to be written.

    what: how the user gave the path (``--json``, ``record=``); kind: what will be
    written there ("a run record"); replaceable(path) -> bool: whether an existing
    file there is one redline may write over. Returns the path as a string."""
    path = os.fspath(path)
    shown = f"{what} {path!r}"
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{shown} is a directory; give a file path for {kind}")
    if not os.path.isdir(folder):
        raise UsageError(f"{shown}: folder {folder!r} does not exist; create it or choose another path")
    exists = os.path.exists(path)
    if exists and replaceable is not None and not replaceable(path):
        raise UsageError(f"{shown}: redline refuses to write over this file, which is {_not_kind(kind)}; "
                         "choose another path, or move the file away first")
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise UsageError(f"{shown} is not writable ({exc.strerror}); choose a path you can write to") from None
    if not exists:
        os.unlink(path)
    return path


def check_folder(path, what: str) -> str:
    """The folder at ``path``, created if missing; a one-line UsageError where it is a file or cannot be written."""
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{what} {path!r} is a file, not a folder: give a folder (it is created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what} {path!r} cannot be created: {exc.strerror}; give a folder you can write to") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path!r} is not writable: give a folder you can write to")
    return os.path.abspath(path)


def _not_kind(kind: str) -> str:
    return {"a run record": "not a redline run record",
            "an HTML report": "not an HTML report redline wrote",
            "bench results": "not redline bench results",
            "tune results": "not redline tune results"}.get(kind, f"not {kind}")


def same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


__all__ = ["HTML_MARK", "check_folder", "check_output", "is_bench_results", "is_html_report", "is_run_record", "is_tune_results", "same_file"]

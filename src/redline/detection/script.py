"""The backend a script pins itself, read from its source before it runs.

keras.io examples and tutorials begin with ``os.environ["KERAS_BACKEND"] = "jax"`` before ``import keras``. Under
``python script.py`` that line decides the backend, whatever the environment or keras.json says. Anything that
imports keras (or TensorFlow, which imports it) before the script runs fixes the backend first and overrides the
line, so `redline run` must know of it before it applies anything. Read statically: the script's module-level
statements in order, up to its first import of keras or TensorFlow (a line after it changes nothing).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Mapping

VAR = "KERAS_BACKEND"
#: an import of one of these fixes Keras' backend (TensorFlow imports keras; keras_hub and the like import it too)
_FIXES = ("keras", "tensorflow", "tf_keras")


@dataclass(frozen=True)
class Pin:
    """``backend``: the value the script sets, None where it is not a literal (read from its arguments, say);
    ``at``: "script.py:LINE"."""

    backend: str | None
    at: str


def _is_environ(node) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (isinstance(node, ast.Name)
                                                                            and node.id == "environ")


def _literal(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _fixes(node) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0].startswith(_FIXES) for a in node.names)
    return isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0].startswith(_FIXES)


def _statements(body):
    """Module-level statements in order, into the blocks that run at import (if, try, with), not into functions."""
    for node in body:
        yield node
        for name in ("body", "orelse", "handlers", "finalbody"):
            for child in getattr(node, name, []) if isinstance(node, (ast.If, ast.Try, ast.With, ast.ExceptHandler)) else []:
                yield from _statements([child])


def _sets(node, environ: Mapping[str, str]):
    """(set, value node) where ``node`` sets KERAS_BACKEND in os.environ; (False, None) where it does not."""
    if isinstance(node, ast.Assign):
        for t in node.targets:
            if isinstance(t, ast.Subscript) and _is_environ(t.value) and _literal(t.slice) == VAR:
                return True, node.value
    call = node.value if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
    if call is None or not isinstance(call.func, ast.Attribute) or not _is_environ(call.func.value):
        return False, None
    if call.func.attr == "setdefault" and call.args and _literal(call.args[0]) == VAR:  # a default: the environment wins
        return (VAR not in environ), (call.args[1] if len(call.args) > 1 else None)
    if call.func.attr == "update":
        for kw in call.keywords:
            if kw.arg == VAR:
                return True, kw.value
        if call.args and isinstance(call.args[0], ast.Dict):
            for k, v in zip(call.args[0].keys, call.args[0].values):
                if k is not None and _literal(k) == VAR:
                    return True, v
    return False, None


def script_backend(path: str, environ: Mapping[str, str] = os.environ) -> Pin | None:
    """Where the script sets KERAS_BACKEND before it first imports keras or TensorFlow, the last such line; else None
    (and None where the file cannot be read or parsed: running it will say why)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    pin = None
    for node in _statements(tree.body):
        if _fixes(node):
            break
        sets, value = _sets(node, environ)
        if sets:
            pin = Pin(_literal(value) if value is not None else None, f"{os.path.basename(path)}:{node.lineno}")
    return pin


__all__ = ["Pin", "script_backend"]

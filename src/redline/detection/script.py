"""The backend a script pins itself, read from its source before it runs.

keras.io examples and tutorials begin with ``os.environ["KERAS_BACKEND"] = "jax"`` before ``import keras``. Under
``python script.py`` that line decides the backend, whatever the environment or keras.json says. Anything that
imports keras (or TensorFlow, which imports it) before the script runs fixes the backend first and overrides the
line, so `redline run` must know of it before it applies anything. Read statically: the script's module-level
statements in order; an environment line counts up to its first import of keras or TensorFlow (a line after it
changes nothing), a ``keras.config.set_backend(...)`` call wherever it comes (it imports keras anew).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from typing import Mapping

VAR = "KERAS_BACKEND"
#: the start of ``keras_backend_source`` where the backend is the script's own line (as_script_runs)
SCRIPT_SOURCE = "the script's own line"
#: an import of one of these fixes Keras' backend (TensorFlow imports keras; keras_hub and the like import it too)
_FIXES = ("keras", "tensorflow", "tf_keras")


@dataclass(frozen=True)
class Pin:
    """``backend``: the value the script sets, None where it is not a literal (read from its arguments, say) or the
    line may not run (inside an ``if`` on something else);
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


def _main_guard(test) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and _literal(test.comparators[0]) == "__main__")


def _unset(test, environ: Mapping[str, str]) -> bool | None:
    """``if "KERAS_BACKEND" not in os.environ:`` (a default, as setdefault is): whether its body runs; None for
    any other test."""
    if (isinstance(test, ast.Compare) and _literal(test.left) == VAR and len(test.ops) == 1
            and isinstance(test.ops[0], ast.NotIn) and _is_environ(test.comparators[0])):
        return VAR not in environ
    return None


def _statements(body, environ: Mapping[str, str], sure: bool = True):
    """(statement, whether it surely runs) for the module-level statements in order, into the blocks that run at
    import (if, try, with), not into functions. The body of ``if __name__ == "__main__":`` or of an ``if`` on
    KERAS_BACKEND being unset is as sure as the ``if``; other branches are not."""
    for node in body:
        yield node, sure
        if isinstance(node, ast.If):
            runs = True if _main_guard(node.test) else _unset(node.test, environ)
            if runs is not False:
                yield from _statements(node.body, environ, sure and runs is True)
            if runs is not True:
                yield from _statements(node.orelse, environ, sure and runs is False)
        elif isinstance(node, (ast.Try, ast.With)):
            yield from _statements(node.body, environ, sure)
            for handler in getattr(node, "handlers", []):
                yield from _statements(handler.body, environ, False)
            yield from _statements(getattr(node, "orelse", []), environ, False)
            yield from _statements(getattr(node, "finalbody", []), environ, sure)


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
    """Where the script sets KERAS_BACKEND before it first imports keras or TensorFlow, or calls
    keras.config.set_backend, the last such line; else None
    (and None where the file cannot be read or parsed: running it will say why)."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    pin, fixed = None, False
    for node, sure in _statements(tree.body, environ):
        fixed = fixed or (sure and _fixes(node))
        sets, value = (False, None) if fixed else _sets(node, environ)
        call = node.value if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) else None
        if call is not None and _name(call.func) == "set_backend" and call.args:  # keras.config.set_backend("jax"):
            sets, value = True, call.args[0]  # keras imported anew on that backend, wherever it comes
        if sets:  # a line that may or may not run: the backend is known only when the script runs
            pin = Pin(_literal(value) if value is not None and sure else None, f"{os.path.basename(path)}:{node.lineno}")
    return pin


def _name(func) -> str | None:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def as_script_runs(snapshot, pin: Pin | None):
    """``snapshot`` with the Keras backend the script will run on where ``pin`` names it (its source
    "the script's own line FILE:LINE"), else as it is."""
    import dataclasses

    if pin is None or pin.backend is None:
        return snapshot
    runtime = dataclasses.replace(snapshot.runtime, keras_backend=pin.backend,
                                  keras_backend_source=f"{SCRIPT_SOURCE} {pin.at}")
    return dataclasses.replace(snapshot, runtime=runtime)


__all__ = ["SCRIPT_SOURCE", "Pin", "as_script_runs", "script_backend"]

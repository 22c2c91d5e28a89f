"""The fits a script makes: which one tune measures.

A script may call ``fit`` more than once: a frozen base trained for a few epochs and then the whole model for more
(transfer learning), a warm-up, k folds. The first trial of the script as written measures its first fit, then runs
the rest of the script with training cut short (tuning/completion.py) and records every fit: a fingerprint of what a
step costs (the model's class and weights, which of them train, the compile arguments, the input's kind, the batch
size) and its size as the script asks (epochs x steps an epoch). The fit that trains longest is the one every later
trial measures; the fits before it run cut short there.
"""

from __future__ import annotations

import hashlib
import json


def fingerprint(model, compile_call, x, batch_size) -> str:
    """What one training step of this fit costs depends on (sha256, 16 hex digits)."""
    from ..data.rewrite import input_kind

    args, kwargs = compile_call or ((), {})
    described = {k: (type(v).__name__ if not isinstance(v, (str, int, float, bool, type(None))) else v)
                 for k, v in sorted(kwargs.items())}
    parts = {"model": type(model).__name__, "weights": [list(map(int, w.shape)) for w in model.weights],
             "trainable": len(model.trainable_weights), "compile": [[type(a).__name__ for a in args], described],
             "input": input_kind(x), "batch_size": batch_size}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def size(fit: dict) -> int:
    """Steps the fit trains as the script asks (0 where the steps of an epoch are not known)."""
    return int(fit.get("epochs") or 1) * int(fit.get("steps_in_epoch") or 0)


def longest(fits: list) -> dict | None:
    """The fit that trains longest; the earliest of equals (k folds of one model: the first)."""
    return max(fits, key=size) if fits else None


__all__ = ["fingerprint", "longest", "size"]

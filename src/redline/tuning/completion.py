"""The completion trial: the whole script under a candidate, with its training cut short, to the end.

Each ``fit`` runs one epoch of a few steps (at least one execution of the script's own steps_per_execution), and
on numpy arrays the data's last, partial batch too, as each epoch of the script ends; validation included but cut
the same way; each ``evaluate`` and ``predict`` a few steps. Everything after the
fits runs as written (saving, exporting, a second model, TensorFlow-only code), in the trial's sandbox. A candidate
that ends differently from the script as written (an exception, another exit code) is not chosen.
"""

from __future__ import annotations

import functools
import math
import os
import traceback

#: Model.fit's arguments in the order it takes them, as far as a script passes them by position
FIT_ARGS = ("x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data", "shuffle")
#: steps each cut fit, evaluate and predict runs (at least one execution of the model's steps_per_execution)
STEPS = 2
#: the most a cut fit copies to keep the data's last batch (_with_tail): beyond it, steps_per_epoch cuts it instead
TAIL_BYTES = 256 * 2**20


def _steps(model) -> int:
    return max(STEPS, int(getattr(model, "steps_per_execution", 1) or 1))


def _validated_by(initial: int, freq, epochs: int) -> int:
    """The epochs a cut fit runs so that it validates where the script's own fit does: Keras validates after epoch e
    (from 1) where e % ``freq`` == 0 (an int) or e is in ``freq`` (a list); a fit with validation_freq=2 cut to one
    epoch never validates, and a script reading ``history.history["val_accuracy"]`` then fails in the trial alone.
    Where the script's own ``epochs`` end before that, it never validates, and neither does the cut fit: one epoch."""
    if isinstance(freq, int) and freq > 1:
        first = (initial // freq + 1) * freq
    elif isinstance(freq, (list, tuple, set)):
        first = min((int(e) for e in freq if int(e) > initial), default=initial + 1)
    else:
        first = initial + 1
    return first if first <= epochs else initial + 1


def _leaves(v) -> list | None:
    """The numpy arrays ``v`` holds (an array, or lists, tuples and dicts of them, None among them); None where it
    holds anything else (a tf.data.Dataset, a generator, a tensor, a DataFrame)."""
    import numpy as np

    if v is None:
        return []
    if isinstance(v, np.ndarray):
        return [v] if v.ndim else None
    parts = list(v.values()) if isinstance(v, dict) else list(v) if isinstance(v, (list, tuple)) else None
    if parts is None:
        return None
    out = []
    for part in parts:
        got = _leaves(part)
        if got is None:
            return None
        out += got
    return out


def _take(v, rows):
    """``v`` (as _leaves() reads it) with each array's ``rows`` (a slice or an index array)."""
    if v is None:
        return None
    if isinstance(v, dict):
        return {k: _take(x, rows) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(_take(x, rows) for x in v)
    return v[rows]


def _rows(data) -> int | None:
    """The samples in ``data`` (x, y, sample_weight) where each is numpy arrays of one length; else None."""
    leaves = [_leaves(v) for v in data]
    if any(got is None for got in leaves):
        return None
    lengths = {len(a) for got in leaves for a in got}
    return lengths.pop() if len(lengths) == 1 else None


def _with_tail(data, batch: int, steps: int):
    """``data`` (x, y, sample_weight as numpy arrays) cut to ``steps`` full batches and the data's last, partial
    batch, as each of the script's epochs ends: that batch's shape compiles a step function of its own (a later fold's
    fit on JAX: 0.31 s cut to 2 batches, 0.56-0.58 s with its last batch, as its first epoch costs beyond a later one
    in a run). None where the data is no such arrays or has no partial batch, has fewer samples than that, or where
    the copy would take more than TAIL_BYTES."""
    import numpy as np

    n = _rows(data)
    if not n or not batch or not n % batch or n <= steps * batch + n % batch:
        return None
    if sum(a.nbytes for v in data for a in _leaves(v)) / n * (steps * batch + n % batch) > TAIL_BYTES:
        return None
    rows = np.r_[0:steps * batch, n - n % batch:n]
    return tuple(_take(v, rows) for v in data)


def cut(model, kw: dict) -> dict:
    """A fit call's arguments (by name) cut short: a few steps an epoch, validation cut the same way; one epoch, or
    as many as it takes to validate once where the script validates only every few epochs (validation_freq). Numpy
    arrays are cut to those steps' samples and their last, partial batch (_with_tail), validation_split's share split
    off first as Keras splits it (the last samples); other inputs by steps_per_epoch and validation_steps."""
    kw, steps = dict(kw), _steps(model)
    initial, asked = int(kw.get("initial_epoch") or 0), int(kw.get("epochs") or 1)  # Keras' default: 1 epoch
    kw["epochs"] = initial + 1
    batch = kw.get("batch_size") or 32  # Keras' default
    data = (kw.get("x"), kw.get("y"), kw.get("sample_weight"))
    split, n = kw.get("validation_split"), _rows(data)
    at = int(math.floor(n * (1.0 - split))) if split and n else 0  # Keras' own split
    if kw.get("validation_data") is None and 0 < at < n:
        val = tuple(_take(v, slice(at, n)) for v in data)
        data = tuple(_take(v, slice(0, at)) for v in data)
        kw.update(x=data[0], y=data[1], sample_weight=data[2], validation_split=0.0,
                  validation_data=val if val[2] is not None else val[:2])
    tail = _with_tail(data, batch, steps)
    if tail is not None:  # each batch once (a steps_per_epoch of the script's own would run out of data)
        kw.update(x=tail[0], y=tail[1], sample_weight=tail[2])
        kw.pop("steps_per_epoch", None)
    else:
        kw["steps_per_epoch"] = steps
    if kw.get("validation_data") is not None or kw.get("validation_split"):
        val = kw.get("validation_data")
        val = tuple(val) if isinstance(val, (list, tuple)) and 2 <= len(val) <= 3 else None
        val_tail = _with_tail((*val, None)[:3], kw.get("validation_batch_size") or batch, steps) if val else None
        if val_tail is not None:
            kw["validation_data"] = val_tail if len(val) == 3 else val_tail[:2]
            kw.pop("validation_steps", None)
        else:
            kw["validation_steps"] = steps
        kw["epochs"] = _validated_by(initial, kw.get("validation_freq", 1), asked)
    return kw


def install(keras, counts: dict) -> None:
    """Patch Model.fit / evaluate / predict on ``keras`` to their cut versions; ``counts`` counts the calls."""
    owner = keras.Model
    fit, evaluate, predict = owner.fit, owner.evaluate, owner.predict
    @functools.wraps(fit)
    def cut_fit(model, *args, **kwargs):
        counts["fit"] = counts.get("fit", 0) + 1
        return fit(model, **cut(model, {**dict(zip(FIT_ARGS, args)), **kwargs}))

    @functools.wraps(evaluate)
    def cut_evaluate(model, *args, **kwargs):
        counts["evaluate"] = counts.get("evaluate", 0) + 1
        return evaluate(model, *args, **{**kwargs, "steps": _steps(model)})

    @functools.wraps(predict)
    def cut_predict(model, *args, **kwargs):
        counts["predict"] = counts.get("predict", 0) + 1
        return predict(model, *args, **{**kwargs, "steps": _steps(model)})

    owner.fit, owner.evaluate, owner.predict = cut_fit, cut_evaluate, cut_predict


def where(exc: BaseException, script: str) -> str | None:
    """file:line of the script's own line the exception passed through last (the user's line to look at)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(script)]
    f = mine[-1] if mine else (frames[-1] if frames else None)
    return f"{os.path.basename(f.filename)}:{f.lineno}" if f else None


def outcome(exc: BaseException | None, script: str, counts: dict) -> dict:
    """The trial's result line for how the script ended."""
    if exc is None:
        return {"status": "complete", "exit_code": 0, "calls": counts}
    if isinstance(exc, SystemExit):
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return {"status": "complete", "exit_code": code, "calls": counts}
    return {"status": "incomplete", "error": f"{type(exc).__name__}: {exc}"[:500], "where": where(exc, script),
            "calls": counts}


__all__ = ["FIT_ARGS", "STEPS", "TAIL_BYTES", "cut", "install", "outcome", "where"]

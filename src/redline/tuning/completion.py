"""The completion trial: the whole script under a candidate, with its training cut short, to the end.

Each ``fit`` runs one epoch of a few steps (at least one execution of the script's own steps_per_execution), and
the input's last, partial batch too where the input says what it is (tuning/tails.py), as each epoch of the script
ends; validation included but cut the same way; each ``evaluate`` and ``predict`` a few steps. Everything after the
fits runs as written (saving, exporting, a second model, TensorFlow-only code), in the trial's sandbox. A candidate
that ends differently from the script as written (an exception, another exit code) is not chosen.
"""

from __future__ import annotations

import functools
import math
import os
import traceback

from . import tails

#: Model.fit's arguments in the order it takes them, as far as a script passes them by position
FIT_ARGS = ("x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data", "shuffle")
#: steps each cut fit, evaluate and predict runs (at least one execution of the model's steps_per_execution)
STEPS = 2


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


def cut(model, kw: dict) -> dict:
    """A fit call's arguments (by name) cut short: a few steps an epoch, validation cut the same way; one epoch, or
    as many as it takes to validate once where the script validates only every few epochs (validation_freq). An
    input keeps the last, smaller batch its epochs end with where it says what that is (tuning/tails.py: numpy
    arrays, validation_split's share split off first as Keras splits it, the last samples; a batched tf.data
    pipeline); any other is cut by steps_per_epoch and validation_steps."""
    kw, steps, own_batch = dict(kw), _steps(model), kw.get("batch_size")
    initial, asked = int(kw.get("initial_epoch") or 0), int(kw.get("epochs") or 1)  # Keras' default: 1 epoch
    kw["epochs"] = initial + 1
    data = (kw.get("x"), kw.get("y"), kw.get("sample_weight"))
    split, n = kw.get("validation_split"), tails.rows(data)
    at = int(math.floor(n * (1.0 - split))) if split and n else 0  # Keras' own split
    if kw.get("validation_data") is None and 0 < at < n:
        val = tuple(tails.take(v, slice(at, n)) for v in data)
        data = tuple(tails.take(v, slice(0, at)) for v in data)
        kw.update(x=data[0], y=data[1], sample_weight=data[2], validation_split=0.0,
                  validation_data=val if val[2] is not None else val[:2])
    kw = tails.batched(kw)  # cut by steps, arrays train (and validate) the batches of a run
    if own_batch is None:
        kw = tails.batched(kw, "validation_batch_size", "validation_data", "validation_steps")
    batch = kw.get("batch_size") or tails.KERAS_BATCH
    tail = tails.arrays(data, batch, steps)
    ds = tails.dataset(kw.get("x"), steps) if tail is None and kw.get("steps_per_epoch") is None else None
    if tail is not None:  # each batch once (a steps_per_epoch of the script's own would run out of data)
        kw.update(x=tail[0], y=tail[1], sample_weight=tail[2])
        kw.pop("steps_per_epoch", None)
    elif ds is not None:
        kw["x"] = ds
    else:
        kw["steps_per_epoch"] = steps
    if kw.get("validation_data") is not None or kw.get("validation_split"):
        val = kw.get("validation_data")
        arrays = tuple(val) if isinstance(val, (list, tuple)) and 2 <= len(val) <= 3 else None
        val_batch = kw.get("validation_batch_size") or batch
        val_tail = tails.arrays((*arrays, None)[:3], val_batch, steps) if arrays else None
        val_ds = tails.dataset(val, steps) if kw.get("validation_steps") is None else None
        if val_tail is not None:
            kw["validation_data"] = val_tail if len(arrays) == 3 else val_tail[:2]
            kw.pop("validation_steps", None)
        elif val_ds is not None:
            kw["validation_data"] = val_ds
        else:
            kw["validation_steps"] = steps
        kw["epochs"] = _validated_by(initial, kw.get("validation_freq", 1), asked)
    return kw


def run_cut(fit, model, kw: dict):
    """``fit`` (Keras' own) on ``kw`` cut short (cut()), its History's epochs those the script's own fit runs
    (``initial_epoch`` up to ``epochs``): a script that goes on from where its first fit ended, as TensorFlow's
    transfer-learning tutorial does (``initial_epoch=len(history.epoch)``, or the Keras guide's
    ``history.epoch[-1]``), starts its next fit where it would in a run, so the trial sees that fit's epochs as the
    run has them (a cut fit of 3 epochs read as 1 made a second fit of 5 epochs read as 7). The metrics stay as they
    were measured."""
    history = fit(model, **cut(model, kw))
    initial, asked = int(kw.get("initial_epoch") or 0), int(kw.get("epochs") or 1)
    if isinstance(getattr(history, "epoch", None), list) and asked > initial:
        history.epoch = list(range(initial, asked))
    return history


def install(keras, counts: dict) -> None:
    """Patch Model.fit / evaluate / predict on ``keras`` to their cut versions; ``counts`` counts the calls."""
    owner = keras.Model
    fit, evaluate, predict = owner.fit, owner.evaluate, owner.predict
    @functools.wraps(fit)
    def cut_fit(model, *args, **kwargs):
        counts["fit"] = counts.get("fit", 0) + 1
        return run_cut(fit, model, {**dict(zip(FIT_ARGS, args)), **kwargs})

    @functools.wraps(evaluate)
    def cut_evaluate(model, *args, **kwargs):
        counts["evaluate"] = counts.get("evaluate", 0) + 1
        kw = tails.batched({**dict(zip(("x", "y", "batch_size"), args)), **kwargs})
        return evaluate(model, **{**kw, "steps": _steps(model)})

    @functools.wraps(predict)
    def cut_predict(model, *args, **kwargs):
        counts["predict"] = counts.get("predict", 0) + 1
        kw = tails.batched({**dict(zip(("x", "batch_size"), args)), **kwargs})
        return predict(model, **{**kw, "steps": _steps(model)})

    owner.fit, owner.evaluate, owner.predict = cut_fit, cut_evaluate, cut_predict


def where(exc: BaseException, script: str) -> str | None:
    """file:line of the script's own line the exception passed through last (the user's line to look at)."""
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(script)]
    f = mine[-1] if mine else (frames[-1] if frames else None)
    return f"{os.path.basename(f.filename)}:{f.lineno}" if f else None


def outcome(exc: BaseException | None, script: str, counts: dict) -> dict:
    """The trial's result line for how the script ended, with the seconds its process spent importing TensorFlow by
    then (tuning/steps.tf_paid: code after fit can import it where the measured fit did not)."""
    from .steps import tf_paid

    if exc is None or isinstance(exc, SystemExit):
        code = 0 if exc is None or exc.code is None else exc.code if isinstance(exc.code, int) else 1
        return {"status": "complete", "exit_code": code, "calls": counts, "tf_s": tf_paid()}
    return {"status": "incomplete", "error": f"{type(exc).__name__}: {exc}"[:500], "where": where(exc, script),
            "calls": counts}


__all__ = ["FIT_ARGS", "STEPS", "cut", "install", "outcome", "run_cut", "where"]

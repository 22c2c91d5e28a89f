"""The completion trial: the whole script under a candidate, with its training cut short, to the end.

Each ``fit`` runs one epoch of a few steps (at least one execution of the script's own steps_per_execution),
validation included but cut the same way; each ``evaluate`` and ``predict`` a few steps. Everything after the
fits runs as written (saving, exporting, a second model, TensorFlow-only code), in the trial's sandbox. A candidate
that ends differently from the script as written (an exception, another exit code) is not chosen.
"""

from __future__ import annotations

import functools
import os
import traceback

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
    as many as it takes to validate once where the script validates only every few epochs (validation_freq)."""
    kw, steps = dict(kw), _steps(model)
    initial, asked = int(kw.get("initial_epoch") or 0), int(kw.get("epochs") or 1)  # Keras' default: 1 epoch
    kw["epochs"] = initial + 1
    kw["steps_per_epoch"] = steps
    if kw.get("validation_data") is not None or kw.get("validation_split"):
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


__all__ = ["FIT_ARGS", "STEPS", "cut", "install", "outcome", "where"]

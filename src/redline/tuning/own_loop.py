"""A script that trains in its own loop, not in ``Model.fit``: the "training loop from scratch" guides (a
``tf.GradientTape`` or ``jax.grad`` step calling ``optimizer.apply``), GANs and RL written that way.

Tune measures ``fit``'s steps, so such a script has nothing it can measure; without this watch the first trial ran the
whole loop before it could say so, and a loop longer than the budget read as "the budget is too small for even one
trial" (a 400-epoch loop: 178 s, then "give --budget 712 or more", which would have failed the same way). The trial
notes the first step a Keras optimizer takes while no ``fit`` has begun (``apply``, which ``apply_gradients`` calls,
or ``stateless_apply``, the JAX loops' step; inside a ``tf.function`` that is its trace) and where the script made it;
a script that begins no ``fit`` within ``seconds`` after is stopped there ("own-loop"). One that does (a warm-up in
its own loop, then ``fit``) goes on as any other.
"""

from __future__ import annotations

import os
import threading
import time
import traceback

#: seconds a script's own loop may run before its first fit (a warm-up) before the trial stops it
OWN_LOOP_S = 15.0


def _line(script: str) -> str | None:
    """Where the script took the step, as file:line: its innermost frame in the script itself (the call of its train
    step, or the step), else in a module of the script's folder (not an environment kept there)."""
    path = os.path.abspath(script)
    folder = os.path.dirname(path) + os.sep
    stack = [(os.path.abspath(f.filename), f.lineno) for f in traceback.extract_stack()[:-2]]
    mine = [f for f in stack if f[0] == path] or [
        f for f in stack if f[0].startswith(folder) and not {"site-packages", "dist-packages"} & set(f[0].split(os.sep))]
    return f"{os.path.basename(mine[-1][0])}:{mine[-1][1]}" if mine else None


def message(seen: dict, seconds: float | None = None) -> str:
    """What the trial found, in words (``seconds``: how long it waited for a fit after the loop's first step)."""
    where = f" ({seen['at']})" if seen.get("at") else ""
    waited = f", and no Model.fit began in the {seconds:.0f} s after" if seconds is not None else ""
    how = ("it trains batch by batch with Model.train_on_batch" if seen.get("by") == "train_on_batch" else
           "it trains in its own loop: a Keras optimizer stepped outside Model.fit")
    return (f"{how}{where}{waited}; redline measures the steps of Model.fit, so nothing here can be measured"
            + ("; the same batches given to fit (a tf.data pipeline or a keras.utils.PyDataset of them) can be tuned"
               if seen.get("by") == "train_on_batch" else "")
            + "; `redline run` runs it with the plan's settings alone (`redline run --dry-run` shows them)")


def watch(keras, script: str, state: dict, seconds: float, stop) -> dict:
    """Wrap the steps of Keras' optimizers: the first taken while ``state["fits"]`` (the trial's count of fits begun)
    is 0 is recorded (``seen``: "at", "t"), and ``stop(seen)`` is called from a thread where still no fit has begun
    ``seconds`` later."""
    seen = {"at": None, "t": None, "by": None}
    cls = keras.optimizers.Optimizer

    def first_step():
        seen["t"], seen["at"] = time.monotonic(), _line(script)
        if any(f.name == "train_on_batch" for f in traceback.extract_stack()):  # Keras' own one-batch step
            seen["by"] = "train_on_batch"

        def wait():
            deadline = seen["t"] + seconds
            while time.monotonic() < deadline:
                if state["fits"]:
                    return
                time.sleep(0.1)
            if not state["fits"]:
                stop(seen)

        threading.Thread(target=wait, daemon=True, name="redline-own-loop-watch").start()

    def wrapped(original):
        def step(self, *args, **kwargs):
            if seen["t"] is None and not state["fits"]:
                first_step()
            return original(self, *args, **kwargs)

        step.__wrapped__ = original
        return step

    for name in ("apply", "stateless_apply"):
        if callable(getattr(cls, name, None)):
            setattr(cls, name, wrapped(getattr(cls, name)))
    return seen


__all__ = ["OWN_LOOP_S", "message", "watch"]

"""A rival's verdict from its first execution, where the backend says how much of it was compile.

A rival with a bar (tuning/passes.BEHIND x the fastest rate so far) warms up in 2 executions where its steps are slow:
the first traces and compiles, the second is timed, and a rival under the bar is out after it. JAX reports the
seconds it spends tracing, lowering and compiling (``jax.monitoring``), so its first execution's step is that
execution less those seconds: where that alone puts the rival far under its bar, the second execution is not run
(xception_scratch at 64x64 on a 2-core VM: JAX's compile took 3.6 s and each of its steps 22 s, against a bar of
0.2 steps/s; its second execution said nothing the first had not). The first execution also carries one-time costs
no event reports (its input's first batches: a shuffle buffer filled, files read cold; the first transfers), which
make the step read long: the script as written's epoch overhead (the seconds an epoch of it took beyond its training
steps, its epoch start and validation among them) is taken off as well, and the verdict is taken only where the
step is long (MIN_STEP_S) and far under the bar (MARGIN).
"""

from __future__ import annotations

import functools
import time

#: the first execution's step must read under MARGIN x the bar
MARGIN = 0.5
#: and take at least this long beyond its compile: one-time costs no event reports are a small share of it
MIN_STEP_S = 2.0


def verdict(took_s: float, compile_s: float, spe: int, bar: float, start_s: float = 0.0) -> float | None:
    """The rate (steps/s) a first execution of ``spe`` steps shows, taking ``took_s`` of which ``compile_s`` was
    compile and up to ``start_s`` an epoch's start, where it puts the rival decisively behind ``bar``; else None."""
    step_s = took_s - compile_s - start_s
    if step_s < MIN_STEP_S * spe or not bar:
        return None
    rate = spe / step_s
    return rate if rate < MARGIN * bar else None


@functools.lru_cache(maxsize=None)
def _compile_seconds():
    """A counter of the seconds JAX has spent tracing, lowering and compiling in this process (registered once, when
    first asked for)."""
    import jax

    total = [0.0]

    def listen(event: str, seconds: float, **_) -> None:
        if event.startswith("/jax/core/compile/"):
            total[0] += seconds

    jax.monitoring.register_event_duration_secs_listener(listen)
    return total


def callback(bar: float, spe: int, log, start_s: float = 0.0):
    """A Keras callback for a rival's warm-up on JAX: after its first execution, where ``verdict`` puts it behind
    ``bar`` (``start_s``: the script as written's epoch overhead), training stops and ``.behind`` holds the rate
    (``.step_s`` the step's seconds). Synchronous (not async_safe): the stop must be seen before the next execution
    starts."""
    import keras

    compiled = _compile_seconds()

    class FirstLook(keras.callbacks.Callback):
        behind = step_s = started = None  # started: (time, compile seconds so far) at the first execution's begin
        judged = False

        def on_train_batch_begin(self, batch, logs=None):
            if self.started is None:
                self.started = (time.perf_counter(), compiled[0])

        def on_train_batch_end(self, batch, logs=None):
            if self.judged or self.started is None:
                return
            self.judged = True
            took, comp = time.perf_counter() - self.started[0], compiled[0] - self.started[1]
            self.behind = verdict(took, comp, spe, bar, start_s)
            if self.behind is not None:
                self.step_s = took - comp - start_s
                log(f"  first execution: {took:.1f} s, {comp:.1f} s of it compile and up to {start_s:.1f} s an epoch's "
                    f"start: {self.behind:,.3f} steps/s, under {MARGIN:.0%} of the bar {bar:,.3f}: stopped there")
                self.model.stop_training = True

    return FirstLook()


__all__ = ["MARGIN", "MIN_STEP_S", "callback", "verdict"]

"""A rival's verdict from its first execution, where the backend says how much of it was compile.

A rival with a bar (tuning/absorb.BEHIND x the fastest rate so far) warms up in 2 executions where its steps are slow:
the first traces and compiles, the second is timed, and a rival under the bar is out after it. JAX reports the
seconds it spends tracing, lowering and compiling (``jax.monitoring``), so its first execution's step is that
execution less those seconds: where that alone puts the rival far under its bar, the second execution is not run
(xception_scratch at 64x64 on a 2-core VM: JAX's compile took 3.6 s and each of its steps 22 s, against a bar of
0.2 steps/s; its second execution said nothing the first had not). The first execution also carries one-time costs
no event reports (its input's first batches: a shuffle buffer filled, files read cold; the first transfers), which
make the step read long: the script as written's epoch overhead (the seconds an epoch of it took beyond its training
steps, its epoch start and validation among them) is taken off as well, and the verdict is taken only where the
step is long (MIN_STEP_S) and far under the bar (MARGIN).

Where the step is very slow, the verdict need not wait for it to end: once JAX has reported the step's compile, a
first execution still running when even its ending now would put it under MARGIN x the bar is judged there, at most
that rate, and the trial ends with it (``Watch``; JAX at 64x64 on xception_scratch: 22 s a step against a cut at
about 9 s).
"""

from __future__ import annotations

import functools
import threading
import time

#: the first execution's step must read under MARGIN x the bar
MARGIN = 0.5
#: and take at least this long beyond its compile: one-time costs no event reports are a small share of it
MIN_STEP_S = 2.0
#: how often a running first execution is looked at
POLL_S = 0.25


#: seconds: where the script's own step traced in less (its first trial), a rival whose compile the watch hears (JAX)
#: keeps its place when the budget holds only some rivals (tuning/search.py): its compile is likely short too
#: (xception_scratch at 64x64: JAX compiled in 3.6 s where TensorFlow traced in 5.1; EfficientNetB0: ~27 s against 18)
WATCH_TRACE = 10.0


def heard(cand) -> bool:
    """True for a rival on JAX: it reports its compile, so ``Watch`` can judge a first execution far behind while it
    runs (torch reports none)."""
    return cand.env.get("KERAS_BACKEND") == "jax"


def watched(cand, trace_s: float | None) -> bool:
    """``heard`` and the script's own step traced in under WATCH_TRACE (``trace_s``; not known: False)."""
    return heard(cand) and trace_s is not None and trace_s < WATCH_TRACE


def verdict(took_s: float, compile_s: float, spe: int, bar: float, start_s: float = 0.0) -> float | None:
    """The rate (steps/s) a first execution of ``spe`` steps shows, taking ``took_s`` of which ``compile_s`` was
    compile and up to ``start_s`` an epoch's start, where it puts the rival decisively behind ``bar``; else None."""
    step_s = took_s - compile_s - start_s
    if step_s < MIN_STEP_S * spe or not bar:
        return None
    rate = spe / step_s
    return rate if rate < MARGIN * bar else None


class Compiled:
    """What JAX has said of its compiles in this process: their seconds, and when the last backend compile ended
    (``at``, on ``clock``) and whether it was the last event (a trace or a lowering after it: another compile under
    way)."""

    def __init__(self, clock=time.perf_counter):
        self.seconds, self.at, self.settled, self.clock = 0.0, None, False, clock

    def heard(self, event: str, seconds: float) -> None:
        if event.startswith("/jax/core/compile/"):
            self.seconds += seconds
            self.settled = event.endswith("backend_compile_duration")
            self.at = self.clock()


@functools.lru_cache(maxsize=None)
def _compile_seconds() -> Compiled:
    """JAX's compiles in this process, heard from when first asked for."""
    import jax

    compiled = Compiled()
    jax.monitoring.register_event_duration_secs_listener(lambda event, seconds, **_: compiled.heard(event, seconds))
    return compiled


class Watch:
    """A first execution judged while it runs: from ``begin()`` on, every POLL_S until ``end()``, where JAX's last
    word is a finished backend compile made since ``begin()`` and the seconds since it, ``start_s`` taken off, put the
    rival under MARGIN x ``bar`` even were it to end now (``verdict``), ``on_verdict(rate at most, step seconds so
    far)`` is called once, from the watch's thread (it ends the trial). ``lock``: held while judging, by this and by the
    execution's own end, so that only one of them gives the verdict."""

    def __init__(self, compiled: Compiled, spe: int, bar: float, start_s: float, on_verdict, clock=time.perf_counter):
        self.compiled, self.spe, self.bar, self.start_s = compiled, spe, bar, start_s
        self.on_verdict, self.clock = on_verdict, clock
        self.lock, self.ended, self.judged, self.began = threading.Lock(), threading.Event(), False, None

    def begin(self) -> None:
        self.began = self.clock()
        threading.Thread(target=self._run, daemon=True, name="redline-first-look").start()

    def end(self) -> None:
        self.ended.set()

    def look(self) -> float | None:
        """The rate at most, where the running execution is already judged; else None."""
        c = self.compiled
        if not c.settled or c.at is None or c.at < self.began:
            return None
        return verdict(self.clock() - c.at, 0.0, self.spe, self.bar, self.start_s)

    def _run(self) -> None:
        while not self.ended.wait(POLL_S):
            with self.lock:
                if self.judged:
                    return
                rate = self.look()
                if rate is None:
                    continue
                self.judged = True
                self.on_verdict(rate, self.spe / rate)
                return


def callback(bar: float, spe: int, log, start_s: float = 0.0, give_up=None):
    """A Keras callback for a rival's warm-up on JAX: after its first execution, where ``verdict`` puts it behind
    ``bar`` (``start_s``: the script as written's epoch overhead), training stops and ``.behind`` holds the rate
    (``.step_s`` the step's seconds). Synchronous (not async_safe): the stop must be seen before the next execution
    starts. With ``give_up(rate at most, step seconds so far)`` (it ends the trial), the execution is watched while it
    runs as well (``Watch``)."""
    import keras

    compiled = _compile_seconds()

    def unfinished(rate: float, step_s: float) -> None:
        log(f"  first execution: still running {step_s + start_s:.1f} s after its compile (up to {start_s:.1f} s of it "
            f"an epoch's start): at most {rate:,.3f} steps/s, under {MARGIN:.0%} of the bar {bar:,.3f}: the trial ends")
        give_up(rate, step_s)

    watch = Watch(compiled, spe, bar, start_s, unfinished) if give_up is not None else None

    class FirstLook(keras.callbacks.Callback):
        behind = step_s = started = None  # started: (time, compile seconds so far) at the first execution's begin
        judged = False

        def on_train_batch_begin(self, batch, logs=None):
            if self.started is None:
                self.started = (time.perf_counter(), compiled.seconds)
                if watch is not None:
                    watch.begin()

        def on_train_batch_end(self, batch, logs=None):
            if self.judged or self.started is None:
                return
            if watch is not None:
                watch.end()
                with watch.lock:  # the watch may be judging it this moment: then the trial ends from there
                    watch.judged = True
            self.judged = True
            took, comp = time.perf_counter() - self.started[0], compiled.seconds - self.started[1]
            self.behind = verdict(took, comp, spe, bar, start_s)
            if self.behind is not None:
                self.step_s = took - comp - start_s
                log(f"  first execution: {took:.1f} s, {comp:.1f} s of it compile and up to {start_s:.1f} s an epoch's "
                    f"start: {self.behind:,.3f} steps/s, under {MARGIN:.0%} of the bar {bar:,.3f}: stopped there")
                self.model.stop_training = True

    return FirstLook()


__all__ = ["MARGIN", "MIN_STEP_S", "WATCH_TRACE", "Compiled", "Watch", "callback", "heard", "verdict", "watched"]

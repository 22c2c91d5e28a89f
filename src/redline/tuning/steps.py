"""Counting the steps Keras really runs in a trial's fit, and shaping runs so the count stays exact."""

from __future__ import annotations

import functools
import threading
import time


def untimed(start: float, end: float) -> float:
    """Seconds of the ``time.perf_counter()`` span [start, end] that importing TensorFlow took. Keras on JAX imports
    it lazily, at its first model save (a ModelCheckpoint's first epoch end): 2.4 s inside one JAX trial's warm-up
    and not another's, so the compile a JAX process was charged read 0.7 to 3.5 s in tunes of one script. A run pays
    that import either way: at its start on TensorFlow, where it is never timed, and mid-run on JAX, where Keras'
    own import was ~2 s shorter; so no timed start cost counts it (the harness clocks it: applying.after_import)."""
    from ..applying.after_import import import_seconds

    return import_seconds("tensorflow", start, end)


def tf_paid() -> float | None:
    """Seconds this process has spent importing TensorFlow so far (as the harness clocks it from its start): a run
    pays that once, on TensorFlow at its start, and not at all where its backend and the script never import it
    (Keras on JAX over numpy arrays: transformer_block's JAX process started ~2.3 s sooner for it). What a process of
    a candidate costs a run once (tuning/payoff.py) counts it. None where it was imported before the clock started
    (a spare imports keras, and with it TensorFlow, ahead of its trial, beside other processes and maybe stopped
    meanwhile: tuning/spares.py), so not timed as a run pays it. The import's CPU time, not its wall time: the first
    trial's process imports beside the first rival's spare, where its wall time (5.43 s once, against 3.06 s alone)
    made a credit of 2.8 s of an import that costs a run alone about 3.3 s of CPU on either side."""
    import sys

    from ..applying.after_import import import_cpu_seconds

    paid = import_cpu_seconds("tensorflow")
    return None if "tensorflow" in sys.modules and not paid else round(paid, 2)


def settle(model) -> None:
    """Wait for the training steps already dispatched to end. On JAX, Keras calls the validation's begin while the
    epoch's last steps still run (async dispatch): timed per epoch, a plain JAX run of timeseries_transformer trained
    10 steps in 0.012 s and validated in 2.2 s, and a trial read 2 steps' training as validation (0.47 s an epoch),
    its whole epochs at 3.6 steps/s where runs read 4.2-4.75. The model's variables hold the last step's results
    (Keras syncs its state into them before validating): once they are ready, so are the steps. Elsewhere: nothing."""
    import keras

    if model is not None and keras.backend.backend() == "jax":
        import jax

        jax.block_until_ready([v.value for v in model.variables])


@functools.lru_cache(maxsize=None)
def _steps_callback():
    import keras

    class Steps(keras.callbacks.Callback):
        """Execution ends, with the steps each really ran. Keras names an execution by its last logical step, and an
        epoch's last execution over finite data (``cap`` batches) stops where the data ends: an execution ending at
        logical step ``end`` ran ``min(end, cap - 1) - end + spe`` steps. Computed from the end alone: with every
        callback async-safe, Keras runs batch-end callbacks on a thread pool, after (and in any order with) the next
        batch-begin."""

        async_safe = True

        def __init__(self, cap, spe):
            super().__init__()
            self.cap, self.spe, self.marks, self.events, self.epoch = cap, spe, [], [], 0
            self.begins, self.ends = [], []  # (time, the thread's CPU time, the thread, epoch): tuning/spe_bound.py

        def on_train_batch_begin(self, batch, logs=None):
            self.begins.append((time.perf_counter(), time.thread_time(), threading.get_ident(), self.epoch))

        # the epoch and validation boundaries, for the run as it runs (tuning/as_run.py); called in order, never async
        # (Keras waits for the batch-end callbacks on its thread pool before an epoch's end)
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch += 1
            self.events.append((time.perf_counter(), "epoch_begin"))

        def on_epoch_end(self, epoch, logs=None):
            self.events.append((time.perf_counter(), "epoch_end"))

        def on_test_begin(self, logs=None):
            settle(self.model)
            self.events.append((time.perf_counter(), "test_begin"))

        def on_test_end(self, logs=None):
            self.events.append((time.perf_counter(), "test_end"))

        def on_train_batch_end(self, batch, logs=None):
            ran = (min(batch, self.cap - 1) - batch + self.spe) if self.cap else self.spe
            now = time.perf_counter()
            self.marks.append((now, max(0, ran), self.epoch))
            self.ends.append((now, time.thread_time(), threading.get_ident(), self.epoch))

        @property
        def done(self) -> int:
            return sum(m[1] for m in self.marks)

        def steady_rate(self, epoch_starts: bool = True) -> tuple[float, float]:
            """(steps/s, seconds timed): from the first execution's end to the last; without ``epoch_starts``, inside
            each epoch alone (steady_within)."""
            return steady_within(self.marks) if not epoch_starts else steady_across(self.marks)

    return Steps


def steady_across(marks) -> tuple[float, float]:
    """(steps/s, seconds) from the first execution's end to the last: every epoch start after the first is timed.
    ``marks``: (time, steps the execution ran, epoch)."""
    marks = sorted(marks)
    t0, t1 = marks[0][0], marks[-1][0]
    steps = sum(m[1] for m in marks[1:])
    return (steps / (t1 - t0) if t1 > t0 else 0.0), t1 - t0


def steady_within(marks) -> tuple[float, float]:
    """(steps/s, seconds) over the executions after each epoch's first (which starts the epoch's iterator), epoch
    starts left out: a run of 2 epochs and one of 1 are timed alike. Runs of one execution an epoch: across epochs."""
    by_epoch = {}
    for t, ran, epoch in sorted(marks):
        by_epoch.setdefault(epoch, []).append((t, ran))
    steps = took = 0.0
    for ms in by_epoch.values():
        if len(ms) >= 2:
            steps += sum(ran for _, ran in ms[1:])
            took += ms[-1][0] - ms[0][0]
    if not took:
        return steady_across(marks)
    return steps / took, took


def Steps(cap, spe):  # noqa: N802  (a class made on first use, so this module does not import keras)
    return _steps_callback()(cap, spe)


def fit_shape(steps: int, spe: int, cap: int | None, endless: bool) -> tuple[int, int | None]:
    """(epochs, steps_per_epoch) for a run of about ``steps`` steps over an input of ``cap`` batches an epoch (None:
    unknown or endless); ``endless``: a repeat() rewrite, whose epochs are ``cap`` steps (spe divides it).

    Up to an epoch: ``steps`` in whole executions (at least 3), one epoch. More: whole passes (at least 3 executions in
    all), each from a fresh iterator as the script's epochs run. Never epochs of fewer steps than the data holds:
    Keras would carry one iterator across them, and an execution cut short at the end of the data would still be named
    by its full steps.
    A run of exactly 2 executions over finite data is one of long executions (StageRuns.size: one timed is enough), so 2,
    not 3: spe 5 over 10 batches of 0.77 s is one pass, its second execution timed, where 3 took two passes (16 s).
    """
    need = 2 if steps == 2 * spe and not endless else 3  # 2 asked for: executions long enough to time one (size)
    if cap and (endless or steps >= cap or need * spe > cap):
        return max(1, round(steps / cap), -(-need // -(-cap // spe))), (cap if endless else None)
    return 1, max(need * spe, steps - steps % spe)


def same_epochs(plans: dict, spes: dict, inputs: dict) -> dict:
    """The rounds' steps per candidate (``plans``: name -> steps, each sized to its own rate; ``spes``: name -> its
    steps_per_execution; ``inputs``: name -> (batches an epoch, endless) of its input), so that candidates on inputs of
    as many batches cross as many epoch starts: where any of them would run whole passes (fit_shape), each runs the
    same number of them, the most any of them would. A run of 2 epochs counts the second epoch's iterator start (on a
    tf.data pipeline with augmentation, 47 steps/s against 77-92 within one epoch); one epoch counts none (its first
    execution, which starts the iterator, is not timed). Endless or uncounted data: as given."""
    out, groups = dict(plans), {}
    for name in plans:
        groups.setdefault(inputs[name], []).append(name)
    for (cap, endless), names in groups.items():
        if not cap or endless:
            continue
        most = max(fit_shape(plans[n], spes[n], cap, endless)[0] for n in names)
        if most >= 2:
            out.update({n: most * cap for n in names})
    return out


def divisor_up_to(n: int, s: int) -> int:
    """The largest divisor of ``n`` not above ``s``."""
    return max(d for d in range(1, min(n, s) + 1) if n % d == 0)


def headroom(s0: int, r0: float, s: int, r: float) -> float | None:
    """What steps_per_execution beyond ``s`` can still add, read from two measurements: ``r0`` steps/s at ``s0`` (the
    script's own) and ``r`` at ``s``. steps_per_execution gains by sharing each execution's fixed cost among its steps:
    a step costs c + o/spe (c its own work, o the execution's), so r0/r = (c + o/s)/(c + o/s0) gives y = o/c, and no
    spe beyond ``s`` runs faster than r x (1 + y/s). Returns that factor less 1, or None where the figures do not fit
    the model (noise, or a gain that is not the execution's fixed cost): the ladder then goes on by its measurements."""
    if not (r0 and r and s > s0):
        return None
    g = r / r0
    denominator = 1 / s0 - g / s
    if denominator <= 0 or g < 1:
        return None
    return (g - 1) / denominator / s


#: a tf.data input of unknown cardinality is counted by reading it once, for at most this many seconds
COUNT_S = 20.0


def steps_in_epoch(x, y, batch_size, count_s: float = COUNT_S) -> int | None:
    """Batches in one epoch of ``x`` as fit reads it; None where endless or not known. A finite tf.data pipeline of
    unknown cardinality (a filter, from_generator) is read once to count them, for at most ``count_s`` seconds: without
    the count, an execution cut short at the end of the data would be counted in full."""
    from keras.src.trainers.data_adapters import get_data_adapter  # the input path fit builds

    try:
        n = get_data_adapter(x, y, batch_size=batch_size, shuffle=False).num_batches
    except (ValueError, TypeError):
        return None
    if n is None and count_s > 0 and type(x).__module__.startswith("tensorflow") and hasattr(x, "cardinality"):
        import tensorflow as tf

        if int(x.cardinality()) == int(tf.data.UNKNOWN_CARDINALITY):
            deadline, n = time.perf_counter() + count_s, 0
            for _ in x:
                n += 1
                if time.perf_counter() > deadline:
                    return None
    return n


__all__ = ["headroom", "Steps", "divisor_up_to", "fit_shape", "same_epochs", "steady_across", "steady_within",
           "steps_in_epoch"]

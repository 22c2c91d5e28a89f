"""One measured run of one workload under one configuration, in this (fresh) process.

``python -m redline.benchmarking.run_once SPEC_JSON`` prints one JSON line. The
bench starts one such process per run so no run inherits another's state.

Configurations:
- baseline: plain Keras as tutorials write it: default TensorFlow settings,
  ``fit`` on the numpy arrays (or the naive tf.data pipeline for ``input``).
- redline: configure() with the plan, the planned pipeline with repeat() and
  steps_per_epoch, and the compile knobs (given, or tuned here by trials).
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import sys
import time

from ..workloads import get as get_workload

MARK = "REDLINE-RESULT "
#: (steps_per_execution, jit_compile) candidates tried by tuning, the Keras default first.
CANDIDATES = ((1, False), (16, False), (1, True), (16, True))
#: a candidate must beat the default by this much to be chosen: smaller gains are noise here.
MIN_GAIN = 1.05
#: a step shorter than this is dominated by Python dispatch: several steps per call can pay.
DISPATCH_BOUND_S = 0.02


def _loss(name):
    import keras

    if name == "sparse_categorical_crossentropy_logits":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return name


def _callback():
    import keras

    class Timer(keras.callbacks.Callback):
        """Epoch starts and batch ends, to see the stall at the start of an epoch."""

        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.epochs.append([time.perf_counter()])

        def on_train_batch_end(self, batch, logs=None):
            self.epochs[-1].append(time.perf_counter())

    return Timer()


def epoch_start_stall(epochs: list[list[float]]) -> float | None:
    """Median over epochs of (time to the first batch end) minus (median batch-to-batch time)."""
    stalls = []
    for marks in epochs:
        if len(marks) < 4:
            continue
        gaps = [b - a for a, b in zip(marks[1:], marks[2:])]
        stalls.append((marks[1] - marks[0]) - statistics.median(gaps))
    return statistics.median(stalls) if stalls else None


def _fit_timed(model, data, epochs, steps, batch_size, callbacks=()):
    x, y = data if isinstance(data, tuple) else (data, None)
    kwargs = {"steps_per_epoch": steps, "shuffle": False} if steps else ({"batch_size": batch_size} if y is not None else {})
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, verbose=0, callbacks=list(callbacks), **kwargs)
    return time.perf_counter() - start


def tune(model, ds, steps, compile_fn, rounds=2, jit=True) -> dict:
    """Measure (steps_per_execution, jit_compile) candidates in this process, interleaved over ``rounds``.

    The Keras default (1, False) is measured first. Several steps per call are
    tried only where a step is short enough (under DISPATCH_BOUND_S) for
    dispatch to matter. A candidate must beat the default by MIN_GAIN.
    """
    started = time.perf_counter()
    rate, errors = {}, {}

    def measure(cand):
        try:
            compile_fn(*cand)
            _fit_timed(model, ds, 1, max(cand[0], 2), None)  # trace and warm
            took = _fit_timed(model, ds, 1, steps, None)
        except Exception as exc:  # a candidate XLA cannot compile is dropped, with its reason
            errors[cand] = f"{type(exc).__name__}: {exc}"[:200]
            return
        rate[cand] = max(rate.get(cand, 0.0), steps / took)

    default = CANDIDATES[0]
    measure(default)
    dispatch_bound = default in rate and 1.0 / rate[default] < DISPATCH_BOUND_S
    cands = [c for c in CANDIDATES if (dispatch_bound or c[0] == 1) and (jit or not c[1])]
    for r in range(rounds):
        for cand in cands:
            if cand not in errors and (r or cand != default):
                measure(cand)
    choice = max(rate, key=rate.get) if rate else default
    if choice != default and rate[choice] < rate.get(default, 0.0) * MIN_GAIN:
        choice = default
    return {
        "steps_per_execution": choice[0], "jit_compile": choice[1],
        "trials": [{"steps_per_execution": c[0], "jit_compile": c[1], "steps_per_s": round(rate.get(c, 0.0), 1),
                    "error": errors.get(c)} for c in cands],
        "tune_s": round(time.perf_counter() - started, 2),
    }


def run(spec: dict) -> dict:
    w = get_workload(spec["workload"])
    config = spec["config"]
    epochs = spec.get("epochs", 3)
    scale = spec.get("scale", 1.0)
    allow = set(spec.get("allow", ()))
    knobs = dict(spec.get("knobs") or {})
    batch = w.batch_size * (8 if "batch" in allow and config == "redline" else 1)
    steps = max(2, int(w.samples * scale) // batch)
    samples = steps * batch

    plan = None
    if config in ("redline", "ceiling", "pipeline"):
        import redline

        plan = redline.configure(precision="auto" if "precision" in allow else None, strategy="auto")
    import keras

    import redline.data as rd

    from . import pipelines

    keras.utils.set_random_seed(spec.get("seed", 0))
    if w.generator is not None:
        x = y = None
        gen = functools.partial(w.generator, n=samples)
    else:
        x, y = w.make_data(spec.get("seed", 0))
        x, y = x[:samples], y[:samples]
    model = w.build_model()

    def compile_fn(spe=1, jit=False):
        model.compile(optimizer=w.optimizer, loss=_loss(w.loss), steps_per_execution=spe, jit_compile=jit)

    result = {"workload": w.name, "config": config, "batch_size": batch, "samples_per_epoch": samples,
              "epochs": epochs, "pid": os.getpid()}
    if config == "baseline":
        if w.generator is not None:
            data = pipelines.naive_generator(gen, w.output_signature(), batch)
        else:
            data = pipelines.naive(w, x, y, batch) if w.augment is not None else (x, y)
        fit_steps = None
        compile_fn()
    else:
        if config == "ceiling":
            if w.augment is None:
                raise ValueError(f"the ceiling configuration needs a workload with augmentation, not {w.name!r}")
            x = pipelines.pre_augmented(w, x, y)  # augmented once, then fed from memory: the model alone
            data = rd.pipeline((x, y), batch_size=batch, plan=plan)
        elif config == "pipeline" and w.augment is None:
            raise ValueError(f"the pipeline configuration needs a workload with augmentation, not {w.name!r}")
        elif w.generator is not None:
            data = rd.pipeline(rd.generator(gen, output_signature=w.output_signature(), size=samples), batch_size=batch,
                               shuffle=False, plan=plan)
        else:
            data = rd.pipeline((x, y), batch_size=batch, augment=w.augment, plan=plan)
        fit_steps = data.redline.steps_per_epoch
        if config == "pipeline":
            knobs = {"steps_per_execution": 1, "jit_compile": False}
        if not knobs:
            knobs = tune(model, data, min(fit_steps, 64), compile_fn, rounds=spec.get("tune_rounds", 2), jit=spec.get("tune_jit", True))
            result["tuning"] = knobs
            if spec.get("mode") == "tune" and not spec.get("measure"):
                return result
        compile_fn(knobs["steps_per_execution"], knobs["jit_compile"])
        result["knobs"] = {"steps_per_execution": knobs["steps_per_execution"], "jit_compile": knobs["jit_compile"],
                           "intra_op_threads": plan.intra_op_threads.value, "inter_op_threads": plan.inter_op_threads.value,
                           "precision": plan.precision.value if plan.precision.applied else "float32",
                           "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
                           "data_workers": data.redline.workers}

    from .window import UtilisationWindow

    if config == "pipeline":  # the input pipeline alone, no model: how fast input can be made on these cores
        it = iter(data)
        next(it)
        window = UtilisationWindow().start()
        start = time.perf_counter()
        for _ in range(fit_steps * epochs):
            next(it)
        took = time.perf_counter() - start
        result.update({"seconds": round(took, 4), "samples_per_s": round(samples * epochs / took, 2), **window.stop()})
        return result
    warm = _fit_timed(model, data, 1, fit_steps, batch)  # warm-up: tracing, first iterator; excluded
    timer = _callback()
    window = UtilisationWindow().start()
    took = _fit_timed(model, data, epochs, fit_steps, batch, callbacks=[timer])
    util = window.stop()
    result.update({
        "warmup_s": round(warm, 3),
        "seconds": round(took, 4),
        "samples_per_s": round(samples * epochs / took, 2),
        "epoch_start_stall_s": epoch_start_stall(timer.epochs),
        **util,
    })
    return result


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    if spec.get("mode") == "peak":
        from .peak import measure_peak

        result = measure_peak(seconds=spec.get("seconds", 1.0))
    else:
        result = run(spec)
    print(MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

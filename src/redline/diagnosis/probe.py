"""redline.diagnose(model, x, y): measure a live setup three ways and say what holds it back.

1. the input pipeline alone: Keras' own input path for this data, iterated without the model;
2. the model alone on one cached batch, at the batch size B and at 2B (no input cost);
3. the real run: ``fit`` on the data as given, with a Monitor recording CPU and GPU.

The model's weights and optimizer state are put back afterwards: diagnosing
trains nothing for good. The classification itself is pure
(redline.diagnosis.bottleneck).
"""

from __future__ import annotations

import collections.abc
import inspect
import os
import tempfile
import time

import keras
import numpy as np
import psutil

from ..errors import UsageError
from ..monitoring import record as record_mod
from ..monitoring.monitor import Monitor
from ..outputs import check_output, is_run_record
from .bottleneck import PYTHON_OPS, Diagnosis, check_probe_args, diagnose_measured
from .run import summarise_record


def _shuffles(x) -> bool:
    """fit shuffles arrays by default; anything else is expected to come shuffled."""
    return hasattr(keras.tree.flatten(x)[0], "__array__")


def _adapter(x, y, batch_size):
    from keras.src.trainers.data_adapters import get_data_adapter  # Keras' own input path, as fit builds it

    try:
        return get_data_adapter(x, y, batch_size=batch_size, shuffle=_shuffles(x))
    except ValueError as exc:
        raise UsageError(f"diagnose cannot read this data as fit would: {exc}") from None


def _batches(adapter):
    """A fresh iterator over one epoch of batches in the backend's form."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return iter(adapter.get_tf_dataset())
    if backend == "jax":
        return iter(adapter.get_jax_iterator())
    if backend == "torch":
        return iter(adapter.get_torch_dataloader())
    return iter(adapter.get_numpy_iterator())


def _leading(batch) -> int:
    return int(keras.tree.flatten(batch)[0].shape[0])


def _cores_busy(proc, cpu0, wall) -> float:
    cpu1 = proc.cpu_times()
    return round((cpu1.user - cpu0.user + cpu1.system - cpu0.system) / wall, 3) if wall > 0 else 0.0


def _pipeline_alone(adapter, seconds) -> tuple[float, float, object]:
    """samples/s and busy cores of the input path alone, re-opened at each epoch end; and its first batch."""
    it = _batches(adapter)
    first = next(it)
    proc = psutil.Process()
    cpu0, start, samples = proc.cpu_times(), time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        try:
            samples += _leading(next(it))
        except StopIteration:
            it = _batches(adapter)
    wall = time.perf_counter() - start
    return samples / wall, _cores_busy(proc, cpu0, wall), first


def _python_ops(x) -> list[str]:
    """The Python ops (tf.numpy_function's PyFunc, tf.py_function's EagerPyFunc) in a tf.data pipeline's functions;
    empty for other inputs, and where the pipeline's graph cannot be read."""
    if type(x).__module__.split(".")[0] != "tensorflow" or not hasattr(x, "_as_serialized_graph"):
        return []
    import tensorflow as tf

    try:
        graph = tf.compat.v1.GraphDef()
        graph.ParseFromString(x._as_serialized_graph(
            external_state_policy=tf.data.experimental.ExternalStatePolicy.IGNORE).numpy())
    except (tf.errors.OpError, ValueError, TypeError):  # a pipeline TensorFlow cannot serialise: nothing said of it
        return []
    found = {n.op for f in graph.library.function for n in f.node_def} | {n.op for n in graph.node}
    return sorted(found & set(PYTHON_OPS))


#: a measurement sized for ``seconds`` stops after CAP x that, however many steps it was sized for
CAP = 3


def _repeat(batch):
    """The model alone: one batch, fed again and again at no input cost."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.data.Dataset.from_tensors(batch).repeat()

    def forever():
        while True:
            yield batch

    return forever()


def _to_numpy(batch):
    return keras.tree.map_structure(lambda t: np.asarray(keras.ops.convert_to_numpy(t)), batch)


def _double(batch):
    return keras.tree.map_structure(lambda a: np.concatenate([a, a]), batch)


class _Marks(keras.callbacks.Callback):
    """Batch-end times, to time steps without fit's own set-up and the first (tracing) step. With ``cap``: the fit
    stops once ``cap`` seconds have passed since the first batch end. A step count sized from a short calibration ran
    for as long as the machine then took, unbounded: a calibration at a quiet moment can size a run far past its
    seconds on a machine that slows down (a suite's diagnose of 0.5-s measurements, ~6-9 s alone, took 42-66 s)."""

    async_safe = True

    def __init__(self, cap: float | None = None):
        super().__init__()
        self.marks, self.cap = [], cap

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.marks.append((batch, now))
        if self.cap is not None and now - self.marks[0][1] > self.cap:
            self.model.stop_training = True  # Keras ends the epoch and the fit after this step

    def steady_rate(self) -> tuple[float, float]:
        """(steps/s, seconds) from the first batch end to the last."""
        marks = sorted(self.marks, key=lambda m: m[1])
        (s0, t0), (s1, t1) = marks[0], marks[-1]
        return ((s1 - s0) / (t1 - t0) if t1 > t0 else 0.0), t1 - t0


def _steady_rate(model, data, steps, cap=None) -> tuple[float, float]:
    marks = _Marks(cap)
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[marks], shuffle=False)
    return marks.steady_rate()


def _model_alone(model, batch, seconds, spe, n=None) -> tuple[float, int]:
    """(samples/s, steps) of the model on one batch fed again and again.

    Without ``n``: warm, grow the step count until it is timed well, then run about ``seconds``."""
    data = _repeat(batch)
    if n is None:
        _steady_rate(model, data, 3 * spe)  # tracing
        n = 8 * spe
        rate, took = _steady_rate(model, data, n, CAP * seconds)
        while took < seconds / 8 and n < 1_000_000:
            n *= 4
            rate, took = _steady_rate(model, data, n, CAP * seconds)
        if took >= seconds:
            return rate * _leading(batch), n
        n = int(rate * seconds) + 2 * spe
        n -= n % spe
    rate, _ = _steady_rate(model, data, n, CAP * seconds)
    return rate * _leading(batch), n


class _KeepState:
    """Weights, optimizer variables and model.history saved on entry and put back on exit."""

    def __init__(self, model):
        self.model = model
        self.vars = list(model.weights) + list(model.optimizer.variables)

    def __enter__(self):
        self.saved = [v.numpy() for v in self.vars]
        self.history = getattr(self.model, "history", None)
        return self

    def restore(self) -> None:
        for v, value in zip(self.vars, self.saved):
            v.assign(value)
        self.model.history = self.history

    def __exit__(self, *exc):
        self.restore()
        return False


def _check(model, x, batch_size, seconds, repeats, record):
    """Everything that can be wrong with the arguments, found before a second is spent measuring."""
    if not isinstance(model, keras.Model):
        raise UsageError(f"diagnose needs a keras.Model, got {type(model).__name__}")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise UsageError("diagnose measures training steps: compile the model first, e.g. model.compile(optimizer='adam', loss=...)")
    check_probe_args(seconds, repeats)
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UsageError(f"batch_size={batch_size!r} is not valid: give the samples per step as a whole number of 1 or more, "
                         "or None where the data is already batched")
    if inspect.isgenerator(x) or (isinstance(x, collections.abc.Iterator) and not hasattr(x, "__len__")):
        raise UsageError(f"diagnose got a Python generator ({type(x).__name__}), which can be read only once, and it reads the "
                         "data several times: wrap the data in a keras.utils.PyDataset or a tf.data.Dataset "
                         "(e.g. redline.data.pipeline(redline.data.generator(fn, ...), batch_size=...))")
    if record is not None:
        check_output(record, "record=", "a run record", replaceable=is_run_record)


def diagnose(model, x, y=None, *, batch_size=None, record=None, seconds: float = 1.5, repeats: int = 2, plan=None,
             nvml=None) -> Diagnosis:
    """Measure where ``model.fit(x, y, batch_size=...)`` spends its time, and what to change.

    Each of the four throughputs is measured ``repeats`` times, interleaved,
    and the fastest kept (a slow spell on a shared machine only slows a run
    down). Takes about 5 x ``seconds`` x ``repeats`` plus tracing (each measurement stopped at CAP x its seconds
    where the machine slows down after its calibration). ``record``: also write the run
    record (Monitor's, plus the probe's figures) there, for
    ``redline diagnose``/``redline report``. The model's weights and
    optimizer state are restored afterwards.
    """
    _check(model, x, batch_size, seconds, repeats, record)
    adapter = _adapter(x, y, batch_size)
    spe = int(getattr(model, "steps_per_execution", 1) or 1)
    P, P_cores, first = _pipeline_alone(adapter, seconds)
    B = adapter.batch_size or _leading(first)
    batch = first if keras.backend.backend() == "tensorflow" else _to_numpy(first)
    if not model.built:
        model(keras.tree.flatten(batch)[0] if not isinstance(batch, tuple) else batch[0])
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)

    tmp = None
    if record is None:
        fd, tmp = tempfile.mkstemp(prefix="redline-diagnose-", suffix=".jsonl")
        os.close(fd)
    path = os.fspath(record or tmp)
    best = {"P": (P, P_cores), "M": 0.0, "M2": 0.0, "R": (0.0, 0.0)}
    try:
        with _KeepState(model):
            epochs, n = _real_run_length(model, x, y, batch_size, seconds, spe, adapter.num_batches)
            n_m = n_m2 = None
            for r in range(repeats):
                if r:
                    p, pc, _ = _pipeline_alone(adapter, seconds)
                    best["P"] = max(best["P"], (p, pc))
                m, n_m = _model_alone(model, batch, seconds, spe, n_m)
                m2, n_m2 = _model_alone(model, _double(_to_numpy(first)), seconds, spe, n_m2)
                best["M"], best["M2"] = max(best["M"], m), max(best["M2"], m2)
                R, R_cores = _real_run(model, x, y, batch_size, epochs, n, f"{path}.{r}", B, plan, nvml, seconds)
                if R > best["R"][0]:
                    best["R"] = (R, R_cores)
                    os.replace(f"{path}.{r}", path)  # the record kept is the fastest real run's
                else:
                    os.unlink(f"{path}.{r}")
        rec = record_mod.load(path)
        summary = summarise_record(rec)
        (P, P_cores), (R, R_cores) = best["P"], best["R"]
        probe = {
            "type": "probe", "batch_size": B, "data_adapter": type(adapter).__name__,
            "steps_per_execution": spe, "jit_compile": getattr(model, "jit_compile", None),
            "redline_pipeline": type(getattr(x, "redline", None)).__name__ == "PipelineInfo",
            "pipeline_samples_per_s": round(P, 1), "pipeline_cores_busy": P_cores,
            "model_samples_per_s": round(best["M"], 1), "model_2x_samples_per_s": round(best["M2"], 1),
            "run_samples_per_s": round(R, 1), "run_cores_busy": R_cores, "pipeline_python_ops": _python_ops(x),
            "seconds_each": seconds, "repeats": repeats, "backend": keras.backend.backend(),
            "usable_cpus": summary.usable_cpus,
        }
        writer = record_mod.RecordWriter(path, mode="a")
        writer.write(probe)
        writer.close()
        return diagnose_measured(probe, summary, rec.header)
    finally:
        if tmp is not None:
            os.unlink(tmp)


def _real_run(model, x, y, batch_size, epochs, n, path, B, plan, nvml, seconds) -> tuple[float, float]:
    """(samples/s, busy cores) of fit on the data as given, recorded by a Monitor into ``path``."""
    proc = psutil.Process()
    monitor = Monitor(path, interval=min(0.5, max(0.05, seconds / 10)), batch_size=B, plan=plan, nvml=nvml)
    cpu0, start = proc.cpu_times(), time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, steps_per_epoch=n, verbose=0,
              callbacks=[monitor, _Marks(CAP * 2 * seconds)], shuffle=_shuffles(x))  # sized for 2 x seconds
    cores = _cores_busy(proc, cpu0, time.perf_counter() - start)
    rec = record_mod.load(path)
    steps = summarise_record(rec).steps
    # from the first epoch's begin to the last batch end: epoch restarts count, fit's own set-up does not
    t_begin = min(e["t"] for e in rec.epochs if e.get("event") == "begin")
    return steps * B / (rec.marks[-1][2] - t_begin), cores


def _real_run_length(model, x, y, batch_size, seconds, spe, data_steps) -> tuple[int, int | None]:
    """(epochs, steps_per_epoch) for a real run of about 2 x seconds, never reading past the end of finite data.

    Two epochs of n steps where the data holds 2n batches or is endless; else
    whole epochs (steps_per_epoch None), so epoch restarts are measured as they happen."""
    def steps_per_s(steps):
        marks = _Marks()
        model.fit(x, y, batch_size=batch_size, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[marks], shuffle=_shuffles(x))
        return marks.steady_rate()[0]

    calib = 16 * spe if not data_steps else max(3, min(16 * spe, data_steps))
    steps_per_s(calib)  # warm: tracing
    total = max(8 * spe, int(2 * seconds * steps_per_s(calib)))
    if not data_steps or 2 * (total // 2) <= data_steps:
        n = max(spe, (total // 2) - (total // 2) % spe)
        return 2, n
    return max(2, min(10, round(total / data_steps))), None


__all__ = ["diagnose"]

"""redline.Monitor: a Keras callback that records the run as it goes.

A background thread takes a SystemSampler reading every ``interval`` seconds
and writes it, with the batch-end marks collected since the last tick, to the
run record (JSON lines, flushed at once). The callback itself only appends a
(epoch, step, time) mark per batch end; it never reads the logs, and it is
marked safe for Keras' asynchronous batch dispatch, so it adds no device sync.
"""

from __future__ import annotations

import collections
import datetime
import importlib.util
import os
import sys
import threading
import time
import warnings

import keras

from ..applying.iterator_release import fit_frame, fit_local
from ..errors import UsageError
from ..outputs import check_output, is_run_record
from . import record as record_mod
from .system import SystemSampler

DEFAULT_PATH = "redline-run.jsonl"


def _check_args(path, interval, batch_size, profile_steps):
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0.01 <= interval <= 3600:
        raise UsageError(f"Monitor interval={interval!r} is not valid: give seconds between 0.01 and 3600 (default 0.5)")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise UsageError(f"Monitor batch_size={batch_size!r} is not valid: give a positive integer, or None to infer it")
    if profile_steps is not None:
        ok = (isinstance(profile_steps, (tuple, list)) and len(profile_steps) == 2
              and all(isinstance(s, int) and not isinstance(s, bool) for s in profile_steps)
              and 0 <= profile_steps[0] < profile_steps[1])
        if not ok:
            raise UsageError(f"Monitor profile_steps={profile_steps!r} is not valid: give (first, last) steps with 0 <= first < last, e.g. (10, 20)")
    # last: the path is checked when everything else is right, so a refused file is the only complaint left
    check_output(path, "Monitor path", "a run record", replaceable=is_run_record)


def _fit_frame():
    """The frame of the backend's Model.fit that is calling us, or None."""
    return fit_frame(sys._getframe(1))


def _data_facts(fit_frame) -> dict:
    """Batch size and the kind of input Keras was given, read from fit's epoch iterator."""
    if fit_frame is None:
        return {"batch_size": None, "data_adapter": None}
    adapter = getattr(fit_local(fit_frame, "epoch_iterator"), "data_adapter", None)
    try:
        batch = adapter.batch_size if adapter is not None else None
    except (AttributeError, TypeError, ValueError):  # an adapter that cannot tell: the size is left unknown
        batch = None
    return {"batch_size": int(batch) if isinstance(batch, int) else None,
            "data_adapter": type(adapter).__name__ if adapter is not None else None}


def _plan_rows(plan) -> list | None:
    if plan is None:
        return None
    return [{"name": name, "value": s.value, "source": s.source, "reason": s.reason, "applied": s.applied}
            for name, s in plan.settings()]


def _runtime_settings() -> dict:
    """What the runtime is actually using, where it can be read without starting anything new."""
    out = {"backend": keras.backend.backend()}
    tf = sys.modules.get("tensorflow")
    if tf is not None and out["backend"] == "tensorflow":
        out["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        out["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        gpus = tf.config.list_physical_devices("GPU")
        out["gpu_memory_growth"] = [bool(tf.config.experimental.get_memory_growth(g)) for g in gpus]
        out["onednn"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
    torch = sys.modules.get("torch")
    if torch is not None and out["backend"] == "torch":
        out["intra_op_threads"] = torch.get_num_threads()
        out["inter_op_threads"] = torch.get_num_interop_threads()
    out["precision"] = keras.config.dtype_policy().name
    return out


class _Profiler:
    """Start/stop the backend's profiler; TensorFlow and JAX write a trace TensorBoard opens."""

    def __init__(self, logdir):
        self.logdir = logdir
        self.running = False

    def start(self) -> str | None:
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            tf.profiler.experimental.start(self.logdir)
        elif backend == "jax":
            import jax

            jax.profiler.start_trace(self.logdir)
        else:
            return f"no profiler capture for the {backend} backend (TensorFlow and JAX only); use torch.profiler directly"
        self.running = True
        return None

    def stop(self) -> None:
        if not self.running:
            return
        self.running = False
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.profiler.experimental.stop()
        else:
            import jax

            jax.profiler.stop_trace()


def profiler_plugin_note() -> str | None:
    """None when TensorBoard can show a profile here; else what to install."""
    missing = [m for m in ("tensorboard", "tensorboard_plugin_profile") if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return (f"TensorBoard cannot show this trace here: {' and '.join(missing)} not installed; "
            "pip install 'redline[profile]' (tensorboard, tensorboard-plugin-profile), then tensorboard --logdir DIR (Profile tab)")


class Monitor(keras.callbacks.Callback):
    """Record CPU, GPU and step times of a ``fit`` to a JSON-lines run record.

    ``model.fit(..., callbacks=[redline.Monitor("run.jsonl")])``, then
    ``redline diagnose run.jsonl`` and ``redline report run.jsonl``.

    path: the run record (overwritten). interval: seconds between samples.
    batch_size: samples per step; inferred from the data given to fit where
    Keras knows it (else samples/s is not available, steps/s still is).
    plan: the redline plan in force (what configure() returned), for the report.
    profile_steps: (first, last) global steps, both included, to capture a
    profiler trace of, into profile_dir (default: a folder named after the record).
    nvml: a pynvml-like module (tests pass a fake).
    """

    #: the callback only appends a mark; safe to run from Keras' dispatch thread.
    async_safe = True

    def __init__(self, path=DEFAULT_PATH, interval: float = 0.5, batch_size: int | None = None, plan=None,
                 profile_steps=None, profile_dir=None, nvml=None):
        super().__init__()
        _check_args(path, interval, batch_size, profile_steps)
        self.path = os.fspath(path)
        self.interval = float(interval)
        self.batch_size = batch_size
        self.plan = plan
        self.profile_steps = tuple(profile_steps) if profile_steps else None
        self.profile_dir = profile_dir or os.path.splitext(self.path)[0] + "-profile"
        self._nvml = nvml
        self._marks = collections.deque()
        self._thread = None
        self._stop = threading.Event()
        self._writer = None
        self._profiler = None
        self._profiled = False

    # -- clock and writing -------------------------------------------------
    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _flush_marks(self) -> None:
        n = len(self._marks)
        if n:
            self._writer.write({"type": "steps", "marks": [self._marks.popleft() for _ in range(n)]})

    def _loop(self, sampler: SystemSampler, main_ident: int, fit_frame) -> None:
        from ..detection.cpu import probe_cpu
        from ..detection.memory import probe_memory
        from ..detection.snapshot import to_jsonable

        # CPU and memory facts, read here, off the training thread (the GPUs are in the header from NVML)
        self._writer.write({"type": "snapshot", "snapshot": to_jsonable({"cpu": probe_cpu(), "memory": probe_memory()})})
        while not self._stop.wait(self.interval):
            self._writer.write(sampler.sample(self._now()))
            self._flush_marks()
            if fit_frame is not None and not _frame_alive(main_ident, fit_frame):
                # fit left without on_train_end (an exception): stop, leave the record as it stands
                self._writer.write({"type": "sample_stop", "t": round(self._now(), 3),
                                    "reason": "fit returned without on_train_end (an exception?)"})
                self._writer.close()
                break
        sampler.close()

    # -- Keras hooks -------------------------------------------------------
    def on_train_begin(self, logs=None):
        self._t0 = time.perf_counter()
        fit_frame = _fit_frame()
        facts = _data_facts(fit_frame)
        batch, source = (self.batch_size, "given") if self.batch_size else (facts["batch_size"], "inferred from the data")
        self._epoch, self._epoch_base, self._seen = 0, 0, 0
        self._writer = record_mod.RecordWriter(self.path)
        sampler = SystemSampler(nvml=self._nvml)
        model = self.model
        try:
            params = model.count_params()
        except ValueError:  # a model not built yet has no parameter count
            params = None
        self._writer.write({
            "type": "header", "schema": record_mod.SCHEMA, "t0": 0.0,
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "interval": self.interval, "pid": os.getpid(),
            "model": {"name": model.name, "params": params},
            "batch_size": batch, "batch_size_source": source if batch else "unknown: pass Monitor(batch_size=...)",
            "data_adapter": facts["data_adapter"],
            "steps_per_execution": getattr(model, "steps_per_execution", 1),
            "jit_compile": getattr(model, "jit_compile", None),
            "epochs": self.params.get("epochs") if self.params else None,
            "steps_per_epoch": self.params.get("steps") if self.params else None,
            "gpu_names": sampler.gpu_names, "gpu_note": sampler.gpu_note,
            "runtime": _runtime_settings(),
            "plan": _plan_rows(self.plan),
        })
        self._writer.write(sampler.sample(self._now()))
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(sampler, threading.get_ident(), fit_frame),
                                        name="redline-monitor", daemon=True)
        self._thread.start()
        if self.profile_steps:
            self._profiler = _Profiler(self.profile_dir)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._writer.write({"type": "epoch", "epoch": epoch, "event": "begin", "t": round(self._now(), 4)})

    def on_train_batch_begin(self, batch, logs=None):
        if self._profiler is None:
            return
        step = self._epoch_base + batch
        self._seen = batch + getattr(self.model, "steps_per_execution", 1)
        first, last = self.profile_steps
        if not self._profiler.running and first <= step <= last and not self._profiled:
            self._profiled = True
            problem = self._profiler.start()
            self._writer.write({"type": "profile", "first_step": step, "dir": self.profile_dir, "problem": problem,
                                "viewer": None if problem else profiler_plugin_note()})
            if problem or profiler_plugin_note():
                warnings.warn(f"redline.Monitor: {problem or profiler_plugin_note().replace('DIR', self.profile_dir)}", stacklevel=2)
        elif self._profiler.running and step > last:
            self._profiler.stop()

    def on_train_batch_end(self, batch, logs=None):
        self._marks.append((self._epoch, batch, round(self._now(), 5)))

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_base += self._seen
        self._writer.write({"type": "epoch", "epoch": epoch, "event": "end", "t": round(self._now(), 4)})

    def on_train_end(self, logs=None):
        if self._profiler is not None:
            self._profiler.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._flush_marks()
        self._writer.write({"type": "end", "t": round(self._now(), 4)})
        self._writer.close()


def _frame_alive(thread_ident: int, frame) -> bool:
    f = sys._current_frames().get(thread_ident)
    while f is not None:
        if f is frame:
            return True
        f = f.f_back
    return False


__all__ = ["DEFAULT_PATH", "Monitor", "profiler_plugin_note"]

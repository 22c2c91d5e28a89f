"""The Plan: every runtime setting redline chose, with where it came from and why."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..detection.snapshot import to_jsonable

AUTO, USER, ENVIRONMENT = "auto", "user", "environment"


@dataclass(frozen=True)
class Setting:
    value: Any
    #: "auto" (redline chose), "user" (an argument) or "environment" (a variable already set).
    source: str
    reason: str
    #: False for a recommendation that is reported but not applied unless the user opts in.
    applied: bool = True


@dataclass(frozen=True)
class Cluster:
    """A multi-worker cluster as TF_CONFIG describes it."""

    workers: tuple
    task_type: str
    task_index: int

    @property
    def num_workers(self) -> int:
        return len(self.workers)


@dataclass(frozen=True)
class Plan:
    backend: Setting
    intra_op_threads: Setting
    inter_op_threads: Setting
    #: thread variables for OpenMP/MKL, set before any runtime starts.
    thread_env: dict
    #: "growth", "full" (preallocate) or a per-GPU limit in MiB; None without a GPU.
    gpu_memory: Setting
    #: "cpu", "one-gpu", "mirrored" or "multi-worker".
    strategy: Setting
    #: device names for the strategy, e.g. ("/gpu:0", "/gpu:1") or ("/cpu:0", "/cpu:1").
    devices: Setting
    #: logical CPU devices to split the CPU into (1 unless mirroring over CPUs).
    cpu_devices: Setting
    replicas: Setting
    per_replica_batch: Setting
    global_batch: Setting
    precision: Setting
    onednn: Setting
    data_threadpool: Setting
    data_parallel_calls: Setting
    data_prefetch: Setting
    steps_per_execution: Setting
    jit_compile: Setting
    #: True: each epoch's finished tf.data iterator is dropped off the training thread (TensorFlow); None elsewhere.
    iterator_release: Setting = Setting(None, AUTO, "not planned")
    #: True: a model's state is built before its first traced step, as Keras does under a strategy (TensorFlow).
    build_ahead: Setting = Setting(None, AUTO, "not planned")
    cluster: Cluster | None = None
    notes: tuple = field(default=())

    def settings(self) -> Iterator[tuple[str, Setting]]:
        """(name, Setting) for every setting, thread variables included."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Setting):
                yield f.name, value
            elif f.name == "thread_env":
                yield from value.items()

    def env(self) -> dict:
        """Environment variables this plan sets for the runtime, name -> value.

        Only what redline chose; what the user set stays as it is.
        """
        out = {name: str(s.value) for name, s in self.thread_env.items() if s.source == AUTO and s.applied}
        for var, setting in (("TF_NUM_INTRAOP_THREADS", self.intra_op_threads),
                             ("TF_NUM_INTEROP_THREADS", self.inter_op_threads)):
            if setting.source == AUTO and setting.applied:
                out[var] = str(setting.value)
        if self.gpu_memory.source == AUTO and self.gpu_memory.value == "growth":
            out["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
        if self.onednn.source != ENVIRONMENT and self.onednn.value is not None and self.onednn.applied:
            out["TF_ENABLE_ONEDNN_OPTS"] = "1" if self.onednn.value else "0"
        return out

    def __str__(self) -> str:
        """One line a setting, as `print(redline.configure())` shows it: name, value, where it came from (advice: not
        applied), why. The fields stay in repr() and to_dict()."""
        rows = [(name, "-" if s.value is None else str(s.value), s.source + ("" if s.applied else ", advice"), s.reason)
                for name, s in self.settings()]
        width = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{n:<{width[0]}}  {v:<{width[1]}}  {src:<{width[2]}}  {why}" for n, v, src, why in rows]
        return "\n".join([*lines, *(f"note: {n}" for n in self.notes)])

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

"""Plain, frozen snapshots of the machine, and the typed "not available" value.

Nothing here probes anything: the probes in the sibling modules fill these in,
and tests build them by hand to describe fake machines.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class NotAvailable:
    """A value a probe could not read, with the reason why.

    It is falsy, so ``value or default`` reads naturally, and it serialises as
    ``{"not_available": reason}``.
    """

    reason: str

    def __bool__(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"not available ({self.reason})"


NA = NotAvailable
MaybeInt = Union[int, NotAvailable]
MaybeStr = Union[str, NotAvailable]

#: CPU features that change what TensorFlow can do fast.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_bf16", "amx")


def available(value: Any) -> bool:
    return not isinstance(value, NotAvailable)


@dataclass(frozen=True)
class CPUInfo:
    logical: MaybeInt
    physical: MaybeInt
    #: CPU ids this process may run on (sched_getaffinity).
    affinity: Union[tuple, NotAvailable]
    #: container CPU quota in CPUs (e.g. 4.0); None means no quota is set.
    quota: Union[float, None, NotAvailable]
    #: physical cores among the CPUs of ``affinity``.
    physical_in_affinity: MaybeInt
    sockets: MaybeInt
    numa_nodes: MaybeInt
    model: MaybeStr
    vendor: MaybeStr
    features: Union[dict, NotAvailable]

    @property
    def usable(self) -> int:
        """CPUs this process can keep busy: min(logical, affinity, quota), at least 1."""
        limits = [self.logical if available(self.logical) else None]
        if available(self.affinity):
            limits.append(len(self.affinity))
        if available(self.quota) and self.quota is not None:
            # A thread beyond the quota only gets throttled; round down, keep one.
            limits.append(max(1, math.floor(self.quota)))
        limits = [x for x in limits if x]
        return min(limits) if limits else 1

    @property
    def usable_physical(self) -> int:
        """Usable CPUs, counting a core's hyperthreads once."""
        phys = self.physical_in_affinity if available(self.physical_in_affinity) else self.physical
        if not available(phys) or not phys:
            return self.usable
        return max(1, min(self.usable, phys))

    def has(self, feature: str) -> bool:
        return available(self.features) and bool(self.features.get(feature))


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: MaybeInt
    available_bytes: MaybeInt
    #: cgroup memory limit; None means no limit is set.
    cgroup_limit_bytes: Union[int, None, NotAvailable]

    @property
    def budget_bytes(self) -> Union[int, NotAvailable]:
        """Memory this process can still take: available RAM capped by the cgroup limit."""
        values = [v for v in (self.available_bytes, self.cgroup_limit_bytes) if available(v) and v]
        return min(values) if values else NotAvailable("neither available RAM nor a cgroup limit could be read")


@dataclass(frozen=True)
class GPUInfo:
    index: int
    name: MaybeStr = NotAvailable("not read")
    memory_total_bytes: MaybeInt = NotAvailable("not read")
    memory_free_bytes: MaybeInt = NotAvailable("not read")
    compute_capability: Union[tuple, NotAvailable] = NotAvailable("not read")
    uuid: MaybeStr = NotAvailable("not read")
    #: the index CUDA gives this GPU after CUDA_VISIBLE_DEVICES; None when hidden.
    cuda_index: Union[int, None] = None
    #: set when NVML failed on this GPU; the other fields are then mostly not available.
    error: Union[str, None] = None

    @property
    def visible(self) -> bool:
        return self.cuda_index is not None


@dataclass(frozen=True)
class GPUSnapshot:
    #: "ok" when NVML answered, else why it could not be used (no NVIDIA GPU visible).
    nvml: MaybeStr
    driver_version: MaybeStr = NotAvailable("NVML not available")
    #: the newest CUDA version the driver supports, e.g. "12.4".
    cuda_driver_version: MaybeStr = NotAvailable("NVML not available")
    devices: tuple = ()
    cuda_visible_devices: Union[str, None] = None

    @property
    def visible(self) -> tuple:
        """GPUs CUDA programs in this process will see, in CUDA's order."""
        return tuple(sorted((g for g in self.devices if g.visible and g.error is None), key=lambda g: g.cuda_index))


@dataclass(frozen=True)
class RuntimeInfo:
    python: str
    keras_version: MaybeStr
    keras_backend: str
    #: where the backend came from: "environment", "keras.json", "default" or "imported".
    keras_backend_source: str
    tensorflow_version: MaybeStr
    #: the installed distribution, e.g. "tensorflow-cpu" or "tensorflow".
    tensorflow_distribution: MaybeStr
    #: is_cuda_build, cuda_version, cudnn_version as TensorFlow was built.
    tensorflow_build: Union[dict, NotAvailable]
    #: whether TensorFlow's runtime context exists in this process already.
    tensorflow_initialized: Union[bool, NotAvailable]
    jax_version: MaybeStr = NotAvailable("not installed")
    torch_version: MaybeStr = NotAvailable("not installed")


@dataclass(frozen=True)
class Snapshot:
    cpu: CPUInfo
    memory: MemoryInfo
    gpus: GPUSnapshot
    runtime: RuntimeInfo
    #: the environment variables that change threading, devices or the backend, as set.
    env: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return to_jsonable(self)

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples and NotAvailable values as plain JSON types."""
    if isinstance(obj, NotAvailable):
        return {"not_available": obj.reason}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
        for name in getattr(type(obj), "_json_properties", ()):
            out[name] = to_jsonable(getattr(obj, name))
        return out
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    return obj


# Derived values worth seeing in JSON output as well.
CPUInfo._json_properties = ("usable", "usable_physical")
MemoryInfo._json_properties = ("budget_bytes",)
GPUInfo._json_properties = ("visible",)

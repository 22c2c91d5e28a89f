"""Detection: what this machine and process have, as a frozen snapshot."""

from __future__ import annotations

import os
from typing import Mapping

from .cpu import probe_cpu
from .gpu import probe_gpus
from .memory import probe_memory
from .runtime import probe_runtime
from .snapshot import (
    CPUInfo,
    GPUInfo,
    GPUSnapshot,
    MemoryInfo,
    NotAvailable,
    RuntimeInfo,
    Snapshot,
    available,
)

#: Environment variables that change threading, devices, the backend or the cluster.
ENV_VARS = (
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_GPU_ALLOCATOR",
    "TF_CONFIG",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "KERAS_BACKEND",
    "REDLINE_ITERATOR_RELEASE",
    "REDLINE_BUILD_AHEAD",
    "MKL_NUM_THREADS",
    "KMP_AFFINITY",
    "KMP_BLOCKTIME",
    "KMP_SETTINGS",
    "KMP_HW_SUBSET",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "XLA_PYTHON_CLIENT_MEM_FRACTION",
)


def relevant_env(environ: Mapping[str, str]) -> dict:
    names = set(ENV_VARS) | {k for k in environ if k.startswith(("MKL_", "KMP_"))}
    return {k: environ[k] for k in sorted(names) if k in environ}


def detect(*, root: str = "/", environ: Mapping[str, str] | None = None, nvml=None) -> Snapshot:
    """Probe the machine and this process. Never raises for a missing metric.

    ``root``, ``environ`` and ``nvml`` exist for tests: a fake file tree, a
    fake environment and a fake pynvml module.
    """
    environ = os.environ if environ is None else environ
    return Snapshot(
        cpu=probe_cpu(root),
        memory=probe_memory(root),
        gpus=probe_gpus(environ, nvml=nvml),
        runtime=probe_runtime(environ),
        env=relevant_env(environ),
    )


__all__ = [
    "CPUInfo", "GPUInfo", "GPUSnapshot", "MemoryInfo", "NotAvailable", "RuntimeInfo", "Snapshot",
    "available", "detect", "relevant_env",
]

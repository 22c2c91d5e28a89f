"""Apply a plan to the JAX and torch backends, with the settings those have.

What has no counterpart there is reported as skipped, with the reason.
"""

from __future__ import annotations

import os
import sys
from typing import MutableMapping

from ..detection.snapshot import available
from ..planning.model import Plan
from .actions import APPLIED, FAILED, KEPT, LATE_FIX, SKIPPED, Action, attempt


def _set_env_before(module: str, environ: MutableMapping[str, str], name: str, var: str, value: str, what: str) -> Action:
    if module in sys.modules:
        return Action(name, value, FAILED, f"{var} is read when {module} starts and {module} is already imported; fix: {LATE_FIX}")
    if var in environ and environ[var] != value:
        return Action(name, environ[var], KEPT, f"{var}={environ[var]} is set; left as it is")
    environ[var] = value
    return Action(name, value, APPLIED, f"{var}={value} ({what})")


def _fraction(plan: Plan, gpus) -> float | None:
    totals = [g.memory_total_bytes for g in gpus if available(g.memory_total_bytes)]
    if not totals:
        return None
    return min(0.95, plan.gpu_memory.value * 2**20 / min(totals))


def apply_jax(plan: Plan, gpus, environ: MutableMapping[str, str] = os.environ) -> list[Action]:
    actions = [
        Action("intra_op_threads", plan.intra_op_threads.value, SKIPPED,
               "JAX has no supported thread-count setting; XLA sizes its CPU pool from the CPUs this process may use"),
        Action("inter_op_threads", plan.inter_op_threads.value, SKIPPED, "JAX has no inter-op thread pool setting"),
    ]
    mem = plan.gpu_memory.value
    if mem == "growth":
        actions.append(_set_env_before("jax", environ, "gpu_memory", "XLA_PYTHON_CLIENT_PREALLOCATE", "false", "allocate on demand instead of 75% at start"))
    elif isinstance(mem, int):
        frac = _fraction(plan, gpus)
        if frac is None:
            actions.append(Action("gpu_memory", mem, SKIPPED, "GPU memory size not available to turn the limit into a fraction"))
        else:
            actions.append(_set_env_before("jax", environ, "gpu_memory", "XLA_PYTHON_CLIENT_MEM_FRACTION", f"{frac:.3f}", f"{mem} MiB per GPU"))
    n = plan.cpu_devices.value
    if n > 1:
        flags = environ.get("XLA_FLAGS", "")
        flag = f"--xla_force_host_platform_device_count={n}"
        if "xla_force_host_platform_device_count" in flags:
            actions.append(Action("cpu_devices", n, KEPT, f"XLA_FLAGS already sets the host device count: {flags}"))
        else:
            actions.append(_set_env_before("jax", environ, "cpu_devices", "XLA_FLAGS", (flags + " " + flag).strip(), f"{n} CPU devices"))
    if plan.strategy.value == "mirrored":
        actions.append(_data_parallel())
    elif plan.strategy.value == "multi-worker":
        actions.append(Action("strategy", "multi-worker", SKIPPED,
                              "TF_CONFIG is TensorFlow's; JAX multi-process training needs jax.distributed.initialize() on each process"))
    return actions


def _data_parallel() -> Action:
    import keras

    def go():
        keras.distribution.set_distribution(keras.distribution.DataParallel())

    try:
        go()
    except (RuntimeError, ValueError) as exc:
        return Action("strategy", "mirrored", FAILED, f"keras.distribution.DataParallel: {exc}")
    return Action("strategy", "mirrored", APPLIED, "keras.distribution.DataParallel over every device")


def apply_torch(plan: Plan, gpus) -> list[Action]:
    import torch

    actions = []
    for name, setting, setter, what in (
        ("intra_op_threads", plan.intra_op_threads, torch.set_num_threads, "torch.set_num_threads"),
        ("inter_op_threads", plan.inter_op_threads, torch.set_num_interop_threads, "torch.set_num_interop_threads"),
    ):
        if setting.source == "auto" and not setting.applied:
            actions.append(Action(name, setting.value, KEPT, "torch's default, which the plan leaves alone"))
        else:
            actions.append(attempt(name, setting.value, lambda f=setter, v=setting.value: f(v), what))
    mem = plan.gpu_memory.value
    if mem == "growth":
        actions.append(Action("gpu_memory", mem, KEPT, "PyTorch's caching allocator already grows on demand"))
    elif isinstance(mem, int):
        frac = _fraction(plan, gpus)
        if frac is None or not torch.cuda.is_available():
            actions.append(Action("gpu_memory", mem, SKIPPED, "torch sees no CUDA GPU or its memory size is not available"))
        else:
            for i in range(torch.cuda.device_count()):
                actions.append(attempt("gpu_memory", mem, lambda i=i: torch.cuda.set_per_process_memory_fraction(frac, i), f"{mem} MiB on cuda:{i}"))
    if plan.strategy.value in ("mirrored", "multi-worker"):
        actions.append(Action("strategy", plan.strategy.value, SKIPPED,
                              "Keras on torch trains on several devices only under torch.distributed (launch with torchrun); not applied"))
    return actions

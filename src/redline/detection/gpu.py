"""GPU probe through NVML (nvidia-ml-py), without touching TensorFlow.

NVML missing or failing means "no NVIDIA GPU visible", never a crash; a GPU on
which NVML fails is reported with its error while the others stand.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Mapping

from .snapshot import GPUInfo, GPUSnapshot, NotAvailable


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _load_nvml():
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


def resolve_visible(tokens: str | None, devices: list[GPUInfo]) -> dict[int, int]:
    """NVML index -> CUDA index under CUDA_VISIBLE_DEVICES.

    Follows CUDA's rules: unset means all GPUs in order; entries are indices or
    UUID prefixes; parsing stops at the first entry that names no GPU, so
    "0,7,1" with two GPUs shows only GPU 0. Indices are taken in NVML's (PCI
    bus) order, which CUDA uses when CUDA_DEVICE_ORDER=PCI_BUS_ID.
    """
    if tokens is None:
        return {g.index: i for i, g in enumerate(devices)}
    mapping: dict[int, int] = {}
    by_index = {g.index: g for g in devices}
    for token in (t.strip() for t in tokens.split(",")):
        match = None
        if token.lstrip("-").isdigit():
            match = by_index.get(int(token))
        elif token.startswith("GPU-"):
            hits = [g for g in devices if isinstance(g.uuid, str) and g.uuid.startswith(token)]
            match = hits[0] if len(hits) == 1 else None
        if match is None or match.index in mapping:
            break
        mapping[match.index] = len(mapping)
    return mapping


def _probe_device(nvml, index: int) -> GPUInfo:
    try:
        h = nvml.nvmlDeviceGetHandleByIndex(index)
        name = _text(nvml.nvmlDeviceGetName(h))
    except nvml.NVMLError as exc:
        return GPUInfo(index=index, error=f"NVML failed on GPU {index}: {exc}")

    def field(fn, *args):
        try:
            return fn(*args)
        except nvml.NVMLError as exc:
            return NotAvailable(f"NVML: {exc}")

    mem = field(nvml.nvmlDeviceGetMemoryInfo, h)
    cc = field(nvml.nvmlDeviceGetCudaComputeCapability, h)
    uuid = field(nvml.nvmlDeviceGetUUID, h)
    return GPUInfo(
        index=index,
        name=name,
        memory_total_bytes=mem if isinstance(mem, NotAvailable) else int(mem.total),
        memory_free_bytes=mem if isinstance(mem, NotAvailable) else int(mem.free),
        compute_capability=cc if isinstance(cc, NotAvailable) else tuple(int(x) for x in cc),
        uuid=uuid if isinstance(uuid, NotAvailable) else _text(uuid),
    )


def probe_gpus(env: Mapping[str, str], nvml=None) -> GPUSnapshot:
    """Read every NVIDIA GPU through NVML. ``nvml`` replaces the pynvml module in tests."""
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    nvml = nvml if nvml is not None else _load_nvml()
    if nvml is None:
        return GPUSnapshot(nvml=NotAvailable("nvidia-ml-py is not installed: no NVIDIA GPU visible"), cuda_visible_devices=cvd)
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as exc:
        return GPUSnapshot(nvml=NotAvailable(f"NVML could not start ({exc}): no NVIDIA GPU visible"), cuda_visible_devices=cvd)
    except OSError as exc:  # a broken libnvidia-ml.so can fail while loading
        return GPUSnapshot(nvml=NotAvailable(f"NVML library failed to load ({exc}): no NVIDIA GPU visible"), cuda_visible_devices=cvd)
    try:
        try:
            driver = _text(nvml.nvmlSystemGetDriverVersion())
        except nvml.NVMLError as exc:
            driver = NotAvailable(f"NVML: {exc}")
        try:
            v = int(nvml.nvmlSystemGetCudaDriverVersion())
            cuda = f"{v // 1000}.{(v % 1000) // 10}"
        except nvml.NVMLError as exc:
            cuda = NotAvailable(f"NVML: {exc}")
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except nvml.NVMLError as exc:
            return GPUSnapshot(nvml=NotAvailable(f"NVML could not count GPUs: {exc}"), driver_version=driver,
                               cuda_driver_version=cuda, cuda_visible_devices=cvd)
        devices = [_probe_device(nvml, i) for i in range(count)]
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            pass  # shutting down a library we are done with; nothing to report
    mapping = resolve_visible(cvd, [d for d in devices if d.error is None])
    devices = tuple(dataclasses.replace(d, cuda_index=mapping.get(d.index)) for d in devices)
    return GPUSnapshot(nvml="ok", driver_version=driver, cuda_driver_version=cuda, devices=devices, cuda_visible_devices=cvd)

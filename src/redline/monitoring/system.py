"""One reading of the machine's state: CPU per core, this process, runnable threads, GPUs.

psutil for the CPU and memory, NVML for NVIDIA GPUs. A reading that cannot be
taken is recorded as not available with the reason; nothing here raises for a
missing metric.
"""

from __future__ import annotations

import os

import psutil

from ..detection.gpu import _load_nvml


def procs_running(root: str = "/") -> int | None:
    """Threads runnable right now, system-wide (/proc/stat procs_running), or None where there is no such file."""
    try:
        with open(os.path.join(root, "proc/stat")) as f:
            for line in f:
                if line.startswith("procs_running "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class SystemSampler:
    """Call sample(t) at each tick; t is passed in so the clock stays with the caller."""

    def __init__(self, nvml=None, root: str = "/"):
        self._root = root
        self._proc = psutil.Process()
        psutil.cpu_percent(percpu=True)  # the next call reports the interval since this one
        self._proc.cpu_percent()
        self._nvml = nvml if nvml is not None else _load_nvml()
        self.gpu_note = None
        self.gpu_names = []
        self._handles = self._open_gpus()

    def _open_gpus(self) -> list:
        nvml = self._nvml
        if nvml is None:
            self.gpu_note = "nvidia-ml-py is not installed"
            return []
        try:
            nvml.nvmlInit()
            handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
            names = [nvml.nvmlDeviceGetName(h) for h in handles]
        except nvml.NVMLError as exc:
            self.gpu_note = f"NVML: {exc}"
            return []
        except OSError as exc:  # a broken libnvidia-ml.so can fail while loading, outside NVML's own errors
            self.gpu_note = f"NVML library failed to load ({exc})"
            return []
        self.gpu_names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        if not handles:
            self.gpu_note = "NVML lists no GPU"
        return handles

    def gpu_reading(self) -> list | None:
        """Per GPU: utilisation, memory, power; None (and gpu_note set) once NVML fails."""
        nvml, out = self._nvml, []
        for i, h in enumerate(self._handles):
            try:
                util = nvml.nvmlDeviceGetUtilizationRates(h).gpu
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
            except (nvml.NVMLError, OSError) as exc:
                self.gpu_note = f"NVML failed during the run on GPU {i}: {exc}; GPU sampling stopped"
                self._handles = []
                return None
            try:
                power = round(nvml.nvmlDeviceGetPowerUsage(h) / 1000.0, 1)
            except nvml.NVMLError:
                power = None  # not supported on every board; the rest of the reading stands
            out.append({"index": i, "util_pct": float(util), "mem_used_bytes": int(mem.used),
                        "mem_total_bytes": int(mem.total), "power_w": power})
        return out

    def sample(self, t: float) -> dict:
        s = {
            "type": "sample", "t": round(t, 3),
            "cpu_per_core_pct": psutil.cpu_percent(percpu=True),
            "process_cores_busy": round(self._proc.cpu_percent() / 100.0, 3),
            "rss_bytes": self._proc.memory_info().rss,
            "threads": self._proc.num_threads(),
            "runnable": procs_running(self._root),
        }
        gpus = self.gpu_reading() if self._handles else None
        if gpus is not None:
            s["gpus"] = gpus
        else:
            s["gpu_note"] = self.gpu_note or "no GPU"
        return s

    def close(self) -> None:
        if self._nvml is not None and self.gpu_names:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass  # shutting down a library that is failing: nothing left to release


__all__ = ["SystemSampler", "procs_running"]

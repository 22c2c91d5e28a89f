"""CPU and GPU utilisation over a window: psutil for the CPU, NVML for NVIDIA GPUs."""

from __future__ import annotations

import threading
import time

import psutil

from ..detection.gpu import _load_nvml


class UtilisationWindow:
    """Per-core CPU %, this process's busy cores and mean GPU % between start() and stop()."""

    def __init__(self, gpu_interval: float = 0.2, nvml=None):
        self._nvml = nvml if nvml is not None else _load_nvml()
        self._interval = gpu_interval
        self._gpu_samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = None
        self.gpu_error = None

    def start(self) -> "UtilisationWindow":
        psutil.cpu_percent(percpu=True)  # resets the counters psutil compares against
        self._proc = psutil.Process()
        self._cpu0 = self._proc.cpu_times()
        self._t0 = time.perf_counter()
        handles = self._gpu_handles()
        if handles:
            self._thread = threading.Thread(target=self._sample_gpus, args=(handles,), daemon=True)
            self._thread.start()
        return self

    def _gpu_handles(self):
        nvml = self._nvml
        if nvml is None:
            self.gpu_error = "nvidia-ml-py is not installed"
            return []
        try:
            nvml.nvmlInit()
            return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except nvml.NVMLError as exc:
            self.gpu_error = f"NVML: {exc}"
            return []

    def _sample_gpus(self, handles):
        while not self._stop.wait(self._interval):
            try:
                self._gpu_samples.append([float(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in handles])
            except self._nvml.NVMLError as exc:
                self.gpu_error = f"NVML: {exc}"
                return

    def stop(self) -> dict:
        wall = time.perf_counter() - self._t0
        per_core = psutil.cpu_percent(percpu=True)
        cpu1 = self._proc.cpu_times()
        busy = (cpu1.user - self._cpu0.user + cpu1.system - self._cpu0.system) / wall if wall > 0 else 0.0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        gpu = None
        if self._gpu_samples:
            n = len(self._gpu_samples[0])
            gpu = [sum(s[i] for s in self._gpu_samples) / len(self._gpu_samples) for i in range(n)]
        return {"cpu_per_core_pct": per_core, "process_cores_busy": round(busy, 3),
                "gpu_util_pct": gpu, "gpu_note": None if gpu is not None else (self.gpu_error or "no GPU samples")}

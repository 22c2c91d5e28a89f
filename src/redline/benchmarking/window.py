"""CPU and GPU utilisation over a window (the bench's runs): SystemSampler's readings, averaged."""

from __future__ import annotations

import threading
import time

import psutil

from ..monitoring.system import SystemSampler


class UtilisationWindow:
    """Per-core CPU %, this process's busy cores and mean GPU % between start() and stop()."""

    def __init__(self, gpu_interval: float = 0.2, nvml=None):
        self._nvml = nvml
        self._interval = gpu_interval
        self._gpu_samples: list[list[float]] = []
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> "UtilisationWindow":
        self._sampler = SystemSampler(nvml=self._nvml)  # also resets the counters psutil compares against
        self._proc = psutil.Process()
        self._cpu0 = self._proc.cpu_times()
        self._t0 = time.perf_counter()
        if self._sampler.gpu_names:
            self._thread = threading.Thread(target=self._sample_gpus, daemon=True)
            self._thread.start()
        return self

    def _sample_gpus(self):
        while not self._stop.wait(self._interval):
            reading = self._sampler.gpu_reading()
            if reading is None:  # NVML failed; the sampler says why
                return
            self._gpu_samples.append([g["util_pct"] for g in reading])

    def stop(self) -> dict:
        wall = time.perf_counter() - self._t0
        per_core = psutil.cpu_percent(percpu=True)
        cpu1 = self._proc.cpu_times()
        busy = (cpu1.user - self._cpu0.user + cpu1.system - self._cpu0.system) / wall if wall > 0 else 0.0
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sampler.close()
        gpu = None
        if self._gpu_samples:
            n = len(self._gpu_samples[0])
            gpu = [sum(s[i] for s in self._gpu_samples) / len(self._gpu_samples) for i in range(n)]
        return {"cpu_per_core_pct": per_core, "process_cores_busy": round(busy, 3),
                "gpu_util_pct": gpu, "gpu_note": None if gpu is not None else (self._sampler.gpu_note or "no GPU samples")}

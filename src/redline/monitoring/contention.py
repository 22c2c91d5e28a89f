"""How much of the machine a measurement did not have: CPU time the hypervisor gave to other guests (steal) and CPU
time other processes used, each as a share of the machine's CPU time over the measurement.

On a shared VM a whole trial process can run about 2x slow. Eight trial processes of one script on a 2-core Zen 4 VM,
the share read over each one's measurement: the two at 0.8% and 2.1% read 31-36 steps/s in whole epochs, one at 4.7%
read 18-24, the five at 7.6-24% read 10-33. A process whose share is small ran on the machine as it was; one with a
larger share may have run slow as a whole.

Interrupt time (irq, softirq) is no other process's: it is mostly the kernel serving this one, the timers and wake-ups
of its own threads. A trial of a script of ~1,000 small steps a second on a 2-core Emerald Rapids VM spent 4-6% of the
machine in softirq while no other process used more than 0.1 s of its 4-10 s (read per process around each
measurement): counted as others, every such trial read as run on a busy machine (5-11%), so none was taken as quiet.

psutil's system-wide CPU times; where they have no steal field (not Linux), steal is not available (None).
"""

from __future__ import annotations

import time

import psutil

#: the machine's CPU time fields that are not time a CPU spent idle (guest time is already inside user on Linux), and
#: the kernel's interrupt time, spent mostly for the process measured (the module's doc)
_IDLE = ("idle", "iowait")
_SKIP = ("guest", "guest_nice")
_INTERRUPTS = ("irq", "softirq")


def share(before, after, own_s: float) -> dict:
    """{"steal", "others"}: shares of the machine's CPU time between two psutil.cpu_times() readings that the
    hypervisor stole, and that processes other than this one (``own_s`` CPU seconds) kept busy (interrupt time left
    out: the module's doc). None where the reading has no such field or no time passed."""
    fields = [f for f in after._fields if f not in _SKIP]
    delta = {f: max(0.0, getattr(after, f) - getattr(before, f)) for f in fields}
    total = sum(delta.values())
    if total <= 0:
        return {"steal": None, "others": None}
    steal = delta.get("steal")
    busy = total - sum(delta.get(f, 0.0) for f in (*_IDLE, *_INTERRUPTS)) - (steal or 0.0)
    return {"steal": None if steal is None else round(steal / total, 4),
            "others": round(max(0.0, busy - own_s) / total, 4)}


class Contention:
    """``start()`` then ``stop()`` around a measurement in this process: share() over it."""

    def __init__(self):
        self._before = self._own = None

    def start(self) -> "Contention":
        self._before, self._own = psutil.cpu_times(), time.process_time()
        return self

    def stop(self) -> dict:
        if self._before is None:
            return {"steal": None, "others": None}
        return share(self._before, psutil.cpu_times(), time.process_time() - self._own)


def lost(reading: dict | None) -> float | None:
    """The share of the machine a measurement did not have (steal and other processes together), or None."""
    if not reading or reading.get("others") is None:
        return None
    return round((reading.get("steal") or 0.0) + reading["others"], 4)


__all__ = ["Contention", "lost", "share"]

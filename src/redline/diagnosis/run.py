"""What a run record says, in numbers: step times, throughput over time, CPU and GPU use. Pure."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RunSummary:
    batch_size: int | None
    steps: int
    #: median seconds per step over the steady part (every step after each epoch's first).
    step_time_s: float | None
    steps_per_s: float | None
    #: steady throughput; None when the batch size is unknown.
    samples_per_s: float | None
    #: from training start to the first batch end: tracing/compiling plus the first step.
    first_step_s: float | None
    #: per epoch after the first: time to its first batch end beyond a median step.
    epoch_stalls_s: tuple = ()
    #: (t, samples/s or steps/s) per sampler interval.
    throughput_series: tuple = ()
    throughput_unit: str = "samples/s"
    duration_s: float | None = None
    usable_cpus: int | None = None
    cpu_mean_pct: tuple = ()
    #: median over samples of this process's busy cores (1.0 = one core fully used).
    process_cores_busy: float | None = None
    #: median runnable threads system-wide, the sampler's own excluded.
    runnable: float | None = None
    rss_max_bytes: int | None = None
    #: per GPU: index, name, util_mean_pct, util_series, mem_max_frac, power_mean_w; empty with gpu_note set.
    gpus: tuple = ()
    gpu_note: str | None = None
    notes: tuple = field(default=())


def _steps_of(marks, epoch_begins) -> list[tuple[float, int, float]]:
    """(t, steps in this mark, seconds since the previous mark or the epoch's begin) per batch-end mark.

    Keras may run batch-end callbacks on a thread pool, so marks can arrive a
    little out of order: they are put in step order per epoch, and a time
    earlier than the previous mark's counts as the previous mark's time."""
    by_epoch = {}
    for epoch, step, t in marks:
        by_epoch.setdefault(epoch, []).append((step, t))
    out = []
    for epoch in sorted(by_epoch):
        p_step, p_t = -1, epoch_begins.get(epoch)
        for step, t in sorted(by_epoch[epoch]):
            if p_t is None:
                p_t = t
            t = max(t, p_t)
            n, dt = step - p_step, t - p_t
            if n > 0:
                out.append((t, n, dt))
                p_step, p_t = step, t
    out.sort()
    return out


def summarise(header: dict, samples: list, marks: list, epochs: list, notes=()) -> RunSummary:
    batch = header.get("batch_size")
    begins = {e["epoch"]: e["t"] for e in epochs if e.get("event") == "begin"}
    steps = _steps_of(marks, begins)
    firsts = {}
    for epoch, step, t in sorted(marks, key=lambda m: (m[0], m[1])):
        firsts.setdefault(epoch, t)
    steady = [dt / n for t, n, dt in steps if t not in firsts.values()]
    step_time = statistics.median(steady) if steady else None
    total_steps = sum(n for _, n, _ in steps)
    steady_steps = sum(n for t, n, _ in steps if t not in firsts.values())
    steady_time = sum(dt for t, n, dt in steps if t not in firsts.values())
    sps = steady_steps / steady_time if steady_time > 0 else None
    stalls = []
    for epoch, t_first in sorted(firsts.items()):
        if epoch == min(firsts) or epoch not in begins or step_time is None:
            continue
        stalls.append(max(0.0, t_first - begins[epoch] - step_time))
    first_step = marks[0][2] if marks else None

    series, unit = [], "samples/s" if batch else "steps/s"
    ts = [s["t"] for s in samples]
    for a, b in zip(ts, ts[1:]):
        if b <= a:
            continue
        n = sum(k for t, k, _ in steps if a < t <= b)
        series.append((round(b, 3), round(n * (batch or 1) / (b - a), 2)))

    cores = [s["cpu_per_core_pct"] for s in samples[1:] if s.get("cpu_per_core_pct")]  # the first reading has no interval
    cpu_mean = tuple(round(statistics.fmean(c[i] for c in cores), 1) for i in range(len(cores[0]))) if cores else ()
    busy = [s["process_cores_busy"] for s in samples[1:] if s.get("process_cores_busy") is not None]
    runnable = [max(0, s["runnable"] - 1) for s in samples[1:] if s.get("runnable") is not None]
    rss = [s["rss_bytes"] for s in samples if s.get("rss_bytes") is not None]

    names = header.get("gpu_names") or []
    gpu_samples = [s["gpus"] for s in samples if s.get("gpus")]
    gpus = []
    if gpu_samples:
        for i in range(len(gpu_samples[0])):
            rows = [g[i] for g in gpu_samples if len(g) > i]
            power = [r["power_w"] for r in rows if r.get("power_w") is not None]
            gpus.append({
                "index": i, "name": names[i] if i < len(names) else f"GPU {i}",
                "util_mean_pct": round(statistics.fmean(r["util_pct"] for r in rows), 1),
                "util_series": tuple((s["t"], g[i]["util_pct"]) for s, g in zip([s for s in samples if s.get("gpus")], gpu_samples) if len(g) > i),
                "mem_max_frac": round(max(r["mem_used_bytes"] / r["mem_total_bytes"] for r in rows if r["mem_total_bytes"]), 3),
                "mem_max_bytes": max(r["mem_used_bytes"] for r in rows),
                "mem_total_bytes": rows[0]["mem_total_bytes"],
                "power_mean_w": round(statistics.fmean(power), 1) if power else None,
            })
    notes_out = [str(n) for n in notes]
    gpu_note = next((s["gpu_note"] for s in reversed(samples) if s.get("gpu_note")), None) or header.get("gpu_note")
    if gpus and gpu_note:
        notes_out.append(gpu_note)
    snap_cpu = (header.get("snapshot") or {}).get("cpu") or {}
    usable = snap_cpu.get("usable")
    return RunSummary(
        batch_size=batch, steps=total_steps, step_time_s=step_time, steps_per_s=sps,
        samples_per_s=sps * batch if sps and batch else None, first_step_s=first_step,
        epoch_stalls_s=tuple(round(s, 4) for s in stalls), throughput_series=tuple(series), throughput_unit=unit,
        duration_s=max([s["t"] for s in samples] + [m[2] for m in marks], default=None),
        usable_cpus=usable if isinstance(usable, int) else None, cpu_mean_pct=cpu_mean,
        process_cores_busy=round(statistics.median(busy), 3) if busy else None,
        runnable=statistics.median(runnable) if runnable else None,
        rss_max_bytes=max(rss) if rss else None,
        gpus=tuple(gpus), gpu_note=None if gpus else (gpu_note or "no GPU samples"),
        notes=tuple(notes_out),
    )


def summarise_record(rec) -> RunSummary:
    return summarise(rec.header, rec.samples, rec.marks, rec.epochs, rec.notes)


__all__ = ["RunSummary", "summarise", "summarise_record"]

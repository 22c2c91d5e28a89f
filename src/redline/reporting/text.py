"""Plain-text tables for the terminal."""

from __future__ import annotations

import shutil
import textwrap

from ..detection.snapshot import NotAvailable, Snapshot, available
from ..planning.model import AUTO, Plan


def show(value) -> str:
    if isinstance(value, NotAvailable):
        return f"n/a ({value.reason})"
    if value is None:
        return "-"
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value)) if value else "-"
    return str(value)


def gib(n) -> str:
    return f"{n / 2**30:.1f} GiB" if available(n) and n is not None else show(n)


def table(rows: list[tuple], headers: tuple | None = None, width: int | None = None) -> str:
    """Columns padded to fit; the last column wraps to the terminal width."""
    width = width or shutil.get_terminal_size((120, 24)).columns
    rows = [tuple(show(c) for c in r) for r in rows]
    all_rows = ([tuple(headers)] if headers else []) + rows
    if not all_rows:
        return ""
    n = len(all_rows[0])
    widths = [max(len(r[i]) for r in all_rows) for i in range(n - 1)]
    indent = sum(widths) + 2 * (n - 1)
    last = max(30, width - indent - 2)
    lines = []
    for r in all_rows:
        head = "  ".join(c.ljust(w) for c, w in zip(r, widths))
        wrapped = textwrap.wrap(r[-1], last) or [""]
        lines.append(f"  {head}  {wrapped[0]}".rstrip())
        lines += [" " * (indent + 2) + w for w in wrapped[1:]]
    return "\n".join(lines)


def snapshot_text(s: Snapshot) -> str:
    c, m, g, rt = s.cpu, s.memory, s.gpus, s.runtime
    cpu_rows = [
        ("model", show(c.model) + (f" ({c.vendor})" if available(c.vendor) else "")),
        ("logical CPUs", c.logical),
        ("physical cores", c.physical),
        ("affinity", f"{len(c.affinity)} CPUs ({show(c.affinity)})" if available(c.affinity) else c.affinity),
        ("container quota", "none" if c.quota is None else (f"{c.quota:g} CPUs" if available(c.quota) else c.quota)),
        ("usable", f"{c.usable} CPUs, {c.usable_physical} physical cores"),
        ("sockets / NUMA", f"{show(c.sockets)} / {show(c.numa_nodes)}"),
        ("features", ", ".join(k for k, v in c.features.items() if v) or "none of " + ", ".join(c.features) if available(c.features) else c.features),
    ]
    mem_rows = [
        ("total RAM", gib(m.total_bytes)),
        ("available", gib(m.available_bytes)),
        ("cgroup limit", "none" if m.cgroup_limit_bytes is None else gib(m.cgroup_limit_bytes)),
    ]
    if available(g.nvml):
        gpu_rows = [("driver", f"{show(g.driver_version)} (CUDA {show(g.cuda_driver_version)})"),
                    ("CUDA_VISIBLE_DEVICES", "unset" if g.cuda_visible_devices is None else repr(g.cuda_visible_devices))]
        for d in g.devices:
            if d.error:
                gpu_rows.append((f"GPU {d.index}", f"error: {d.error}"))
                continue
            cc = ".".join(map(str, d.compute_capability)) if available(d.compute_capability) else show(d.compute_capability)
            vis = f"cuda:{d.cuda_index}" if d.visible else "hidden"
            gpu_rows.append((f"GPU {d.index}", f"{show(d.name)}, {gib(d.memory_free_bytes)} free of {gib(d.memory_total_bytes)}, compute {cc}, {vis}"))
    else:
        gpu_rows = [("NVIDIA GPUs", g.nvml)]
    build = rt.tensorflow_build
    tf_build = (("CUDA " + show(build["cuda_version"]) + ", cuDNN " + show(build["cudnn_version"])) if build["is_cuda_build"] else "CPU-only build") if available(build) else show(build)
    rt_rows = [
        ("python", rt.python),
        ("keras", f"{show(rt.keras_version)}, backend {rt.keras_backend} (from {rt.keras_backend_source})"),
        ("tensorflow", f"{show(rt.tensorflow_version)} [{show(rt.tensorflow_distribution)}], {tf_build}" if available(rt.tensorflow_version) else rt.tensorflow_version),
        ("jax / torch", f"{show(rt.jax_version)} / {show(rt.torch_version)}"),
    ]
    env_rows = [(k, v) for k, v in s.env.items()] or [("(none set)", "")]
    parts = [("CPU", cpu_rows), ("Memory", mem_rows), ("GPUs", gpu_rows), ("Runtime", rt_rows), ("Environment", env_rows)]
    return "\n".join(f"{title}\n{table(rows)}" for title, rows in parts)


def plan_text(plan: Plan, only_auto: bool = False) -> str:
    rows = []
    for name, s in plan.settings():
        if only_auto and s.source != AUTO:
            continue
        mark = "" if s.applied else " (advice)"
        rows.append((name, show(s.value), s.source + mark, s.reason))
    return table(rows, ("setting", "value", "source", "reason"))


def findings_text(findings) -> str:
    if not findings:
        return "  no findings: nothing misconfigured that redline checks for"
    out = []
    for f in findings:
        out.append(f"  [{f.severity}] {f.message}")
        out.append(f"      evidence: {f.evidence}")
        out.append("      fix:      " + f.fix.replace("\n", "\n                "))
    return "\n".join(out)


def diagnosis_text(diag, summary=None, notes=()) -> str:
    """The verdict, the measurements behind it, the run's numbers and the findings."""
    out = []
    for n in notes:
        out.append(f"  note: {n}")
    if diag.breakdown is None:
        out.append("Verdict: not measured: this record has no probe; redline.diagnose(model, x, y, record=...) "
                   "measures the pipeline alone, the model alone and the real run")
    else:
        b, p = diag.breakdown, diag.probe
        sh = b.shares()
        out.append(f"Verdict: {diag.kind} ({diag.input_grade})")
        out.append(table([
            ("input pipeline alone", f"{p['pipeline_samples_per_s']:,.0f} samples/s", f"{p['pipeline_cores_busy']:.2f} cores busy"),
            ("model alone, cached batch", f"{p['model_samples_per_s']:,.0f} samples/s", f"batch {p['batch_size']}"),
            ("model alone, double batch", f"{p['model_2x_samples_per_s']:,.0f} samples/s", f"batch {2 * p['batch_size']}"),
            ("real run", f"{p['run_samples_per_s']:,.0f} samples/s", f"{p['run_cores_busy']:.2f} cores busy"),
        ], ("measured", "throughput", "")))
        out.append(f"  step {1000 * b.step_s:.2f} ms = input wait {1000 * b.input_s:.2f} ms ({100 * sh['input']:.0f}%)"
                   f" + fixed per-step overhead {1000 * b.overhead_s:.2f} ms ({100 * sh['overhead']:.0f}%)"
                   f" + compute {1000 * b.compute_s:.2f} ms ({100 * sh['compute']:.0f}%)")
    if summary is not None:
        rate = f"{summary.samples_per_s:,.0f} samples/s" if summary.samples_per_s else (
            f"{summary.steps_per_s:,.1f} steps/s" if summary.steps_per_s else "n/a")
        gpu = "; ".join(f"GPU {g['index']} {g['util_mean_pct']:.0f}% busy, memory peak {100 * g['mem_max_frac']:.0f}%"
                        for g in summary.gpus) or f"not available ({summary.gpu_note})"
        out.append("\nRun record")
        out.append(table([
            ("steps", summary.steps),
            ("steady throughput", rate),
            ("median step", f"{1000 * summary.step_time_s:.2f} ms" if summary.step_time_s else "n/a"),
            ("first step", f"{summary.first_step_s:.2f} s" if summary.first_step_s is not None else "n/a"),
            ("epoch-start stalls", ", ".join(f"{s:.2f} s" for s in summary.epoch_stalls_s) or "none"),
            ("process cores busy", f"{summary.process_cores_busy:.2f} of {summary.usable_cpus} usable" if summary.process_cores_busy is not None else "n/a"),
            ("GPUs", gpu),
        ]))
    out.append("\nFindings")
    out.append(findings_text(diag.findings) if diag.findings else "  no findings: nothing redline checks for holds this run back")
    out.append("\nThresholds (general rules, the same on every machine; redline/diagnosis/bottleneck.py): "
               + ", ".join(f"{k} {v:g}" for k, v in diag.thresholds.items()))
    return "\n".join(out)

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
        out.append(f"      fix:      {f.fix}")
    return "\n".join(out)

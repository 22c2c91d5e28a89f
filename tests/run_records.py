"""Synthetic run records, written the way the Monitor writes them, for tests that need no TensorFlow."""

import json

from redline.monitoring.record import SCHEMA

GiB = 2**30


def header(batch=32, usable=2, gpus=(), gpu_note="NVML: Driver Not Loaded", growth=None, intra=2, plan=None, spe=1):
    return {"type": "header", "schema": SCHEMA, "t0": 0.0, "started": "2026-11-22T10:00:00+00:00", "interval": 0.5, "pid": 1,
            "model": {"name": "m", "params": 1000}, "batch_size": batch, "batch_size_source": "given",
            "data_adapter": "ArrayDataAdapter", "steps_per_execution": spe, "jit_compile": False, "epochs": 3,
            "steps_per_epoch": 20, "gpu_names": list(gpus), "gpu_note": None if gpus else gpu_note,
            "runtime": {"backend": "tensorflow", "intra_op_threads": intra, "inter_op_threads": 2,
                        "gpu_memory_growth": growth if growth is not None else [False] * len(gpus), "precision": "float32"},
            "plan": plan, "snapshot": {"cpu": {"usable": usable, "usable_physical": usable}}}


def sample(t, cores=(90.0, 85.0), busy=1.8, runnable=3, gpus=None, gpu_note="NVML: Driver Not Loaded"):
    s = {"type": "sample", "t": t, "cpu_per_core_pct": list(cores), "process_cores_busy": busy, "rss_bytes": 500 * 2**20,
         "threads": 20, "runnable": runnable}
    if gpus is not None:
        s["gpus"] = gpus
    else:
        s["gpu_note"] = gpu_note
    return s


def gpu(util, used_frac=0.3, total=80 * GiB):
    return {"index": 0, "util_pct": util, "mem_used_bytes": int(total * used_frac), "mem_total_bytes": total, "power_w": 250.0}


def run_lines(epochs=3, steps=20, step_s=0.05, stall_s=0.0, spe=1, **kw):
    """A header, then epochs of steps at step_s each (stall_s extra before each later epoch's first step), samples every 0.5 s."""
    hdr = header(spe=spe, **{k: v for k, v in kw.items() if k in ("batch", "usable", "gpus", "gpu_note", "growth", "intra", "plan")})
    smp = {k: v for k, v in kw.items() if k in ("cores", "busy", "runnable", "gpu_util", "used_frac")}
    lines, t = [hdr], 0.3
    marks = []
    for e in range(epochs):
        lines.append({"type": "epoch", "epoch": e, "event": "begin", "t": round(t, 4)})
        if e:
            t += stall_s
        for s in range(spe - 1, steps, spe):
            t += step_s * spe
            marks.append([e, s, round(t, 5)])
        lines.append({"type": "steps", "marks": marks})
        marks = []
        lines.append({"type": "epoch", "epoch": e, "event": "end", "t": round(t, 4)})
    end = t
    samples = []
    tt = 0.0
    while tt <= end + 0.5:
        g = [gpu(smp["gpu_util"], smp.get("used_frac", 0.3))] if "gpu_util" in smp else None
        samples.append(sample(round(tt, 3), cores=smp.get("cores", (90.0, 85.0)), busy=smp.get("busy", 1.8),
                              runnable=smp.get("runnable", 3), gpus=g, gpu_note=kw.get("gpu_note", "NVML: Driver Not Loaded")))
        tt += 0.5
    lines[1:1] = samples  # order in the file does not matter to the reader beyond the header
    lines.append({"type": "end", "t": round(end, 4)})
    return lines


def write(path, lines, cut=None):
    text = "".join(json.dumps(line) + "\n" for line in lines)
    if cut:
        text = text[:-cut]
    path.write_text(text)
    return path

"""The bench's results as tables for people."""

from __future__ import annotations

from .text import table


def _rate(s: dict) -> str:
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def _cores(pcts) -> str:
    return "/".join(f"{p:.0f}" for p in pcts) + "%"


def _knobs(row) -> str:
    k = row.get("knobs") or {}
    parts = [f"spe={k.get('steps_per_execution')}", f"jit={'on' if k.get('jit_compile') else 'off'}"]
    if k.get("onednn") == "1":
        parts.append("oneDNN")
    if k.get("data_workers"):
        parts.append(f"{k['data_workers']} data workers")
    parts += [f"{a}!" for a in row.get("allowed", ())]
    return " ".join(parts)


def bench_text(result: dict) -> str:
    peak = result["peak"]["cpu_float32"]
    rows = []
    for r in result["workloads"]:
        b, red = r["baseline"], r["redline"]
        gpu = red["gpu_util_pct"]
        rows.append((
            r["workload"] + ("*" if r["allowed"] else ""),
            _rate(b["samples_per_s"]),
            _rate(red["samples_per_s"]),
            f"{r['ratio']:.2f}x",
            f"{_cores(b['cpu_per_core_pct'])} -> {_cores(red['cpu_per_core_pct'])}",
            "n/a" if gpu is None else "/".join(f"{g:.0f}%" for g in gpu),
            f"{r['achieved_flops'] / 1e9:.2f}",
            f"{100 * r['peak_fraction']:.1f}%" if r["peak_fraction"] is not None else "n/a",
            _knobs(r),
        ))
    out = [table(rows, ("workload", "baseline samples/s", "redline samples/s", "ratio", "CPU per core", "GPU",
                        "GFLOP/s", "of peak", "redline knobs"), width=200)]
    out.append(f"  geometric mean of ratios: {result['geomean_ratio']:.2f}x over {len(rows)} workload(s); "
               f"medians of {result['repeats']} interleaved run(s) each (min-max in brackets)")
    out.append(f"  peak dense matmul, float32, CPU: {peak / 1e9:.1f} GFLOP/s (measured in this bench)"
               + "".join(f"; {dev}: " + ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s" for k, v in rates.items())
                         for dev, rates in result["peak"].items() if dev.startswith("gpu:")))
    for note in result["peak"]["by_run"][0].get("notes", []):
        out.append(f"  note: {note}")
    if any(r["allowed"] for r in result["workloads"]):
        out.append("  * rows marked * used knobs that change the math: " + ", ".join(result["allow"]))
    for r in result["workloads"]:
        if "ceiling" in r:
            c = r["ceiling"]["samples_per_s"]
            out.append(f"  {r['workload']}: the same model on pre-augmented arrays (input for free) runs {_rate(c)} samples/s, "
                       f"redline {100 * r['ceiling_fraction']:.0f}% of that; the input pipeline alone makes "
                       f"{_rate(r['pipeline']['samples_per_s'])} samples/s; input then model, one after the other on these cores, "
                       f"would give {r['serial_estimate']:,.0f} samples/s: redline's overlap gets {100 * r['serial_fraction']:.0f}% of that. "
                       f"Input and model together cost {r['pipeline']['process_cores_busy'] / r['pipeline']['samples_per_s']['median'] * 1e6:.0f} + "
                       f"{r['ceiling']['process_cores_busy'] / r['ceiling']['samples_per_s']['median'] * 1e6:.0f} CPU-microseconds a sample, "
                       f"so these cores cannot exceed {r['cpu_bound']:,.0f} samples/s: redline reaches {100 * r['cpu_bound_fraction']:.0f}% of that")
    stalls = [(r["workload"], r["baseline"]["epoch_start_stall_s"], r["redline"]["epoch_start_stall_s"]) for r in result["workloads"]]
    if any(b or rr for _, b, rr in stalls):
        out.append("  epoch-start stall (first step of an epoch minus a typical step), median s [max]: "
                   + "; ".join(f"{n} {_stall(b)} -> {_stall(rr)}" for n, b, rr in stalls))
    return "\n".join(out)


def _stall(s) -> str:
    return "n/a" if not s else f"{s['median']:.3f} [{s['max']:.3f}]"

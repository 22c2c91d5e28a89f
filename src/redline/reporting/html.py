"""One self-contained HTML page for a run: inline SVG plots and tables, no script, nothing fetched."""

from __future__ import annotations

import html

from ..diagnosis.bottleneck import Diagnosis
from ..outputs import HTML_MARK
from ..diagnosis.run import RunSummary

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 760, 200, 52, 28, 10, 12
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
SEVERITY_COLOUR = {"error": "#c0392b", "warning": "#d68910", "info": "#2e86c1"}
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:820px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#555;margin:0 0 12px} .cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:140px}
.card b{display:block;font-size:18px} .card span{color:#555;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:13px} td,th{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
pre{background:#f6f8fa;border-radius:4px;padding:6px 8px;margin:4px 0;white-space:pre-wrap;font-size:12px}
.na{color:#777;font-style:italic;border:1px dashed #bbb;border-radius:6px;padding:14px;text-align:center}
.sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px} .note{color:#8a6d3b;background:#fcf8e3;padding:6px 10px;border-radius:4px}
svg text{font:11px system-ui,sans-serif;fill:#444}
"""


def esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _secs(t: float, t_max: float) -> str:
    return f"{t:.1f} s" if t_max < 10 else f"{t:.0f} s"


def _axes(t_max: float, y_max: float, y_label: str, y_fmt=lambda v: f"{v:g}") -> list[str]:
    out = [f'<rect x="{PAD_L}" y="{PAD_T}" width="{W - PAD_L - PAD_R}" height="{H - PAD_T - PAD_B}" fill="#fafafa" stroke="#ccc"/>']
    for i in range(5):
        v = y_max * i / 4
        y = H - PAD_B - (H - PAD_T - PAD_B) * i / 4
        out.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>')
        out.append(f'<text x="{PAD_L - 4}" y="{y + 4:.1f}" text-anchor="end">{esc(y_fmt(v))}</text>')
    for i in range(6):
        t = t_max * i / 5
        x = PAD_L + (W - PAD_L - PAD_R) * i / 5
        out.append(f'<text x="{x:.1f}" y="{H - 8}" text-anchor="middle">{_secs(t, t_max)}</text>')
    out.append(f'<text x="12" y="{(H - PAD_B + PAD_T) / 2:.0f}" transform="rotate(-90 12 {(H - PAD_B + PAD_T) / 2:.0f})" '
               f'text-anchor="middle">{esc(y_label)}</text>')
    return out


def _xy(t, v, t_max, y_max):
    x = PAD_L + (W - PAD_L - PAD_R) * (t / t_max if t_max else 0)
    y = H - PAD_B - (H - PAD_T - PAD_B) * (min(v, y_max) / y_max if y_max else 0)
    return f"{x:.1f},{y:.1f}"


def line_chart(series: list[tuple[str, list]], y_max: float, y_label: str, t_max: float | None = None, title: str = "") -> str:
    """series: (label, [(t, value), ...]); one SVG with a legend."""
    points = [p for _, pts in series for p in pts]
    t_max = t_max or max((t for t, _ in points), default=1.0) or 1.0
    y_max = y_max or max((v for _, v in points), default=1.0) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H + 18}" viewBox="0 0 {W} {H + 18}" role="img" aria-label="{esc(title)}">']
    out += _axes(t_max, y_max, y_label, (lambda v: f"{v:,.0f}") if y_max >= 10 else (lambda v: f"{v:.2g}"))
    for i, (label, pts) in enumerate(series):
        c = COLOURS[i % len(COLOURS)]
        if len(pts) == 1:
            x, y = _xy(pts[0][0], pts[0][1], t_max, y_max).split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>')
        elif pts:
            out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.6" points="{" ".join(_xy(t, v, t_max, y_max) for t, v in pts)}"/>')
        lx = PAD_L + 8 + 150 * i
        out.append(f'<rect x="{lx}" y="{H + 6}" width="10" height="10" fill="{c}"/><text x="{lx + 14}" y="{H + 15}">{esc(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def core_heatmap(samples: list, t_max: float) -> str:
    """CPU per core over time: one row per core, colour = % busy in that interval."""
    rows = [s for s in samples[1:] if s.get("cpu_per_core_pct")]
    if not rows:
        return not_available("CPU per core: no samples were recorded")
    n = len(rows[0]["cpu_per_core_pct"])
    row_h = max(4, min(18, 160 // n))
    height = PAD_T + n * row_h + PAD_B
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height + 18}" viewBox="0 0 {W} {height + 18}" role="img" aria-label="CPU per core">']
    prev_t = samples[0]["t"]
    span = W - PAD_L - PAD_R
    for s in rows:
        x0 = PAD_L + span * prev_t / t_max
        x1 = PAD_L + span * s["t"] / t_max
        for core, pct in enumerate(s["cpu_per_core_pct"][:n]):
            shade = int(235 - 2.0 * min(pct, 100))
            out.append(f'<rect x="{x0:.1f}" y="{PAD_T + core * row_h}" width="{max(x1 - x0, 0.5):.1f}" height="{row_h - 1}" '
                       f'fill="rgb({shade},{shade},255)"><title>CPU {core}: {pct:.0f}% at {s["t"]:.1f} s</title></rect>')
        prev_t = s["t"]
    step = max(1, n // 8)
    for core in range(0, n, step):
        out.append(f'<text x="{PAD_L - 4}" y="{PAD_T + core * row_h + row_h - 2}" text-anchor="end">CPU {core}</text>')
    for i in range(6):
        x = PAD_L + span * i / 5
        out.append(f'<text x="{x:.1f}" y="{PAD_T + n * row_h + 16}" text-anchor="middle">{_secs(t_max * i / 5, t_max)}</text>')
    out.append(f'<text x="{PAD_L}" y="{height + 12}">white = idle, blue = 100% busy</text></svg>')
    return "".join(out)


def breakdown_bar(diag: Diagnosis) -> str:
    b = diag.breakdown
    if b is None:
        return not_available("step-time breakdown: not measured; this record has no probe. "
                             "redline.diagnose(model, x, y, record='run.jsonl') measures it")
    parts = [("input wait", b.input_s, "#d62728"), ("fixed per-step overhead", b.overhead_s, "#ff7f0e"), ("compute", b.compute_s, "#1f77b4")]
    span, x, out = W - PAD_L - PAD_R, PAD_L, []
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="70" viewBox="0 0 {W} 70" role="img" aria-label="step-time breakdown">')
    for i, (label, sec, colour) in enumerate(parts):
        w = span * sec / b.step_s
        out.append(f'<rect x="{x:.1f}" y="6" width="{max(w, 0):.1f}" height="26" fill="{colour}"><title>{esc(label)}: {1000 * sec:.2f} ms</title></rect>')
        x += w
        lx = PAD_L + 230 * i
        out.append(f'<rect x="{lx}" y="44" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{lx + 14}" y="53">{esc(label)} {1000 * sec:.2f} ms ({100 * sec / b.step_s:.0f}%)</text>')
    out.append(f'<text x="{PAD_L - 4}" y="24" text-anchor="end">{1000 * b.step_s:.1f} ms</text></svg>')
    return "".join(out)


def not_available(text: str) -> str:
    return f'<div class="na">{esc(text)}</div>'


def _cards(items) -> str:
    return '<div class="cards">' + "".join(f'<div class="card"><b>{esc(v)}</b><span>{esc(k)}</span></div>' for k, v in items) + "</div>"


def _table(headers, rows) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(header: dict, samples: list, summary: RunSummary, diag: Diagnosis, notes=()) -> str:
    t_max = summary.duration_s or 1.0
    model = header.get("model") or {}
    title = f"redline run: {model.get('name', 'model')}"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>{HTML_MARK}<title>{esc(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>",
             f"<p class='sub'>started {esc(header.get('started'))} · backend {esc((header.get('runtime') or {}).get('backend'))} · "
             f"batch {esc(header.get('batch_size') or 'unknown')} ({esc(header.get('batch_size_source'))}) · data {esc(header.get('data_adapter'))} · "
             f"steps_per_execution {esc(header.get('steps_per_execution'))} · jit_compile {esc(header.get('jit_compile'))}</p>"]
    for n in notes:
        parts.append(f"<p class='note'>{esc(n)}</p>")
    rate = summary.samples_per_s or summary.steps_per_s
    parts.append(_cards([
        ("verdict", diag.kind), ("input", diag.input_grade or "not measured"),
        (summary.throughput_unit + " (steady)", f"{rate:,.0f}" if rate else "n/a"),
        ("median step", f"{1000 * summary.step_time_s:.1f} ms" if summary.step_time_s else "n/a"),
        ("steps recorded", summary.steps),
        ("process cores busy", f"{summary.process_cores_busy:.2f} of {summary.usable_cpus or '?'}" if summary.process_cores_busy is not None else "n/a"),
    ]))

    parts.append("<h2>Throughput</h2>")
    if summary.throughput_series:
        parts.append(line_chart([(summary.throughput_unit, list(summary.throughput_series))], 0, summary.throughput_unit, t_max, "throughput"))
    else:
        parts.append(not_available("throughput: no steps were recorded"))

    parts.append("<h2>CPU per core</h2>")
    parts.append(core_heatmap(samples, t_max))
    busy = [(s["t"], s["process_cores_busy"]) for s in samples[1:] if s.get("process_cores_busy") is not None]
    if busy:
        parts.append(line_chart([("training process: cores busy", busy)], float(max(summary.usable_cpus or 1, max(v for _, v in busy))),
                                "cores", t_max, "process cores busy"))

    parts.append("<h2>GPU utilisation</h2>")
    if summary.gpus:
        parts.append(line_chart([(f"GPU {g['index']} {g['name']}", list(g["util_series"])) for g in summary.gpus], 100.0, "% busy", t_max, "GPU"))
        parts.append(_table(("GPU", "mean util", "peak memory", "mean power"), [
            (esc(f"{g['index']} {g['name']}"), f"{g['util_mean_pct']:.0f}%",
             esc(f"{g['mem_max_bytes'] / 2**30:.1f} of {g['mem_total_bytes'] / 2**30:.1f} GiB ({100 * g['mem_max_frac']:.0f}%)"),
             esc(f"{g['power_mean_w']} W" if g["power_mean_w"] is not None else "not available")) for g in summary.gpus]))
    else:
        parts.append(not_available(f"GPU: not available ({summary.gpu_note})"))

    parts.append("<h2>Step-time breakdown</h2>")
    parts.append(breakdown_bar(diag))
    if diag.probe:
        p = diag.probe
        parts.append(_table(("measured", "samples/s"), [
            ("input pipeline alone", f"{p['pipeline_samples_per_s']:,.0f}"), ("model alone, cached batch", f"{p['model_samples_per_s']:,.0f}"),
            (esc(f"model alone, batch {2 * p['batch_size']}"), f"{p['model_2x_samples_per_s']:,.0f}"), ("real run", f"{p['run_samples_per_s']:,.0f}")]))
    rows = [("first step (tracing, compiling, first batch)", f"{summary.first_step_s:.2f} s" if summary.first_step_s is not None else "n/a"),
            ("epoch-start stalls", ", ".join(f"{s:.2f} s" for s in summary.epoch_stalls_s) or "none measured"),
            ("median step", f"{1000 * summary.step_time_s:.2f} ms" if summary.step_time_s else "n/a")]
    parts.append(_table(("part of the run", "time"), [(esc(a), esc(b)) for a, b in rows]))

    parts.append("<h2>Findings</h2>")
    if diag.findings:
        parts.append(_table(("severity", "finding", "change"), [
            (f"<span class='sev' style='background:{SEVERITY_COLOUR.get(f.severity, '#555')}'>{esc(f.severity)}</span>",
             f"<b>{esc(f.message)}</b><br>{esc(f.evidence)}", f"<pre>{esc(f.fix)}</pre>") for f in diag.findings]))
    else:
        parts.append("<p>No findings: nothing redline checks for holds this run back.</p>")
    parts.append("<p class='sub'>Thresholds: " + esc(", ".join(f"{k} {v:g}" for k, v in diag.thresholds.items())) + "</p>")

    parts.append("<h2>Plan in force</h2>")
    plan = header.get("plan")
    if plan:
        parts.append(_table(("setting", "value", "source", "reason"), [
            (esc(r["name"]), esc(r["value"]), esc(r["source"] + ("" if r["applied"] else " (advice)")), esc(r["reason"])) for r in plan]))
    else:
        parts.append("<p>No redline plan was passed to the Monitor (redline.configure() returns one). What the runtime used:</p>")
    rt = header.get("runtime") or {}
    parts.append(_table(("runtime setting", "value"), [(esc(k), esc(v)) for k, v in rt.items()]))
    parts.append("</body></html>")
    return "\n".join(parts)


__all__ = ["core_heatmap", "line_chart", "not_available", "render"]

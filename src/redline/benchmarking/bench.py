"""redline bench: baseline vs redline on the built-in workloads, interleaved, in fresh processes.

Per workload: one tuning process picks steps_per_execution and jit_compile by
in-process trials; where TensorFlow leaves oneDNN off on this CPU, interleaved
processes with it off and on decide it; then baseline and redline runs
alternate (A B A B ...) and medians are compared. The peak matmul FLOP/s is
measured in the same bench.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import time
from typing import Callable

from ..applying import require_backend
from ..detection import detect
from ..errors import RedlineError, UsageError
from ..planning import plan as make_plan
from ..workloads import WORKLOADS, get as get_workload
from .run_once import MARK, MIN_GAIN

SCHEMA = "redline.bench/1"
ALLOWABLE = ("batch", "precision")


class RunFailed(RedlineError):
    """A bench subprocess failed; the message carries its last lines of output."""


def run_child(spec: dict, env_extra: dict | None = None, timeout: float = 300) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env_extra or {})}
    proc = subprocess.run([sys.executable, "-m", "redline.benchmarking.run_once", json.dumps(spec)],
                          capture_output=True, text=True, env=env, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
    raise RunFailed(f"bench run {spec} failed with exit code {proc.returncode}:\n{tail}")


def summarise(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": list(values)}


def onednn_trial_needed(snapshot, the_plan) -> bool:
    """True where TensorFlow leaves oneDNN off (x86 without AVX-512) and nobody chose it yet."""
    if the_plan.onednn.source != "auto":
        return False
    return snapshot.cpu.has("avx2") and not snapshot.cpu.has("avx512f")


def validate(names, repeats, allow) -> tuple[list, list]:
    require_backend("tensorflow", "the built-in workloads are TensorFlow models", needed_by="redline bench")
    names = list(names) or list(WORKLOADS)
    for n in names:
        get_workload(n)  # raises UsageError naming the valid ones
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise UsageError(f"--repeats {repeats!r} is not valid: give 1 or more (3 or more for medians worth quoting)")
    allow = [a for a in allow if a]
    bad = [a for a in allow if a not in ALLOWABLE]
    if bad:
        raise UsageError(f"--allow {','.join(bad)} is not valid: the knobs that change the math are {', '.join(ALLOWABLE)}")
    return names, allow


def bench(names=(), *, repeats: int = 3, quick: bool = False, allow=(), progress: Callable[[str], None] = lambda s: None) -> dict:
    """Run the bench and return its JSON-ready results."""
    names, allow = validate(names, repeats, allow)
    started = time.time()
    snapshot = detect()
    the_plan = make_plan(snapshot)
    epochs = 2 if quick else 3
    scale = 0.35 if quick else 1.0
    try_onednn = onednn_trial_needed(snapshot, the_plan) and not quick

    progress("measuring peak matmul FLOP/s")
    peaks = [run_child({"mode": "peak", "seconds": 0.6 if quick else 1.2})]
    if try_onednn:
        peaks.append(run_child({"mode": "peak", "seconds": 0.6 if quick else 1.2}, {"TF_ENABLE_ONEDNN_OPTS": "1"}))
    peak = {"cpu_float32": max(p["cpu"]["float32"] for p in peaks), "by_run": peaks}
    for p in peaks:
        for dev, rates in p.items():
            if dev.startswith("gpu:"):
                peak[dev] = rates

    rows = []
    for name in names:
        w = get_workload(name)
        base_spec = {"workload": name, "epochs": epochs, "scale": scale, "allow": allow}
        row = {"workload": name, "description": w.description, "bound": w.bound, "flops_per_sample": w.flops_per_sample,
               "allowed": list(allow)}
        redline_env = {}
        if quick:
            knobs = None  # each redline run tunes itself, one round
        else:
            # tune steps_per_execution/jit_compile in-process, and measure; where oneDNN is worth a try, do the
            # same with it on in a second process, and keep it only if it measures MIN_GAIN faster
            progress(f"{name}: tuning steps_per_execution / jit_compile" + (", with oneDNN off and on" if try_onednn else ""))
            trials = {"default": run_child({**base_spec, "config": "redline", "mode": "tune", "measure": True})}
            if try_onednn:
                trials["onednn"] = run_child({**base_spec, "config": "redline", "mode": "tune", "measure": True},
                                             {"TF_ENABLE_ONEDNN_OPTS": "1"})
            use = "onednn" in trials and trials["onednn"]["samples_per_s"] >= trials["default"]["samples_per_s"] * MIN_GAIN
            chosen = trials["onednn" if use else "default"]["tuning"]
            knobs = {"steps_per_execution": chosen["steps_per_execution"], "jit_compile": chosen["jit_compile"]}
            row["tuning"] = {k: {"tuning": t["tuning"], "samples_per_s": t["samples_per_s"]} for k, t in trials.items()}
            row["tuning"]["onednn_chosen"] = use
            if use:
                redline_env["TF_ENABLE_ONEDNN_OPTS"] = "1"
        runs = {"baseline": [], "redline": []}
        if w.augment is not None and not quick:
            runs["ceiling"] = []  # the same model on pre-augmented arrays: what it does when input costs nothing
            runs["pipeline"] = []  # the input pipeline alone: what input costs on these cores
        for r in range(repeats):
            progress(f"{name}: run {r + 1}/{repeats} " + ", ".join(runs))
            runs["baseline"].append(run_child({**base_spec, "config": "baseline"}))
            red_spec = {**base_spec, "config": "redline", "tune_rounds": 1, "tune_jit": not quick}
            if knobs:
                red_spec["knobs"] = knobs
            runs["redline"].append(run_child(red_spec, redline_env))
            if "ceiling" in runs:
                runs["ceiling"].append(run_child({**red_spec, "config": "ceiling"}, redline_env))
                runs["pipeline"].append(run_child({**red_spec, "config": "pipeline"}, redline_env))
        for config, results in runs.items():
            rates = [x["samples_per_s"] for x in results]
            if config == "pipeline":
                row[config] = {"samples_per_s": summarise(rates),
                               "process_cores_busy": statistics.median(x["process_cores_busy"] for x in results)}
                continue
            stalls = [x["epoch_start_stall_s"] for x in results if x["epoch_start_stall_s"] is not None]
            row[config] = {
                "samples_per_s": summarise(rates),
                "epoch_start_stall_s": summarise(stalls) if stalls else None,
                "cpu_per_core_pct": [round(statistics.median(c), 1) for c in zip(*(x["cpu_per_core_pct"] for x in results))],
                "process_cores_busy": statistics.median(x["process_cores_busy"] for x in results),
                "gpu_util_pct": results[0]["gpu_util_pct"],
                "gpu_note": results[0]["gpu_note"],
                "batch_size": results[0]["batch_size"],
            }
        row["knobs"] = runs["redline"][0].get("knobs")
        row["ratio"] = row["redline"]["samples_per_s"]["median"] / row["baseline"]["samples_per_s"]["median"]
        if "ceiling" in runs:
            ceiling, pipe = row["ceiling"]["samples_per_s"]["median"], row["pipeline"]["samples_per_s"]["median"]
            row["ceiling_fraction"] = row["redline"]["samples_per_s"]["median"] / ceiling
            # input then model, one after the other on all the cores: each sample costs 1/pipe + 1/ceiling seconds
            row["serial_estimate"] = 1.0 / (1.0 / pipe + 1.0 / ceiling)
            row["serial_fraction"] = row["redline"]["samples_per_s"]["median"] / row["serial_estimate"]
            # an upper bound: CPU-seconds per sample of input alone plus model alone, over the usable cores
            cpu_per_sample = (row["pipeline"]["process_cores_busy"] / pipe + row["ceiling"]["process_cores_busy"] / ceiling)
            row["cpu_bound"] = snapshot.cpu.usable / cpu_per_sample
            row["cpu_bound_fraction"] = row["redline"]["samples_per_s"]["median"] / row["cpu_bound"]
        # ratios of runs taken side by side (A then B), as a spread for the ratio
        pairs = [b["samples_per_s"] / a["samples_per_s"] for a, b in zip(runs["baseline"], runs["redline"])]
        row["pair_ratios"] = pairs
        achieved = row["redline"]["samples_per_s"]["median"] * w.flops_per_sample
        row["achieved_flops"] = achieved
        row["baseline_flops"] = row["baseline"]["samples_per_s"]["median"] * w.flops_per_sample
        row["peak_fraction"] = achieved / peak["cpu_float32"] if peak["cpu_float32"] else None
        rows.append(row)

    ratios = [r["ratio"] for r in rows]
    return {
        "schema": SCHEMA,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "quick": quick,
        "repeats": repeats,
        "allow": allow,
        "machine": snapshot.to_dict(),
        "plan": the_plan.to_dict(),
        "peak": peak,
        "workloads": rows,
        "geomean_ratio": math.exp(sum(math.log(r) for r in ratios) / len(ratios)),
    }

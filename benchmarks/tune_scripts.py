"""`python s.py` against `redline run s.py` after `redline tune s.py`, on ordinary scripts (benchmarks/scripts/).

For each script: `redline tune` once (its wall time is recorded against the budget), then rounds of four fresh
processes, alternating: `python s.py`, `KERAS_BACKEND=jax python s.py` (what a user could do instead), `redline run
--no-tuned s.py` (the plan alone) and `redline run s.py` (the tuned choice); "vs better" is the tuned run against the
better of the first two. Each is timed over the script's own epochs, the first (tracing, compiling) left out, by
benchmarks/timing/sitecustomize.py. Medians of steps/s and the ratios to `python s.py` are printed and written,
with the ratio tune predicted beside the one `redline run` delivered.

    python benchmarks/tune_scripts.py [--repeats 5] [--budget 180] [--json FILE] [SCRIPT ...]
"""

import argparse
import glob
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMING = os.path.join(HERE, "timing")


def steady_steps_per_s(path):
    with open(path) as f:
        data = json.load(f)
    epochs = [e for e in data["epochs"] if "end" in e][1:]  # the first epoch traces and compiles
    steps = sum(e["steps"] or 0 for e in epochs)
    took = sum(e["end"] - e["begin"] for e in epochs)
    return (steps / took if took > 0 else None), data["backend"]


def run(cmd, env, timeout=600):
    """One run in a fresh working folder (scripts save checkpoints where they run), timed by the script's epochs."""
    fd, times = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    os.unlink(times)
    full = {**env, "PYTHONPATH": TIMING, "REDLINE_EPOCH_TIMES": times, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryDirectory(prefix="redline-bench-run-") as cwd:
        r = subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=timeout, cwd=cwd)
    if r.returncode != 0 or not os.path.exists(times):
        return {"error": f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else ''}"}
    rate, backend = steady_steps_per_s(times)
    os.unlink(times)
    return {"steps_per_s": rate, "backend": backend}


def machine(env):
    """What the figures were measured on: the CPU part of `redline doctor --json`, and the package versions."""
    r = subprocess.run([sys.executable, "-m", "redline", "doctor", "--json"], capture_output=True, text=True, env=env)
    try:
        snap = json.loads(r.stdout)["snapshot"]
    except (ValueError, KeyError):
        return {"error": r.stderr[-300:]}
    return {"cpu": snap.get("cpu"), "memory_total": (snap.get("memory") or {}).get("total"),
            "gpus": (snap.get("gpus") or {}).get("visible"), "runtime": snap.get("runtime")}


def setup(repeats, prefix, scripts_nargs="*"):
    """(arguments, environment with a private tuning cache) for this benchmark and benchmarks/tune_grid.py."""
    ap = argparse.ArgumentParser()
    ap.add_argument("scripts", nargs=scripts_nargs)
    ap.add_argument("--repeats", type=int, default=repeats)
    ap.add_argument("--budget", type=float, default=180)
    ap.add_argument("--json")
    ap.add_argument("--confirm", type=int, default=5, help="tune_grid.py: fresh rounds of the tuned choice and the "
                    "grid's best alone (0: none)")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix=prefix)
    return a, env


def main():
    a, env = setup(5, "redline-tune-bench-")
    scripts = [os.path.abspath(s) for s in a.scripts] or sorted(glob.glob(os.path.join(HERE, "scripts", "*.py")))
    cache = env["XDG_CACHE_HOME"]
    redline = [sys.executable, "-m", "redline"]
    rows = []
    for script in scripts:
        name = os.path.basename(script)
        t0 = time.time()
        tj = os.path.join(cache, name + ".tune.json")
        tr = subprocess.run(redline + ["tune", "--budget", str(a.budget), "--json", tj, script], capture_output=True,
                            text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=a.budget + 300)
        tune_s = time.time() - t0
        tuned = json.load(open(tj)) if tr.returncode == 0 and os.path.exists(tj) else {"error": tr.stderr[-500:]}
        print(f"{name}: tuned in {tune_s:.0f} s: {tuned.get('chosen', tuned.get('error'))}", flush=True)
        runs = {"python": [], "KERAS_BACKEND=jax": [], "run --no-tuned": [], "run (tuned)": []}
        for r in range(a.repeats):
            for config, cmd in (("python", [sys.executable, script]),
                                ("KERAS_BACKEND=jax", [sys.executable, script]),  # what a user could do instead
                                ("run --no-tuned", redline + ["run", "--quiet", "--no-tuned", script]),
                                ("run (tuned)", redline + ["run", "--quiet", script])):
                res = run(cmd, {**env, "KERAS_BACKEND": "jax"} if config.startswith("KERAS") else env)
                runs[config].append(res)
                print(f"  {config:15s} round {r + 1}: {res}", flush=True)
        med = {c: statistics.median([x["steps_per_s"] for x in v if x.get("steps_per_s")] or [float("nan")]) for c, v in runs.items()}
        pairs = [b["steps_per_s"] / p["steps_per_s"] for p, b in zip(runs["python"], runs["run (tuned)"])
                 if p.get("steps_per_s") and b.get("steps_per_s")]
        rows.append({"script": name, "tune_s": round(tune_s, 1), "budget_s": a.budget, "tuned": tuned.get("chosen"),
                     "runs": runs, "median_steps_per_s": med,
                     "ratio_tuned": med["run (tuned)"] / med["python"], "ratio_plan": med["run --no-tuned"] / med["python"],
                     "ratio_jax": med["KERAS_BACKEND=jax"] / med["python"],
                     "vs_better": med["run (tuned)"] / max(med["python"], med["KERAS_BACKEND=jax"] if med["KERAS_BACKEND=jax"] == med["KERAS_BACKEND=jax"] else 0),
                     "pair_ratios_tuned": pairs,
                     "predicted": (tuned.get("chosen") or {}).get("ratio") if isinstance(tuned, dict) else None})
    ratios = [r["ratio_tuned"] for r in rows if r["ratio_tuned"] == r["ratio_tuned"]]
    plan_ratios = [r["ratio_plan"] for r in rows if r["ratio_plan"] == r["ratio_plan"]]
    out = {"machine": machine(env), "rows": rows,
           "geomean_tuned": math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else None,
           "geomean_plan": math.exp(sum(map(math.log, plan_ratios)) / len(plan_ratios)) if plan_ratios else None}
    print()
    print(f"{'script':22s} {'python':>10s} {'jax':>8s} {'run --no-tuned':>15s} {'run (tuned)':>12s} {'plan x':>7s} "
          f"{'tuned x':>8s} {'vs better':>9s} {'predicted':>9s} {'delivered/predicted':>19s} {'tune s':>7s}  choice")
    for r in rows:
        m = r["median_steps_per_s"]
        ch = (r["tuned"] or {}).get("settings") if isinstance(r["tuned"], dict) else None
        pred = r.get("predicted")
        vs = f"{r['ratio_tuned'] / pred:19.2f}" if pred else f"{'-':>19s}"
        print(f"{r['script']:22s} {m['python']:10.1f} {m['KERAS_BACKEND=jax']:8.1f} {m['run --no-tuned']:15.1f} "
              f"{m['run (tuned)']:12.1f} {r['ratio_plan']:7.2f} {r['ratio_tuned']:8.2f} {r['vs_better']:9.2f} "
              f"{(pred or float('nan')):9.2f} {vs} {r['tune_s']:7.0f}  {ch}")
    print(f"geometric mean: plan alone {out['geomean_plan']:.2f}x, tuned {out['geomean_tuned']:.2f}x (steps/s over each script's "
          "own epochs after the first, medians of the rounds)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()

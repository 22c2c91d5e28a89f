"""`python s.py` against `redline run s.py` after `redline tune s.py`, on ordinary scripts (benchmarks/scripts/).

For each script: `redline tune` once (its wall time is recorded against the budget), then rounds of four fresh
processes, alternating: `python s.py`, `KERAS_BACKEND=jax python s.py` (what a user could do instead), `redline run
--no-tuned s.py` (the plan alone) and `redline run s.py` (the tuned choice); "vs better" is the tuned run against the
better of the first two ("vs better wall": the same on the whole process's wall time, where a backend's compile in the
first epoch counts). Each is timed over the script's own epochs, the first (tracing, compiling) left out and each
fit's last counted up to the fit's return (where Keras drops its last iterator), by
benchmarks/timing/sitecustomize.py. Medians of steps/s and the ratios to `python s.py` are printed and written, with
the ratio tune predicted beside the one `redline run` delivered, and each side of it (the steps/s predicted for
`python` and for the tuned run, against those delivered): which side a miss is on. Beside the epochs, the whole
training after the first epoch (to the last fit's return) is timed too, with its ratio against the prediction: a
script of many fits pays time between its epochs (a fold's model built and compiled, fit's set-up, evaluate) that
the epochs alone leave out and the prediction counts.

    python benchmarks/tune_scripts.py [--repeats 5] [--budget 180] [--json FILE] [--old PYTHON] [SCRIPT ...]

With --old, each script is also tuned by another redline (its interpreter given) and its tuned run joins the rounds:
the tuning time, the choice and the delivered ratio of both tuners side by side.
"""

import argparse
import glob
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMING = os.path.join(HERE, "timing")


#: a run whose counted epochs took under this many seconds in all is timed over too short a window to call a
#: delivered/predicted ratio within 15%: an epoch start's wait or a collection pause is a share of it
SHORT_S = 1.0


def steady_steps_per_s(path):
    with open(path) as f:
        data = json.load(f)
    epochs = data["epochs"]
    return steady_rate(epochs), data["backend"], steady_rate(epochs, seconds=True), training_span(epochs)


def training_span(epochs):
    """Seconds from the first epoch's end to the last fit's return: the training after the first epoch (which traces
    and compiles, as the prediction leaves out the first fit's trace), with everything between the script's fits
    (a fold's model built and compiled, fit's set-up, an evaluate) that the epochs alone leave out and a run pays. On
    kfold (4 folds of a fresh model) the epochs alone read the tuned run at 5.03x `python` where tune predicted
    3.49x; timed whole, its training ran 3.35x at 3.66x predicted."""
    done = [e for e in epochs if "end" in e]
    if len(done) < 2:
        return None
    last = done[-1].get("fit_end", done[-1]["end"])
    return round(last - done[0]["end"], 3)


def steady_rate(epochs, seconds=False):
    """Steps/s over a process's epochs after its first (which traces and compiles), each with the one iterator drop
    that is its own. On TensorFlow, `python` drops the last epoch's iterator at each epoch start and at each fit's
    return, and the drop can wait for tf.data's autotune thread: a process of E epochs in all drops E iterators, one
    an epoch. An epoch owns the drop at its start, and a fit's first epoch the drop at the return of the fit before
    (a script calling fit(epochs=1) in a loop waits there at every fit). The last fit's return is no later epoch's:
    counting it too credited a 4-epoch fit with 4 drops over its 3 counted epochs."""
    done = [e for e in epochs if "end" in e]
    steps = took = 0.0
    for before, e in zip(done, done[1:]):
        steps += e["steps"] or 0
        took += e["end"] - e["begin"] + (before["fit_end"] - before["end"] if "fit_end" in before else 0.0)
    if seconds:  # the seconds those epochs took: the window the rate is timed over
        return round(took, 3)
    return steps / took if took > 0 else None


def run(cmd, env, timeout=600):
    """One run in a fresh working folder (scripts save checkpoints where they run), timed by the script's epochs, and
    its process whole (``wall_s``: start-up, the first epoch, the code after fit and the exit too)."""
    fd, times = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    os.unlink(times)
    full = {**env, "PYTHONPATH": TIMING, "REDLINE_EPOCH_TIMES": times, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        with tempfile.TemporaryDirectory(prefix="redline-bench-run-") as cwd:
            t0 = time.perf_counter()
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, env=full, timeout=timeout, cwd=cwd)
            except subprocess.TimeoutExpired:  # one slow run (JAX on a large conv net) is a row's figure, not the end
                return {"error": f"timed out after {timeout} s"}
            wall = time.perf_counter() - t0
        if r.returncode != 0 or not os.path.exists(times):
            return {"error": f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1:] if r.stderr.strip() else ''}"}
        rate, backend, timed, span = steady_steps_per_s(times)
        return {"steps_per_s": rate, "backend": backend, "wall_s": round(wall, 2), "timed_s": timed,
                "training_s": span}
    finally:
        if os.path.exists(times):
            os.unlink(times)


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
    from redline.cli.common import budget

    ap.add_argument("--budget", type=budget, default=180.0, help="seconds (30 to 86400) or auto, as redline tune takes")
    ap.add_argument("--json")
    ap.add_argument("--allow", default="", help="tune_scripts.py: passed to redline tune (e.g. precision)")
    ap.add_argument("--old", help="tune_scripts.py: the python of another redline install (an earlier commit's venv): "
                    "its tune and its tuned run are measured beside this one's, interleaved")
    ap.add_argument("--no-jax", action="store_true", help="tune_scripts.py: leave `KERAS_BACKEND=jax python` out, "
                    "where its steps are several times slower (a depthwise convnet's 1.2 s against 0.2 s a step)")
    ap.add_argument("--confirm", type=int, default=5, help="tune_grid.py: fresh rounds of the tuned choice and the "
                    "grid's best alone (0: none)")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix=prefix)
    return a, env


def tune(python, script, budget, env, out, allow=""):
    """`redline tune` with this interpreter's redline; (seconds it took, its result or the error)."""
    t0 = time.time()
    try:
        tr = subprocess.run([python, "-m", "redline", "tune", "--budget", "auto" if budget is None else str(budget),
                             "--json", out, *(["--allow", allow] if allow else []), script],
                            capture_output=True, text=True, env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
                            timeout=(budget or 3600) + 300)
    except subprocess.TimeoutExpired:
        return time.time() - t0, {"error": f"redline tune did not end {(budget or 3600) + 300} s after its start"}
    took = time.time() - t0
    return took, (json.load(open(out)) if tr.returncode == 0 and os.path.exists(out) else {"error": tr.stderr[-500:]})


def geomean(xs):
    xs = [x for x in xs if x == x and x]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def main():
    a, env = setup(5, "redline-tune-bench-")
    try:
        measure(a, env)
    finally:  # the tuned choices each tuner kept, and its --json outputs: the benchmark's own, not the user's cache
        for folder in (env["XDG_CACHE_HOME"], env["XDG_CACHE_HOME"] + "-old"):
            shutil.rmtree(folder, ignore_errors=True)


def measure(a, env):
    if a.old and not (os.path.isfile(a.old) and os.access(a.old, os.X_OK)):
        print(f"tune_scripts.py: error: --old {a.old!r} is not an executable file; give the python of another redline "
              "install, e.g. --old /tmp/old/.venv/bin/python", file=sys.stderr)
        sys.exit(2)
    missing = [s for s in a.scripts if not os.path.isfile(s)]
    if missing:
        print(f"tune_scripts.py: error: {missing[0]!r} is not a file; give Python scripts, e.g. "
              "benchmarks/scripts/tabular_mlp.py, or none for all of benchmarks/scripts/", file=sys.stderr)
        sys.exit(2)
    scripts = [os.path.abspath(s) for s in a.scripts] or sorted(glob.glob(os.path.join(HERE, "scripts", "*.py")))
    envs = {"new": env, "old": {**env, "XDG_CACHE_HOME": env["XDG_CACHE_HOME"] + "-old"}}  # a cache each
    os.makedirs(envs["old"]["XDG_CACHE_HOME"], exist_ok=True)
    tuners = {"new": sys.executable, **({"old": a.old} if a.old else {})}
    rows = []
    for script in scripts:
        name = os.path.basename(script)
        row = {"script": name, "budget_s": a.budget}
        for which, python in tuners.items():  # each tuner once, the new one first
            took, tuned = tune(python, script, a.budget, envs[which],
                               os.path.join(envs[which]["XDG_CACHE_HOME"], name + ".tune.json"), a.allow)
            row[f"tune_s_{which}"], row[f"tuned_{which}"] = round(took, 1), tuned.get("chosen", tuned)
            row[f"reasons_{which}"] = tuned.get("reasons")  # why it chose so (its --json is removed with the cache)
            print(f"{name}: {which} tuner: {took:.0f} s: {tuned.get('chosen', tuned.get('error'))}", flush=True)
        configs = [("python", [sys.executable, script], env),
                   *([] if a.no_jax else [("KERAS_BACKEND=jax", [sys.executable, script],
                                           {**env, "KERAS_BACKEND": "jax"})]),
                   *([] if a.old else [("run --no-tuned", [sys.executable, "-m", "redline", "run", "--quiet", "--no-tuned",
                                                            script], env)]),
                   ("run (tuned)", [sys.executable, "-m", "redline", "run", "--quiet", script], envs["new"]),
                   *([("run (old tuner)", [a.old, "-m", "redline", "run", "--quiet", script], envs["old"])] if a.old else [])]
        runs = {c: [] for c, _, _ in configs}
        for r in range(a.repeats):  # interleaved: one of each per round, each round starting one config later (a
            # fixed order read the tuned run of a JAX-pinned script at 0.90x `python`, 1.04x alternated: the last of
            # each round ran slowest)
            for config, cmd, e in configs[r % len(configs):] + configs[:r % len(configs)]:
                res = run(cmd, e)
                runs[config].append(res)
                print(f"  {config:17s} round {r + 1}: {res}", flush=True)
        med = {c: statistics.median([x["steps_per_s"] for x in v if x.get("steps_per_s")] or [float("nan")])
               for c, v in runs.items()}
        ratio = {c: med[c] / med["python"] for c in med}
        walls = {c: statistics.median([x["wall_s"] for x in v if x.get("wall_s")] or [float("nan")])
                 for c, v in runs.items()}
        jax = med.get("KERAS_BACKEND=jax", float("nan"))
        best_plain = max(med["python"], jax if jax == jax else 0)
        spans = {c: statistics.median([x["training_s"] for x in v if x.get("training_s")] or [float("nan")])
                 for c, v in runs.items()}
        jax_wall = walls.get("KERAS_BACKEND=jax", float("nan"))
        best_wall = min(walls["python"], jax_wall) if jax_wall == jax_wall else walls["python"]
        row.update({"runs": runs, "median_steps_per_s": med, "ratio": ratio, "vs_better": med["run (tuned)"] / best_plain,
                    # wall: a backend's compile, paid in the first epoch, is in it (imbalanced_mlp's JAX: 1.58x its
                    # later epochs, 0.98x whole)
                    "vs_better_wall": best_wall / walls["run (tuned)"],
                    "median_wall_s": walls, "wall_ratio": walls["python"] / walls["run (tuned)"],
                    "median_training_s": spans, "training_ratio": spans["python"] / spans["run (tuned)"],
                    "predicted": (row["tuned_new"] or {}).get("ratio") if isinstance(row["tuned_new"], dict) else None})
        absolute = (row["tuned_new"] or {}).get("predicted_steps_per_s") if isinstance(row["tuned_new"], dict) else None
        if absolute:  # which side a miss is on: `python`'s epochs, or the tuned run's
            row["delivered_over_predicted"] = {"python": med["python"] / absolute["python"],
                                               "run (tuned)": med["run (tuned)"] / absolute["run"]}
        rows.append(row)
    out = {"machine": machine(env), "rows": rows,
           "geomean": {c: geomean([r["ratio"].get(c) for r in rows]) for c in rows[0]["ratio"]} if rows else {},
           "median_tune_s": {w: statistics.median([r[f"tune_s_{w}"] for r in rows]) for w in tuners} if rows else {}}
    print()
    cols = list(rows[0]["ratio"]) if rows else []
    print(f"{'script':22s} " + " ".join(f"{c:>17s}" for c in cols) + f" {'vs better':>9s} {'predicted':>9s} "
          f"{'deliv/pred':>10s} {'wall':>6s} {'vs better wall':>14s} "
          + " ".join(f"{'tune s ' + w:>10s}" for w in tuners) + "  choice (new | old)")
    for r in rows:
        pred = r.get("predicted")
        vs = f"{r['ratio']['run (tuned)'] / pred:10.2f}" if pred else f"{'-':>10s}"
        ch = " | ".join(str((r[f"tuned_{w}"] or {}).get("settings") if isinstance(r[f"tuned_{w}"], dict) else None)
                        for w in tuners)
        print(f"{r['script']:22s} " + " ".join(f"{r['median_steps_per_s'][c]:10.1f} ({r['ratio'][c]:4.2f}x)" for c in cols)
              + f" {r['vs_better']:9.2f} {(pred or float('nan')):9.2f} {vs} {r['wall_ratio']:5.2f}x"
              + f" {r['vs_better_wall']:14.2f} "
              + " ".join(f"{r[f'tune_s_{w}']:10.0f}" for w in tuners) + f"  {ch}")
    split = [r for r in rows if r.get("delivered_over_predicted")]
    if split:
        print("delivered/predicted steps/s, each side of the ratio (predicted: the tune's trial figures; `python` "
              "less its modelled epoch-start wait):")
        for r in split:
            d = r["delivered_over_predicted"]
            timed = [x.get("timed_s") for c in ("python", "run (tuned)") for x in r["runs"][c] if x.get("timed_s")]
            short = (f"  (timed over {min(timed):.2f}-{max(timed):.2f} s of epochs a run: under {SHORT_S:.0f} s, too "
                     "short a window to call 15%)" if timed and min(timed) < SHORT_S else "")
            whole = (f"; the whole training after the first epoch {r['training_ratio']:.2f}x, d/p "
                     f"{r['training_ratio'] / r['predicted']:.2f}" if r.get("predicted") and
                     r.get("training_ratio") == r.get("training_ratio") else "")
            print(f"  {r['script']:22s} python {d['python']:5.2f}  run (tuned) {d['run (tuned)']:5.2f}{whole}{short}")
    print("geometric mean against python: " + ", ".join(f"{c} {g:.2f}x" for c, g in out["geomean"].items() if g)
          + "; median tuning time: " + ", ".join(f"{w} {t:.0f} s" for w, t in out["median_tune_s"].items())
          + " (steps/s over each script's own epochs after the first, medians of the rounds; wall: `python`'s whole "
          "process over the tuned run's, start-up, first epoch and exit included)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()

"""Is `redline tune`'s choice as good as the best of an exhaustive grid of the same knobs?

For each script: `redline tune` once, then rounds over every grid point and the tuned choice, interleaved, each a
fresh `redline run` process timed over the script's own epochs after the first (benchmarks/timing/sitecustomize.py).
The grid: backend (TensorFlow, JAX) x steps_per_execution 1..256, jit_compile 1 and 16 on TensorFlow, and on JAX
the input path too (as written, and the rewrite the tuner measures for this kind of input). Each point is written as
a saved choice in its own cache folder, so `redline run` applies it exactly as it applies a tuned one. Prints
medians and the tuned choice's fraction of the grid's best.

    python benchmarks/tune_grid.py [--repeats 3] [--confirm 5] [--budget 180] [--json FILE] SCRIPT [SCRIPT ...]
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tune_scripts import machine, run, setup  # noqa: E402  (one timed run and the set-up, the same as the tune benchmark's)

SPE = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def grid(input_spec):
    points = []
    for backend in ("tensorflow", "jax"):
        for spe in SPE:
            points.append((backend, spe, False, None))
            if backend == "jax" and input_spec:
                points.append((backend, spe, False, input_spec))
        if backend == "tensorflow":
            points += [(backend, 1, True, None), (backend, 16, True, None)]
    return points


def name_of(point):
    backend, spe, jit, spec = point
    return f"{backend} spe={spe}{' jit' if jit else ''}{' input=' + spec['input'] if spec else ''}"


def main():
    a, env = setup(3, "redline-tune-grid-", "+")
    try:
        sweep(a, env)
    finally:  # the benchmark's own cache of tuned choices
        shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)


def sweep(a, env):
    cache = env["XDG_CACHE_HOME"]
    redline = [sys.executable, "-m", "redline"]
    out = {"machine": machine(env), "scripts": []}
    from redline import detect
    from redline.tuning import cache as tuned

    snapshot = detect()
    for script in a.scripts:
        tj = os.path.join(cache, "tune.json")
        subprocess.run(redline + ["tune", "--budget", "auto" if a.budget is None else str(a.budget), "--json", tj,
                                   script], capture_output=True, text=True,
                       env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=(a.budget or 3600) + 300)
        result = json.load(open(tj)) if os.path.exists(tj) else None
        chosen = result and result["chosen"]
        print(f"{os.path.basename(script)}: tuned choice {chosen and chosen['settings']}", flush=True)
        # the rewrite the tuner measures for this script's kind of input, keeping the math (not batch, not order)
        spec = next((c["input"] for c in (result or {}).get("inputs", [])
                     if c.get("input") and c["input"]["input"] in ("pipeline", "optimize", "workers")
                     and c["input"].get("deterministic", True)), None)
        homes = {}
        for point in grid(spec):
            backend, spe, jit, ispec = point
            home = tempfile.mkdtemp(prefix="point-", dir=cache)
            settings = {"env": {"KERAS_BACKEND": backend}, "compile": {"steps_per_execution": spe, **({"jit_compile": True} if jit else {})},
                        "input": ispec}
            tuned.save(script, [], snapshot, {"chosen": {"settings": settings, "ratio": None}}, {"XDG_CACHE_HOME": home})
            homes[name_of(point)] = home
        runs = {}
        for r in range(a.repeats):
            order = list(homes.items())
            if r % 2:
                order.reverse()
            for k, home in order:
                res = run(redline + ["run", "--quiet", script], {**env, "XDG_CACHE_HOME": home})
                runs.setdefault(k, []).append(res.get("steps_per_s"))
            res = run(redline + ["run", "--quiet", script], env)
            runs.setdefault("tuned", []).append(res.get("steps_per_s"))
            print(f"  round {r + 1} done", flush=True)
        med = {k: statistics.median([v for v in vs if v] or [0.0]) for k, vs in runs.items()}
        best = max((k for k in med if k != "tuned"), key=med.get)
        frac = med["tuned"] / med[best] if med[best] else None
        for k, v in sorted(med.items(), key=lambda kv: -kv[1])[:12]:
            print(f"  {k:40s} {v:10.1f}")
        print(f"  tuned / grid's best ({best}): {frac:.3f}", flush=True)
        # The best of many noisy medians is biased upwards (it was picked for being high): confirm it against the
        # tuned choice in fresh rounds of just those two, alternating.
        confirm = {"tuned": [], best: []}
        for r in range(a.confirm):
            pair = [("tuned", env), (best, {**env, "XDG_CACHE_HOME": homes[best]})]
            for k, e in (pair if r % 2 == 0 else pair[::-1]):
                confirm[k].append(run(redline + ["run", "--quiet", script], e).get("steps_per_s"))
        cmed = {k: statistics.median([v for v in vs if v] or [0.0]) for k, vs in confirm.items()}
        cfrac = cmed["tuned"] / cmed[best] if cmed[best] else None
        if a.confirm:
            print(f"  confirmation, {a.confirm} alternating rounds: tuned {cmed['tuned']:.1f}, {best} {cmed[best]:.1f}: "
                  f"{cfrac:.3f}", flush=True)
        out["scripts"].append({"script": os.path.basename(script), "chosen": chosen, "runs": runs, "medians": med,
                               "best": best, "tuned_fraction_of_best": frac, "tune_elapsed_s": result and result["elapsed_s"],
                               "confirm_runs": confirm, "confirm_medians": cmed, "confirmed_fraction": cfrac})
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()

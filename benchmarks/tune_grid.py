"""Is `redline tune`'s choice as good as the best of an exhaustive grid of the same knobs?

For each script: `redline tune` once, then rounds over every grid point (backend x steps_per_execution, and
jit_compile on TensorFlow) and the tuned choice, each a fresh `redline run` process, timed over the script's own
epochs after the first (benchmarks/timing/sitecustomize.py). Prints medians and the tuned choice's fraction of
the grid's best.

    python benchmarks/tune_grid.py [--repeats 2] [--budget 180] [--json FILE] SCRIPT [SCRIPT ...]
"""

import json
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tune_scripts import run, setup  # noqa: E402  (one timed run and the set-up, the same as the tune benchmark's)

SPE = (1, 2, 4, 8, 16, 32, 64)


def grid():
    points = []
    for backend in ("tensorflow", "jax"):
        for spe in SPE:
            points.append((backend, spe, False))
        if backend == "tensorflow":
            points += [(backend, 1, True), (backend, 16, True)]
    return points


def main():
    a, env = setup(2, "redline-tune-grid-", "+")
    cache = env["XDG_CACHE_HOME"]
    redline = [sys.executable, "-m", "redline"]
    out = []
    for script in a.scripts:
        tj = os.path.join(cache, "tune.json")
        subprocess.run(redline + ["tune", "--budget", str(a.budget), "--json", tj, script], capture_output=True, text=True,
                       env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=a.budget + 300)
        chosen = json.load(open(tj))["chosen"] if os.path.exists(tj) else None
        print(f"{os.path.basename(script)}: tuned choice {chosen and chosen['settings']}", flush=True)
        runs = {}
        for r in range(a.repeats):
            for backend, spe, jit in grid():
                cmd = redline + ["run", "--quiet", "--no-tuned", "--steps-per-execution", str(spe)]
                if jit:
                    cmd += ["--jit-compile", "true"]
                res = run(cmd + [script], {**env, "KERAS_BACKEND": backend})
                runs.setdefault(f"{backend} spe={spe}{' jit' if jit else ''}", []).append(res.get("steps_per_s"))
            res = run(redline + ["run", "--quiet", script], env)
            runs.setdefault("tuned", []).append(res.get("steps_per_s"))
            print(f"  round {r + 1} done", flush=True)
        med = {k: statistics.median([v for v in vs if v] or [0.0]) for k, vs in runs.items()}
        best = max((k for k in med if k != "tuned"), key=med.get)
        frac = med["tuned"] / med[best] if med[best] else None
        out.append({"script": os.path.basename(script), "chosen": chosen, "runs": runs, "medians": med, "best": best,
                    "tuned_fraction_of_best": frac})
        for k, v in sorted(med.items(), key=lambda kv: -kv[1]):
            print(f"  {k:28s} {v:10.1f}")
        print(f"  tuned / grid's best ({best}): {frac:.3f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1, default=str)


if __name__ == "__main__":
    main()

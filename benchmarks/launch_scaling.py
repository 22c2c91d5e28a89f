"""Scale-out on one machine: `redline launch` with 1 and 2 processes against single-process baselines without redline.

Interleaved rounds of four fresh runs of benchmarks/launch/mlp_arrays.py (32,768 rows, global batch 256, 4 epochs):
`python` (the default TensorFlow backend), `KERAS_BACKEND=jax python`, `redline launch --nproc-per-host 1` and
`redline launch --nproc-per-host 2` (each process pinned to half the cores). Samples/s over the epochs after the
first, rank 0's clock; medians of the rounds; scaling efficiency = (2-process samples/s) / (2 x 1-process samples/s).

    python benchmarks/launch_scaling.py [--repeats 3] [--json FILE]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tune_scripts import machine  # noqa: E402

SCRIPT = os.path.join(HERE, "launch", "mlp_arrays.py")
ROWS, BATCH = 32768, 256


def samples_per_s(output: str):
    secs = [float(line.split("EPOCH-SECONDS ")[1]) for line in output.splitlines() if "EPOCH-SECONDS " in line]
    steady = secs[1:]  # the first epoch compiles
    return (ROWS // BATCH) * BATCH * len(steady) / sum(steady) if steady else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS_", "TF_NUM", "PYTHONPATH"))}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    redline = [sys.executable, "-m", "redline", "launch"]
    configs = {
        "python (tensorflow)": ([sys.executable, SCRIPT, str(BATCH)], {}),
        "python (jax)": ([sys.executable, SCRIPT, str(BATCH)], {"KERAS_BACKEND": "jax"}),
        "launch 1 process": (redline + ["--nproc-per-host", "1", SCRIPT, str(BATCH)], {}),
        "launch 2 processes": (redline + ["--nproc-per-host", "2", SCRIPT, str(BATCH)], {}),
    }
    runs = {k: [] for k in configs}
    for r in range(a.repeats):
        order = list(configs.items())
        if r % 2:
            order.reverse()
        for name, (cmd, extra) in order:
            p = subprocess.run(cmd, capture_output=True, text=True, env={**env, **extra}, timeout=900)
            rate = samples_per_s(p.stdout) if p.returncode == 0 else None
            runs[name].append(rate)
            print(f"  round {r + 1} {name:22s} {rate and round(rate)} samples/s" + ("" if rate else f" FAILED {p.stderr[-300:]}"),
                  flush=True)
    med = {k: statistics.median([v for v in vs if v]) if any(vs) else None for k, vs in runs.items()}
    eff = med["launch 2 processes"] / (2 * med["launch 1 process"]) if med["launch 1 process"] and med["launch 2 processes"] else None
    print()
    for k, v in med.items():
        print(f"{k:22s} {v:12,.0f} samples/s   {v / med['python (tensorflow)']:.2f}x python (tensorflow)")
    print(f"scaling efficiency, 2 processes against 1: {eff:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine(env), "runs": runs, "medians": med, "efficiency_2_vs_1": eff,
                       "rows": ROWS, "global_batch": BATCH}, f, indent=1)


if __name__ == "__main__":
    main()

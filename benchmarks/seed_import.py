"""What seeding costs a JAX process: a trial process with its loss check, and a 2-process `redline launch`, each under
this checkout's code and under another checkout's (``--old-src``, its ``src`` folder), alternating, as wall seconds.

Keras' ``keras.utils.set_random_seed`` and ``keras.distribution.initialize`` import TensorFlow to seed it wherever it
is installed; redline seeds it once the script imports it (applying/seeding.py). The scripts here never use TensorFlow.

    python benchmarks/seed_import.py --old-src OLD_CHECKOUT/src [--repeats 5] [--json FILE]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
TINY = """
import numpy as np
import keras
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
"""
TRIAL = """
import json, sys, time
from redline.tuning.result import Candidate
from redline.tuning.trials import run_trial
trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.2, "as_run": True, "check": True,
         "follow": True}
t = time.perf_counter()
r = run_trial(sys.argv[1], [], Candidate("jax", {"KERAS_BACKEND": "jax"}), trial, 120)
print("RESULT " + json.dumps({"s": time.perf_counter() - t, "status": r["status"], "check": "loss" in r.get("check", {})}))
"""


def once(side_src: str, script: str) -> dict:
    env = {**os.environ, "PYTHONPATH": side_src, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("KERAS_BACKEND", None)
    r = subprocess.run([sys.executable, "-c", TRIAL, script], capture_output=True, text=True, env=env, timeout=300)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    trial = json.loads(line[0][7:]) if line else {"s": None, "status": r.stderr[-300:]}
    t = time.perf_counter()
    la = subprocess.run([sys.executable, "-m", "redline", "launch", "--nproc-per-host", "2", script], capture_output=True,
                        text=True, env=env, timeout=300)
    return {"trial_s": trial["s"], "trial_status": trial["status"], "launch_s": time.perf_counter() - t,
            "launch_exit": la.returncode}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-src", required=True, help="the src folder of the checkout to compare with")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", help="also write the rounds and medians to this file")
    args = ap.parse_args()
    if not (pathlib.Path(args.old_src) / "redline").is_dir():
        print(f"--old-src {args.old_src!r} holds no redline package: give a checkout's src folder", file=sys.stderr)
        return 2
    if args.repeats < 1:
        print(f"--repeats {args.repeats} is not valid: give 1 or more", file=sys.stderr)
        return 2
    if args.json and (pathlib.Path(args.json).is_dir() or not os.access(pathlib.Path(args.json).parent.resolve(), os.W_OK)):
        print(f"--json {args.json!r} cannot be written: give a file in a writable folder", file=sys.stderr)
        return 2
    sides = {"old": str(pathlib.Path(args.old_src).resolve()), "new": str(HERE.parent / "src")}
    script = pathlib.Path(tempfile.mkdtemp()) / "tiny.py"
    script.write_text(TINY)
    rows = []
    for k in range(args.repeats):
        for side in (("old", "new") if k % 2 == 0 else ("new", "old")):
            rows.append({"round": k, "side": side, **once(sides[side], str(script))})
            print(json.dumps(rows[-1]), flush=True)
    medians = {side: {what: statistics.median(r[what] for r in rows if r["side"] == side and r[what] is not None)
                      for what in ("trial_s", "launch_s")} for side in sides}
    for what in ("trial_s", "launch_s"):
        print(f"{what}: old {medians['old'][what]:.2f} s, new {medians['new'][what]:.2f} s, "
              f"new/old {medians['new'][what] / medians['old'][what]:.2f}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rows": rows, "medians": medians}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

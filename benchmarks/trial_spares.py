"""One trial process of a script, fresh against one run by a spare (tuning/spares.py) started ahead and ready.

The wall time of a per-process trial from the moment it is its turn, alternating fresh and spare, as `redline tune`
runs a rival: 2 rounds of training steps and whole epochs, no rest of the script. A spare imports keras while the
trial before it starts up, so what it saves is that import (and nothing of the measurement itself).

    python benchmarks/trial_spares.py [--repeats 5] [--env '{"TF_ENABLE_ONEDNN_OPTS": "0"}'] [--json FILE] SCRIPT
"""

import argparse
import json
import os
import statistics
import time

from redline.tuning.result import Candidate
from redline.tuning.spares import Spares
from redline.tuning.trials import run_trial

TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 2, "seconds": 0.8, "as_run": True, "check": True,
         "follow": False}


def one(script: str, cand: Candidate, spare: bool) -> tuple[float, dict]:
    """Seconds the trial took from its turn, and its result."""
    if not spare:
        return _timed(script, cand, None)
    with Spares(script, [], None) as spares:
        spares.beside(None, [cand])
        (_, proc), = spares.waiting
        deadline = time.monotonic() + 120
        while "ready" not in proc.phases and time.monotonic() < deadline:
            time.sleep(0.05)
        return _timed(script, cand, spares)


def _timed(script: str, cand: Candidate, spares) -> tuple[float, dict]:
    t0 = time.perf_counter()
    res = run_trial(script, [], cand, TRIAL, 300, **({"spares": spares} if spares is not None else {}))
    return time.perf_counter() - t0, res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("script")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--env", default="{}", help="the candidate's environment, JSON")
    ap.add_argument("--json")
    a = ap.parse_args()
    try:
        env = json.loads(a.env)
    except ValueError:
        env = None
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        ap.error(f"--env {a.env!r} is not a JSON object of strings; give e.g. --env '{{\"KERAS_BACKEND\": \"jax\"}}'")
    if not os.path.isfile(a.script):
        ap.error(f"{a.script!r} is not a file; give the path of a Python training script")
    if a.repeats < 1:
        ap.error(f"--repeats {a.repeats} is below 1; give 1 or more")
    if a.json and (os.path.isdir(a.json) or not os.access(os.path.dirname(os.path.abspath(a.json)), os.W_OK)):
        ap.error(f"--json {a.json!r} cannot be written (a folder, or its folder is not writable); give a file path")
    cand = Candidate("candidate", env)
    walls = {"fresh": [], "spare": []}
    for i in range(a.repeats):
        for mode in (("fresh", "spare") if i % 2 == 0 else ("spare", "fresh")):
            wall, res = one(a.script, cand, mode == "spare")
            walls[mode].append(round(wall, 2))
            print(f"{mode} round {i + 1}: {wall:.1f} s, {res.get('status')}, setup {res.get('setup_s')} s, "
                  f"machine lost {res.get('contention')}", flush=True)
    out = {"script": a.script, "env": cand.env, **walls,
           "median_fresh": statistics.median(walls["fresh"]), "median_spare": statistics.median(walls["spare"])}
    print(f"median: fresh {out['median_fresh']:.1f} s, spare {out['median_spare']:.1f} s, "
          f"saved {out['median_fresh'] - out['median_spare']:.1f} s a trial process")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

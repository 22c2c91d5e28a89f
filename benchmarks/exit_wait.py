"""Whole processes of `python s.py` and `redline run s.py`, interleaved: where the time goes outside the epochs.

Per run: the wall time, the start-up (to the first epoch's start), the first epoch (its tracing and compiling), the
rest of the fits (to the last fit's return), "after": from the last fit's return to the last exit handler (the script's code after fit, then the exit
handlers: redline's iterator release among them), and "exit": from there to the process's end (the interpreter's
finalization). Timed by benchmarks/timing/sitecustomize.py; each run in a fresh folder with an empty cache (so
`redline run` applies its plan, no tuned choice), or with --cache, the cache a `redline tune` wrote its choice in
(XDG_CACHE_HOME then: the tuned run, the first epoch's compile included). A `redline run` whose fits are faster but whose process is not shows
here where the difference went (a release waited for at exit: 14.8 s after a 30-s fit in 3 of 6 runs of
unet_segmentation.py before 1ad1bcc).

    python benchmarks/exit_wait.py [--repeats 5] [--modes python,run,run-norel,run-noahead] [--cache DIR] SCRIPT

run-norel: `redline run` with the iterator release off; run-noahead: with the build ahead off (the first traced
step builds the model's state, as under `python`: redline.applying.build_ahead).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {"python": ([], {}), "run": (["-m", "redline", "run"], {}),
         "run-norel": (["-m", "redline", "run"], {"REDLINE_ITERATOR_RELEASE": "0"}),
         "run-noahead": (["-m", "redline", "run"], {"REDLINE_BUILD_AHEAD": "0"})}


def one(script: str, mode: str, cache_dir: str | None = None) -> dict:
    prefix, extra = MODES[mode]
    fd, times = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    os.unlink(times)
    base = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    try:
        with tempfile.TemporaryDirectory(prefix="redline-exit-") as cwd, tempfile.TemporaryDirectory() as cache:
            env = {**base, "PYTHONPATH": os.path.join(HERE, "timing"), "REDLINE_EPOCH_TIMES": times,
                   "TF_CPP_MIN_LOG_LEVEL": "2", "XDG_CACHE_HOME": cache_dir or cache, **extra}
            t0 = time.perf_counter()  # CLOCK_MONOTONIC, as the child's perf_counter
            r = subprocess.run([sys.executable, *prefix, script], capture_output=True, text=True, env=env, cwd=cwd)
            t1 = time.perf_counter()
        if r.returncode or not os.path.exists(times):
            return {"error": f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1:]}"}
        with open(times) as f:
            data = json.load(f)
    finally:
        if os.path.exists(times):
            os.unlink(times)
    ep = data["epochs"]
    if not ep:
        return {"error": "no epoch timed"}
    fit_end = max(e.get("fit_end", e.get("end", 0.0)) for e in ep)
    first = ep[0].get("end", fit_end) - ep[0]["begin"]
    return {"wall": t1 - t0, "start": ep[0]["begin"] - t0, "first": first, "rest": fit_end - ep[0]["begin"] - first,
            "after": data["exit"] - fit_end, "exit": t1 - data["exit"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--modes", default="python,run")
    ap.add_argument("--cache", help="XDG_CACHE_HOME of a `redline tune` (its choice applied)")
    ap.add_argument("script")
    a = ap.parse_args()
    modes = a.modes.split(",")
    bad = [m for m in modes if m not in MODES]
    wrong = ([f"--modes {a.modes!r}: {', '.join(bad)} not among {', '.join(MODES)}"] if bad else []) + (
        [f"{a.script!r} is not a file: give a Python script"] if not os.path.isfile(a.script) else []) + (
        [f"--repeats {a.repeats}: give 1 or more"] if a.repeats < 1 else []) + (
        [f"--cache {a.cache!r} is not a folder: give the XDG_CACHE_HOME a `redline tune` ran with"]
        if a.cache is not None and not os.path.isdir(a.cache) else [])
    if wrong:
        print(f"exit_wait.py: error: {'; '.join(wrong)}", file=sys.stderr)
        sys.exit(2)
    script = os.path.abspath(a.script)
    got = {m: [] for m in modes}
    for r in range(a.repeats):
        for m in modes:
            res = one(script, m, a.cache and os.path.abspath(a.cache))
            got[m].append(res)
            print(f"round {r + 1} {m:9s} " + (res["error"] if "error" in res else
                                              " ".join(f"{k} {v:5.1f}" for k, v in res.items())), flush=True)
    print(f"\nmedians over {a.repeats} rounds, {os.path.basename(script)} (seconds):")
    for m in modes:
        ok = [x for x in got[m] if "error" not in x]
        if ok:
            print(f"  {m:9s} " + " ".join(f"{k} {statistics.median(x[k] for x in ok):5.1f}" for k in ok[0]))


if __name__ == "__main__":
    main()

"""Where one `redline tune` spends its time: each trial process's wall time against the seconds it measured.

    python benchmarks/tune_trace.py [--budget 180] [--verbose] SCRIPT

Runs one tune of SCRIPT in this process (tuning.search.tune, its choice cached as `redline tune` caches it: set
XDG_CACHE_HOME to keep it apart) and prints, per trial process: its candidate, its kind (first, follow: the rest of
the script runs after its figures, plain, stage), its wall time, its set-up (the script's code up to fit, after
keras was imported), its measurement, and "other": the wall time that was not measurement (imports not done ahead,
the rest of the script, process start and end); then each per-process candidate's figures or why it was dropped.
With --verbose, the in-process stage's own log of its phases too. The last line is the whole as JSON, after
"RESULT ", with what was not measured.
Run two redline installs alternately (their own python) to compare tuners.
"""

import argparse
import json
import os
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    from redline.cli.common import budget

    p.add_argument("--budget", type=budget, default=180.0, help="seconds (30 to 86400) or auto, as redline tune takes")
    p.add_argument("--verbose", action="store_true", help="print the in-process stage's own log of its phases")
    p.add_argument("script")
    a = p.parse_args()
    if not os.path.isfile(a.script):
        print(f"tune_trace.py: error: {a.script!r} is not a file; give a Python script, e.g. "
              "benchmarks/scripts/tabular_mlp.py", file=sys.stderr)
        sys.exit(2)
    from redline.errors import UsageError
    from redline.tuning import search

    run_trial, started, rows = search.run_trial, time.perf_counter(), []

    def traced(script, args, cand, trial, timeout, **kw):
        t0 = time.perf_counter()
        if a.verbose and "ladder" in trial:
            trial = {**trial, "verbose": True}
        res = run_trial(script, args, cand, trial, timeout, **kw)
        wall, measured = time.perf_counter() - t0, res.get("measure_s") or 0.0
        kind = ("stage" if "ladder" in trial else "first" if trial.get("discover") else
                "follow" if trial.get("follow") else "plain")
        rows.append({"cand": cand.name, "kind": kind, "at": round(t0 - started, 1), "wall": round(wall, 2),
                     "setup": res.get("setup_s"), "measure": measured, "other": round(wall - measured, 2),
                     "contention": res.get("contention")})
        print(f"[{t0 - started:6.1f} s] {cand.name:22s} {kind:6s} wall {wall:5.1f}  set-up {res.get('setup_s')}  "
              f"measured {measured}  other {wall - measured:5.1f}", flush=True)
        if trial.get("verbose"):
            print("\n".join("    " + line for line in (res.get("stderr") or "").splitlines()), flush=True)
        return res

    search.run_trial = traced
    try:
        r = search.tune(a.script, budget_s=a.budget)
    except UsageError as exc:
        print(f"tune_trace.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
    for c in r.processes:
        print(f"  {c.name:22s} {c.median or 0:8.2f} steps/s in {len(c.passes)} process(es)  "
              f"{c.dropped or c.error or ''}", flush=True)
    print("RESULT " + json.dumps({"elapsed": round(r.elapsed_s, 1), "chosen": r.chosen_process.name, "rows": rows,
                                  "not_measured": r.not_measured}))


if __name__ == "__main__":
    main()

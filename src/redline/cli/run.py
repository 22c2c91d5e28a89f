"""redline run SCRIPT [ARGS...]: run a training script under redline's plan, unchanged.

The plan is applied before the script imports TensorFlow; the script runs as
__main__ with its own argv, and its exit code and exceptions are its own.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from ..applying import compile_defaults, configure
from ..applying.actions import APPLIED
from ..data import rewrite
from ..detection import detect
from ..errors import UsageError
from ..planning import AUTO, plan
from ..reporting.text import plan_text, table
from .common import add_plan_options, plan_choices

COMPILE_KNOBS = ("steps_per_execution", "jit_compile")  # applied only as Model.compile defaults
HELP = "run a Python script under redline's plan, with no change to the script"


def register(sub) -> None:
    p = sub.add_parser("run", help=HELP, description=HELP)
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--compile-defaults", action="store_true",
                   help="also give Model.compile redline's steps_per_execution/jit_compile where the script passes none")
    p.add_argument("--quiet", action="store_true", help="no summary")
    p.add_argument("--no-tuned", action="store_true", help="ignore the choice `redline tune` saved for this script")
    add_plan_options(p)
    p.add_argument("script", help="the Python file to run")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.set_defaults(func=main)


def _summary(applied) -> str:
    rows = [(name, s.value, s.reason) for name, s in applied.settings() if s.source == AUTO and s.applied and s.value is not None]
    patched = [f"{a.name}={a.value!r}" for a in applied.actions if a.status == APPLIED and a.name in COMPILE_KNOBS]
    kept = [f"{n}={s.value} ({s.source})" for n, s in applied.settings() if s.source != AUTO]
    lines = [f"redline: chose {len(rows)} setting(s) automatically for this run (`redline run --dry-run` shows all, with advice):",
             table(rows, width=100)]
    if patched:
        lines.append(f"  Model.compile defaults patched in: {', '.join(patched)} (the script's own arguments win)")
    if kept:
        lines.append(f"  left as you set them: {', '.join(kept)}")
    for a in applied.failed():
        lines.append(f"  NOT applied: {a.name}={a.value!r}: {a.detail}")
    return "\n".join(lines)


def _tuned(script, args, snapshot):
    """The saved tuned choice for this script and arguments, its environment set now; None (and why) otherwise."""
    from ..tuning import cache

    entry, why = cache.lookup(script, args.args, snapshot)
    if entry is None:
        if not why.startswith("not tuned yet") and not args.quiet:
            print(f"redline: no tuned choice applied: {why}", file=sys.stderr)
        return None
    settings = entry["result"]["chosen"]["settings"]
    kept = []
    for var, value in settings.get("env", {}).items():
        if var in os.environ and os.environ[var] != value:
            kept.append(f"{var}={os.environ[var]}")
            continue
        os.environ[var] = value  # before the plan is made, so the backend and threads are planned with it
    entry["_kept"] = kept
    return entry


def _apply_tuned(entry, the_plan, args) -> None:
    """The in-process part of the tuned choice: precision, parallel maps, Model.compile defaults."""
    settings = entry["result"]["chosen"]["settings"]
    done = [f"{k}={v}" for k, v in settings.get("env", {}).items() if f"{k}={os.environ.get(k)}" not in entry["_kept"]]
    if settings.get("precision"):
        import keras

        keras.mixed_precision.set_global_policy(settings["precision"])
        done.append(f"precision {settings['precision']}")
    if settings.get("parallel_map") and the_plan.backend.value == "tensorflow":
        rewrite.parallel_maps(int(settings["parallel_map"]))
        done.append(f"parallel Dataset.map ({settings['parallel_map']} calls, order kept)")
    if settings.get("input"):
        rewrite.install(settings["input"], log=lambda msg: None if args.quiet else print(msg, file=sys.stderr))
        done.append(rewrite.describe(settings["input"]))
    knobs = {k: v for k, v in settings.get("compile", {}).items() if getattr(args, k, None) is None}
    if knobs:
        current = compile_defaults.installed() or {}
        compile_defaults.install({**current, **knobs}, log=lambda msg: None if args.quiet else print(msg, file=sys.stderr))
        done.append(", ".join(f"{k}={v!r}" for k, v in knobs.items()))
    ratio = entry["result"]["chosen"].get("ratio")
    if not args.quiet:
        kept = f"; left as you set them: {', '.join(entry['_kept'])}" if entry["_kept"] else ""
        print(f"redline: applied the choice tuned {entry['tuned']}: {', '.join(done) or 'the script as written'}"
              + (f" (measured {ratio:.2f}x)" if ratio else "") + f"{kept}; --no-tuned ignores it", file=sys.stderr)


def main(args) -> int:
    script = args.script
    if not os.path.isfile(script):
        what = "is a directory" if os.path.isdir(script) else "does not exist"
        raise UsageError(f"script {script!r} {what}; give the path of a Python file, e.g. redline run train.py --epochs 3")
    snapshot = detect()
    tuned = None if args.no_tuned else _tuned(script, args, snapshot)
    if tuned is not None and tuned["result"]["chosen"]["settings"].get("env"):
        snapshot = detect()  # the tuned backend and threads are in the environment now: plan with them
    the_plan = plan(snapshot, compile_defaults=args.compile_defaults, **plan_choices(args))
    if args.dry_run:
        print(f"redline run --dry-run {script}: the plan (nothing applied, script not run)")
        print(plan_text(the_plan))
        return 0
    applied = configure(the_plan, on_late="warn")
    if tuned is not None:
        _apply_tuned(tuned, the_plan, args)
    if not args.quiet:
        print(_summary(applied), file=sys.stderr)
    sys.argv = [script, *args.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    args.script_started = True  # from here on, errors are the script's own
    runpy.run_path(script, run_name="__main__")
    return 0

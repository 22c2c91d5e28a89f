"""redline run SCRIPT [ARGS...]: run a training script under redline's plan, unchanged.

The plan is applied before the script imports TensorFlow; the script runs as
__main__ with its own argv, and its exit code and exceptions are its own.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from ..applying import configure
from ..applying.actions import APPLIED

COMPILE_KNOBS = ("steps_per_execution", "jit_compile")  # applied only as Model.compile defaults
from ..detection import detect
from ..errors import UsageError
from ..planning import AUTO, plan
from ..reporting.text import plan_text, table
from .common import add_plan_options, plan_choices

HELP = "run a Python script under redline's plan, with no change to the script"


def register(sub) -> None:
    p = sub.add_parser("run", help=HELP, description=HELP)
    p.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    p.add_argument("--compile-defaults", action="store_true",
                   help="also give Model.compile redline's steps_per_execution/jit_compile where the script passes none")
    p.add_argument("--quiet", action="store_true", help="no summary")
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


def main(args) -> int:
    script = args.script
    if not os.path.isfile(script):
        what = "is a directory" if os.path.isdir(script) else "does not exist"
        raise UsageError(f"script {script!r} {what}; give the path of a Python file, e.g. redline run train.py --epochs 3")
    the_plan = plan(detect(), compile_defaults=args.compile_defaults, **plan_choices(args))
    if args.dry_run:
        print(f"redline run --dry-run {script}: the plan (nothing applied, script not run)")
        print(plan_text(the_plan))
        return 0
    applied = configure(the_plan, on_late="warn")
    if not args.quiet:
        print(_summary(applied), file=sys.stderr)
    sys.argv = [script, *args.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    args.script_started = True  # from here on, errors are the script's own
    runpy.run_path(script, run_name="__main__")
    return 0

"""redline bench: baseline Keras vs redline on the built-in workloads."""

from __future__ import annotations

import json
import os
import sys

from ..errors import UsageError
from ..benchmarking.bench import ALLOWABLE, bench
from ..reporting.bench import bench_text
from ..workloads import WORKLOADS

HELP = "measure baseline Keras against redline's plan on built-in workloads (fresh processes, interleaved)"


def register(sub) -> None:
    p = sub.add_parser("bench", help=HELP, description=HELP)
    p.add_argument("workloads", nargs="*", metavar="WORKLOAD", help=f"any of {', '.join(WORKLOADS)} (default: all)")
    p.add_argument("--repeats", type=int, help="interleaved runs per configuration (default 3; 1 with --quick)")
    p.add_argument("--quick", action="store_true", help="shorter runs, one repeat, a short tuning inside each run (no jit or oneDNN trials, no input ceiling)")
    p.add_argument("--allow", default="", metavar="LIST",
                   help=f"comma-separated knobs that change the math, off by default: {', '.join(ALLOWABLE)}")
    p.add_argument("--json", metavar="FILE", help="also write the results, with the machine snapshot, to FILE")
    p.set_defaults(func=main)


def _check_writable(path: str) -> None:
    """Fail before the bench runs, not after: try to open the file for writing."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"--json {path!r} is a directory; give a file path such as results.json")
    if not os.path.isdir(folder):
        raise UsageError(f"--json {path!r}: folder {folder!r} does not exist; create it or choose another path")
    existed = os.path.exists(path)
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise UsageError(f"--json {path!r} is not writable ({exc.strerror}); choose a path you can write to") from None
    if not existed:
        os.unlink(path)


def main(args) -> int:
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if args.json:
        _check_writable(args.json)

    def progress(msg):
        print(f"  .. {msg}", file=sys.stderr, flush=True)

    result = bench(args.workloads, repeats=repeats, quick=args.quick, allow=args.allow.split(","), progress=progress)
    print(bench_text(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"  results written to {args.json}")
    return 0

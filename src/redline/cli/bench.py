"""redline bench: baseline Keras vs redline on the built-in workloads."""

from __future__ import annotations

import json
import sys

from ..benchmarking.bench import ALLOWABLE, bench
from ..outputs import check_output, is_bench_results
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


def main(args) -> int:
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    if args.json:
        check_output(args.json, "--json", "bench results", replaceable=is_bench_results)

    def progress(msg):
        print(f"  .. {msg}", file=sys.stderr, flush=True)

    result = bench(args.workloads, repeats=repeats, quick=args.quick, allow=args.allow.split(","), progress=progress)
    print(bench_text(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
        print(f"  results written to {args.json}")
    return 0

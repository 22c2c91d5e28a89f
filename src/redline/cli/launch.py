"""redline launch [options] SCRIPT [ARGS...]: the unchanged script in several processes, on one host or several,
over keras.distribution (JAX), with restarts from the last backup when a worker dies."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import UsageError
from ..outputs import check_folder
from ..applying.entry import children_run_module, resolve, shown
from .common import check_script

HELP = "run a training script data-parallel in several processes and hosts (Keras JAX backend, keras.distribution)"


def register(sub) -> None:
    p = sub.add_parser("launch", help=HELP, description=HELP + ". Run the same command on every host.")
    p.add_argument("--nproc-per-host", metavar="N", help="processes on this host (default: one per NUMA node, or one "
                   "driving all GPUs)")
    p.add_argument("--hosts", default="1", metavar="N", help="hosts taking part (default 1)")
    p.add_argument("--host-rank", default="0", metavar="I", help="this host's number, 0 to hosts-1 (default 0)")
    p.add_argument("--coordinator", metavar="HOST:PORT", help="host 0's address (needed with --hosts > 1; one host: "
                   "loopback and a free port)")
    p.add_argument("--checkpoint-dir", metavar="DIR", help="back up after every epoch (rank 0, atomically) and restart "
                   "from the last backup when a worker dies")
    p.add_argument("--max-restarts", default="3", metavar="N", help="restarts after a dead worker (default 3)")
    p.add_argument("--global-batch", metavar="N", help="samples per optimizer update across all processes, kept by "
                   "accumulating gradients over N / (the script's batch) steps (default: the script's batch)")
    p.add_argument("--all-ranks", action="store_true", help="show every rank's output (default: rank 0's)")
    p.add_argument("--dry-run", action="store_true", help="print the plan for every process and start nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    p.add_argument("-m", dest="module", action="store_true",
                   help="SCRIPT is a module, run as `python -m` runs it: redline launch -m pkg.train")
    p.add_argument("script", help="the Python file to run (with -m: the module)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.set_defaults(func=main)


def _checkpoint_dir(path) -> str | None:
    return None if path is None else check_folder(path, "--checkpoint-dir")


def main(args) -> int:
    from ..detection import detect
    from ..launching.layout import LOOPBACK, plan_launch, whole
    from ..launching.ports import check_free, free_port

    max_restarts = whole(args.max_restarts, "--max-restarts", 0, "3")
    global_batch = whole(args.global_batch, "--global-batch", 1, "256") if args.global_batch is not None else None
    module = args.script if args.module else None
    if args.module:  # its file, found without importing its package; every worker runs it as `python -m` does
        args.script = resolve(module)
    check_script(args.script, "launch")
    from ..detection.script import script_backend

    pin = script_backend(args.script)
    if pin is not None and pin.backend not in (None, "jax"):  # every process runs Keras on JAX, imported first
        raise UsageError(f"{pin.at} sets KERAS_BACKEND={pin.backend!r}, and redline launch runs Keras on JAX "
                         "(keras.distribution) in every process, which would override that line: change it to 'jax' "
                         f"or drop it, or run the script on one process with redline run {shown(args.script, module)}")
    snapshot = detect()
    port = None if args.coordinator else free_port(LOOPBACK)
    plan = plan_launch(snapshot, nproc=args.nproc_per_host, hosts=args.hosts, host_rank=args.host_rank,
                       coordinator=args.coordinator, port=port)
    checkpoint_dir = _checkpoint_dir(args.checkpoint_dir)
    if plan.host_rank == 0 and args.coordinator:
        host, _, p = plan.coordinator.rpartition(":")
        check_free(host.strip("[]"), int(p), bind_all=plan.hosts > 1)
    if args.dry_run:
        if args.json:
            print(json.dumps({**plan.to_dict(), "script": args.script, "args": args.args, "global_batch": global_batch,
                              "checkpoint_dir": checkpoint_dir, "max_restarts": max_restarts}, indent=1))
        else:
            print(plan.text())
            print("  batch: the script's batch size is the global batch, split evenly across the processes"
                  + (f"; --global-batch {global_batch}: gradients accumulated up to it" if global_batch else ""))
            print(f"  checkpoints: {checkpoint_dir or 'none (--checkpoint-dir DIR to restart from a backup)'}; "
                  f"restarts after a dead worker: up to {max_restarts}")
            print("  nothing started (--dry-run)")
        return 0
    from ..applying import require_backend

    require_backend("jax", "redline launch runs keras.distribution on the JAX backend")
    print(plan.text(), file=sys.stderr, flush=True)
    from ..launching.launcher import launch

    with children_run_module(module):  # each worker runs it as `python -m` does
        outcome = launch(plan, args.script, args.args or [], checkpoint_dir=checkpoint_dir, max_restarts=max_restarts,
                         all_ranks=args.all_ranks, global_batch=global_batch)
    for e in outcome.events:
        if e["kind"] == "batch":
            print(f"redline launch: global batch {e['glob']} = {e['per_process']} per process x {e['world']} processes"
                  + (f"; {e['left_out']} row(s) of a last partial batch left out each epoch" if e["left_out"] else ""),
                  file=sys.stderr)
            break
    for e in outcome.events:
        if e["kind"] == "accumulate":
            print(f"redline launch: --global-batch {e['glob']}: gradients accumulated over {e['steps']} step(s) of "
                  f"{e['step']}", file=sys.stderr)
            break
    if outcome.code == 0:
        print(f"redline launch: {outcome.message}" + (f" after {outcome.restarts} restart(s)" if outcome.restarts else ""),
              file=sys.stderr)
        return 0
    print(f"redline launch: error: {outcome.message}", file=sys.stderr)
    return outcome.code

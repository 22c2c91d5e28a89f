"""redline diagnose: say what holds a run back, from a run record or by measuring a built-in workload."""

from __future__ import annotations

import json

from ..diagnosis import diagnose_record
from ..diagnosis.bottleneck import check_probe_args
from ..outputs import check_output, is_run_record
from ..errors import UsageError
from ..reporting.text import diagnosis_text
from ..applying.entry import children_run_module, resolve
from .common import check_script
from ..workloads import WORKLOADS

HELP = "classify a run as input-, compute- or overhead-bound and say what to change"


def register(sub) -> None:
    p = sub.add_parser("diagnose", help=HELP, description=HELP + ". Give a run record; or a training script (.py), whose "
                       "first Model.fit is measured unchanged; or --workload to measure a built-in one.")
    p.add_argument("record", nargs="?", metavar="RUN|SCRIPT",
                   help="a run record (.jsonl) written by redline.Monitor or redline.diagnose, or a Python training script")
    p.add_argument("--workload", metavar="NAME", help=f"measure a built-in workload instead: {', '.join(WORKLOADS)}")
    p.add_argument("--pipeline", choices=("naive", "redline"), default="naive",
                   help="with --workload: the tutorial's input (naive, default) or redline.data's")
    p.add_argument("--seconds", type=float, default=1.5, help="with --workload: seconds per measurement (default 1.5)")
    p.add_argument("--repeats", type=int, default=2, help="with --workload: measurements of each throughput, the fastest kept (default 2)")
    p.add_argument("--save", metavar="FILE", help="with --workload: also write the run record to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-m", dest="module", action="store_true",
                   help="SCRIPT is a module, run as `python -m` runs it: redline diagnose -m pkg.train -- ARGS")
    # after `--`, so that redline's own options may still follow a record: redline diagnose train.py --json -- --epochs 3
    p.add_argument("args", nargs="*", metavar="-- ARGS", help="with SCRIPT: the script's own arguments, after --")
    p.set_defaults(func=main)


def _diagnose_script(script, args, module=None):
    """The script's first fit measured by redline.diagnose in a trial process; its record read back here."""
    import os
    import tempfile

    from ..tuning.search import Candidate, ScriptProblem, run_trial
    from ..tuning.trials import last_output

    check_script(script, "diagnose")
    check_probe_args(args.seconds, args.repeats)
    if args.save:
        check_output(args.save, "--save", "a run record", replaceable=is_run_record)
    import shutil

    # the trial runs the script in a sandbox (tuning/sandbox.py): what it writes stays off the user's folders, and the
    # record is written outside them, then copied to --save here
    root = tempfile.mkdtemp(prefix="redline-diagnose-")
    try:
        record = os.path.join(root, "run.jsonl")
        with children_run_module(module):  # the trial runs it as `python -m` does
            res = run_trial(script, list(args.args), Candidate("as written"),
                            {"mode": "diagnose", "seconds": args.seconds, "repeats": args.repeats, "record": record,
                             "sandbox_root": root}, timeout=1800)
        if res.get("status") != "ok":
            out = last_output(res, lines=6)
            raise ScriptProblem(f"{script!r} cannot be diagnosed: {res.get('error')}"
                                + (f" (last output: {out})" if out else ""))
        rec, _, diag = diagnose_record(record)
        if args.save:
            shutil.copyfile(record, args.save)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return diag, (args.save or None), rec.notes


def main(args) -> int:
    if (args.record is None) == (args.workload is None):
        raise UsageError("give a run record (redline diagnose run.jsonl) or --workload NAME, not both and not neither")
    module = args.record if args.module and args.record is not None else None
    script = resolve(module) if module is not None else (
        args.record if args.record is not None and args.record.lower().endswith((".py", ".ipynb")) else None)
    if args.args and script is None:
        raise UsageError(f"arguments {' '.join(args.args)!r} go with a training script (redline diagnose train.py -- ARGS); "
                         "a run record takes none")
    if args.record is not None and args.save and script is None:
        raise UsageError("--save goes with --workload or a script; a run record is already saved")
    if script is not None:
        diag, path, notes = _diagnose_script(script, args, module)
    elif args.workload is not None:
        from ..benchmarking.workload_probe import diagnose_workload
        from ..workloads import get as get_workload

        get_workload(args.workload)  # an unknown name fails here, before anything is measured
        check_probe_args(args.seconds, args.repeats)
        if args.save:
            check_output(args.save, "--save", "a run record", replaceable=is_run_record)

        diag = diagnose_workload(args.workload, pipeline=args.pipeline, seconds=args.seconds, repeats=args.repeats, record=args.save)
        path, notes = args.save, ()
    else:
        rec, _, diag = diagnose_record(args.record)
        path, notes = rec.path, rec.notes
    if args.json:
        print(json.dumps({"record": path, "notes": list(notes), **diag.to_dict()}, indent=1, default=str))
    else:
        print(diagnosis_text(diag, diag.summary, notes))
    return 0

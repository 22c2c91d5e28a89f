"""redline tune SCRIPT [ARGS...]: find the fastest safe settings for an unchanged script by measuring it; keep them
for `redline run`."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from ..applying.entry import children_run_module, resolve, shown, with_args
from ..errors import UsageError
from ..outputs import check_output, is_tune_results
from ..reporting.text import table
from ..tuning.search import ALLOWABLE
from ..tuning.sizing import payback_line
from ..tuning.stall import PRIOR_DROPS, PRIOR_SHARE
from .common import budget, check_script, long_options, options_after_script

HELP = "measure an unchanged training script under candidate settings and keep the fastest for `redline run`"


def register(sub) -> None:
    p = sub.add_parser("tune", help=HELP, description=HELP + ". The script runs unchanged in trial processes until "
                       "its first Model.fit, where redline measures steady-state steps under each candidate.")
    p.add_argument("--budget", type=budget, default=180.0, metavar="SECONDS",
                   help="time for all trials (default 180), or auto: 5%% of the training the script's fits are "
                   "predicted to take as written, at least 30 s")
    p.add_argument("--allow", default="", metavar="LIST", help="knobs that change the math, off by default, comma-separated: precision (mixed precision where the "
                   "hardware computes it natively), batch (larger batches), order (a nondeterministic input order)")
    p.add_argument("--json", metavar="FILE", help="also write the full result to FILE ('-': to stdout, the table then "
                                                  "to stderr)")
    p.add_argument("--show", action="store_true", help="show the saved choice for SCRIPT [ARGS] (or say why there is none)")
    p.add_argument("--clear", action="store_true", help="forget the saved choice for SCRIPT [ARGS], or every choice without SCRIPT")
    p.add_argument("-m", dest="module", action="store_true",
                   help="SCRIPT is a module, run as `python -m` runs it: redline tune -m pkg.train")
    p.add_argument("script", nargs="?", help="the Python file to tune (with -m: the module)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.set_defaults(func=main, own_options=long_options(p))


def _check_script(script, json_file=None) -> None:
    if script is None and str(json_file or "").endswith(".py"):  # `redline tune --json train.py`: read as its FILE
        raise UsageError(f"--json takes the file to write the result to, and took {json_file!r} as it, leaving no "
                         f"script to tune: give both, e.g. redline tune --json result.json {json_file}")
    if script is None:
        raise UsageError("give the script to tune, e.g. redline tune train.py --epochs 3")
    check_script(script, "tune")


def short_error(text: str, chars: int = 200) -> str:
    """An exception as a table cell: on one line, without terminal colour codes and without the "Arguments received
    by ..." list Keras appends, cut to ``chars`` (the whole of it is in --json)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).split("Arguments received by")[0]
    text = " ".join(text.split())
    return text if len(text) <= chars else text[:chars - 3] + "..."


def _unmeasured(c, stage: str, result) -> str:
    """Why a candidate with no figures, no error and not dropped was not measured: the not-measured line that names it
    (or, for the in-process stage's, the line for its knobs), else no reason is claimed."""
    names = (f"{c.name} (", f"{c.name}:", f"{c.name},")
    if stage != "process":
        names += ("steps_per_execution", "the input path") if c.name != "as written" else ("the input path",)
    line = next((n for n in result.not_measured if n.startswith(names) and ": " in n), None)
    return f"not measured: {line.split(': ', 1)[1]}" if line else "not measured"


def _rows(result) -> list:
    rows = []
    base = result.default.median

    def row(c, ref, chosen, stage):
        if c.error and not c.runs:
            said = "not measured" if c.detail.get("budget_ended") else "dropped"
            return (stage, c.name, "-", "-", f"{said}: {short_error(c.error)}")
        if not c.runs:
            return (stage, c.name, "-", "-", f"dropped: {c.dropped}" if c.dropped else _unmeasured(c, stage, result))
        rounds = f"{len(c.runs)} round{'s' * (len(c.runs) != 1)}"
        what = f"{rounds} in {len(c.passes)} process{'es' * (len(c.passes) != 1)}" if c.figures is c.passes else rounds
        shares = [s for s in c.detail.get("contention") or [] if s is not None]  # per process: steal + other processes
        if shares:
            what += f" (machine lost {min(shares):.0%}" + (f"-{max(shares):.0%})" if len(shares) > 1 else ")")
        rng = f"{c.median:,.1f} ({min(c.runs):,.1f}-{max(c.runs):,.1f}) {what}"
        ratio = f"{c.median / ref:.2f}x" if ref else "-"
        note = "CHOSEN" if chosen else ("default" if c is result.default else (f"dropped: {c.dropped}" if c.dropped else
                                                                               "advice only" if c.advice else ""))
        if c.error:  # measured, then dropped: it fails where the script finishes, or is not safe to run
            note = f"dropped: {short_error(c.error)}"
        return (stage, c.name, rng, ratio, note)

    for c in result.processes:
        rows.append(row(c, base, c is result.chosen_process and c is not result.default, "process"))
    if result.inputs:
        ref = result.inputs[0].median
        for c in result.inputs:
            rows.append(row(c, ref, c is result.chosen_input, f"input, in '{result.chosen_process.name}'"))
    if result.inprocess:
        ref = result.inprocess[0].median
        for c in result.inprocess:
            rows.append(row(c, ref, c is result.chosen_knobs, f"in '{result.chosen_process.name}'"))
    return rows


def text(result) -> str:
    out = [table(_rows(result), ("stage", "candidate", "steps/s median (range of rounds)", "ratio", "")),
           "", "Choice:"]
    parts = result.chosen().parts()
    ratio, wait = result.ratio(), result.python_wait()
    out.append("  " + (", ".join(parts) if parts else "the script as written: nothing measured beat it beyond the noise")
               + (f"   ({ratio:.2f}x `python` as written, predicted)" if ratio and (parts or wait) else ""))
    if wait and wait.get("from") == "timed":
        out.append(f"  with `python`, an epoch start waits ~{wait['wait_s']:,.2f} s on average (epochs of "
                   f"~{wait['epoch_s']:,.1f} s) for tf.data's autotune thread, timed in {wait['epochs']} epochs run as "
                   f"`python` runs them ({wait['processes']} process(es) of the script as written); `redline run` "
                   "drops the finished iterators off the training thread, and the prediction counts that")
    elif wait:
        out.append(f"  with `python`, an epoch start waits ~{wait['wait_s']:,.2f} s on average (epochs of "
                   f"~{wait['epoch_s']:,.1f} s) for tf.data's autotune thread: {wait['lost']} of {wait['drops']} "
                   f"iterators the trials dropped ({wait.get('from', 'epoch ends')}) waited for its next wake (a share of "
                   f"{wait['share']:.0%}, from {PRIOR_SHARE:.0%} over {PRIOR_DROPS} drops to start with); "
                   "`redline run` drops them off the training thread, and the prediction counts that")
    for r in result.reasons:
        out.append(f"  because {r}")
    for a in result.advice:
        out.append(f"  advice (not applied: it changes what the script chose or does): {a}")
    for n in result.not_measured:
        out.append(f"  not measured: {n}")
    out.append(f"  tuning took {result.elapsed_s:.0f} s of a {result.budget_s:.0f} s budget"
               + payback_line(result.training_s, ratio, result.elapsed_s,
                              early=any(f.get("stops_early") for f in result.fits or ()), once_s=result.start_cost()))
    if result.touched:
        shown = ", ".join(result.touched[:5]) + (f" and {len(result.touched) - 5} more" if len(result.touched) > 5 else "")
        out.append(f"  WARNING: {len(result.touched)} file(s) in your folders changed while tuning, written by code the "
                   f"trials' sandbox does not cover (native writers): {shown}")
    return "\n".join(out)


def main(args) -> int:
    from ..detection import detect
    from ..tuning import cache

    snapshot = detect()
    module = args.script if args.module and args.script is not None else None
    said = shown(args.script, module)
    if module is not None:  # its file, found without importing its package; the trials run it as `python -m` does
        args.script = resolve(module)
    if args.clear:
        n = cache.clear(args.script, args.args or ())
        print(f"redline tune --clear: removed {n} saved file(s) (tuned choices, findings that tuning would not pay) "
              f"from {cache.cache_dir()}")
        return 0
    _check_script(args.script, args.json)
    note = options_after_script(getattr(args, "own_options", ()), "tune", said, args.args)
    if note:
        print(note, file=sys.stderr)
    if args.show:
        entry, why = cache.lookup(args.script, args.args or (), snapshot)
        if entry is None:  # and what `run --tune` (its --budget auto) found, where it found tuning would not pay
            kept = cache.skip_found(args.script, args.args or (), snapshot, None)
            if kept and kept.get("untunable"):  # not "not tuned yet: `redline tune` measures": it cannot
                print(f"redline tune --show {said}: no choice applies: `redline run --tune` found ({kept['found']}) "
                      f"that it cannot be tuned: {kept['why']}")
                return 0
            print(f"redline tune --show {said}: no choice applies: {why}" + (
                f"; `redline run --tune` found ({kept['found']}) that tuning would not pay: {kept['why']}" if kept else ""))
            return 0
        r = entry["result"]
        print(f"redline tune --show {said}: tuned {entry['tuned']}, {r['chosen']['settings']}, "
              f"ratio {r['chosen']['ratio']}")
        return 0
    allow = [a for a in args.allow.split(",") if a]
    bad = [a for a in allow if a not in ALLOWABLE]
    if bad:
        raise UsageError(f"--allow {','.join(bad)} is not valid: give a comma-separated list of {', '.join(ALLOWABLE)}, "
                         "e.g. --allow precision,batch")
    to_stdout = args.json == "-"  # the JSON alone on stdout, for a pipe; what people read goes to stderr
    if args.json and not to_stdout:
        check_output(args.json, "--json", "tune results", replaceable=is_tune_results)
    from ..applying import require_backend
    from ..detection.script import as_script_runs, script_backend

    runs = as_script_runs(snapshot, script_backend(args.script))  # the backend its own line picks, where it has one
    require_backend(runs.runtime.keras_backend, f"Keras backend from {runs.runtime.keras_backend_source}")
    from ..tuning.search import tune

    def progress(msg):
        print(f"  .. {msg}", file=sys.stderr, flush=True)

    with children_run_module(module):  # the trial processes run it as `python -m` does
        result = tune(args.script, args.args or (), budget_s=args.budget, allow=allow, snapshot=snapshot,
                      progress=progress)
    people = sys.stderr if to_stdout else sys.stdout
    print(text(result), file=people)
    data = result.to_dict()
    if to_stdout:
        json.dump(data, sys.stdout, indent=1, default=str)
        print()
    elif args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, default=str)
        print(f"  results written to {args.json}")
    path = cache.save(args.script, args.args or (), snapshot, data)
    print(f"  saved for `redline run {with_args(said, args.args)}` in {path}", file=people)
    if result.sources:  # an edit there makes the choice stale, as one in the script does (tuning/sources.py)
        base = os.path.dirname(os.path.abspath(args.script))
        print("  it rests on these files too: " + ", ".join(os.path.relpath(p, base) for p in result.sources),
              file=people)
    return 0

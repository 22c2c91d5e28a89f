"""redline run SCRIPT [ARGS...]: run a training script under redline's plan, unchanged.

The plan is applied before the script imports TensorFlow; the script runs as
__main__ with its own argv, and its exit code and exceptions are its own.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..applying import compile_defaults, per_fit
from ..applying.configure import configure_for_script
from ..applying.entry import (children_run_module, execute, package_hint, prepare, resolve, show_uncaught_from_the_script,
                              shown, with_args)
from ..applying.actions import APPLIED, SKIPPED
from ..data import rewrite
from ..detection import detect
from ..errors import UsageError
from ..planning import AUTO, plan
from ..reporting.text import plan_text, table
from ..tuning.result import Choice
from ..tuning.sizing import secs
from .common import add_plan_options, budget, check_script, long_options, options_after_script, plan_choices

COMPILE_KNOBS = ("steps_per_execution", "jit_compile")  # applied only as Model.compile defaults
HELP = "run a Python script under redline's plan, with no change to the script"


def register(sub) -> None:
    p = sub.add_parser("run", help=HELP, description=HELP)
    p.add_argument("--dry-run", action="store_true", help="print what the run would apply and stop: the tuned choice "
                   "where one applies, else the plan")
    p.add_argument("--compile-defaults", action="store_true",
                   help="also give Model.compile redline's steps_per_execution/jit_compile where the script passes none")
    p.add_argument("--quiet", action="store_true", help="no summary")
    p.add_argument("--no-tuned", action="store_true", help="ignore the choice `redline tune` saved for this script")
    p.add_argument("--tune", action="store_true",
                   help="where no saved choice applies, tune first (within --budget), then run with the choice")
    p.add_argument("--budget", type=budget, default=None, metavar="SECONDS",
                   help="with --tune: time for the trials, or auto (the default): 5%% of the training the script's fits are "
                   "predicted to take, at least 30 s")
    add_plan_options(p)
    p.add_argument("-m", dest="module", action="store_true",
                   help="SCRIPT is a module, run as `python -m` runs it: redline run -m pkg.train")
    p.add_argument("script", help="the Python file to run (with -m: the module)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    p.set_defaults(func=main, own_options=long_options(p))


def _summary(applied) -> str:
    other = [a for a in applied.actions if a.name == "backend" and a.status == SKIPPED]
    if other:  # keras came up on another backend than the plan's (configure_for_script)
        env = [f"{a.name}={a.value}" for a in applied.actions if a.status == APPLIED and a.detail == "environment"]
        return (f"redline: no plan applied: {other[0].detail}"
                + (f"; set in the environment before it started: {', '.join(env)}" if env else ""))
    chosen = [(name, s.value, s.reason) for name, s in applied.settings() if s.source == AUTO and s.applied and s.value is not None]
    rows = [r for r in chosen if not r[0].startswith("data_")]
    data = [f"{name}={value}" for name, value, _ in chosen if name.startswith("data_")]  # read by redline.data alone
    patched = [f"{a.name}={a.value!r}" for a in applied.actions if a.status == APPLIED and a.name in COMPILE_KNOBS]
    kept = [f"{n}={s.value} ({s.reason.removeprefix('Keras backend from ') if n == 'backend' else s.source})"
            for n, s in applied.settings() if s.source != AUTO]
    lines = [f"redline: chose {len(rows) + len(data)} setting(s) automatically for this run (`redline run --dry-run` shows all, with advice):",
             table(rows, width=100)]
    if data:
        lines.append(f"  for redline.data pipelines only (Keras' own input and the script's tf.data are left as they are): "
                     f"{', '.join(data)}")
    if patched:
        lines.append(f"  Model.compile defaults patched in: {', '.join(patched)} (the script's own arguments win)")
    if kept:
        lines.append(f"  left as you set them: {', '.join(kept)}")
    for a in applied.failed():
        lines.append(f"  NOT applied: {a.name}={a.value!r}: {a.detail}")
    return "\n".join(lines)


def _pinned(script, snapshot, args):
    """The snapshot as the script will run: where it sets KERAS_BACKEND itself before importing keras (keras.io's
    ``os.environ["KERAS_BACKEND"] = "jax"``), that backend, not the environment's or keras.json's; applying a plan
    for another one would import TensorFlow, and with it keras, first, so the line would be ignored."""
    from ..detection.script import as_script_runs, script_backend

    pin = script_backend(script)
    if pin is None or pin.backend is None:
        return snapshot
    if args.backend and args.backend != pin.backend:
        raise UsageError(f"--backend {args.backend} cannot apply: {pin.at} sets KERAS_BACKEND={pin.backend!r} before "
                         f"importing keras, and that line wins; drop --backend, or change the line")
    os.environ["KERAS_BACKEND"] = pin.backend  # what the script's line sets: keras imported ahead of it (the plan's
    # Model.compile defaults import it) takes the same backend
    return as_script_runs(snapshot, pin)


def _tuned(script, args, snapshot):
    """The saved tuned choice for this script and arguments, or None (and the reason said in one line).

    A choice is applied whole or not at all: where you set a variable the trials varied to another value (say
    KERAS_BACKEND), the compile settings and input path tuned together with the other value do not apply either."""
    from ..tuning import cache

    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    entry, why = cache.lookup(script, args.args, snapshot)
    if entry is None:
        if not why.startswith("not tuned yet"):
            say(f"redline: no tuned choice applied: {why}")
        return None
    given = [k for k, v in plan_choices(args).items() if v is not None and not (k == "strategy" and v == "auto")]
    if given:
        say(f"redline: the tuned choice is not applied because you gave {', '.join('--' + g.replace('_', '-') for g in given)}:"
            " the plan runs with your settings instead")
        return None
    env = Choice.from_dict(entry["result"]["chosen"]["settings"]).env
    clash = [f"{k}={os.environ[k]}" for k, v in env.items() if k in os.environ and os.environ[k] != v]
    if clash:
        tuned = ", ".join(f"{k}={v}" for k, v in env.items())
        say(f"redline: no tuned choice applied: you set {', '.join(clash)}, and the choice was measured with {tuned}; "
            f"unset it, or run `redline tune {args.tune_shown}` again with it set")
        return None
    return entry


def _apply_tuned(entry, args) -> None:
    """Exactly what was measured, nothing of the plan: the environment variables of the chosen trial process, then,
    once the script itself imports keras (so a backend it pins is its own), precision, the input path and the
    Model.compile defaults."""
    from ..applying.after_import import when_imported

    choice = Choice.from_dict(entry["result"]["chosen"]["settings"])
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    os.environ.update(choice.env)
    if choice.precision:
        when_imported("keras", lambda keras: keras.mixed_precision.set_global_policy(choice.precision))
    if choice.parallel_map:
        when_imported("tensorflow", lambda tf: rewrite.parallel_maps(int(choice.parallel_map)))
    if choice.input:
        when_imported("keras", lambda keras: rewrite.install(choice.input, log=log))
    if choice.compile:
        when_imported("keras", lambda keras: compile_defaults.install(dict(choice.compile), log=log))
    if choice.release:  # on TensorFlow only, as every trial there ran
        when_imported("keras", _release(log))
    if choice.build_ahead:  # on TensorFlow only, as every trial there ran
        when_imported("keras", _build_ahead(log))
    if choice.per_fit or choice.fits:  # after the compile defaults: each fit tuned apart gets its own knobs at its
        kept = [f"{k}={v}" for k, v in choice.env.items()] + ([f"precision {choice.precision}"] if choice.precision
                                                               else [])  # fit; one tune never saw, the script's own
        when_imported("keras", lambda keras: per_fit.install(dict(choice.per_fit), rewrite.input_kind, log=log,
                                                             known=choice.fits, kept=kept))
    for line in _choice_lines(entry, "applied "):
        log(f"redline: {line}")


def _choice_lines(entry, verb: str = "") -> list[str]:
    """A saved choice in words: its note, what it applies (in the words tune used), its prediction, and the
    tuning's advice."""
    choice = Choice.from_dict(entry["result"]["chosen"]["settings"])
    done = choice.parts()
    chosen = entry["result"]["chosen"]
    ratio, wait = chosen.get("ratio"), chosen.get("python_wait")
    against = "`python`" if "python_wait" in chosen else "the script as written"  # a choice saved before the wait
    return ([entry["note"]] if entry.get("note") else []) + [
        f"{verb}the choice tuned {entry['tuned']}: {', '.join(done) or 'the script as written'}"
        + (f" (predicted {ratio:.2f}x {against})" if ratio and (done or wait) else "")
        + ("" if choice.release or choice.build_ahead else "; nothing else changed") + "; --no-tuned ignores it"] + [
        f"advice from the tuning (not applied): {line}" for line in entry["result"].get("advice") or []]


def _release(log):
    def at_import(keras) -> None:
        from ..applying.iterator_release import install, installed

        if not installed() and install(keras) is None:
            log("redline: each epoch's finished tf.data iterator is dropped off the training thread, as in the trials")
    return at_import


def _build_ahead(log):
    def at_import(keras) -> None:
        from ..applying.build_ahead import install, installed

        if not installed() and install(keras) is None:
            log("redline: a model's state is built before its first traced step, as in the trials (TensorFlow traces "
                "it once, not twice)")
    return at_import


def tune_first(script, args, snapshot) -> dict | None:
    """--tune: where no saved choice applies, tune now (the budget auto-sized from the first trial unless given), save
    the choice, and say in one line what tuning costs against the training it serves. Where its fits are
    predicted to train for less time than tuning would take, skip it and say so."""
    from ..applying import require_backend
    from ..detection.script import as_script_runs, script_backend
    from ..tuning import cache
    from ..tuning.search import Untunable, tune

    entry, why = cache.lookup(script, args.args, snapshot)
    if entry is not None:
        return None
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    kept = cache.skip_found(script, args.args, snapshot, args.budget)
    if kept is not None:  # found by an earlier run of these very bytes: not a first trial again each run
        anyway = "" if kept.get("untunable") else f"; `redline tune {args.tune_shown}` tunes it anyway"  # else: cannot
        say(f"redline: not tuning: {kept['why']} (found by its first trial {kept['found']}{anyway}); running it "
            "without a tuned choice")
        return None
    runs = as_script_runs(snapshot, script_backend(script))  # the backend its own line picks, where it has one
    require_backend(runs.runtime.keras_backend, f"Keras backend from {runs.runtime.keras_backend_source}")
    found = []

    def worth_it(training_s: float, budget_s: float, spent_s: float, per_trial_s: float) -> bool:
        skip = not_worth(training_s, budget_s, spent_s, per_trial_s)
        if skip:
            say(f"redline: not tuning: {skip} (`redline tune {args.tune_shown}` tunes it anyway); running it without a "
                "tuned choice")
            found.append(skip)
            return False
        said = "no choice saved for it yet" if why.startswith("not tuned yet") else why  # tuning it now is the fix
        say(f"redline: tuning within {budget_s:.0f} s first ({said}); its training is predicted to take about "
            f"{secs(training_s)} s as written; --no-tuned skips this")
        return True

    try:
        result = tune(script, args.args, budget_s=args.budget, snapshot=snapshot, worth_it=worth_it,
                      progress=lambda msg: None)
    except Untunable as exc:  # no fit to measure (its own loop): the script still runs, as `run` without --tune would
        say(f"redline: not tuning: {exc.why}; running it without a tuned choice")
        try:
            cache.save_skip(script, args.args, snapshot, exc.why, args.budget, untunable=True)
        except UsageError as err:  # the run goes on; the next `run --tune` finds the same with a first trial
            say(f"redline: {err}")
        return None
    if result.status == "skipped":
        if found:
            try:
                cache.save_skip(script, args.args, snapshot, found[0], args.budget, sources=result.sources)
            except UsageError as exc:  # the run goes on; the next `run --tune` finds the same with a first trial
                say(f"redline: {exc}")
        return None
    data = result.to_dict()
    say(f"redline: tuned in {result.elapsed_s:.0f} s{undecided(data, args.tune_shown)}")
    try:
        cache.save(script, args.args, snapshot, data)
    except UsageError as exc:
        say(f"redline: {exc}; the choice applies to this run only")
        return {"tuned": "just now (not saved)", "result": data}
    return None  # saved: found by the lookup below, as on any later run


def undecided(data: dict, shown: str) -> str:
    """What the budget left unmeasured, said after "tuned in N s": the rivals that got no trial process at all (a
    choice saved now is reused by every later `run --tune`, so the user learns here that they were never measured)."""
    rivals = [n.split(" (no trial process)")[0] for n in data.get("not_measured") or [] if "(no trial process)" in n]
    if not rivals:
        return ""
    need = data.get("needs_s")  # the forecast said before the trials (tuning.sizing.need_figures)
    return (f"; the budget left {len(rivals)} rival(s) unmeasured ({', '.join(rivals)}): `redline tune {shown}` "
            + (f"(about {need:,.0f} s) " if need else "") + "measures them")


def not_worth(training_s: float, budget_s: float, spent_s: float, per_trial_s: float = 0.0) -> str | None:
    """Why `run --tune` should not tune further after the first trial (``spent_s`` seconds of it so far; another trial
    process takes ``per_trial_s``), or None. A training shorter than the tuning would take; or a first trial that left
    too little of the budget for one more trial process (xception_scratch: 89-117 s, where --budget auto gives its
    ~140 s of training 30 s; a text classifier that builds its vocabulary in Python: 18 s of 30), so nothing more would
    be measured and the choice would rest on the script as written alone."""
    if training_s < budget_s:
        return (f"its training is predicted to take about {secs(training_s)} s as written, less than tuning would take "
                f"({budget_s:.0f} s)")
    if spent_s >= budget_s:
        return (f"its first trial took {spent_s:,.0f} s, the whole of the {budget_s:.0f} s budget for a training of "
                f"about {secs(training_s)} s as written, so nothing else could be measured")
    if budget_s - 2 - spent_s < per_trial_s:  # as the trials count what is left: 2 s kept for the result
        return (f"its first trial took {spent_s:,.0f} s of the {budget_s:.0f} s budget for a training of about "
                f"{secs(training_s)} s as written, and another trial process takes about {per_trial_s:,.0f} s, so "
                "nothing else could be measured")
    return None


def main(args) -> int:
    module = args.script if args.module else None
    script = args.shown = args.script
    if args.module:  # its file, found without importing its package (which may import TensorFlow before the plan)
        script, args.shown = resolve(module), shown(args.script, module)
    check_script(script, "run", " --epochs 3", syntax=bool(args.tune))  # plain run: as python shows it
    # the script with its own arguments, as a `redline tune` the run suggests must name it: they key its choice
    args.tune_shown = with_args(args.shown, args.args)
    note = options_after_script(getattr(args, "own_options", ()), "run", args.shown, args.args)
    if note:
        print(note, file=sys.stderr)
    if args.tune and args.no_tuned:
        raise UsageError("--tune and --no-tuned contradict each other: give --tune to tune where no choice is saved, "
                         "or --no-tuned to run without one")
    if args.budget is not None and not args.tune:
        raise UsageError(f"--budget {args.budget:g} needs --tune: give redline run --tune --budget SECONDS {script}")
    snapshot = detect()
    with children_run_module(module):  # the trial processes run it as a module too
        unsaved = tune_first(script, args, snapshot) if args.tune and not args.dry_run else None
    tuned = None if args.no_tuned else (unsaved or _tuned(script, args, snapshot))
    if tuned is not None and args.dry_run:  # what the run would apply: the choice, not the plan
        print(f"redline run --dry-run {args.shown}: the tuned choice (nothing applied, script not run; the plan "
              "applies only with --no-tuned)")
        for line in _choice_lines(tuned):
            print(f"  {line}")
        return 0
    if tuned is not None:
        _apply_tuned(tuned, args)  # what the trials measured, and nothing of the plan on top
    else:
        snapshot = _pinned(script, snapshot, args)
        the_plan = plan(snapshot, compile_defaults=args.compile_defaults, **plan_choices(args))
        if args.dry_run:
            print(f"redline run --dry-run {args.shown}: the plan (nothing applied, script not run)")
            print(plan_text(the_plan))
            return 0
        # what needs keras waits for the script's own import of it: a backend it picks in a way its source does not
        # show (its arguments, a settings module) still stands; the summary comes then
        configure_for_script(the_plan, (lambda applied: None) if args.quiet else
                             (lambda applied: print(_summary(applied), file=sys.stderr, flush=True)))
    prepare(script, args.args, module)
    args.script_started = True  # from here on, errors are the script's own
    show_uncaught_from_the_script()
    try:
        execute(script, module)
    except ImportError as exc:  # a module of a package run as a file: Python's traceback, then how to run it
        hint = package_hint(script, exc)
        if hint and hasattr(exc, "add_note"):  # Python 3.11 and later
            exc.add_note(hint)
        raise
    return 0

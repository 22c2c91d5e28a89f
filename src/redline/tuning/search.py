"""redline tune: measure the user's unchanged script under candidate settings and choose, within a time budget.

First the per-process candidates (backend, oneDNN, threads, parallel maps), each in fresh trial processes,
alternating; then the in-process knobs (steps_per_execution, jit_compile) inside the best process. A candidate wins
over the default only when its gain is larger than the spread measured for both (and pays for its compile:
tuning/payoff.py); otherwise the default stays, and the result says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import ExitStack
from typing import Callable

from ..errors import UsageError
from .confirm import confirm
from .choose import MIN_RUNS, better, choose
from .compare import median
from . import spe_bound
from .absorb import BEHIND, absorb
from .passes import LONE_LEAD, PASSES, beyond_trace, process_stage, same_backend, settled, start_cap, unfair, whole_run
from .first_look import heard, watched
from .fits import longest, own_knobs, served, settle, size, unseen
from .payoff import drop_unpaid, unpaid_at_end
from .inprocess import SPE_FLATTENS, inprocess_stage
from .as_run import PY_LONG_SHARE
from .ladder import SLOW_TRACE
from .late import late_cost, late_pass
from .numerics import judge
from .verdict import process_advice, process_reason
from .result import Candidate, TuneResult
from .sizing import (AUTO_FIRST, auto_budget, auto_line, decided_line, need_figures, needed_s, needs_line,
                     predicted_training, stage_s)
from .spares import Spares, backend_for
from .candidates import precision_unasked, process_candidates, script_pins
from .trials import last_output, missing_module, run_trial

ALLOWABLE = ("precision", "batch", "order")
#: at most this share of the budget is kept back for the in-process stage while the per-process candidates are measured.
RESERVE = 0.4


class ScriptProblem(UsageError):
    """The script cannot be tuned: it fails before fit, or never calls fit."""


class Untunable(ScriptProblem):
    """Nothing in the script tune could measure: it ends, or trains in its own loop, without calling fit (``why``)."""

    def __init__(self, message: str, why: str):
        super().__init__(message)
        self.why = why


def tune(script: str, args=(), *, budget_s: float | None = 180, allow=(), snapshot=None, seconds: float = 0.8,
         progress: Callable[[str], None] = lambda s: None, complete: bool = True,
         worth_it: Callable[[float, float, float, float], bool] | None = None) -> TuneResult:
    """Measure and choose, every trial in a sandbox of its own (tuning/sandbox.py) under one scratch folder, removed
    afterwards; the user's folders are fingerprinted before and after, and any file that changed all the same is
    named in the result. Raises ScriptProblem when the script fails before fit or never calls it."""
    from .sandbox import changes, fingerprint, own_outputs

    root = tempfile.mkdtemp(prefix="redline-tune-")
    from .trials import named_folders

    # the user's folders, and the files the script names right in the temporary folder (a checkpoint there)
    folders = sorted({os.path.dirname(os.path.abspath(script)), os.getcwd(),
                      *(p for p in named_folders(script) if p.endswith("*"))})
    mine = own_outputs()  # tune's own output, redirected into one of those folders
    before = fingerprint(folders, skip=mine)
    try:
        with ExitStack() as closing:
            result = _search(script, args, budget_s=budget_s, allow=allow, snapshot=snapshot, seconds=seconds,
                             progress=progress, sandbox_root=root, complete=complete, worth_it=worth_it, closing=closing)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        touched = changes(before, fingerprint(folders, skip=mine))
    result.touched, result.sources = touched, result.default.detail.get("sources") or []
    return result


def as_process(res: dict) -> dict:
    """An in-process stage's trial as a per-process figure of its configuration: its training steps on the input as
    written (its "default" ran on the input the stage chose) and its whole epochs, measured with the script's own."""
    if res.get("status") != "ok" or not res.get("input_chosen"):
        return res
    written = (res.get("inputs") or {}).get("as written", {}).get("steps_per_s", [])
    return {**res, "candidates": {**res["candidates"], "default": {"steps_per_s": written}}}


def _search(script: str, args=(), *, budget_s: float | None, allow, snapshot, seconds: float, progress,
            sandbox_root: str, complete: bool, worth_it=None, closing: ExitStack) -> TuneResult:
    """tune() without its sandbox bookkeeping. ``budget_s`` None: sized from the first trial (auto_budget);
    ``worth_it(training_s, budget_s, spent_s, per_trial_s)`` False after the first trial: stop there (status "skipped"). ``closing``: where
    the spares (tuning/spares.py) are ended, whatever happens."""
    from ..detection import detect

    started = time.perf_counter()
    snapshot = snapshot or detect()
    backend = snapshot.runtime.keras_backend
    args = list(args)
    auto = budget_s is None
    budget_s = AUTO_FIRST if auto else budget_s
    left = lambda: budget_s - 2 - (time.perf_counter() - started)  # noqa: E731  (2 s kept for the result)
    # per-process trials: 2 rounds of training steps (the epoch overhead and the in-process stage's agreement rest on
    # them), then 3 figures of whole epochs (what the choice rests on)
    base_trial = {"candidates": {"default": {"own": True}}, "rounds": 2, "seconds": seconds, "as_run": True,
                  "check": True, **({"sandbox_root": sandbox_root,  # the first trial's initial weights, shared
                                     "weights": os.path.join(sandbox_root, "initial-weights.npz")} if sandbox_root else {})}

    default = Candidate("as written")
    progress("trial 1: the script as written")
    # the first rival's process starts beside trial 1, on the guess that the script pins no backend and sets nothing
    # before it imports keras (the two imports run side by side, each mostly on one core; trial 1's measurement
    # pauses it); trial 1's figures say whether the guess holds, and where it does not, that process ends
    guessed = closing.enter_context(Spares(script, args, None))
    ready = None  # the spares later trials take: the guess where it held, else spares for the backend the script pins

    def figures(res: dict) -> None:
        """Trial 1 has its figures and runs the rest of the script unmeasured: the next trial's process starts."""
        nonlocal ready
        pinned = backend_for(res)
        if ready is not None:
            return
        if pinned is not None:
            guessed.close()
        if pinned is not False:
            ready = guessed if pinned is None else closing.enter_context(Spares(script, args, pinned))
            guess = process_candidates(snapshot, res.get("backend") or backend, allow, **script_pins(res))
            ready.beside(None, [c for c in guess[1:] if not c.error][:1])

    t0 = time.perf_counter()
    first = run_trial(script, args, default, {**base_trial, "discover": True, "python_drops": True,
                                              "python_drops_s": PY_LONG_SHARE * budget_s}, left(),
                      # it records the script's fits
                      spares=guessed, ahead=[c for c in process_candidates(snapshot, backend, allow)[1:] if not c.error][:1],
                      on_result=figures)
    if ready is None:  # no figures: whatever the guess started ends here
        guessed.close()
    per_trial = time.perf_counter() - t0  # what one trial process costs with this script
    # what of it a run of the script would not spend: its measurements beyond their traces (passes.whole_run)
    first_wall, beyond = per_trial, beyond_trace(first)
    # how the script as written ends, training cut short after its first fit: the completion check's reference
    after = first.get("after_fit") if (first.get("after_fit") or {}).get("status") in ("complete", "incomplete") else None
    if first.get("status") in ("script-error", "no-fit", "own-loop"):
        out = last_output(first)
        said = f"{script!r} cannot be tuned: {first['error']}{missing_module(first['error'])}" + (
            f" (last output: {out})" if out else "")
        raise ScriptProblem(said) if first["status"] == "script-error" else Untunable(said, first["error"])
    absorb(default, first)
    if (first.get("check") or {}).get("steps"):  # every trial checks its loss after as many steps as the first
        base_trial["check_steps"] = first["check"]["steps"]
    if first.get("status") == "timeout":  # not the script's fault: the budget cannot hold a single trial
        raise ScriptProblem(f"{script!r}: --budget {budget_s:.0f} s is too small for even one trial here: the script as "
                            f"written (its code up to the first fit, then a few timed steps) had not been measured after "
                            f"{per_trial:.0f} s; give --budget {max(120, int(4 * per_trial)):d} or more, or --budget auto "
                            "(which lets the first trial run longer)")
    if default.error:
        raise ScriptProblem(f"{script!r}: the trial of the script as written failed: {default.error[:300]}")
    sizing, fits_seen = [w for w in [unseen(first)] if w], first.get("fits") or []
    first_rate = default.median  # the first fit's steps/s (default measures a later fit below, where one trains longest)
    maps = first.get("sequential_maps")  # None: not counted
    top = longest(fits_seen)
    if top is not None and top["index"] != fits_seen[0]["index"]:
        # a later fit trains longest (a frozen base, then the whole model; a larger model): that one is measured, in
        # every trial
        f0 = fits_seen[0]
        steps = lambda f: f"{f['epochs']} epoch(s) of {f['steps_in_epoch']} steps" + (  # noqa: E731
            f" at ~{f['step_s'] * 1000:,.1f} ms a step" if size(top) <= size(f0) else "")
        sizing.append(f"the script makes {len(fits_seen)} fits; fit {top['index']} trains longest ({steps(top)}, "
                      f"against {steps(f0)} for the first): it is the one measured, the fits before it cut short in "
                      "every trial; each other fit gets compile knobs of its own at the end, budget permitting")
        base_trial["fit_index"] = top["index"]
        default = Candidate("as written")
        later = first.get("later") or {}
        if later.get("status") == "ok" and later.get("fit_index") == top["index"]:
            # measured in the first trial too: a later trial costs it less that fit's measurement
            per_trial = max(1.0, per_trial - float(first.get("measure_s") or 0.0))
            beyond += beyond_trace(later)
            first = {**later, "fits": fits_seen, "after_fit": first.get("after_fit"), "stdout": first.get("stdout", "")}
        else:
            progress(f"trial 1, again: the script as written, measured at fit {top['index']}")
            first = {**run_trial(script, args, default, base_trial, left(), spares=ready),  # they
                     "fits": fits_seen, "sources": first.get("sources")}  # wait while it measures
        absorb(default, first)
        maps = first.get("sequential_maps", maps)  # counted up to the fit measured now (its pipeline may be new)
        if default.error:
            raise ScriptProblem(f"{script!r}: the trial of the script as written failed at fit {top['index']}: "
                                f"{default.error[:300]}")
        if (first.get("check") or {}).get("steps"):
            base_trial["check_steps"] = first["check"]["steps"]
    training_s = predicted_training(first, default)
    sure_s = predicted_training(first, default, least=True)  # what a choice's compile is weighed against (payoff)
    run_s = whole_run(first_wall, training_s, beyond)  # for passes.start_cap
    if auto:
        budget_s = auto_budget(training_s)
        sizing.append(auto_line(budget_s, training_s, first, default))
        progress(sizing[-1])
    if worth_it is not None and not worth_it(training_s or 0.0, budget_s, time.perf_counter() - started, per_trial):
        return TuneResult(script=script, args=args, budget_s=budget_s, elapsed_s=time.perf_counter() - started,
                          default=default, processes=[default], inprocess=[], chosen_process=default, chosen_knobs=None,
                          reasons=sizing, not_measured=[], status="skipped", script_output=first.get("stdout", ""),
                          training_s=training_s)
    # the backend the script really runs on: its own KERAS_BACKEND line, where it has one, wins over the environment
    backend = first.get("backend") or backend
    procs = process_candidates(snapshot, backend, allow, **script_pins(first))
    sizing += [w for w in [precision_unasked(snapshot, allow, script_pins(first).get("policy"), script, args)] if w]
    default.why = procs[0].why
    procs[0] = default
    if "Dataset" in str(first.get("data")) and backend == "tensorflow":  # fit got a tf.data pipeline (e.g. _BatchDataset)
        if maps == 0:  # the rewrite would change nothing: a trial process would measure the script as written again
            sizing.append("parallel maps: not a candidate: the script's tf.data pipeline has no sequential Dataset.map")
        else:  # measured early: a sequential map is the usual bottleneck of such scripts
            at = 1 + sum(c.name.startswith("backend ") for c in procs[1:])
            procs.insert(at, Candidate("parallel maps", trial={"parallel_map": snapshot.cpu.usable},
                                   why=f"the script's sequential Dataset.map calls run with {snapshot.cpu.usable} parallel calls, order kept"))
    # later trials' processes started ahead of their turn (tuning/spares.py), where the first trial showed it is safe
    if ready is None and backend_for(first) is not False:
        ready = closing.enter_context(Spares(script, args, backend_for(first)))
    spares = ready if backend_for(first) is not False else None

    walls = []  # (rival, seconds its trial process took): what the late pass (tuning/late.py) needs one to take

    def trial(cand, settings: dict, timeout: float, ahead=None) -> dict:
        t0, more = time.perf_counter(), ({} if spares is None else {"spares": spares, "ahead": ahead})
        if cand is default:  # the script as written: `python`'s epoch-start waits timed too (tuning/as_run.py)
            settings = {**settings, "python_drops": True}
        res = run_trial(script, args, cand, settings, timeout, **more)
        if cand is not default and "ladder" not in settings:
            walls.append((cand, time.perf_counter() - t0))
        return res

    rate = median(default.train_runs or default.runs)
    stage_need = stage_s(per_trial, 1 / rate if rate else None, first.get("steps_in_epoch"), seconds,
                         with_ladder=not spe_bound.cannot_matter(first.get("host_share")))
    rivals, forecast = sum(not c.error for c in procs[1:]), None
    if needed_s(per_trial, rivals, stage_need) > left():  # said before the trials start, with what would decide them
        spent = time.perf_counter() - started + 2
        sizing.append(needs_line(spent, per_trial, rivals, stage_need, budget_s))
        progress(sizing[-1])
        forecast = (sizing[-1], need_figures(spent, per_trial, rivals, stage_need))
    # kept back for the in-process stage: one more trial process measuring the inputs and about 9 knob candidates;
    # nothing where the stage cannot end in what is left (xception_scratch: 94 s left, a stage of ~400 s, killed with
    # nothing measured while every rival waited)
    reserve = min(stage_need, RESERVE * budget_s) if stage_need <= left() else 0.0
    # the per-process candidates (tuning/passes.py), then the choice among them
    # those `redline run` can apply first, advice only (the script's own line wins) after them: a knowledge-distillation
    # script pinned to TensorFlow (~34-s trial processes) measured JAX, advice only, and left oneDNN off and one
    # thread "not measured: the budget ran out"
    live = sorted((c for c in procs[1:] if not c.error), key=lambda c: bool(c.advice))
    cap = start_cap(run_s)  # how long another backend's trial may run with no figures (its compile not yet known)
    bound = spe_bound.host_bound(first.get("host_share")) if (first.get("trace_s") or 0.0) < SLOW_TRACE else None
    tight = live and cap and left() - reserve < cap and any(map(same_backend, live)) and not same_backend(live[0])
    if tight and bound:
        # a host-bound run with a quick trace: another backend's compile is small, and its gain is the largest
        # (argv-style MLP, --budget auto 30 s: oneDNN off and one thread measured, JAX never, at 1.0x)
        sizing.append(f"another backend goes first, although its compile is not known before it runs: the script's "
                      f"step traced in {first.get('trace_s') or 0.0:,.1f} s and {bound}: what another backend's step "
                      "changes most")
    elif tight and watched(live[0], first.get("trace_s")):
        # JAX reports its compile, and a first execution far behind is judged while it runs (tuning/first_look), so
        # where the script's own step traced quickly (its compile likely short too) JAX's trial costs about a trial
        # process: xception_scratch at 90x90 (trace 7.3 s, 5-s steps): JAX, oneDNN off and one thread all decided at
        # 180 s this way, where the order below left JAX and two processes of the script as written unmeasured
        live.sort(key=lambda c: not (same_backend(c) or heard(c)))  # a backend with no compile events after
        sizing.append(f"another backend goes first, although its compile is not known before it runs: the script's "
                      f"step traced in {first['trace_s']:,.1f} s, and once {live[0].name} reports its compile, a first "
                      "execution far behind is judged while it runs")
    elif tight:
        # it could take every second the rivals have (JAX: no figures after 243 s on xception_scratch, before the
        # watch): those whose trial process costs what the first trial's did (the script's own backend: its imports
        # and trace) first. EfficientNetB0 (trace 18 s): JAX built its model in 14 s and compiled its step in ~23 s
        live.sort(key=lambda c: not same_backend(c))
        sizing.append(f"the rivals have {max(0.0, left() - reserve):,.0f} s, less than another backend's trial may "
                      f"take before its first figures ({cap:,.0f} s: its compile is not known before it runs): those on "
                      "the script's own backend, whose trial process costs about what the first trial's did, go first")
    reasons_early, not_measured, endings, second = process_stage(
        lambda cand, extra, timeout, ahead=None: trial(cand, {**base_trial, **extra}, timeout, ahead), default, live,
        per_trial=per_trial, left=lambda: left() - reserve, progress=progress, training_s=sure_s,
        run_s=run_s)
    reasons, advice = [*sizing, *reasons_early], []

    def decide():
        """The per-process choice: learns the same, beats the script as written beyond the spread, finishes where it
        finishes."""
        for c in procs[1:]:  # a candidate whose loss leaves the script's own band is dropped, with figures
            why = judge(default.losses, c.losses, default.detail.get("check_steps"))
            if why and not c.error:
                c.error = f"learns differently: {why}"
        rivals = [c for c in procs[1:] if not c.advice and not drop_unpaid(c, default, sure_s)]  # (payoff.py)
        best = choose(default, rivals)
        if complete:  # the whole script must still finish under a choice that needs its own process
            best, confirmed, unchecked = confirm(
                default, rivals, best, pick=lambda cands: choose(default, cands),
                run=lambda c: trial(c, {**base_trial, "mode": "complete"}, min(left(), max(60.0, 3 * per_trial))),
                time_left=left, per_trial=per_trial, reference=after, ended=endings,
                recheck=lambda c, res, ref: unpaid_at_end(c, default, res, ref, sure_s))
            reasons.extend(confirmed)
            not_measured.extend(unchecked)
        return best

    def again_where_unfair(leader) -> bool:
        """One more process of the script as written where the leader ran on the machine as it was in some of its
        processes and the script as written in none (passes.unfair); True where it was measured."""
        if not unfair(default, leader) or left() < per_trial:
            return False
        shares = ", ".join(f"{x:.1%}" for x in default.detail.get("contention") or [] if x is not None) or "not known"
        reasons.append(f"another process of the script as written: '{leader.name}' ran on the machine as it was in "
                       f"{len(leader.quiet_passes)} of its processes, the script as written in none of its "
                       f"{len(default.passes)} (they lost {shares} of the machine's CPU time to steal and other "
                       "processes); where one runs quiet, the two are compared on such processes")
        progress(f"trial: as written (pass {len(default.passes) + 1} of {PASSES})")
        absorb(default, trial(default, {**base_trial, "follow": False}, left()), default)
        return True

    best = decide()
    # in-process knobs inside the best process (tuning/inprocess.py); a lone leader's second process is the stage's
    stage_args = (backend, snapshot.cpu.usable, allow, left, per_trial, progress,
                  lambda f: served(fits_seen, (f or {}).get("index", base_trial.get("fit_index", 1))))

    def trial_of(extra):
        """A trial process for the in-process stage, with ``extra`` over the stage's own settings."""
        return lambda cand, more, timeout: trial(cand, {**base_trial, **more, **extra}, timeout)

    if second is not None and best is second:
        reasons.append(f"the second process of '{second.name}': the in-process stage's trial in it")
        got = []

        def and_whole(cand, more, timeout):  # the stage's trial, also measuring the configuration as a process would
            got.append(trial_of({"as_run": True, "check": True})(cand, more, timeout))
            return got[-1]

        stage = inprocess_stage(and_whole, best, *stage_args)
        stage.drops = []  # its processes' released iterators count once, as second's (absorbed below)
        for res in got:
            absorb(second, as_process(res), default)
        again_where_unfair(second)
        lead = second.median / default.median if second.median and default.median else None
        if (len(default.passes) < 2 and lead is not None and lead < LONE_LEAD and better(second, default)
                and left() >= per_trial):
            # the lead that spared the script as written its second process did not hold in the leader's second: one
            # quiet process of either can read 15-25% off (custom_train_step: 583-909 steps/s in 8 quiet processes of
            # the script as written; a lone leader at 1.55x in its first, 1.20x in the stage's, was chosen and its
            # prediction ran 1.31x what `run` delivered)
            reasons.append(f"a second process of the script as written: '{second.name}' led it "
                           f"{second.passes[0] / default.median:.2f}x in its first process, {lead:.2f}x over its two "
                           f"(under the {LONE_LEAD}x that let one process of the script as written stand)")
            progress(f"trial: as written (pass 2 of {PASSES})")
            absorb(default, trial(default, {**base_trial, "follow": False}, left()), default)
        why = judge(default.losses, second.losses, default.detail.get("check_steps"))
        if (not why and not better(second, default) and second.median > default.median and len(default.passes) < PASSES
                and left() >= 2 * per_trial):
            for c in (default, second):  # ahead, within the noise: a third process of each, as a third pass would
                progress(f"trial: {c.name} (pass 3 of 3)")
                absorb(c, trial(c, {**base_trial, "follow": False}, left()), default)
        if why or not better(second, default):
            second.error = f"learns differently: {why}" if why else None
            second.dropped = None if why else (f"not decisively ahead after {len(second.passes)} processes, its second "
                                               f"the in-process stage's trial ({second.median:,.1f} against "
                                               f"{default.median:,.1f} steps/s)")
            reasons.append(f"'{second.name}' dropped: {second.error or second.dropped}")
            best = decide()
            if best is not second:
                stage = inprocess_stage(trial_of({}), best, *stage_args)
    else:
        if again_where_unfair(best):
            best = decide()
        stage = inprocess_stage(trial_of({}), best, *stage_args)
    advice += process_advice(procs, default, best)
    reasons.append(process_reason(best, default))
    inprocess, chosen_knobs, inputs, chosen_input = stage.inprocess, stage.chosen_knobs, stage.inputs, stage.chosen_input
    reasons += stage.reasons
    advice += stage.advice
    not_measured += stage.not_measured
    measured = next((f for f in fits_seen if f["index"] == base_trial.get("fit_index", 1)), {})
    per_fit, said, missed = own_knobs(fits_seen, measured, first_rate, default.median, per_trial, left,
                                      lambda f: inprocess_stage(trial_of({}), best, *stage_args, fit=f))
    reasons += said
    not_measured += missed
    said, not_measured = late_pass(
        lambda cand, extra, timeout, ahead=None: trial(cand, {**base_trial, **extra, "follow": False, "check": False},
                                                       timeout, ahead),
        default, live, best, not_measured, per_trial=min(per_trial, max((w for _, w in walls), default=per_trial)),
        left=left, progress=progress, training_s=sure_s, run_s=run_s, cost_of=late_cost(walls, per_trial))
    reasons += said
    if forecast and not not_measured and forecast[0] in reasons:  # decided after all: the forecast said otherwise
        reasons[reasons.index(forecast[0])] = decided_line(time.perf_counter() - started, forecast[1])
    result = TuneResult(script=script, args=args, budget_s=budget_s, elapsed_s=time.perf_counter() - started,
                        default=default, processes=procs, inprocess=inprocess, chosen_process=best,
                        chosen_knobs=chosen_knobs, reasons=reasons, not_measured=not_measured,
                        script_output=first.get("stdout", ""), inputs=inputs, chosen_input=chosen_input, advice=advice,
                        training_s=training_s, whole=stage.whole, per_fit=per_fit, fits=fits_seen,
                        stage_drops=stage.drops, needs_s=round(forecast[1][0]) if forecast else None)
    return settle(result)  # (a choice predicted to lose over the training is not applied)


__all__ = ["ALLOWABLE", "BEHIND", "MIN_RUNS", "SPE_FLATTENS", "Candidate", "ScriptProblem", "TuneResult", "Untunable",
           "better", "choose", "process_candidates", "run_trial", "settled", "tune"]

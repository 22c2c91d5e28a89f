"""The in-process stage of a trial: the input path, steps_per_execution and jit_compile, measured in interleaved rounds
from the same weights and optimizer state, inside the process that runs the user's script."""

from __future__ import annotations

import time

from . import as_run, numerics, spe_bound
from .feeds import (best_median, fastest_input, feeds_for, input_cannot_matter, prefer_as_written, rewrite_only,
                    script_input, written_note)
from . import eager_pin
from .batch_hooks import every_batch
from .ladder import PRUNE, climb, contenders
from .recompile import Recompile, build_optimizer, jit_unsupported
from .rounds import StageRuns
from .steps import Steps, untimed

#: the compile arguments the in-process stage varies; a candidate names those it sets, the rest stay the script's own.
#: PRUNE (tuning/ladder.py): under that share of the best first round, best calibration (a ladder step) or, for jit
#: on the best steps_per_execution, of the script's own compile where jit alone calibrated: not measured again.
KNOBS = ("steps_per_execution", "jit_compile", "run_eagerly", "run_functions_eagerly")


def measure_fit(model, fit, fit_args: dict, trial: dict, compiles, log, opener=open, emit=None, finish=None) -> dict:
    """The in-process candidates, measured in interleaved rounds from the same state.

    Stage 1, where ``trial["inputs"]`` asks for it: the input as written against the rewrites that fit this kind
    of input (redline.data.rewrite), at the script's own compile arguments; the winner feeds stage 2. Stage 2:
    ``trial["candidates"]`` and the steps_per_execution ladder (``trial["ladder"]``) on that input. ``emit(partial)``:
    called with what is measured so far after each stage and round, so a trial stopped at its deadline in the middle
    of a long run (a second a step, spe 8) still reports what it measured. ``finish(result)``: ends a trial that is
    a process of its own with ``result`` (a rival judged while its first execution still runs: tuning/first_look.py).
    """
    import keras

    from ..diagnosis.probe import _KeepState
    from .compare import median

    x, y, batch_size, kind, extra, steps_epoch, endless = script_input(fit_args)
    args, kwargs = compiles.calls.get(id(model), ((), {}))
    own = {k: kwargs[k] for k in ("steps_per_execution", "jit_compile") if k in kwargs}
    if getattr(model, "run_eagerly", False) is True:  # compile(run_eagerly=True), or set on the model: a debugging
        own["run_eagerly"] = True  # session's line left in (tuning/inprocess.py measures the graph as advice)
    if keras.backend.backend() == "tensorflow" and eager_pin.eager():  # tf.config.run_functions_eagerly(True)
        own[eager_pin.KNOB] = True
    seconds = trial.get("seconds", 1.0)
    # budget_s: from now (redline.tune() in a notebook); deadline: a wall-clock time set by the parent process
    deadline = time.time() + trial["budget_s"] if trial.get("budget_s") else trial.get("deadline")
    late = lambda: deadline is not None and time.time() > deadline  # noqa: E731
    rounds = trial.get("rounds", 3)
    own_spe = own.get("steps_per_execution", 1) if isinstance(own.get("steps_per_execution", 1), int) else 1
    own_extras = as_run.extras(fit_args)  # the script's callbacks and verbose go with every measurement
    epochs = max(1, int(fit_args.get("epochs") or 1) - int(fit_args.get("initial_epoch") or 0))
    out = {"steps_in_epoch": steps_epoch, "epochs": epochs, "batch_size": batch_size, "script_compile": own,
           "script_compile_at": getattr(compiles, "lines", {}).get(id(model)),
           "batch_callbacks": every_batch(fit_args.get("callbacks")), "eager_at": eager_pin.where(),
           "data": type(x).__name__,
           "input_kind": kind, "candidates": {}, "inputs": {}, "not_measured": [],
           "iterator_each_epoch": not fit_args.get("steps_per_epoch")}  # Keras makes one an epoch (tuning.stall)

    def partial() -> None:
        if emit is not None:
            emit({**out, "partial": True, "backend": keras.backend.backend()})

    # the inputs by name
    feeds, specs = feeds_for(trial.get("inputs"), kind, x, y, batch_size, fit_args, extra, steps_epoch, endless, out)

    def knobs_of(cand) -> dict:
        """The compile arguments ``cand`` sets itself; every other one stays as the script passes it."""
        return {} if cand.get("own") else {k: cand[k] for k in KNOBS if k in cand}

    recompile = Recompile(model, compiles, knobs_of)

    def spe_of(cand) -> int:
        return int(knobs_of(cand).get("steps_per_execution", kwargs.get("steps_per_execution", 1)))

    t_start = time.perf_counter()
    phase = lambda what: log(f"  [{time.perf_counter() - t_start:6.2f} s] {what}")  # noqa: E731  (verbose trials)
    runs = StageRuns({"trial": trial, "out": out, "log": log, "late": late, "phase": phase, "partial": partial,
                      "opener": opener, "seconds": seconds, "rounds": rounds,
                      "finish": finish and (lambda: finish({**out, "backend": keras.backend.backend()}))},
                     model, fit, feeds, own_extras, recompile, knobs_of, spe_of)
    run, size, calibrate, measure = runs.run, runs.size, runs.calibrate, runs.measure
    plan, calib, timed, hosts, traced = runs.plan, runs.calib, runs.timed, runs.hosts, runs.traced
    if not model.built or not model.optimizer.built:  # built, so their whole state can be put back
        if not (model.built and build_optimizer(model, log)):  # a model built at its construction needs no step: its
            # optimizer is built as fit builds it, the calibration's warm-up traces the step (a step of seconds spared)
            run({"own": True}, 1, 1)  # one step builds the model and its optimizer
            now = time.perf_counter()  # the script's own step function, traced
            traced["build"] = now - t_start - untimed(t_start, now)
    with _KeepState(model) as keep:
        runs.keep = keep
        chosen_input = "as written"
        if specs:  # stage 1: the input path, at the script's own compile arguments
            stage = {"as written": {"own": True}, **{n: {"own": True, "input": n} for n in specs}}
            runs.epoch_starts = True
            # longer runs than stage 2: an input path shows at epoch starts as much as in steps (a finite tf.data input
            # stalls some, at random, while its autotune thread winds down), so each run spans one where two epochs
            # take under twice its seconds; calibrated as stage 2 calibrates the script's own compile (reused there)
            if calibrate("as written", stage["as written"], out["inputs"]):
                size("as written", calib["as written"], feeds["as written"], spe_of(stage["as written"]), 2 * seconds, 2)
            why = input_cannot_matter(feeds["as written"], kind, calib.get("as written"), plan.get("as written"), log,
                                      keras.backend.backend())
            for name in specs:
                if why:  # the input alone is far faster than training, and the stage's runs would cross no epoch end
                    out["inputs"][name] = {"dropped": why}
                    plan.pop(name, None)
                else:
                    calibrate(name, stage[name], out["inputs"], 2 * seconds, passes=2)
            own = calib.get("as written")
            for name in specs:  # a rewrite under PRUNE x the input as written in its calibration: not a contender
                if own and name in plan and calib[name] < PRUNE * own:
                    plan.pop(name)
                    out["inputs"][name] = {"steps_per_s": [round(calib[name], 3)],
                                           "dropped": f"{calib[name] / own:.2f}x the input as written (calibration): "
                                                      "not compared in the rounds"}
            if any(n in plan for n in specs):
                measure(stage, out["inputs"], "as written")
            elif own:  # nothing left to compare it with: its calibration is its figure
                out["inputs"]["as written"] = {"steps_per_s": [round(own, 3)]}
            out["inputs"], chosen_input = fastest_input(out["inputs"], specs)
            runs.epoch_starts = False
        out["input_chosen"] = None if chosen_input == "as written" else chosen_input
        out["input_spec"] = specs.get(chosen_input)
        if specs:  # the input path decided: a stage stopped in its knobs' calibrations still reports it
            partial()

        # stage 2: steps_per_execution and jit_compile on the chosen input
        def stage2(inp, only=None):
            """The knobs on input ``inp``: {name: measurements}, and the ladder's calibrations. ``only``: the steps to
            measure (the best of another input's ladder), with the script's own; no ladder, no jit."""
            # the script's own compile on the input as written, calibrated in stage 1: not again
            known = (calib["as written"], timed["as written"]) if inp == "as written" and calib.get("as written") else None
            plan.clear()
            calib.clear()
            into, steps = {}, []
            out["candidates"] = into  # filled in place: what a partial result reports
            if trial.get("ladder"):
                out["ladder"] = steps
            candidates = {name: {**cand, "input": inp} for name, cand in trial["candidates"].items()
                          if only is None or cand.get("own")}
            alone = list(candidates) == ["default"] and not trial.get("ladder")  # a per-process trial's one candidate
            rounds_ahead = lambda rate: alone and not in_epochs(candidates, rate)  # noqa: E731  (not read in epochs)
            no_jit = jit_unsupported(model)
            ladder, skip = (trial.get("ladder") if only is None else None), None

            def ladder_skip() -> str:
                """Why the ladder cannot matter, read on the script's own calibration (spe_bound), or "". Read before
                any rival's calibration, and reported: a stage stopped in jit's (a new XLA compile, then 2 steps of
                seconds: 36 s of a 50-s stage on xception_scratch at 64x64) has still decided the ladder."""
                why = spe_bound.cannot_matter(hosts.get("default") or hosts.get("as written") if inp == "as written"
                                              else hosts.get("default"))
                if why:
                    out["ladder_skip"] = why
                    partial()
                return why or ""

            for name, cand in list(candidates.items()):
                if name != "default" and ladder and skip is None:
                    skip = ladder_skip()
                if no_jit and knobs_of(cand).get("jit_compile") is True:  # it would run as the script's own compile
                    into[name] = {"dropped": no_jit, "knobs": knobs_of(cand)}
                    candidates.pop(name)
                    log(f"  {name}: {no_jit}")
                elif name == "default" and known and only is None:
                    calib[name], timed[name] = known
                    size(name, known[0], feeds[inp], spe_of(cand))
                else:
                    calibrate(name, cand, into, alone=rounds_ahead)
            for s_ in only or ():
                candidates[f"spe {s_}"] = {"steps_per_execution": s_, "input": inp}
                steps.append([s_, round(calibrate(f"spe {s_}", candidates[f"spe {s_}"], into) or 0.0, 2)])
            if ladder:
                slow = max(traced.get("build", 0.0), traced.get("default", 0.0), traced.get("as written", 0.0))
                if skip is None:
                    skip = ladder_skip()
                if skip:  # slow steps: the ladder's calls could not gain what a choice needs (xception_scratch: a
                    # new trace and executions of 5-s steps each)
                    steps, best_s = [], 1
                else:
                    steps, best_s = climb(calibrate, calib, into, feeds[inp], inp, own_spe, ladder.get("flattens", 0.05),
                                          out, trace_s=slow)
                contenders(steps, plan, into, candidates, inp)
                jit_calib, own_calib = calib.get("jit"), calib.get("default")
                if best_s > 1 and ladder.get("try_jit") and not no_jit and not (jit_calib and own_calib
                                                                                 and jit_calib < PRUNE * own_calib):
                    name = f"spe {best_s} + jit"
                    candidates[name] = {"steps_per_execution": best_s, "jit_compile": True, "input": inp}
                    calibrate(name, candidates[name], into)
                if jit_calib and own_calib and jit_calib < PRUNE * own_calib and plan.pop("jit", None):  # as a ladder step
                    into["jit"] = {"steps_per_s": [round(jit_calib, 3)], "dropped": f"{jit_calib / own_calib:.2f}x the "
                                   "script's own compile (calibration): not compared in the rounds"}
            partial()
            if in_epochs(candidates):  # its training figures come from the whole epochs it times next
                into["default"] = {"steps_per_s": [round(calib["default"], 3)], "knobs": {}, "calibration": True}
            elif alone and calib.get("default") and timed["default"] >= 0.75 * seconds:  # its calibration, a whole
                # run of about ``seconds`` after the warm-up, is its first round
                into["default"] = {"steps_per_s": [round(calib["default"], 3)], "steps": plan["default"], "knobs": {},
                                   "epoch_starts_timed": False, "seconds": [round(timed["default"], 3)]}
                log(f"  the calibration's run of {timed['default']:.2f} s is round 1")
                measure(candidates, into, "default", rounds - 1)
            elif not alone and calib.get("default") and not any(n in plan for n in candidates if n != "default"):
                # every rival was dropped in its calibration (or the ladder skipped): rounds of the script's own alone
                # would compare it with nothing (xception_scratch at 64x64: 3 rounds of 2 steps of 2.3 s)
                into["default"] = {"steps_per_s": [round(calib["default"], 3)], "steps": plan.get("default"),
                                   "knobs": {}}
                log("  nothing left to compare the script's own compile with: its calibration is its figure")
            else:
                measure(candidates, into, "default")
            return into, steps

        def in_epochs(candidates, rate=None) -> bool:
            """A trial of the script as it is alone (a per-process trial), whose whole epochs will be timed: the rounds
            of training steps are read inside those epochs instead of run before them. Not where a rival may be pruned
            on its training steps (prune_train_below: its whole epochs would not be timed). ``rate``: the training rate
            to judge by (its calibration's by default)."""
            return (bool(trial.get("as_run")) and list(candidates) == ["default"] and not trial.get("ladder")
                    and not trial.get("prune_train_below") and not trial.get("whole")
                    and as_run.whole_epochs(fit_args, steps_epoch, rate or calib.get("default"), seconds))

        phase("inputs measured")
        into, steps = stage2(chosen_input)
        phase("knobs measured")
        # the seconds its step function took to trace beyond its steps: a run of the script pays them once
        out["trace_s"] = round(traced.get("build", 0.0) + traced.get("default", traced.get("as written", 0.0)), 2)
        # what each candidate's compile costs a run once: its step traced (and compiled) and its last batch's shape
        own = "default" if "default" in traced else "as written"
        out["compile_s"] = round(out["trace_s"] + runs.tails.get(own, 0.0), 2)
        for name, r in into.items():
            if name in traced and name != "default":
                r["compile_s"] = round(traced[name] + runs.tails.get(name, 0.0), 2)
        if chosen_input != "as written" and feeds[chosen_input].endless:
            # a repeated rewrite admits only divisors of its epoch's steps: the input as written is measured at the steps
            # its rounds ran best (its own ladder where none: a prime count of batches); the faster of the two stands
            ranked = sorted((r for r in into.values() if "steps_per_execution" in r.get("knobs", {})
                             and len(r.get("steps_per_s", [])) >= rounds), key=lambda r: -median(r["steps_per_s"]))
            best = list(dict.fromkeys(r["knobs"]["steps_per_execution"] for r in ranked))[:2]
            into_w, _ = stage2("as written", only=best or None)
            out["ladder"] = steps  # the ladder that found them
            if prefer_as_written(into, into_w, rounds):
                out["input_note"] = written_note(chosen_input, into, into_w, rounds)
                chosen_input, into = "as written", {**into_w, **rewrite_only(into, into_w, chosen_input, rounds)}
                out["input_chosen"], out["input_spec"] = None, None
        out["candidates"] = into
        if trial.get("whole") and not late():  # what the pick makes of the script's epochs whole: what run delivers
            out["whole"] = as_run.whole_pick(out, trial, fit_args, into, feeds, chosen_input, lambda c, f, ts, once: as_run.measure(
                model, fit, f, feeds[c.get("input", "as written")].cap, ts, seconds, spe_of(c), Steps, once), recompile,
                keep, log)
            phase("whole epochs of the pick measured")
        reference = (out.get("whole") or {}).get("reference") or {}
        train = into.get("default", {}).get("steps_per_s")
        if trial.get("prune_train_below") and train and median(train) < trial["prune_train_below"]:
            out["pruned"] = True  # no gain in its training steps where the epoch's rest runs the same code: not measured
            # whole (tuning/passes.py); its figure is its steps with the script as written's epoch overhead
        if trial.get("as_run") and reference.get("steps_per_s"):  # measured just now, the same way: not again; its
            # first epoch's extra, where its functions were made anew, has the trace the trial already reports
            # (trace_s): not this process's start beside the others' (tuning/payoff.py)
            out["as_run"] = {k: v for k, v in reference.items() if not (k == "first_extra_s" and reference.get("fresh"))}
        elif trial.get("as_run") and train and not late() and not out.get("pruned"):
            out["as_run"] = as_run.of_default(lambda: as_run.measure(
                model, fit, fit_args, steps_epoch, into["default"]["steps_per_s"], seconds, spe_of({"own": True}), Steps),
                into, lambda: measure({"default": {"own": True, "input": "as written"}}, into, "default"),
                lambda: recompile({"own": True}), keep, log)
        phase("whole epochs measured")
        whole_mode, epoch_s = (out.get("as_run") or {}).get("mode"), (out.get("as_run") or {}).get("epoch_train_s")
        long_ok = (whole_mode == "steps" and epoch_s and trial.get("python_drops_s")  # epochs of seconds: a few, where
                   and as_run.PY_LONG * epoch_s <= trial["python_drops_s"])  # they fit the first trial's share
        if trial.get("python_drops") and (whole_mode == "epochs" or long_ok) \
                and out["iterator_each_epoch"] and not late():  # `python`'s epoch-start waits, in epochs run as it does
            try:
                recompile({"own": True})
                out["python_drops"] = (as_run.python_drops(model, fit, fit_args, as_run.PY_LONG, cut_last=True)
                                       if whole_mode == "steps" else
                                       as_run.python_drops(model, fit, fit_args, as_run.py_epochs(epoch_s)))
            except Exception as exc:  # noqa: BLE001  the modelled wait (tuning.stall) stands, and the result says why
                out["python_drops"] = {"why": f"{type(exc).__name__}: {exc}"[:300]}
                log(f"  python's epoch starts not timed: {type(exc).__name__}: {str(exc)[:120]}")
            finally:
                keep.restore()
            phase("python's epoch starts timed")
        whole = (out.get("as_run") or {}).get("steps_per_s")
        if trial.get("prune_below") and whole and median(whole) < trial["prune_below"]:
            out["pruned"] = True  # it will not be measured again (passes.PRUNE): its loss and ending are not needed
        folded = out.pop("check") if (out.get("check") or {}).get("warm_up") else None
        if trial.get("check") and into.get("default", {}).get("steps_per_s") and not out.get("pruned"):

            def run_check(steps: int) -> dict:  # the loss after a few steps from the shared initial weights
                recompile({"own": True})
                return numerics.check(model, fit, feeds["as written"], spe_of({"own": True}), trial.get("weights"),
                                      opener, steps)

            got = numerics.in_trial(trial, folded, median(into["default"]["steps_per_s"]), seconds,
                                    spe_of({"own": True}), feeds["as written"].cap, late, run_check, keep.restore)
            if got is not None:
                out["check"] = got
        phase("loss checked")
        if trial.get("ladder"):
            out["ladder"] = steps
        out["host_share"] = hosts.get("default") or hosts.get("as written")  # what the ladder could gain (spe_bound)
    out["backend"] = keras.backend.backend()
    return out


__all__ = ["KNOBS", "PRUNE", "best_median", "measure_fit", "prefer_as_written"]

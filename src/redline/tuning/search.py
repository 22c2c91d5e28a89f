"""redline tune: measure the user's unchanged script under candidate settings and choose, within a time budget.

First the per-process candidates (backend, oneDNN, threads, parallel maps), each
in fresh trial processes, alternating; then the in-process knobs
(steps_per_execution, jit_compile) inside the best process. A candidate wins
over the default only when its gain is larger than the spread measured for
both; otherwise the default stays, and the result says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Callable

from ..data.rewrite import describe
from ..detection.runtime import missing_packages
from ..errors import UsageError
from .compare import beats, median
from .confirm import confirm
from .numerics import judge
from .result import Candidate, TuneResult
from .trials import run_trial

#: spe ladder: stop doubling when a step gains less than this.
SPE_FLATTENS = 0.05
ALLOWABLE = ("precision", "batch", "order")
#: trial processes per per-process candidate (each measures base_trial["rounds"] rounds), and the share of the best
#: median below which a candidate is not measured after its first process.
PASSES = 3
PRUNE = 0.8
#: at most this share of the budget is kept back for the in-process stage while the per-process candidates are measured.
RESERVE = 0.4
#: --budget auto: this share of the training the script's first fit is predicted to take as written, at least AUTO_MIN
#: seconds; the first trial (which makes the prediction) may take up to AUTO_FIRST seconds.
AUTO_SHARE, AUTO_MIN, AUTO_FIRST = 0.05, 30.0, 300.0


#: a candidate is chosen only on at least this many measurements (a spread of two says little)
MIN_RUNS = 3


def better(cand: Candidate, default: Candidate) -> bool:
    """cand, measured at least MIN_RUNS times, beats default by more than both measured spreads (Candidate.spread)
    and MIN_GAIN."""
    return not cand.error and len(cand.runs) >= MIN_RUNS and beats(cand.figures, default.figures,
                                                                   (cand.spread, default.spread))


def choose(default: Candidate, others) -> Candidate:
    """The fastest (median) of the candidates that beat the default by more than the spread measured for both;
    the default where none does. Never slower than the default, and not stopped at the first plateau of a ladder."""
    eligible = [c for c in others if better(c, default)]
    return max(eligible, key=lambda c: c.median) if eligible else default


def process_candidates(snapshot, backend: str, allow, pinned: str | None = None) -> list[Candidate]:
    """Per-process candidates for this machine, the default (the script as it is) first. ``pinned``: where the script
    sets KERAS_BACKEND itself (file:line); the other backends are then measured against that line, as advice only."""
    usable = snapshot.cpu.usable
    out = [Candidate("as written", why=f"the script as `python script.py` runs it ({backend} backend, runtime defaults)")]
    for other in ("jax", "torch", "tensorflow"):
        if other == backend:
            continue
        if missing_packages(other):
            out.append(Candidate(f"backend {other}", {"KERAS_BACKEND": other}, error=f"{other} is not installed"))
            continue
        if pinned:
            out.append(Candidate(f"backend {other}", {"KERAS_BACKEND": other}, trial={"force_backend": True},
                                 why=f"Keras on {other}, the script's own KERAS_BACKEND line ignored in the trial",
                                 advice=f"the script sets KERAS_BACKEND={backend} itself ({pinned}): change that line to "
                                        f"use {other}"))
            continue
        out.append(Candidate(f"backend {other}", {"KERAS_BACKEND": other}, why=f"Keras on {other}"))
    if backend == "tensorflow":
        tf_on = snapshot.cpu.has("avx512_vnni") or snapshot.cpu.has("avx512_bf16") or snapshot.cpu.has("amx")
        if "TF_ENABLE_ONEDNN_OPTS" not in os.environ:
            flip = "0" if tf_on else "1"
            out.append(Candidate(f"oneDNN {'off' if tf_on else 'on'}", {"TF_ENABLE_ONEDNN_OPTS": flip},
                                 why=f"TensorFlow {'enables' if tf_on else 'leaves off'} oneDNN on this CPU by default"))
        out.append(Candidate("1 intra-op thread", {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},
                             why="one thread per op: less hand-over for dispatch-bound steps"))
        if usable < (snapshot.cpu.logical if isinstance(snapshot.cpu.logical, int) else usable):
            out.append(Candidate("plan threads", {"TF_NUM_INTRAOP_THREADS": str(snapshot.cpu.usable_physical),
                                                  "TF_NUM_INTEROP_THREADS": str(min(2, usable))},
                                 why="threads sized to the usable cores (quota or affinity below the machine's count)"))
    if "precision" in allow:
        gpus = snapshot.gpus.visible
        if gpus:
            ccs = [g.compute_capability for g in gpus if isinstance(g.compute_capability, tuple)]
            if ccs and min(ccs) >= (7, 0):
                out.append(Candidate("mixed_float16", trial={"precision": "mixed_float16"}, why="float16 tensor cores (--allow precision)"))
            else:
                out.append(Candidate("mixed_float16", error="no GPU here computes float16 natively (compute capability 7.0+)"))
        elif snapshot.cpu.has("avx512_bf16") or snapshot.cpu.has("amx"):
            out.append(Candidate("mixed_bfloat16", trial={"precision": "mixed_bfloat16"},
                                 why="this CPU has native bfloat16 (AVX512_BF16/AMX) (--allow precision)"))
        else:
            out.append(Candidate("mixed_bfloat16", error="this CPU has no native bfloat16 (no AVX512_BF16/AMX): not worth measuring"))
    return out


class ScriptProblem(UsageError):
    """The script cannot be tuned: it fails before fit, or never calls fit."""


def _absorb(cand: Candidate, res: dict) -> None:
    if res.get("status") != "ok":
        cand.error = cand.error or res.get("error") or res.get("status")
        return
    default = res["candidates"].get("default", {})
    if "error" in default:
        cand.error = default["error"]
        return
    runs = default.get("steps_per_s", [])
    whole = res.get("as_run") or {}
    if whole.get("steps_per_s"):  # the epochs as the script runs them: what the choice rests on
        cand.train_runs.extend(runs)
        cand.overhead_s.append(whole["overhead_s"])
        runs = whole["steps_per_s"]
    cand.runs.extend(runs)
    if (res.get("check") or {}).get("loss") is not None:
        cand.losses.append(res["check"]["loss"])
        cand.detail["check_steps"] = res["check"]["steps"]
    if runs:
        cand.passes.append(round(median(runs), 3))
    cand.detail = {**{k: v for k, v in cand.detail.items() if k == "check_steps"}, **{k: res.get(k) for k in ("backend", "steps_in_epoch", "batch_size", "data", "setup_s", "measure_s",
                                           "pinned_backend", "pinned_at", "script_compile")}}


def tune(script: str, args=(), *, budget_s: float | None = 180, allow=(), snapshot=None, seconds: float = 0.8,
         progress: Callable[[str], None] = lambda s: None, complete: bool = True,
         worth_it: Callable[[float, float], bool] | None = None) -> TuneResult:
    """Measure and choose, every trial in a sandbox of its own (tuning/sandbox.py) under one scratch folder, removed
    afterwards; the user's folders are fingerprinted before and after, and any file that changed all the same is
    named in the result. Raises ScriptProblem when the script fails before fit or never calls it."""
    from .sandbox import changes, fingerprint

    root = tempfile.mkdtemp(prefix="redline-tune-")
    folders = sorted({os.path.dirname(os.path.abspath(script)), os.getcwd()})
    before = fingerprint(folders)
    try:
        result = _search(script, args, budget_s=budget_s, allow=allow, snapshot=snapshot, seconds=seconds,
                         progress=progress, sandbox_root=root, complete=complete, worth_it=worth_it)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        touched = changes(before, fingerprint(folders))
    result.touched = touched
    return result


def predicted_training(first: dict, default: Candidate) -> float | None:
    """Seconds the script's first fit trains as written: its epochs x steps an epoch / steps per second measured."""
    steps, epochs, rate = first.get("steps_in_epoch"), first.get("epochs") or 1, default.median
    return epochs * steps / rate if steps and rate else None


def auto_budget(training_s: float | None) -> float:
    """--budget auto: AUTO_SHARE of the predicted training, at least AUTO_MIN seconds."""
    return min(86400.0, max(AUTO_MIN, AUTO_SHARE * (training_s or 0.0)))


def _search(script: str, args=(), *, budget_s: float | None, allow, snapshot, seconds: float, progress,
            sandbox_root: str, complete: bool, worth_it=None) -> TuneResult:
    """tune() without its sandbox bookkeeping. ``budget_s`` None: sized from the first trial (auto_budget);
    ``worth_it(training_s, budget_s)`` False after the first trial: stop there (status "skipped")."""
    from ..detection import detect

    started = time.perf_counter()
    snapshot = snapshot or detect()
    backend = snapshot.runtime.keras_backend
    args = list(args)
    auto = budget_s is None
    budget_s = AUTO_FIRST if auto else budget_s
    left = lambda: budget_s - 2 - (time.perf_counter() - started)  # noqa: E731  (2 s kept for the result)
    base_trial = {"candidates": {"default": {"own": True}}, "rounds": 3, "seconds": seconds, "as_run": True,
                  "check": True, **({"sandbox_root": sandbox_root,  # the first trial's initial weights, shared
                                     "weights": os.path.join(sandbox_root, "initial-weights.npz")} if sandbox_root else {})}

    default = Candidate("as written")
    progress("trial 1: the script as written")
    t0 = time.perf_counter()
    first = run_trial(script, args, default, base_trial, left())
    per_trial = time.perf_counter() - t0  # what one trial process costs with this script
    if first.get("status") in ("script-error", "no-fit"):
        out = (first.get("stdout", "") + first.get("stderr", "")).strip().splitlines()[-8:]
        raise ScriptProblem(f"{script!r} cannot be tuned: {first['error']}" + (f" (last output: {' | '.join(out)[-300:]})" if out else ""))
    _absorb(default, first)
    if default.error:
        raise ScriptProblem(f"{script!r}: the trial of the script as written failed: {default.error[:300]}")
    training_s = predicted_training(first, default)
    sizing = []
    if auto:
        budget_s = auto_budget(training_s)
        sizing.append(f"--budget auto: {budget_s:.0f} s, {AUTO_SHARE:.0%} of the ~{training_s or 0:,.0f} s the first fit is "
                      f"predicted to train as written ({first.get('epochs')} epoch(s) of {first.get('steps_in_epoch')} steps "
                      f"at {default.median or 0:,.1f} steps/s), at least {AUTO_MIN:.0f} s")
        progress(sizing[-1])
    if worth_it is not None and not worth_it(training_s or 0.0, budget_s):
        return TuneResult(script=script, args=args, budget_s=budget_s, elapsed_s=time.perf_counter() - started,
                          default=default, processes=[default], inprocess=[], chosen_process=default, chosen_knobs=None,
                          reasons=sizing, not_measured=[], status="skipped", script_output=first.get("stdout", ""),
                          training_s=training_s)
    # the backend the script really runs on: its own KERAS_BACKEND line, where it has one, wins over the environment
    backend = first.get("backend") or backend
    pinned = first.get("pinned_at") if first.get("pinned_backend") else None
    procs = process_candidates(snapshot, backend, allow, pinned=pinned)
    default.why = procs[0].why
    procs[0] = default
    if "Dataset" in str(first.get("data")):  # fit got a tf.data pipeline (its class name, e.g. _BatchDataset)
        if backend == "tensorflow":  # measured early: a sequential map is the usual bottleneck of such scripts
            at = 1 + sum(c.name.startswith("backend ") for c in procs[1:])
            procs.insert(at, Candidate("parallel maps", trial={"parallel_map": snapshot.cpu.usable},
                                   why=f"the script's sequential Dataset.map calls run with {snapshot.cpu.usable} parallel calls, order kept"))
    not_measured = []
    # kept back for the in-process stage: one more trial process measuring the inputs and about 9 knob candidates
    reserve = min(per_trial + 12 * (base_trial["rounds"] + 3) * seconds * 1.5, RESERVE * budget_s)
    # the per-process candidates in PASSES passes, alternating with the default (forward, backward, forward, the default
    # never twice in a row); after the
    # first pass a candidate clearly slower than the best so far is not measured again
    live = [c for c in procs[1:] if not c.error]
    for rep in range(PASSES):
        order = [default, *live] if rep == 0 else [*reversed(live), default] if rep % 2 else [*live, default]
        for cand in order:
            if cand is default and rep == 0:
                continue  # measured first, above
            if cand.error or cand.dropped:
                continue
            if left() - reserve < per_trial:
                not_measured.append(f"{cand.name} (trial process {rep + 1} of {PASSES}): the budget ran out")
                continue
            progress(f"trial: {cand.name}" + (f" (pass {rep + 1} of {PASSES})" if rep else ""))
            _absorb(cand, run_trial(script, args, cand, base_trial, left() - reserve))
        if rep == 0:
            top = max((c for c in [default, *live] if c.median and not c.error), key=lambda c: c.median, default=None)
            for c in live:
                if top is not None and c.median and not c.error and c.median < PRUNE * top.median:
                    c.dropped = f"{c.median / top.median:.2f}x '{top.name}' in its first trial process: not measured again"
    for c in procs[1:]:  # learns the same: a candidate whose loss leaves the script's own band is dropped, with figures
        why = judge(default.losses, c.losses, default.detail.get("check_steps"))
        if why and not c.error:
            c.error = f"learns differently: {why}"
    best = choose(default, [c for c in procs[1:] if not c.advice])
    reasons, advice = list(sizing), []
    if complete:  # the whole script must still finish under a choice that needs its own process
        best, confirmed, unchecked = confirm(
            default, [c for c in procs[1:] if not c.advice], best, pick=lambda cands: choose(default, cands),
            run=lambda c: run_trial(script, args, c, {**base_trial, "mode": "complete"}, min(left(), max(60.0, 3 * per_trial))),
            time_left=left, per_trial=per_trial)
        reasons += confirmed
        not_measured += unchecked
    adv = choose(default, [c for c in procs[1:] if c.advice])
    if adv is not default and (best is default or adv.median > best.median):
        advice.append(f"{adv.name}: {adv.median:,.1f} steps/s against {default.median:,.1f} as written "
                      f"({adv.median / default.median:.2f}x); {adv.advice}")
    if best is default:
        reasons.append("no per-process candidate beat the script as written by more than the spread measured")
    else:
        reasons.append(f"{best.name}: {best.median:,.1f} steps/s against {default.median:,.1f} as written "
                       f"({best.median / default.median:.2f}x; spreads {best.spread:.0%} and {default.spread:.0%})")
    # in-process knobs inside the best process
    inprocess, chosen_knobs, inputs, chosen_input = [], None, [], None
    backend_best = best.detail.get("backend") or backend
    if left() < per_trial:
        not_measured.append("steps_per_execution / jit_compile: the budget ran out")
    else:
        cands = {"default": {"own": True}}
        if backend_best == "tensorflow":  # Keras' "auto" leaves XLA off for TensorFlow on CPU: measure it
            cands["jit"] = {"jit_compile": True}
        ladder = {"try_jit": backend_best == "tensorflow", "flattens": SPE_FLATTENS}
        progress(f"trial: the input path, then steps_per_execution 2, 4, 8, ... until the gain flattens, and jit_compile, "
                 f"in '{best.name}'")
        res = run_trial(script, args, Candidate(best.name, best.env, dict(best.trial)),
                        {**base_trial, "candidates": cands, "ladder": ladder, "as_run": False, "check": False,
                         "inputs": {"allow": list(allow), "usable": snapshot.cpu.usable}}, left())
        if res.get("status") != "ok":
            not_measured.append(f"the input path / steps_per_execution / jit_compile: {res.get('error')}")
        else:
            not_measured += res.get("not_measured", [])
            found = res.get("inputs", {})
            for name in sorted(found, key=lambda n: n != "as written"):  # "as written" first: the reference
                r = found[name]
                c = Candidate(name, trial={"input": r.get("spec")}, runs=list(r.get("steps_per_s", [])), error=r.get("error"),
                              why=describe(r["spec"]) if r.get("spec") else "the input as the script builds it")
                inputs.append(c)
            if inputs and inputs[0].name != "as written":  # no rewrite applied to this fit call: nothing was compared
                reasons.append("the input path: " + "; ".join(f"{c.name}: {c.error}" for c in inputs if c.error))
            elif inputs:
                as_written = inputs[0]
                chosen_input = next((c for c in inputs if c.name == res.get("input_chosen")), None)
                if chosen_input is not None:
                    reasons.append(f"{chosen_input.name}: {chosen_input.median:,.1f} against {as_written.median:,.1f} "
                                   f"steps/s with the input as written ({chosen_input.median / as_written.median:.2f}x)")
                elif res.get("input_note"):
                    reasons.append(f"the input path: {res['input_note']}")
                else:
                    reasons.append("the input path: no rewrite beat the input as written by more than the spread measured")
            names = list(cands) + [n for n in res["candidates"] if n not in cands]
            own = res.get("script_compile") or {}
            for name in names:
                r = res["candidates"].get(name, {})
                knobs = r.get("knobs") if "knobs" in r else _knobs_of(cands.get(name) or _spec_of(name))
                changed = {k: v for k, v in knobs.items() if k in own and own[k] != v}
                c = Candidate(name, trial={"knobs": knobs}, runs=list(r.get("steps_per_s", [])), error=r.get("error"),
                              dropped=r.get("dropped"),
                              advice=("the script passes " + ", ".join(f"{k}={own[k]!r}" for k in changed)
                                      + " to Model.compile itself: change it there to use "
                                      + ", ".join(f"{k}={v!r}" for k, v in changed.items())) if changed else None)
                inprocess.append(c)
            if res.get("ladder"):
                reasons.append("steps_per_execution ladder (calibration steps/s): "
                               + ", ".join(f"{s}: {r:,.1f}" for s, r in res["ladder"])
                               + f" - stopped after three doublings in a row gained less than {SPE_FLATTENS:.0%}, or at an "
                               "epoch's steps; every step measured was then compared on medians")
            inner_default = inprocess[0]
            win = choose(inner_default, [c for c in inprocess[1:] if not c.advice])
            adv = choose(inner_default, [c for c in inprocess[1:] if c.advice])
            if adv is not inner_default and (win is inner_default or adv.median > win.median):
                advice.append(f"{adv.name}: {adv.median:,.1f} against {inner_default.median:,.1f} steps/s "
                              f"({adv.median / inner_default.median:.2f}x); {adv.advice}")
            # the in-process default is the per-process winner's own configuration where no input rewrite was chosen,
            # measured the same way (runs of the same shape): the two must agree for the stage's gains to predict the run
            outside = Candidate(best.name, runs=best.train_runs or best.runs)  # training steps alone, as measured inside
            off = _disagree(inner_default, outside) if chosen_input is None and inner_default.runs and outside.runs else None
            if win is not inner_default and off:
                reasons.append(f"steps_per_execution / jit_compile: not chosen, because {off}")
            elif win is not inner_default:
                chosen_knobs = win
                reasons.append(f"{win.name}: {win.median:,.1f} against {inner_default.median:,.1f} steps/s with the script's "
                               f"own compile arguments ({win.median / inner_default.median:.2f}x)")
            else:
                reasons.append("steps_per_execution / jit_compile: no candidate beat the script's own compile arguments "
                               "by more than the spread measured; they stay")
    return TuneResult(script=script, args=args, budget_s=budget_s, elapsed_s=time.perf_counter() - started,
                      default=default, processes=procs, inprocess=inprocess, chosen_process=best,
                      chosen_knobs=chosen_knobs, reasons=reasons, not_measured=not_measured,
                      script_output=first.get("stdout", ""), inputs=inputs, chosen_input=chosen_input, advice=advice,
                      training_s=training_s)


def _disagree(inside: Candidate, outside: Candidate) -> str | None:
    """Why the in-process stage's figure of the best process's own configuration cannot be trusted (it disagrees with
    the per-process figure of the same configuration beyond both spreads, and by more than 15%), or None."""
    a, b = inside.median, outside.median
    allowed = 1 + max(0.15, inside.spread, outside.spread)
    if a and b and not (1 / allowed <= a / b <= allowed):
        return (f"the in-process stage read the same configuration at {a:,.1f} steps/s where its own trial processes "
                f"read {b:,.1f} ({a / b:.2f}x, beyond the spread of either): its gains would not predict the run")
    return None


def _spec_of(name: str) -> dict:
    """The knobs of a ladder candidate from its name: "spe 16" or "spe 16 + jit" (where the trial reported none)."""
    spe = int(name.split()[1])
    return {"steps_per_execution": spe, **({"jit_compile": True} if name.endswith("+ jit") else {})}


def _knobs_of(cand: dict) -> dict:
    """The compile arguments a candidate sets itself (none for the script's own)."""
    return {} if cand.get("own") else {k: cand[k] for k in ("steps_per_execution", "jit_compile") if k in cand}


__all__ = ["ALLOWABLE", "Candidate", "ScriptProblem", "TuneResult", "better", "choose", "process_candidates", "run_trial", "tune"]

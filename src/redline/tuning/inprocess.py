"""The in-process stage of tune: the input path, steps_per_execution and jit_compile, measured inside one trial process
of the per-process winner, read into candidates and a choice.

The stage's figure of the winner's own configuration must agree with the winner's trial processes, measured the same
way (whole epochs of the script's own compile, where the stage measured its pick whole; else training steps alone):
otherwise its gains would not predict the run. Where they disagree
beyond the spread of either, the stage is measured once more, budget permitting, before anything is chosen; where the
second measurement disagrees as well, on the same side, the script's own compile arguments stay and the result says
why. Two measurements either side of the trial processes' figure (0.87x, then 1.15x) are processes that ran faster or
slower as a whole, not the stage: the second stands. So does a stage that ran on the machine as it was (passes.quiet)
where the trial processes did not, and a pick that, timed whole in the stage, beats even the trial processes' figure
(a process can be slow at the per-step work that steps_per_execution shares out: tf_ops_layer's stage read its own
compile at 404 and 527 steps/s where its trial processes read 688, and spe 32 at 2,000): its gain is then taken against
their figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..data.rewrite import describe
from ..monitoring.contention import lost
from .batch_hooks import advice as batch_advice
from .choose import choose
from .compare import beats, median, over_time, ran_quiet
from .measure import KNOBS
from .passes import quiet
from .result import Candidate
from .weigh import choose_knobs, judge_whole, twin_of, weigh

#: spe ladder: stop doubling when a step gains less than this.
SPE_FLATTENS = 0.05
#: a pick with jit_compile that leads the script's own compile by less than this in the stage's process is measured in a
#: second process, where it must lead again: PointNet on a 2-core VM read jit at 0.93x, 0.99x, 1.03x and 1.12x (tight
#: rounds each) in four tunes' stages, and ran ~1.0x in its later epochs under `run` (0.98x whole, with its compile)
CONFIRM_JIT = 1.25


@dataclass
class Stage:
    inprocess: list = field(default_factory=list)
    inputs: list = field(default_factory=list)  # "as written" first
    chosen_knobs: Candidate | None = None
    chosen_input: Candidate | None = None
    reasons: list = field(default_factory=list)
    advice: list = field(default_factory=list)
    not_measured: list = field(default_factory=list)
    whole: dict | None = None  # the choice and the script's own compile measured in whole epochs (as_run.whole_pick)
    drops: list = field(default_factory=list)  # the tf.data iterators its processes released (tuning.stall)


def inprocess_stage(run, best: Candidate, backend: str, usable: int, allow, left, per_trial: float, progress,
                    served=None, fit: dict | None = None) -> Stage:
    """``run(candidate, trial settings, timeout)``: one trial process; ``best``: the per-process winner. ``fit``: a
    fit other than the one the per-process candidates were measured on (tuning/fits.py): its own knobs only (the
    input path is chosen once, on the fit that trains longest), and nothing to compare its default with.
    ``served(fit)``: what a choice for that fit (None: the measured one) serves, tuning.fits.served; where not given,
    a choice's one-time compile is not weighed against its gain."""
    stage = Stage()
    serves = served(fit) if served else (0, 1)
    floor = None  # the trial processes' figure of the configuration, where the stage's pick is judged against it
    backend_best = best.detail.get("backend") or backend
    cands = {"default": {"own": True}}
    own = best.detail.get("script_compile") or {}
    eager = next((k for k in ("run_eagerly", "run_functions_eagerly") if own.get(k) is True), None)
    if eager:  # a debugging session's run_eagerly=True or tf.config.run_functions_eagerly(True) left in: every step
        # runs op by op, whatever spe or jit say; the graph is measured, as advice (the script chose it)
        cands[f"{eager}=False"] = {eager: False}
        stage.reasons.append("the input path, steps_per_execution / jit_compile: not measured: the script runs "
                             + ("its steps with run_eagerly=True" if eager == "run_eagerly" else
                                "TensorFlow's functions eagerly (tf.config.run_functions_eagerly(True))")
                             + ", under which each step runs op by op whatever they are")
    elif backend_best == "tensorflow":  # Keras' "auto" leaves XLA off for TensorFlow on CPU: measure it
        cands["jit"] = {"jit_compile": True}
    ladder = None if eager else {"try_jit": backend_best == "tensorflow", "flattens": SPE_FLATTENS}
    earlier = None  # the stage's figure of the configuration in its first attempt
    read = first = confirm = None  # each attempt's result, read; a jit pick measured again: (its name, its lead)
    for attempt in (1, 2):
        if left() < per_trial:
            stage.not_measured.append("steps_per_execution / jit_compile: the budget ran out")
            return stage
        if attempt == 2 and first.chosen_input is None:  # the process was off, not the search: its contenders again,
            # without the ladder and the input path (custom_train_step's second stage: 29 s this way, about 35 s whole)
            cands = {"default": {"own": True}, **{c.name: c.trial["knobs"] for c in first.inprocess[1:]
                                                  if c.runs and not (c.error or c.dropped or c.advice)}}
            ladder = None
        progress(f"trial: {', '.join(list(cands)[1:])} against the script's own compile, in '{best.name}'"
                 + (" (again)" if attempt == 2 else "") if not ladder else
                 (f"trial: fit {fit['index']}'s own " if fit else "trial: the input path, then ")
                 + f"steps_per_execution 2, 8, 32, ... until the gain flattens, and jit_compile, in '{best.name}'"
                 + (" (again)" if attempt == 2 else ""))
        res = run(Candidate(best.name, best.env, dict(best.trial)),
                  {"candidates": cands, "ladder": ladder, "as_run": False, "check": False, "rounds": 3, "whole": True,
                   **({"fit_index": fit["index"]} if fit else
                      {"inputs": {"allow": list(allow), "usable": usable}} if ladder else {})},
                  left())
        if res.get("status") != "ok":
            stage.not_measured.append(f"the input path / steps_per_execution / jit_compile: {res.get('error')}")
            return stage
        read = _read(res, cands)
        if not fit:  # more of the measured fit's drops for python's epoch-start wait (tuning.stall)
            stage.drops += (res.get("released") or {}).get("drops") or []
        # the stage's default is the winner's own configuration where no input rewrite was chosen, measured the same way
        inner = read.inprocess[0]
        ref = ((res.get("whole") or {}).get("reference") or {}).get("steps_per_s")
        if ref and best.runs and not fit:  # the script's own compile in whole epochs, here and in its trial processes
            mine, theirs = Candidate(best.name, runs=ref), Candidate(best.name, runs=best.runs)
            typical = over_time  # what a run of those epochs delivers
            off = _disagree(mine, theirs, "in whole epochs ", typical)
        else:  # training steps alone, on the input as written
            mine, theirs, typical = inner, Candidate(best.name, runs=best.train_runs or best.runs), median
            off = _disagree(mine, theirs) if read.chosen_input is None and mine.runs and theirs.runs and not fit else None
        a, b = typical(mine.runs), typical(theirs.runs)
        here = lost(res.get("contention"))
        if off and ran_quiet(here) and not quiet(best):
            stage.reasons.append(f"the in-process stage read the configuration at {a:,.1f} steps/s where its "
                                 f"trial processes read {b:,.1f}, but the stage ran on the machine as it was "
                                 f"(its measurement lost {here:.1%} of the machine's CPU time to steal and other "
                                 "processes) and they did not: its figure stands")
            off = None
        if off and earlier and (earlier - b) * (a - b) < 0:
            stage.reasons.append(f"the in-process stage's two processes read the configuration at {earlier:,.1f} and "
                                 f"{a:,.1f} steps/s, either side of its trial processes' {b:,.1f}: "
                                 "one process faster than another, not the stage; its second measurement stands")
            off = None
        earlier = a
        win = choose_knobs(inner, [c for c in read.inprocess[1:] if not c.advice])
        if off and win is not inner and ref and _beyond_theirs(res.get("whole") or {}, win, read, theirs):
            picked = over_time(res["whole"]["pick"]["steps_per_s"])
            stage.reasons.append(f"the in-process stage read the script's own compile in whole epochs at {a:,.1f} "
                                 f"steps/s where its trial processes read {b:,.1f}, but its pick, {win.name}, ran "
                                 f"{picked:,.1f} there, beyond the trial processes' figure too: it stands, its gain "
                                 f"taken against that figure ({picked / b:.2f}x)")
            floor, off = b, None
        if off and win is not inner and attempt == 1 and left() >= per_trial:
            stage.reasons.append(f"the in-process stage was measured again: {off}")
            first = read
            continue
        w = weigh(res, (win.name, read.chosen_input.name if read.chosen_input else None), floor, serves)
        if (not off and attempt == 1 and win.trial.get("knobs", {}).get("jit_compile") and inner.median
                and win.median < CONFIRM_JIT * inner.median and left() >= per_trial
                and (w is None or (w["a"] > w["b"] and w["pays"]))):  # (one it cannot pay is not applied: below)
            stage.reasons.append(f"{win.name}: {win.median / inner.median:.2f}x the script's own compile in the stage's "
                                 f"process, under {CONFIRM_JIT}x: measured again in another process, where it must "
                                 "lead again (XLA's gain varies between processes)")
            first, confirm = read, (win.name, win.median / inner.median)
            continue
        break
    if confirm and win.name != confirm[0]:
        again = next((c for c in read.inprocess if c.name == confirm[0]), None)
        stage.reasons.append(f"{confirm[0]}: not chosen: it led {confirm[1]:.2f}x in the stage's first process"
                             + (f", {again.median / inner.median:.2f}x in its second" if again and again.median and
                                inner.median else ", and not in its second")
                             + ": its gain does not hold from one process to the next")
        if win.trial.get("knobs", {}).get("jit_compile"):  # (another pick without XLA stands as any pick does)
            win = inner
    if first is not None and not ladder:  # the second attempt measured the first one's contenders alone: the rest of
        # what the first found (its input path, its ladder, what it dropped) stands beside them
        read.inputs, read.reasons = first.inputs, first.reasons + read.reasons
        read.inprocess += [c for c in first.inprocess if c.name not in cands and (c.dropped or c.error)]
    stage.inprocess, stage.inputs, stage.chosen_input = read.inprocess, read.inputs, read.chosen_input
    stage.reasons += read.reasons
    stage.not_measured += read.not_measured
    adv = choose(inner, [c for c in read.inprocess[1:] if c.advice])
    if adv is not inner and (win is inner or adv.median > win.median):
        stage.advice.append(f"{adv.name}: {adv.median:,.1f} against {inner.median:,.1f} steps/s "
                            f"({adv.median / inner.median:.2f}x); {adv.advice}")
    if win is not inner and off:
        stage.reasons.append(f"steps_per_execution / jit_compile: not chosen, because {off}")
    elif win is not inner:
        stage.chosen_knobs = win
        stage.reasons.append(f"{win.name}: {win.median:,.1f} against {inner.median:,.1f} steps/s with the script's "
                             f"own compile arguments ({win.median / inner.median:.2f}x)")
    elif not inner.runs:  # the stage's partial result, from before its rounds: nothing was compared (but a ladder the
        # script's own calibration showed cannot matter: that is decided)
        knobs = ([f"{eager}=False"] if eager else [] if res.get("ladder_skip") else ["steps_per_execution"]) + (
            ["jit_compile"] if "jit" in cands else [])
        if knobs:
            stage.not_measured.append(f"{' / '.join(knobs)}: the budget ran out before the stage's rounds")
    elif not eager and not confirm:  # (under run_eagerly=True none was measured, and a lead not held: said above)
        stage.reasons.append("steps_per_execution / jit_compile: no candidate beat the script's own compile arguments "
                             "by more than the spread measured; they stay")
    judge_whole(stage, res, floor, serves)
    return stage


def _beyond_theirs(whole: dict, win: Candidate, read: Stage, theirs: Candidate) -> bool:
    """The stage's pick ``win``, timed in whole epochs in the stage, beats the trial processes' whole epochs of the
    configuration (``theirs``) beyond both spreads: where the stage read the script's own compile lower than they did
    (a process slower at the per-step work its pick shares out), its gain stands against their figure."""
    chosen_input = read.chosen_input.name if read.chosen_input else None
    picked = (whole.get("pick") or {}).get("steps_per_s")
    return (whole.get("knobs"), whole.get("input")) == (win.name, chosen_input) and beats(picked, theirs.runs)


def pick(res: dict, cands: dict) -> str | None:
    """The knob candidate an in-process trial's rounds choose (the rule the stage applies, before it compares with the
    trial processes), or None: the script's own compile arguments. Used inside the trial, to measure it whole."""
    read = _read(res, cands)
    if not read.inprocess:
        return None
    win = choose_knobs(read.inprocess[0], [c for c in read.inprocess[1:] if not c.advice])
    return None if win is read.inprocess[0] else win.name


def twin(res: dict, cands: dict, name: str | None) -> str | None:
    """The twin without jit_compile (weigh.twin_of) of the pick ``name`` in an in-process trial's rounds, or None: it
    is measured whole beside a jit pick, to stand in its place where the pick's compile does not pay."""
    read = _read(res, cands)
    win = next((c for c in read.inprocess if c.name == name), None)
    others = [c for c in read.inprocess[1:] if not c.advice]
    found = twin_of(win, read.inprocess[0], others, strict=False) if win else None
    return found.name if found else None


def _read(res: dict, cands: dict) -> Stage:
    """One in-process trial's result as candidates: the inputs (the rewrite it chose, if any) and the knobs."""
    out = Stage(not_measured=list(res.get("not_measured", [])),
                reasons=[f"not a candidate here: {n}" for n in res.get("not_candidates", [])])
    found = res.get("inputs", {})
    for name in sorted(found, key=lambda n: n != "as written"):  # "as written" first: the reference
        r = found[name]
        out.inputs.append(Candidate(name, trial={"input": r.get("spec")}, runs=list(r.get("steps_per_s", [])),
                                    error=r.get("error"), dropped=r.get("dropped"),
                                    why=describe(r["spec"]) if r.get("spec") else "the input as the script builds it"))
    if out.inputs and out.inputs[0].name != "as written":  # no rewrite applied to this fit call: nothing was compared
        out.reasons.append("the input path: " + "; ".join(f"{c.name}: {c.error}" for c in out.inputs if c.error))
    elif out.inputs:
        as_written = out.inputs[0]
        out.chosen_input = next((c for c in out.inputs if c.name == res.get("input_chosen")), None)
        if out.chosen_input is not None:
            c = out.chosen_input
            out.reasons.append(f"{c.name}: {c.median:,.1f} against {as_written.median:,.1f} steps/s with the input as "
                               f"written ({c.median / as_written.median:.2f}x)")
        elif res.get("input_note"):
            out.reasons.append(f"the input path: {res['input_note']}")
        else:
            out.reasons.append("the input path: no rewrite beat the input as written by more than the spread measured")
    own, at = res.get("script_compile") or {}, res.get("script_compile_at")
    for name in list(cands) + [n for n in res["candidates"] if n not in cands]:
        r = res["candidates"].get(name, {})
        knobs = r.get("knobs") if "knobs" in r else _knobs_of(cands.get(name) or _spec_of(name))
        out.inprocess.append(Candidate(
            name, trial={"knobs": knobs}, runs=list(r.get("steps_per_s", [])), error=r.get("error"), dropped=r.get("dropped"),
            advice=_advice(knobs, own, at, res)))
    if res.get("ladder_skip"):
        out.reasons.append(f"steps_per_execution ladder: {res['ladder_skip']}")
    if res.get("ladder"):
        out.reasons.append("steps_per_execution ladder (calibration steps/s"
                           + "".join(f"; {res[k]}" for k in ("ladder_start", "ladder_pass") if res.get(k)) + "): "
                           + ", ".join(f"{s}: {r:,.1f}" for s, r in res["ladder"])
                           + (f" - stopped {res['ladder_stop']}" if res.get("ladder_stop") else
                              f" - stopped after two steps in a row gained less than {SPE_FLATTENS:.0%}, or at an "
                              "epoch's steps")
                           + "; every step measured was then compared on medians")
    return out


def _advice(knobs: dict, own: dict, at: str | None, res: dict) -> str | None:
    """Why a candidate of ``knobs`` is advice only, or None: it changes a compile argument the script passes itself
    (``own``, its compile at ``at``), turns off TensorFlow's eager flag the script set, or sets a steps_per_execution
    under which the script's per-batch callbacks (``res["batch_callbacks"]``) would see one batch in spe."""
    why = []
    spe = knobs.get("steps_per_execution", own.get("steps_per_execution", 1))
    if (res.get("batch_callbacks") and "steps_per_execution" in knobs and isinstance(spe, int) and spe > 1
            and spe != own.get("steps_per_execution", 1)):
        why.append(batch_advice(res["batch_callbacks"], spe))
    changed = {k: v for k, v in knobs.items() if k in own and own[k] != v and k != "run_functions_eagerly"}
    if changed:
        why.append("the script passes " + ", ".join(f"{k}={own[k]!r}" for k in changed) + " to Model.compile itself"
                   + (f" ({at})" if at else "") + ": change it there to use "
                   + ", ".join(f"{k}={v!r}" for k, v in changed.items()))
    if own.get("run_functions_eagerly") and knobs.get("run_functions_eagerly") is False:
        why.append("the script calls tf.config.run_functions_eagerly(True) itself"
                   + (f" ({res['eager_at']})" if res.get("eager_at") else "") + ": remove that line")
    return "; ".join(why) or None


def _disagree(inside: Candidate, outside: Candidate, how: str = "", typical=None) -> str | None:
    """Why the in-process stage's figure of the best process's own configuration cannot be trusted (it disagrees with
    the per-process figure of the same configuration, measured the same way (``how``), beyond both spreads, and by
    more than 15%), or None. ``typical``: each side's figure from its runs (whole epochs: compare.over_time); else
    their medians."""
    a, b = (typical(inside.runs), typical(outside.runs)) if typical else (inside.median, outside.median)
    allowed = 1 + max(0.15, inside.spread, outside.spread)
    if a and b and not (1 / allowed <= a / b <= allowed):
        return (f"the in-process stage read the same configuration {how}at {a:,.1f} steps/s where its own trial "
                f"processes read {b:,.1f} ({a / b:.2f}x, beyond the spread of either): its gains would not predict "
                "the run")
    return None


def _spec_of(name: str) -> dict:
    """The knobs of a ladder candidate from its name: "spe 16" or "spe 16 + jit" (where the trial reported none)."""
    spe = int(name.split()[1])
    return {"steps_per_execution": spe, **({"jit_compile": True} if name.endswith("+ jit") else {})}


def _knobs_of(cand: dict) -> dict:
    """The compile arguments a candidate sets itself (none for the script's own)."""
    return {} if cand.get("own") else {k: cand[k] for k in KNOBS if k in cand}


__all__ = ["CONFIRM_JIT", "SPE_FLATTENS", "Stage", "inprocess_stage", "pick", "twin"]

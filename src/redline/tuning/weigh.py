"""What the in-process stage's pick adds to a run and what it costs it once: the pick among the rounds' candidates
(a pick with jit_compile against its twin without it), and the pick measured in whole epochs beside the script's own
compile, its one-time compile weighed against what it saves over the steps it serves."""

from __future__ import annotations

from .choose import ahead_of, choose
from .compare import over_time
from .payoff import margin
from .result import Candidate


def twin_of(win: Candidate, inner: Candidate, others, strict: bool = True) -> Candidate | None:
    """The candidate among ``others`` with ``win``'s knobs less jit_compile (the same steps_per_execution), where
    ``win`` has jit_compile and the twin beats ``inner`` (the script's own compile) too: a choice on its rounds
    (``strict``), or ahead on whatever rounds it ran (not strict: one the rounds cut after their first, under 0.8x of
    the jit pick, whose whole epochs are then measured: tf_ops_layer in one thread, spe 32 + jit at 7,462 steps/s in
    the rounds); else None."""
    knobs = win.trial.get("knobs") or {}
    if win is inner or knobs.get("jit_compile") is not True:
        return None
    plain = {k: v for k, v in knobs.items() if k != "jit_compile"}
    ahead = (lambda c: choose(inner, [c]) is c) if strict else (lambda c: bool(c.runs) and ahead_of(c, inner))
    return next((c for c in others if (c.trial.get("knobs") or {}) == plain and ahead(c)), None)


def choose_knobs(inner: Candidate, others) -> Candidate:
    """choose(), but a pick with jit_compile gives way to its twin without it (twin_of), where the pick does not beat
    the twin beyond the spread: XLA's compile costs a run seconds its gain must pay back, and its gain varies between
    processes (tf_ops_layer: spe 32 + jit at 5,547 against spe 32 at 5,333 steps/s was picked, and then not applied,
    its compile dearer than what it saved: the run kept neither)."""
    win = choose(inner, others)
    twin = twin_of(win, inner, others)
    return twin if twin is not None and choose(twin, [win]) is twin else win


def judge_whole(stage, res: dict, floor: float | None = None, served: tuple = (0, 1)) -> None:
    """The chosen knobs and input against the script's own compile on its input, in whole epochs as the script runs
    them (measured in the same trial, where its pick is the stage's choice; against ``floor``, the trial processes'
    figure, where given): their ratio is what the choice adds to the run, and where the choice runs whole epochs no
    faster, its gain in training steps does not reach the run: nothing of it is applied. Nor where what it costs once
    (once_cost(), each time a run compiles it: ``served``, (steps, compiles) of the fits it serves) is more than
    it saves over those steps (PointNet: jit 1.15x in whole epochs, 20.2 against 15.6 s in the first, a run of 0.98x).
    Where a jit pick is not applied so and its twin without jit (twin_of) was measured whole beside it, the twin stands
    in its place where it does pay (tf_ops_layer: spe 32 + jit saved ~0.3 s against ~0.7 s of compile; spe 32 costs no
    compile beyond the script's own). ``stage``: tuning.inprocess.Stage."""
    chosen = (stage.chosen_knobs.name if stage.chosen_knobs else None,
              stage.chosen_input.name if stage.chosen_input else None)
    w = weigh(res, chosen, floor, served)
    if w is None:
        return
    a, b, once, compiles, saving = (w[k] for k in ("a", "b", "once", "compiles", "saving"))
    what = " and ".join(n for n in chosen if n)
    if a <= b or not w["pays"]:
        stage.reasons.append(f"{what}: not applied: in whole epochs as the script runs them it ran {a:,.1f} against "
                             f"{b:,.1f} steps/s with the script's own compile and input ({a / b:.2f}x)" + (
                                 ": its gain in training steps does not reach the run" if a <= b else
                                 f", but its compile costs a run ~{once:,.1f} s more than the script's own"
                                 + (f", each of the {compiles} times a run compiles it" if compiles > 1 else "")
                                 + f", and it saves only ~{saving:,.1f} s over the {w['steps']:,} training steps it "
                                 "serves"))
        twin = next((c for c in stage.inprocess if c.name == (res.get("whole") or {}).get("twin", {}).get("knobs")),
                    None)
        w = weigh(res, (twin.name, chosen[1]), floor, served, role="twin") if twin is not None else None
        if w is None or w["a"] <= w["b"] or not w["pays"]:
            stage.chosen_knobs = stage.chosen_input = None
            return
        stage.chosen_knobs, chosen, twin.dropped = twin, (twin.name, chosen[1]), None  # (a round's cut: its whole
        # epochs, just weighed, decide it)
        a, b, once, compiles, saving = (w[k] for k in ("a", "b", "once", "compiles", "saving"))
        what = " and ".join(n for n in chosen if n) + ", the same without jit_compile, in its place"
    pays = (f"; it costs ~{once:,.1f} s more once (its compile{f', {compiles} times' if compiles > 1 else ''}) and "
            f"saves ~{saving:,.1f} s over the {w['steps']:,} steps it serves") if once else ""
    stage.whole = {"pick": w["got"], "reference": w["ref"], "gain": round(a / b, 4),
                   **({"once_s": round(once, 2)} if once else {})}
    stage.reasons.append(f"{what}, in whole epochs as the script runs them: {a:,.1f} against {b:,.1f} steps/s with the "
                         f"script's own compile and input ({a / b:.2f}x){pays}: the prediction rests on this")


def weigh(res: dict, chosen: tuple, floor: float | None, served: tuple, role: str = "pick") -> dict | None:
    """The pick ``chosen`` ((knobs, input) names) against the script's own compile in the trial's whole epochs:
    {"a", "b" (their steps/s), "got", "ref" (their figures), "once", "compiles", "steps", "saving" (seconds over the
    steps it serves), "pays" (what it saves is more than its compile costs, each time)}; None where the trial did
    not measure that pick whole. ``role``: "twin" for a jit pick's twin measured beside it (as_run.whole_pick)."""
    whole = res.get("whole") or {}
    names = (whole.get("knobs"), whole.get("input")) if role == "pick" else (whole.get(role, {}).get("knobs"),
                                                                             whole.get("input"))
    if chosen == (None, None) or chosen != names:
        return None
    ref, got = (whole.get(k, {}).get("steps_per_s") for k in ("reference", role))
    if not ref or not got:
        return None
    a, b = over_time(got), floor or over_time(ref)  # whole epochs: what a run of them delivers; ``floor``: the trial
    # processes' figure of the script's own compile, where the stage read it otherwise and its pick beat that figure:
    # fresh processes, as `python` runs the script (mixup: the stage read 175.5 where they read 149.3 and `python`
    # 145.4; the pick, 210.2 in the stage, ran 206.9 under `run`: 1.42x delivered, 1.41x against their figure)
    steps, compiles = served
    once = once_cost(res, *chosen, role=role) if steps else 0.0
    saving = steps / b - steps / a
    return {"a": a, "b": b, "got": got, "ref": ref, "once": once, "compiles": compiles, "steps": steps,
            "saving": saving, "pays": not once or saving > compiles * once + margin(steps / b)}


def once_cost(res: dict, knobs: str | None, input_: str | None, role: str = "pick") -> float:
    """Seconds the stage's pick (``knobs``, ``input_``: its names) costs a run once beyond the script's own compile,
    never below 0: its first epoch's extra (as_run.first_extra) beyond the reference's, both measured whole in the
    same trial (as_run.whole_pick; under jit_compile with their functions made anew, so XLA's compile of the train
    and test steps for the shapes the epoch meets is in it). Where either was not measured so, its calibration's
    compile against the script's own (the trial's "compile_s": its warm-up beyond its steps and its last batch's
    shape), which leaves out the test step and reads a compile against a first trace that also built the model.
    ``role``: "twin", a jit pick's twin measured whole beside it (its functions those its rounds traced)."""
    whole = res.get("whole") or {}
    pick, ref = ((whole.get(k) or {}).get("first_extra_s") for k in (role, "reference"))
    if pick is not None and ref is not None:
        return max(0.0, pick - ref)
    cand = (res.get("candidates") or {}).get(knobs) or {} if knobs else {}
    return max(0.0, cand["compile_s"] - (res.get("compile_s") or 0.0)) if "compile_s" in cand else 0.0


__all__ = ["choose_knobs", "judge_whole", "once_cost", "twin_of", "weigh"]

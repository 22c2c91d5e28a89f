"""How long tuning takes and what it serves, from the first trial's figures: the training the script's fits are
predicted to take as written, --budget auto sized from it, and the seconds that would decide every candidate (said
before the trials start where the budget is shorter)."""

from __future__ import annotations

import math

from .fits import size, train_s
from .ladder import SLOW_TRACE
from .result import Candidate

#: --budget auto: this share of the training the script's fits are predicted to take as written, at least AUTO_MIN
#: seconds; the first trial (which makes the prediction) may take up to AUTO_FIRST seconds.
AUTO_SHARE, AUTO_MIN, AUTO_FIRST = 0.05, 30.0, 300.0


def predicted_training(first: dict, default: Candidate, least: bool = False) -> float | None:
    """Seconds the script's fits train as written: epochs x steps an epoch / steps per second measured; the other fits
    the first trial recorded at the rate of the one measured where they share its fingerprint (or their own step time
    is not known), else at their own step time (fits.train_s: their steps cut short there, training steps alone)."""
    steps, epochs, rate = first.get("steps_in_epoch"), first.get("epochs") or 1, default.median
    fits = first.get("fits") or []
    written = fit_seconds(fits, first.get("fit_index"), rate, least)
    if written:
        return sum(written)
    if least and fits and fits[0].get("least_epochs"):  # one fit, which an EarlyStopping callback may end early
        epochs = fits[0]["least_epochs"]
    return epochs * steps / rate if steps and rate else None


def fit_seconds(fits: list, fit_index: int | None, rate: float | None, least: bool = False) -> list | None:
    """Each fit's seconds as written (for predicted_training and the predicted gain, fits.with_traces): a fit of the
    measured one's fingerprint (``fit_index``'s) at its measured ``rate``, another at its own step time (train_s);
    ``least``: a fit an EarlyStopping callback may end early at the fewest epochs it can run (fits.least_epochs).
    None where there is one fit, no rate, or a fit's steps are not known."""
    if len(fits) < 2 or not rate or not all(size(f) for f in fits):
        return None
    mine = next((f.get("fingerprint") for f in fits if f.get("index") == fit_index), None)
    return [size(f, least) / rate if f.get("fingerprint") == mine or not train_s(f) else train_s(f, least)
            for f in fits]


def stage_s(per_trial: float, step_s: float | None, epoch_steps: int | None, seconds: float,
            with_ladder: bool = True) -> float:
    """Seconds the in-process stage takes, from the first trial's figures: its trial process; the input path (two
    inputs, 3 rounds of runs twice as long); the ladder's first two steps (where it stops without a gain; spe 8
    alone where a trace takes SLOW_TRACE or longer), each traced anew and warmed in 2 executions; 3 rounds of the
    script's own, jit and those steps, each run at least ``seconds`` or 2 executions; and the pick's whole epochs
    beside the script's own. A one-second step makes spe 8 a
    16-second run: the stage is minutes there, not the two trial processes it is for millisecond steps.
    ``with_ladder`` False: the first trial's figures leave steps_per_execution nothing to gain (spe_bound): no ladder."""
    from .as_run import EPOCH_SPAN

    trace = max(1.0, per_trial / 5)  # a new step function traced and compiled: a share of a trial process
    first = 8 if trace >= SLOW_TRACE and (epoch_steps or 8) >= 8 else 2  # the ladder's first step (ladder.climb)
    spes = [s for s in (2, 8) if first <= s <= (epoch_steps or 8)] if with_ladder else []
    run = lambda spe: max(seconds, 2 * spe * (step_s or 0.0))  # noqa: E731
    inputs = 2 * (1 + 3) * 2 * run(1)  # two inputs, a calibration and 3 rounds each, runs twice as long
    ladder = sum(trace + run(s) for s in spes)
    return per_trial + inputs + ladder + 3 * (2 * run(1) + sum(run(s) for s in spes)) + EPOCH_SPAN * seconds


def needed_s(per_trial: float, candidates: int, stage: float | None = None, winner: bool = True) -> float:
    """Seconds that decide every candidate after the first trial: one trial process each, a second for a winner and
    for the script as written (``winner`` False: none leads), and the in-process stage (``stage``: stage_s; about two
    trial processes without). fine_tune: "about 352 s" with a winner; 221 s where none led."""
    return per_trial * (candidates + 2 * winner) + (2 * per_trial if stage is None else stage)


def secs(seconds: float) -> str:
    """A duration as said in a line: tenths below 10 s (a training of 0.4 s is not "about 0 s"), whole seconds above."""
    return f"{seconds:,.1f}" if seconds < 9.95 else f"{seconds:,.0f}"


def auto_budget(training_s: float | None) -> float:
    """--budget auto: AUTO_SHARE of the predicted training, at least AUTO_MIN seconds."""
    return min(86400.0, max(AUTO_MIN, AUTO_SHARE * (training_s or 0.0)))


def auto_line(budget_s: float, training_s: float | None, first: dict, default: Candidate) -> str:
    """What --budget auto sized the budget at, and from what."""
    return (f"--budget auto: {budget_s:.0f} s, {AUTO_SHARE:.0%} of the ~{secs(training_s or 0)} s its training is "
            f"predicted to take as written ({len(first.get('fits') or []) or 1} fit(s); the one measured: "
            f"{first.get('epochs')} epoch(s) of {first.get('steps_in_epoch')} steps at {default.median or 0:,.1f} "
            f"steps/s), at least {AUTO_MIN:.0f} s")


def needs_line(spent: float, per_trial: float, rivals: int, stage: float, budget_s: float) -> str:
    """The seconds deciding every candidate needs, where no rival leads and where one does, after ``spent``."""
    low, total = need_figures(spent, per_trial, rivals, stage)
    return (f"deciding every candidate needs about {low:,.0f} s here where no rival leads, {total:,.0f} s "
            f"where one does ({rivals} per-process candidate(s) at ~{per_trial:,.0f} s a trial process, then "
            "a second process for a leader and for the script as written, then the in-process stage); the "
            f"budget of {budget_s:,.0f} s may leave some undecided: give --budget "
            f"{math.ceil(total / 10) * 10:.0f} to decide them all")


def need_figures(spent: float, per_trial: float, rivals: int, stage: float) -> tuple[float, float]:
    """(seconds where no rival leads, where one does) that deciding every candidate needs, after ``spent``."""
    return spent + needed_s(per_trial, rivals, stage, winner=False), spent + needed_s(per_trial, rivals, stage)


def payback(training_s: float | None, ratio: float | None, tuning_s: float, once_s: float = 0.0) -> dict | None:
    """What the choice saves one run of the script (its fits' training as written, ``training_s``, at the predicted
    ``ratio``, less ``once_s``: what its compile costs the run's start beyond the script's own) and after how many runs
    that repays ``tuning_s`` of tuning; None where either figure is not known or nothing is predicted saved. A 1.07x
    gain on a 45-s training saves 2.9 s a run: 178 s of tuning pays after 61 runs."""
    if not training_s or not ratio or ratio <= 1.0:
        return None
    saved = training_s * (1.0 - 1.0 / ratio) - once_s
    if saved <= 0:
        return None
    return {"saved_s": round(saved, 1), "runs": max(1, math.ceil(tuning_s / saved))}


def payback_line(training_s: float | None, ratio: float | None, tuning_s: float, early: bool = False,
                 once_s: float = 0.0) -> str:
    """The end of tune's last line: the training it serves and when the tuning pays for itself ("" where the training
    is not known). ``early``: a fit has an EarlyStopping callback, so its epochs, and the figures, are upper bounds.
    ``once_s``: as payback() takes it."""
    if not training_s:
        return ""
    line = (f"; the script's training is predicted to take {'at most' if early else 'about'} {secs(training_s)} s as "
            "written" + (" (an EarlyStopping callback may end it sooner)" if early else ""))
    paid = payback(training_s, ratio, tuning_s, once_s)
    if paid is None:
        return line + (": the choice is predicted to save none of it" if ratio else "")
    return (line + f", ~{paid['saved_s']:,.1f} s less a run at the predicted {ratio:.2f}x"
            + (f" (its compile's ~{once_s:,.1f} s more counted)" if once_s else "") + ": the tuning pays for itself "
            + ("in the first run" if paid["runs"] == 1 else f"after {'at least' if early else 'about'} "
               f"{paid['runs']:,} runs"))


def decided_line(elapsed_s: float, forecast: tuple[float, float]) -> str:
    """Said in place of needs_line where every candidate was decided after all: the forecast counts the runs of a
    close race (every rival's rounds, the input rewrites, the ladder), and rivals dropped early, rewrites bounded by
    the input read alone and a ladder bounded by the host do not run them (xception_scratch at 64x64: 282 s
    forecast, every candidate decided in 173)."""
    return (f"every candidate was decided in {elapsed_s:,.0f} s, where the first trial's figures forecast about "
            f"{forecast[0]:,.0f} s ({forecast[1]:,.0f} s where a rival leads): the forecast counts every run a close "
            "race would need, and this one's decisions needed fewer")


__all__ = ["AUTO_FIRST", "AUTO_MIN", "AUTO_SHARE", "auto_budget", "auto_line", "decided_line", "need_figures",
           "needed_s", "needs_line", "payback", "payback_line", "predicted_training", "secs", "stage_s"]

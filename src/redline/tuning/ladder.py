"""The steps_per_execution ladder of the in-process stage: 2, 8, 32, ... calibrated in turn on one input until the
gain flattens, then the contenders among them for the interleaved rounds (tuning/rounds.py)."""

from __future__ import annotations

from .steps import divisor_up_to, headroom

#: in-process rounds: a ladder step under this share of the best calibration is not compared in the rounds
PRUNE = 0.8
#: the ladder's steps compared in the rounds: at most this many, the best of their calibrations
LADDER_ROUNDS = 3
#: the ladder: each step this many times the last (a new step function traced per step: 2, 8, 32, ... halves the
#: traces of doubling, and the rate is flat near its top, c + o/spe); it stops after LADDER_FLAT steps in a row without gain
LADDER_STEP, LADDER_FLAT = 4, 2
#: seconds: where the script's own step function took this long to trace (and compile), the ladder starts at
#: LADDER_STEP x 2 = 8, not 2 (a ladder step is a new trace: 12-15 s each for a MobileNetV2 fine-tuned on TensorFlow)
SLOW_TRACE = 5.0
#: over finite data, a ladder step above half an epoch's steps leaves one whole execution an epoch, untimed as the one
#: that starts the epoch's iterator, so its runs time only the epoch's short last executions (slow_conv, 10 steps of
#: 0.77 s an epoch: spe 8 ran 20 s a round to time 3 s of 2-step executions; tf_ops_layer, 157 steps of ~0.2 ms: spe
#: 128 timed 0.14 s of each 1.3-s run, and its calibration took 4.5 s). Such a step becomes the largest divisor of the
#: epoch's steps up to half of them: two whole executions an epoch, the second timed, in one pass.


def climb(calibrate, calib: dict, into: dict, feed, inp: str, own_spe: int, flattens: float, out: dict,
          trace_s: float = 0.0) -> tuple[list, int]:
    """steps_per_execution 2, 8, 32, ...: on while a step gains at least ``flattens`` over the best so far, up to an
    epoch's steps (``feed.cap``). A single calibration run is noisy, so the ladder stops only after LADDER_FLAT flat
    steps in a row, and every step it measured then goes into the interleaved rounds: the choice rests on medians.
    ``calibrate(name, cand, into, expect=...)`` gives a step's rate (or None). Returns [[spe, rate], ...] and the best
    step; a stop on headroom is written to ``out["ladder_stop"]``. ``trace_s``: the seconds the script's own step
    function took to trace; from SLOW_TRACE on, the ladder starts at 8, where an epoch has that many steps: spe 2 would
    cost as long again, and where a step costs c + o/spe, spe 8 gains at least what spe 2 would (where 8 gains
    nothing, neither does 2); the reason is written to ``out["ladder_start"]``. Over finite data, a step above half an
    epoch's steps becomes its largest divisor up to half (see above); the reason is written to ``out["ladder_pass"]``."""
    best_s, best_rate, steps, flat = 1, calib.get("default") or 0.0, [], 0
    target = 2
    if trace_s >= SLOW_TRACE and (feed.cap or 4096) >= 2 * LADDER_STEP:
        target = 2 * LADDER_STEP
        out["ladder_start"] = (f"started at {target}: the script's own step function took {trace_s:,.1f} s to trace "
                               f"here and each step of the ladder traces a new one; spe {target} gains at least what "
                               "spe 2 would (a step's cost shared as c + o/spe)")
    while target <= (feed.cap or 4096):  # capped by the steps of an epoch
        s, target = target, target * LADDER_STEP
        if feed.endless or (feed.cap and s > feed.cap // 2):  # endless data: epochs of whole executions, so a
            # divisor of the epoch's steps; finite data: two whole executions an epoch (above)
            wanted, s = s, divisor_up_to(feed.cap, s if feed.endless else feed.cap // 2)
            done = s in (1, own_spe, *(t for t, _ in steps))
            if not feed.endless:
                out["ladder_pass"] = (f"no step above {max([own_spe, *(t for t, _ in steps)])}" if done else
                                      f"spe {s}, not {wanted}") + (
                    f": a step above half of an epoch's {feed.cap} steps would leave one whole execution an epoch, not "
                    "timed (it starts the epoch's iterator), so its runs would time only the epoch's short last "
                    "executions" + ("" if s > 1 else f"; no divisor of {feed.cap} up to half is left to measure"))
            if done:
                continue
        cand = {"steps_per_execution": s, "input": inp}  # jit_compile stays the script's own
        rate = calibrate(f"spe {s}", cand, into, expect=best_rate / s)
        steps.append([s, round(rate or 0.0, 2)])
        if not rate:
            break
        if rate < best_rate * (1 + flattens):
            flat += 1
            if flat == LADDER_FLAT:
                break
        else:
            best_s, best_rate, flat = s, rate, 0
        room = headroom(own_spe, calib.get("default") or 0.0, best_s, best_rate) if best_s >= 8 else None
        # no larger step can gain that much; nor, after a step that gained nothing, twice that (a step past the top
        # of the curve: its next is 4x its steps an execution, and a single calibration of it the longest of the
        # ladder, 9.6 s of spe 128 on a 188-step epoch that gained nothing, where 5.5% was left to gain at most)
        if room is not None and (room < flattens or (flat and room < 2 * flattens)):
            out["ladder_stop"] = (f"at {s}: spe {best_s} ran {best_rate / calib['default']:.2f}x the "
                                  f"script's own {own_spe}, so no larger step can gain more than "
                                  f"{room:.1%} (a step's cost shared as c + o/spe)"
                                  + (f", and spe {s} gained nothing over it" if flat else ""))
            break
    return steps, best_s


def contenders(steps: list, plan: dict, into: dict, candidates: dict, inp: str) -> None:
    """The ladder's steps that go into the rounds, added to ``candidates``: not a step under PRUNE x the best
    calibration, nor one outside the best LADDER_ROUNDS of a plateau (each marked dropped in ``into``)."""
    top = max((r for _, r in steps), default=0.0)
    podium = sorted((r for _, r in steps if r), reverse=True)[:LADDER_ROUNDS]
    for s_, rate in steps:
        if rate and f"spe {s_}" in plan and (rate < PRUNE * top or rate not in podium):
            into[f"spe {s_}"] = {"dropped": f"{rate / top:.2f}x the best step of the ladder (calibration)"
                                            + ("" if rate < PRUNE * top else f", not among its best "
                                               f"{LADDER_ROUNDS}") + ": not compared in the rounds"}
        elif rate and f"spe {s_}" in plan:
            candidates[f"spe {s_}"] = {"steps_per_execution": s_, "input": inp}

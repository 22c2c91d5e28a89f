"""When one set of measurements beats another: by more than the spread measured for both, and at least MIN_GAIN."""

from __future__ import annotations

import statistics

#: smallest gain that counts, even where the measured spread is smaller.
MIN_GAIN = 0.05
#: a process that lost under this share of the machine's CPU time over its measurement (steal and other processes,
#: monitoring/contention.py) ran on the machine as it was (eight processes of imbalanced_mlp on a shared 2-core VM:
#: the two that lost 0.8% and 2.1% read 31-36 steps/s in whole epochs; one that lost 4.7% read 18-24, the five that
#: lost 7.6-24% 10-33)
QUIET = 0.025


def ran_quiet(share: float | None) -> bool:
    """A process that lost ``share`` of the machine (None: not known) ran on the machine as it was."""
    return share is not None and share < QUIET


def median(runs) -> float | None:
    return statistics.median(runs) if runs else None


def over_time(runs) -> float | None:
    """The rate of figures that each cover as many steps, over their total time (their harmonic mean): what a run of
    those epochs delivers. A script whose epochs run in two modes (custom_train_step at spe 1 on a 2-core VM: about 400
    or 750 steps/s, epoch by epoch) gets a median of 3 epochs that flips between them; this does not."""
    return len(runs) / sum(1 / r for r in runs) if runs and all(r > 0 for r in runs) else median(runs)


#: from this many measurements on, robust_spread leaves out the lowest and the highest
TRIM_FROM = 6


def spread(runs) -> float:
    """(max - min) / median of what was measured; 0 with fewer than 2 figures."""
    m = median(runs)
    if len(runs) < 2 or not m:
        return 0.0
    return (max(runs) - min(runs)) / m


def robust_spread(runs) -> float:
    """spread() of many measurements without their lowest and highest: one round that a stall or a neighbour slowed
    (a script's 9 rounds at 40-49 steps/s and one at 21.6) does not make every gain look like noise."""
    if len(runs) < TRIM_FROM:
        return spread(runs)
    ordered = sorted(runs)[1:-1]
    m = median(runs)
    return (ordered[-1] - ordered[0]) / m if m else 0.0


def behind(rate, took, bar, span, again) -> tuple:
    """A rival's first run long enough to time (``rate`` steps/s in ``took`` s) against ``bar`` (tuning/absorb.BEHIND x
    the fastest rate so far; None: no bar): (rate, took, out). Under the bar, it is out on the better of that run and
    one more (``again()``: (rate, took)) where the run took at most 4 x ``span``, else on that run alone (a run of
    seconds-long steps is not repeated). A one-time cost can land in any first run: JAX's first executions after its
    trace ran 24 steps/s where it settled at 50, under half of TensorFlow's 53; on imbalanced_mlp, a run that crossed
    the epoch's last, smaller batch compiled for it (1.85 s on a 2-core VM) and read 10.7 steps/s where JAX runs 30-45.
    The run was sized from the rival's own rate, so one more costs about what it took. A run shorter than ``span`` / 6
    says nothing (three 1 ms steps)."""
    if not (bar and rate) or rate >= bar or took < span / 6:
        return rate, took, False
    if took <= 4 * span:
        second, took2 = again()
        if second and second > rate:
            rate, took = second, took2
    return rate, took, rate < bar


def first_round_cuts(firsts: dict, reference: str, prune: float) -> dict:
    """The in-process rounds' contenders not measured after their first round ({name: why}), from ``firsts`` (name ->
    its first round's steps/s, ``reference`` among them): under ``prune`` x the best, or no faster than the reference
    (a choice needs a gain beyond the spread of both: two more rounds of such were most of the stage's time on scripts
    that nothing beats)."""
    top, own = max(firsts.values(), default=0.0), firsts.get(reference)
    whom = "the input as written" if reference == "as written" else "the script's own compile"
    out = {}
    for name, v in firsts.items():
        if name == reference:
            continue
        if v < prune * top:
            out[name] = f"{v / top:.2f}x the best in the first round: not measured again"
        elif own and v <= own:
            out[name] = f"{v / own:.2f}x {whom} in the first round: no gain, not measured again"
    return out


def cannot_win(runs: dict, reference: str, rounds: int) -> dict:
    """The in-process rounds' contenders that no round left can make a choice ({name: why}), from ``runs`` (name -> its
    rounds so far, ``reference`` among them) of ``rounds`` in all (odd): the median of all its rounds is at most its
    known rounds' m-th smallest (m = rounds // 2 + 1), the reference's at least its (m - rounds left)-th smallest, and a
    choice needs more than MIN_GAIN between the two (beats). imbalanced_mlp's input rewrite read 87.1 and 87.8 steps/s
    against 86.2 and 85.8 as written: its third round, 3.3 s, could not have made it a choice.
    A choice needs more than either spread as well, and rounds to come only widen a range: the contender's spread is
    at least its known range over that most median, the reference's median plus its range at least that least median
    plus its known range. mnist_convnet's input rewrite read 53.0 and 47.4 against 49.9 and 48.9 as written: a
    third round of 2 x 2.8 s could not have made a gain beyond its own spread of 11%."""
    own = runs.get(reference) or []
    whom = "the input as written" if reference == "as written" else "the script's own compile"
    out = {}
    if rounds % 2 == 0:
        return out
    m = rounds // 2 + 1
    for name, mine in runs.items():
        left = rounds - len(mine)
        if name == reference or left < 1 or len(mine) < m or len(own) - left < 1:
            continue
        most, least = sorted(mine)[m - 1], sorted(own)[m - 1 - left]
        bar = max(least * (1 + max(MIN_GAIN, (max(mine) - min(mine)) / most)), least + max(own) - min(own))
        if most <= bar:
            out[name] = (f"{len(mine)} rounds at {min(mine):,.1f}-{max(mine):,.1f} steps/s against "
                         f"{min(own):,.1f}-{max(own):,.1f} for {whom}: no round left can make it a gain of more than "
                         f"{bar / least - 1:.0%} (MIN_GAIN, or the spread of either), not measured again")
    return out


def beats(runs, base_runs, noise=()) -> bool:
    """``runs`` beat ``base_runs`` by more than both spreads, any spread in ``noise`` (measured elsewhere, e.g. of
    every round behind per-process medians), and MIN_GAIN."""
    if not runs or not base_runs:
        return False
    need = max(MIN_GAIN, spread(runs), spread(base_runs), *noise)
    return median(runs) > median(base_runs) * (1 + need)

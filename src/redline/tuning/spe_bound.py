"""Whether steps_per_execution can matter to this fit, before its ladder is measured: the host's share of a call.

steps_per_execution runs several steps in one call of the compiled step function. What it removes is what each call
costs outside the compiled work: the main thread's work between two calls (Keras' loop, the callbacks, the progress
bar) and inside a call around the graph (its dispatch). The ops of a step run on the backend's thread pools once a
step, whatever the steps a call. Read in a run of the script's own compile, as the wall time from one call's end to
the next one's start plus the main thread's CPU time inside the call, against the call's wall time from the end of the
one before (the main thread's waiting for the graph is not CPU time; work it ran inline is, which only widens the
bound), plus UNSEEN a call for what neither clock sees (the main thread's wake-up once the graph ends, the call's
start and end on the backend's threads): no steps_per_execution can gain more than that time over the rest of the
call. Where that is under ROOM, the gain a choice needs, the ladder is not measured: a ladder step could then only
be chosen on noise, and its gain would not reach the run; the result says so with the figures. Measured on a 2-core
Zen 4: slow_conv 2.3 ms of an 822 ms step (0.28%); fine_tune's second fit 4 ms of 170 ms (3.7% with UNSEEN: its
spe 8 read 0.94x, after a 12.8-s trace); fine_tune's first fit 3 ms of 60 ms (5%); mnist_convnet 2 ms of 25 ms (8%);
tabular_mlp 1.1 ms of 1.9 ms (63%, where spe 128 runs 3x).
"""

from __future__ import annotations

import statistics

from .compare import MIN_GAIN

#: the ladder is measured unless no steps_per_execution could gain this much: the smallest gain tune takes (a choice
#: needs it beyond the spread; UNSEEN is the bound's margin)
ROOM = MIN_GAIN
#: seconds a call costs that the main thread's clocks do not see, counted on top of what they do (mnist_convnet, 7
#: interleaved rounds on a 2-core Zen 4: spe 32 ran 1.105x spe 1 (pair ratios 0.89-1.40) where the host time read
#: 1.6 ms of 19 ms, a bound of 9.2%: within the noise, and this margin holds more)
UNSEEN = 0.002
#: a call that spends at least this share outside its compiled work is host-bound: what another backend's step changes
#: most (tabular_mlp: 63% of a 1.9-ms call, 3.5x on JAX; slow_conv: 0.28% of 822 ms, 0.24x on JAX)
HOST_BOUND = 0.25


def host_share(begins: list, ends: list) -> tuple[float, float, float] | None:
    """(share, host seconds, call seconds): medians over a run's calls after its first, within an epoch, from a
    tuning.steps.Steps callback's ``begins`` and ``ends`` (time, the thread's CPU time, thread, epoch). None where
    there are fewer than 2 such calls, or a batch's end ran on another thread than its begin (Keras runs batch-end
    callbacks on a thread pool where all are async-safe: the main thread's time is then not read)."""
    if len(begins) != len(ends) or any(b[2] != e[2] for b, e in zip(begins, ends)):
        return None
    rows = [((begins[k][0] - ends[k - 1][0]) + (ends[k][1] - begins[k][1]), ends[k][0] - ends[k - 1][0])
            for k in range(1, len(ends)) if begins[k][3] == ends[k - 1][3] and ends[k][0] > ends[k - 1][0]]
    if len(rows) < 2:
        return None
    return (statistics.median(host / wall for host, wall in rows), statistics.median(h for h, _ in rows),
            statistics.median(w for _, w in rows))


def host_bound(read: tuple[float, float, float] | None) -> str | None:
    """Where the run's calls are host-bound (HOST_BOUND), the figures that say so; else None (or not read)."""
    if read is None or read[0] < HOST_BOUND:
        return None
    return f"{read[0]:.0%} of a {read[2] * 1e3:,.1f}-ms call of its compiled step ran outside its compiled work"


def cannot_matter(read: tuple[float, float, float] | None) -> str | None:
    """Why the steps_per_execution ladder is not measured (the reason, with the figures), or None: measure it."""
    if read is None:
        return None
    _, host, call = read
    removable = host + UNSEEN
    most = removable / (call - removable) if call > removable else float("inf")
    if most >= ROOM:
        return None
    return (f"the script's own stands, decided by its figures: a call of its compiled step spent {host * 1e3:,.2f} ms "
            f"outside its compiled work (Keras' loop, callbacks, the call's dispatch) of {call:,.3f} s, so, with "
            f"{UNSEEN * 1e3:.0f} ms a call no clock sees, no steps_per_execution could gain more than {most:.2%}, under "
            f"the {MIN_GAIN:.0%} a choice needs: no ladder run")


__all__ = ["HOST_BOUND", "ROOM", "UNSEEN", "cannot_matter", "host_bound", "host_share"]

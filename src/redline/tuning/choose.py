"""When a measured candidate is chosen over the default: on enough measurements, beyond the spread of both."""

from __future__ import annotations

from .compare import beats
from .result import Candidate, fair, fair_spreads


#: a candidate is chosen only on at least this many measurements (a spread of two says little)
MIN_RUNS = 3


def ahead_of(cand: Candidate, default: Candidate) -> bool:
    """cand beats default by more than both measured spreads (Candidate.spread) and MIN_GAIN, on the figures of their
    processes that ran on the machine as it was where both have such (fair), however few its figures."""
    mine, theirs = fair(cand, default)
    return not cand.error and beats(mine, theirs, fair_spreads(cand, default))


def better(cand: Candidate, default: Candidate) -> bool:
    """ahead_of(), on at least MIN_RUNS figures of cand's: what a choice needs."""
    return len(cand.runs) >= MIN_RUNS and ahead_of(cand, default)


def choose(default: Candidate, others) -> Candidate:
    """The fastest (median) of the candidates that beat the default by more than the spread measured for both;
    the default where none does. Never slower than the default, and not stopped at the first plateau of a ladder."""
    eligible = [c for c in others if better(c, default)]
    return max(eligible, key=lambda c: c.median) if eligible else default


__all__ = ["MIN_RUNS", "ahead_of", "better", "choose"]

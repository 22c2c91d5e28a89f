"""Per-process candidates measured late: after the in-process stage, with the budget its reserve did not use.

Before the per-process stage, tune keeps back what the in-process stage is predicted to take (search.py). Where the
stage then ends sooner (an input rewrite decided without running, a ladder that stops at its first step), the seconds
it did not use are left over, while per-process candidates the reserve kept out stand "not measured: the budget ran
out" (slow_conv: 1 intra-op thread left unmeasured with 31 s of a 180-s budget unused, where one trial process takes
16 s). Those candidates are measured now, in passes as before (passes.process_stage), and each is decided: dropped
with its figures, or, where it is ahead, shown with its figures but not chosen, since the stage's knobs were measured
in another process and tune applies only what it measured together.
"""

from __future__ import annotations

from .passes import process_stage, same_backend, settled
from .result import Candidate


def late_cost(walls: list, per_trial: float):
    """``cost_of`` for late_pass: what a rival's trial process is expected to take, from ``walls`` ((rival, seconds its
    process took) so far): the longest of those on the same side of the script's own backend, at most ``per_trial``
    (the first trial's, which also ran the script's discovery), else ``per_trial``. fine_tune at 180 s: JAX's process
    ran 48 s to no figures and oneDNN off's 21 s; one intra-op thread stood unmeasured with 34 s left, since the longest
    rival (JAX) said a process takes 39 s."""
    def cost_of(cand: Candidate) -> float:
        like = [w for c, w in walls if same_backend(c) == same_backend(cand)]
        return min(per_trial, max(like)) if like else per_trial
    return cost_of


def late_pass(run, default: Candidate, live: list, best: Candidate, not_measured: list, *, per_trial: float, left,
              progress, training_s: float | None = None, run_s: float | None = None,
              cost_of=None) -> tuple[list, list]:
    """Measure the candidates of ``live`` that have no process yet (``run`` as process_stage takes it), where
    ``left()`` still holds a trial process (``per_trial`` s, or ``cost_of(cand)``: what a rival like it took).
    Returns (reasons, the not-measured lines): the lines of a candidate now decided are dropped from ``not_measured``,
    and the script as written's further processes where every candidate is decided."""
    late = [c for c in live if not (c.passes or c.error or c.dropped or c.advice)]
    if not late or left() < min(cost_of(c) if cost_of else per_trial for c in late):
        return [], not_measured
    names, spare = ", ".join(repr(c.name) for c in late), left()
    progress(f"trial: {names}, with the budget left after the in-process stage")
    said, missed, _, _ = process_stage(run, default, late, per_trial=per_trial, left=left, progress=progress,
                                       training_s=training_s, run_s=run_s, cost_of=cost_of)
    reasons = [f"measured after the in-process stage (or where it had no room), with the {spare:,.0f} s of the budget "
               f"left: {names}"]
    reasons += said
    done = {c.name for c in late if (c.error and not c.detail.get("budget_ended")) or c.dropped}
    kept = [n for n in not_measured if not any(n.startswith(f"{name} (") for name in done)]
    kept += [n for n in missed if not n.startswith(f"{default.name} (") and n not in kept]  # once each
    for c in late:
        if c.name in done or not c.passes or not default.median:
            continue
        reasons.append(f"'{c.name}': {c.median:,.1f} steps/s against {default.median:,.1f} as written "
                       f"({c.median / default.median:.2f}x) in {len(c.passes)} trial process(es) measured after the "
                       f"in-process stage: not chosen, since the stage's knobs were measured in '{best.name}'")
        kept = [n for n in kept if not n.startswith(f"{c.name} (")]
        kept.append(f"{c.name}: ahead in its trial process(es) measured after the in-process stage, not chosen: the "
                    "budget ran out before its own in-process stage")
    if settled(default, live):  # every rival decided: further processes of the script as written decide nothing
        kept = [n for n in kept if not n.startswith(f"{default.name} (")]
    return reasons, kept


__all__ = ["late_cost", "late_pass"]

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

from .passes import process_stage, settled
from .result import Candidate


def late_pass(run, default: Candidate, live: list, best: Candidate, not_measured: list, *, per_trial: float, left,
              progress, training_s: float | None = None, run_s: float | None = None) -> tuple[list, list]:
    """Measure the candidates of ``live`` that have no process yet (``run`` as process_stage takes it), where
    ``left()`` still holds a trial process (``per_trial`` s). Returns (reasons, the not-measured lines): the lines
    of a candidate now decided are dropped from ``not_measured``, and the script as written's further processes
    where every candidate is decided."""
    late = [c for c in live if not (c.passes or c.error or c.dropped or c.advice)]
    if not late or left() < per_trial:
        return [], not_measured
    names, spare = ", ".join(repr(c.name) for c in late), left()
    progress(f"trial: {names}, with the budget left after the in-process stage")
    said, missed, _, _ = process_stage(run, default, late, per_trial=per_trial, left=left, progress=progress,
                                       training_s=training_s, run_s=run_s)
    reasons = [f"measured after the in-process stage (or where it had no room), with the {spare:,.0f} s of the budget "
               f"left: {names}"]
    reasons += said
    done = {c.name for c in late if c.error or c.dropped}
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


__all__ = ["late_pass"]

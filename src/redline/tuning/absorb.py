"""A trial process's result folded into its candidate: its figures (the epochs as the script runs them, or training
figures given the script as written's epoch overhead), its loss, its start costs and what its process reported
(released iterators, `python`'s epoch starts, its sources), or why it was dropped or failed.
"""

from __future__ import annotations

from ..monitoring.contention import lost
from .compare import median
from .fork_watch import reason as fork_reason
from .payoff import ended
from .result import Candidate

#: a rival whose first executions run under this share of the fastest training rate measured so far (the script as
#: written's, or a rival's) stops there, dropped with that figure (a backend 10x slower on convolutions would otherwise
#: spend minutes of the budget being measured)
BEHIND = 0.5


def absorb(cand: Candidate, res: dict, reference: Candidate | None = None) -> None:
    """A trial's result into ``cand``. Where the trial measured no whole epochs (its deadline came first) but the
    ``reference`` (the script as written) did, its training figures are given the reference's epoch overhead, so the
    two are compared on one footing, and the detail says so."""
    if res.get("status") != "ok":
        if res.get("status") != "timeout" or not cand.passes:  # the budget ending a later process is no verdict: the
            cand.error = cand.error or res.get("error") or res.get("status")  # figures of the earlier ones stand
        if res.get("status") == "timeout" and not cand.passes:  # nor is it on the first: out of the race, not measured
            cand.detail["budget_ended"] = True
        return
    default = res["candidates"].get("default", {})
    if res.get("forks_under_jax") and cand.env.get("KERAS_BACKEND") == "jax":  # measured, but not safe to run
        cand.error = cand.error or fork_reason(res["forks_under_jax"])
    if "behind" in default:  # stopped after its first executions (BEHIND): its figure says enough
        cand.train_runs.append(default["behind"])
        first = ("its first execution, its compile left out" if default.get("first_execution") else
                 "its first executions")
        figure = f"{default['behind']:,.2f} training steps/s in {first}"
        if default.get("unfinished"):  # judged while it ran (tuning/first_look.Watch): the most it could still be
            figure = (f"at most {default['behind']:,.2f} training steps/s: its first execution had not ended "
                      f"{default['took_s']:,.0f} s after its compile")
        cand.dropped = (f"decisively behind: {figure}, under "
                        f"{BEHIND:.0%} of the fastest rate measured before it ({default['bar'] / BEHIND:,.2f}): not measured "
                        "further")
        return
    if "error" in default:
        cand.error = default["error"]
        return
    runs = default.get("steps_per_s", [])
    whole = res.get("as_run") or {}
    steps = res.get("steps_in_epoch")
    if whole.get("steps_per_s"):  # the epochs as the script runs them: what the choice rests on
        cand.train_runs.extend(runs)
        cand.overhead_s.append(whole["overhead_s"])
        runs = whole["steps_per_s"]
    elif runs and steps and reference is not None and reference is not cand and reference.overhead_s:
        from .as_run import with_overhead

        cand.train_runs.extend(runs)
        runs = [round(with_overhead(r, steps, median(reference.overhead_s)), 3) for r in runs]
        cand.detail["whole_epochs"] = "estimated: the script as written's epoch overhead added to its training figures"
    cand.runs.extend(runs)
    if (res.get("check") or {}).get("loss") is not None:
        cand.losses.append(res["check"]["loss"])
        cand.detail["check_steps"] = res["check"]["steps"]
    kept = {k: v for k, v in cand.detail.items() if k in ("check_steps", "whole_epochs", "contention", "rounds",
                                                          "refit_s", "released", "python_drops", "sources",
                                                          "first_extra", "retraces", "python_extra_s", "tf_s",
                                                          "tf_end_s")}
    if whole.get("steps_per_s"):  # per process: its first whole epoch beyond a later one (tuning/payoff.py)
        kept["first_extra"] = [*kept.get("first_extra", []), whole.get("first_extra_s")]
    if res.get("sources") is not None:  # the first trial's (tuning/sources.py): what the choice rests on
        kept["sources"] = res["sources"]
    refits = [f["start_s"] for f in (res.get("fits") or [])[1:] if f.get("traces") and f.get("start_s") is not None]
    if refits:  # later fits that traced anew, each run cut short in this process: what such a fit's start costs
        kept["refit_s"] = round(median(refits), 3)
    extras = [f["python_extra_s"] for f in (res.get("fits") or []) if f.get("python_extra_s") is not None]
    if extras:  # the first trial's: what `python` pays more at a later fit's start (tuning/fits.python_extra_s)
        kept["python_extra_s"] = round(median(extras), 3)
    if res.get("fits"):  # how many of the script's later fits trace anew, as far as any process saw (tuning/payoff.py)
        kept["retraces"] = max(kept.get("retraces", 0), sum(1 for f in res["fits"][1:] if f.get("traces")))
    if res.get("tf_s") is not None:  # per process: what it paid importing TensorFlow by its figures (payoff.tf_s)
        kept["tf_s"] = [*kept.get("tf_s", []), res["tf_s"]]
    if res.get("released"):  # per process: the waits its finished tf.data iterators took off the epoch loop
        kept["released"] = [*kept.get("released", []), res["released"]]
    if (res.get("python_drops") or {}).get("epochs"):  # per process: its epochs' starts timed as `python` runs them
        kept["python_drops"] = [*kept.get("python_drops", []), res["python_drops"]]
    if runs:
        cand.passes.append(round(median(runs), 3))
        kept["contention"] = [*kept.get("contention", []), lost(res.get("contention"))]  # one per process, as passes
        kept["rounds"] = [*kept.get("rounds", []), len(runs)]
    cand.detail = {**kept, **{k: res.get(k) for k in ("backend", "steps_in_epoch", "batch_size", "data", "setup_s",
                                                      "measure_s", "pinned_backend", "pinned_at", "script_compile",
                                                      "trace_s", "iterator_each_epoch", "fit_index",
                                                      "tf_import_s")}}
    ended(cand, res.get("after_fit") or {})  # and by the script's end, the rest run cut short (payoff.tf_s)


__all__ = ["BEHIND", "absorb"]

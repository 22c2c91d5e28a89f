"""Before a choice that needs its own process is kept: does the whole script still finish under it?

The script as written and the chosen per-process candidate each run once more in full, training cut short
(tuning/completion.py). A candidate that ends otherwise than the script as written (an exception after fit, say
TensorFlow-only code on JAX, or another exit code) is dropped with the exception and the script's line, and the next
best is checked in turn. Where the script as written itself fails after fit (a file it reads that is not there, a
folder it writes into that is not there), no candidate can be shown to finish where the script finishes: the script as
written stays, and tune says so, with the exception and the line. Another backend is never kept unchecked: where the
budget leaves no time for its check, the script as written stays.
"""

from __future__ import annotations

from typing import Callable


def _ending(res: dict) -> str:
    if res.get("status") == "complete":
        return f"exit code {res.get('exit_code', 0)}"
    if res.get("status") == "incomplete":
        return f"{res.get('error')}" + (f" at {res['where']}" if res.get("where") else "")
    said = res.get("error") or res.get("status") or "no result"
    return " | ".join(line.strip() for line in str(said).splitlines() if line.strip())  # one line: a traceback's too


def _same_ending(res: dict, ref: dict) -> bool:
    """``res`` finishes as the script as written finishes (``ref``): with the same exit code."""
    return res.get("status") == ref.get("status") == "complete" and res.get("exit_code") == ref.get("exit_code")


def confirm(default, others: list, best, *, run: Callable[[object], dict], pick: Callable[[list], object],
            time_left: Callable[[], float], per_trial: float, reference: dict | None = None,
            ended: dict | None = None, recheck: Callable | None = None) -> tuple[object, list, list]:
    """(the choice that finishes where the script finishes, reasons, what was not checked). ``run(cand)`` runs a
    completion trial; ``pick(candidates)`` chooses among the survivors (the default where none beats it);
    ``reference``: how the script as written ended where a trial already ran it to the end (the first trial does),
    so it is not run again; ``ended``: candidate name -> how the script ended after its measurement (the rest run cut
    short in its own trial process): such a candidate needs no time of the budget to be checked; ``recheck(cand,
    its ending, the script as written's)``: why a candidate that finishes is still not kept, given what the whole
    script did (payoff.unpaid_at_end), or None."""
    reasons, unchecked, ended, withdrawn = [], [], ended or {}, []

    def cost(cand) -> float:
        return 0.0 if cand.name in ended else per_trial

    if best is default:
        return best, reasons, unchecked
    def no_check(why: str):
        if "KERAS_BACKEND" in (getattr(best, "env", None) or {}):  # the one switch that breaks code after fit
            # (TensorFlow-only saving, a GradientTape step): not kept without the check, as a later candidate is not
            unchecked.append(f"the completion check of '{best.name}': {why}; another backend is not kept unchecked "
                             "(code after fit may need the script's own): the script as written stays")
            return default, reasons, unchecked
        unchecked.append(f"the completion check of '{best.name}': {why} (the choice is kept unchecked)")
        return best, reasons, unchecked

    def fails(ref: dict):  # the script fails after fit as written: nothing to finish where it finishes
        best.advice = f"the script as written fails after fit ({_ending(ref)}): fix that line, then tune again"
        reasons.append(f"the script as written fails after fit ({_ending(ref)}, training cut short): a choice that "
                       f"needs its own process is kept only where the whole script finishes under it, so "
                       f"'{best.name}' is not kept and the script as written stays; fix that line and tune again")
        return default, reasons, unchecked

    if (reference or {}).get("status") == "incomplete":
        return fails(reference)
    if time_left() < (0 if reference else per_trial) + cost(best):
        return no_check("the budget ran out")
    ref = reference or run(default)
    if ref.get("status") == "incomplete":
        return fails(ref)
    if ref.get("status") != "complete":  # no ending to compare with (a timeout, no result)
        return no_check(f"the script as written gave no ending to compare with under a cut run ({_ending(ref)})")
    while best is not default:
        if time_left() < cost(best):
            unchecked.append(f"the completion check of '{best.name}': the budget ran out; the script as written stays")
            return default, reasons, unchecked
        res = ended.get(best.name) or run(best)
        if _same_ending(res, ref):
            why = recheck(best, res, ref) if recheck else None
            if not why:
                reasons.append(f"{best.name}: the whole script finishes under it as written does ({_ending(res)}, "
                               "training cut short)")
                return best, reasons, unchecked
            best.dropped = why
            withdrawn.append(best)
            reasons.append(f"{best.name} dropped after its completion check: {why}")
        else:
            best.error = f"the script does not finish under it: {_ending(res)}; as written it ends with {_ending(ref)}"
            reasons.append(f"{best.name} dropped: {best.error}")
        best = pick([c for c in others if not c.error and c not in withdrawn])
    return best, reasons, unchecked


__all__ = ["confirm"]

"""The fits a script makes: which one tune measures.

A script may call ``fit`` more than once: a frozen base trained for a few epochs and then the whole model for more
(transfer learning), a warm-up, k folds. The first trial of the script as written measures its first fit, then runs
the rest of the script with training cut short (tuning/completion.py) and records every fit: a fingerprint of what a
step costs (the model's class and weights, which of them train, the compile arguments, the input's kind, the batch
size) and its size as the script asks (epochs x steps an epoch); a later fit that trains longer than every fit before
it is measured there too (its compile, often the costliest part of a trial process, paid once). The fit that trains
longest is the one every later trial measures; the fits before it run cut short there. Every other fit of its own
fingerprint then gets an in-process stage of its own, budget permitting (longest first), and `redline run` sets each
its own knobs (applying/per_fit.py).
"""

from __future__ import annotations


def fingerprint(model, compile_call, x, batch_size) -> str:
    """What one training step of this fit costs depends on (applying.per_fit.fingerprint, which run uses too)."""
    from ..applying.per_fit import fingerprint as of
    from ..data.rewrite import input_kind

    return of(model, compile_call, input_kind(x), batch_size)


def size(fit: dict) -> int:
    """Steps the fit trains as the script asks (0 where the steps of an epoch are not known)."""
    return int(fit.get("epochs") or 1) * int(fit.get("steps_in_epoch") or 0)


def longest(fits: list) -> dict | None:
    """The fit that trains longest; the earliest of equals (k folds of one model: the first)."""
    return max(fits, key=size) if fits else None


def others(fits: list, measured: dict) -> list:
    """The fits worth their own in-process stage besides ``measured``: one per fingerprint other than its, that trains
    (steps known), longest first."""
    seen, out = {measured.get("fingerprint")}, []
    for f in sorted(fits, key=lambda f: (-size(f), f["index"])):
        if f.get("fingerprint") not in seen and size(f) > 0:
            seen.add(f.get("fingerprint"))
            out.append(f)
    return out


__all__ = ["fingerprint", "longest", "others", "size"]

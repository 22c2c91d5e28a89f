"""The per-process stage's verdict in words: its reason line, and the advice its candidates against the script's own
lines give (a backend, thread counts or a dtype policy the script sets itself, measured with the line ignored)."""

from __future__ import annotations

from .choose import ahead_of
from .compare import median
from .result import Candidate, fair, fair_spreads

#: the trial settings under which a candidate is measured against one of the script's own lines, or a variable the
#: user's environment sets (advice only)
LINES = ("force_backend", "force_threads", "force_precision", "force_onednn", "environment")


def process_advice(procs: list, default: Candidate, best: Candidate) -> list[str]:
    """The best advice against each of the script's lines, where it beats the choice too. Advice changes nothing
    redline runs: beyond both spreads is enough, on however few figures (it says how many)."""
    out = []
    for line in LINES:
        ahead = [c for c in procs[1:] if c.advice and c.trial.get(line) and c.median and ahead_of(c, default)]
        adv = max(ahead, key=lambda c: c.median) if ahead else default
        if adv is not default and (best is default or adv.median > best.median):
            out.append(f"{adv.name}: {adv.median:,.1f} steps/s against {default.median:,.1f} as written "
                       f"({adv.median / default.median:.2f}x, {len(adv.runs)} against {len(default.runs)} "
                       f"measurements); {adv.advice}")
    return out


def process_reason(best: Candidate, default: Candidate) -> str:
    """Why ``best`` is the per-process choice, with its figures against the script as written."""
    if best is default:
        return "no per-process candidate that may be applied beat the script as written by more than the spread measured"
    mine, theirs = fair(best, default)
    quiet_only = bool(best.quiet_passes and default.quiet_passes)
    noise = fair_spreads(best, default)
    # tf.config.run_functions_eagerly(True) in the script: another backend's gain is partly that flag, unread there
    eager = (best.detail.get("backend") not in (None, "tensorflow")
             and (default.detail.get("script_compile") or {}).get("run_functions_eagerly"))
    return (f"{best.name}: {median(mine):,.1f} steps/s against {median(theirs):,.1f} as written "
            f"({median(mine) / median(theirs):.2f}x; spreads {noise[0]:.0%} and {noise[1]:.0%})"
            + (f", in the processes that ran on the machine as it was ({len(mine)} and {len(theirs)})"
               if quiet_only else "")
            + ("; the script runs TensorFlow's functions eagerly (tf.config.run_functions_eagerly(True)), which "
               f"{best.detail['backend']} does not read" if eager else ""))


__all__ = ["LINES", "process_advice", "process_reason"]

"""What applying a plan did: one Action per setting touched or left alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

APPLIED, KEPT, SKIPPED, FAILED = "applied", "kept", "skipped", "failed"

#: The fix to print when a setting came too late.
LATE_FIX = "call redline.configure() before building any tensor or model, or start the script with `redline run`"


@dataclass(frozen=True)
class Action:
    name: str
    value: Any
    #: "applied", "kept" (the user's value left alone), "skipped" (does not apply here) or "failed".
    status: str
    detail: str = ""


def attempt(name: str, value: Any, fn: Callable[[], Any], what: str) -> Action:
    """Run ``fn``; a RuntimeError means the runtime has started and the setting came too late."""
    try:
        fn()
    except RuntimeError as exc:
        return Action(name, value, FAILED, f"{exc} ({what}); fix: {LATE_FIX}")
    return Action(name, value, APPLIED, what)

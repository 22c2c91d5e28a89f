"""Applying: the only place that changes the runtime. It records what it did and what it left alone."""

from .actions import APPLIED, FAILED, KEPT, SKIPPED, Action
from .configure import AppliedPlan, configure, require_backend

__all__ = ["APPLIED", "FAILED", "KEPT", "SKIPPED", "Action", "AppliedPlan", "configure", "require_backend"]

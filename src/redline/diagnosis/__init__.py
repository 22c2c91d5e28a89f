"""Diagnosing: read snapshots, plans and measurements; say what holds a run back and what to change."""

from .config import ERROR, INFO, WARNING, Finding, config_findings

__all__ = ["ERROR", "INFO", "WARNING", "Finding", "config_findings"]

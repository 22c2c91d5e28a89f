"""Diagnosing: read snapshots, plans and measurements; say what holds a run back and what to change."""

from .bottleneck import THRESHOLDS, Breakdown, Diagnosis, diagnose_measured
from .config import ERROR, INFO, WARNING, Finding, config_findings
from .run import RunSummary, summarise, summarise_record


def diagnose_record(path):
    """(record, summary, diagnosis) of a run record file; RecordError names the file if it cannot be read."""
    from ..monitoring.record import load

    rec = load(path)
    summary = summarise_record(rec)
    return rec, summary, diagnose_measured(rec.probe, summary, rec.header)


__all__ = ["ERROR", "INFO", "THRESHOLDS", "WARNING", "Breakdown", "Diagnosis", "Finding", "RunSummary", "config_findings",
           "diagnose_measured", "diagnose_record", "summarise", "summarise_record"]

"""The run record: one JSON object per line, written as the run goes, so a crash leaves a readable file.

Line types (the ``type`` field):
- ``header``: first line; schema, start time, model, batch size, compile knobs, GPUs, runtime settings, plan in force;
- ``snapshot``: the machine (redline.detect()), taken off the training thread;
- ``sample``: one reading of the sampler (CPU per core, process CPU and RSS, runnable threads, GPUs);
- ``steps``: batch-end marks since the last such line: ``marks`` = [[epoch, step, t], ...];
- ``epoch``: an epoch's begin or end time;
- ``profile``: where a profiler trace went, or why none was written;
- ``probe``: the three throughputs measured by redline.diagnose();
- ``sample_stop``: the sampler saw fit leave without finishing (an exception);
- ``end``: the run finished (absent after a crash).
Times ``t`` are seconds since the header's ``t0``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field

from ..errors import UsageError

SCHEMA = "redline.run/1"


class RecordError(UsageError):
    """A run record that cannot be read: the message names the file and what is wrong."""


class RecordWriter:
    """Appends one JSON line per call and flushes it, from any thread."""

    def __init__(self, path, mode: str = "w"):
        self.path = os.fspath(path)
        self._file = open(self.path, mode, encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, obj: dict) -> None:
        line = json.dumps(obj, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


@dataclass
class RunRecord:
    path: str
    header: dict
    samples: list = field(default_factory=list)
    #: (epoch, step, t) batch-end marks, in order of t.
    marks: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    profile: dict | None = None
    probe: dict | None = None
    end: dict | None = None
    #: what the reader had to say about the file itself (e.g. a truncated last line).
    notes: list = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.end is not None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


#: per line type: field -> (test, what it should be, required)
_FIELDS = {
    "header": {"batch_size": (lambda v: v is None or (_count(v) and v > 0), "a positive whole number or null", False),
               "steps_per_execution": (lambda v: v is None or (_count(v) and v > 0), "a positive whole number", False),
               "gpu_names": (lambda v: v is None or isinstance(v, list), "a list", False),
               "runtime": (lambda v: v is None or isinstance(v, dict), "an object", False)},
    "sample": {"t": (_number, "a number of seconds", True),
               "cpu_per_core_pct": (lambda v: v is None or (isinstance(v, list) and all(map(_number, v))), "a list of numbers", False),
               "process_cores_busy": (lambda v: v is None or _number(v), "a number", False),
               "rss_bytes": (lambda v: v is None or _count(v), "a whole number", False),
               "runnable": (lambda v: v is None or _count(v), "a whole number", False),
               "gpus": (lambda v: v is None or (isinstance(v, list) and all(
                   isinstance(g, dict) and _number(g.get("util_pct")) and _count(g.get("mem_used_bytes"))
                   and _count(g.get("mem_total_bytes")) for g in v)), "a list of GPU readings", False)},
    "steps": {"marks": (lambda v: isinstance(v, list) and all(
        isinstance(m, list) and len(m) == 3 and _count(m[0]) and _count(m[1]) and _number(m[2]) for m in v),
        "a list of [epoch, step, t] marks", True)},
    "epoch": {"epoch": (_count, "a whole number", True), "event": (lambda v: v in ("begin", "end"), "begin or end", True),
              "t": (_number, "a number of seconds", True)},
    "probe": {k: (lambda v: _number(v) and v > 0, "a positive number", True) for k in
              ("batch_size", "model_samples_per_s", "model_2x_samples_per_s", "run_samples_per_s", "pipeline_samples_per_s")},
    "end": {"t": (_number, "a number of seconds", True)},
}


def _check_line(obj: dict) -> str | None:
    """What is wrong with one line's fields, or None."""
    for key, (ok, what, required) in _FIELDS.get(obj.get("type"), {}).items():
        if key not in obj:
            if required:
                return f"has no {key!r}"
            continue
        if not ok(obj[key]):
            return f"has {key}={json.dumps(obj[key])[:80]}, not {what}"
    return None


def load(path) -> RunRecord:
    """Read a run record. Missing or corrupt: RecordError naming the file; truncated: read up to the break."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise RecordError(f"run record {path!r} does not exist; give the file a redline.Monitor(...) or redline.diagnose(..., record=...) wrote")
    if os.path.isdir(path):
        raise RecordError(f"run record {path!r} is a directory; give the .jsonl file inside it")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise RecordError(f"run record {path!r} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"run record {path!r} is not a redline run record: not UTF-8 text (byte {exc.start})") from None
    lines = text.split("\n")
    ends_cleanly = lines[-1] == ""
    if ends_cleanly:
        lines.pop()
    if not lines or not lines[0].strip():
        raise RecordError(f"run record {path!r} is empty: the run wrote nothing (it stopped before training began?)")
    objs, notes = [], []
    for i, line in enumerate(lines, 1):
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            last = i == len(lines)
            if last and not ends_cleanly and i > 1:
                notes.append(f"the last line ({i}) is cut off, as when a run is killed mid-write; the {i - 1} complete lines are read")
                break
            if i == 1:
                raise RecordError(f"run record {path!r} is not a redline run record: line 1 is not JSON ({exc})") from None
            raise RecordError(f"run record {path!r} is corrupt: line {i} of {len(lines)} is not valid JSON ({exc}); "
                              f"the record is unreadable past it") from None
        objs.append(obj)
    header = objs[0]
    if header.get("type") != "header" or "schema" not in header:
        raise RecordError(f"run record {path!r} is not a redline run record: line 1 has no redline header")
    if header["schema"] != SCHEMA:
        raise RecordError(f"run record {path!r} has schema {header['schema']!r}; this redline reads {SCHEMA!r}")
    rec = RunRecord(path=path, header=header, notes=notes)
    for i, obj in enumerate(objs, 1):
        problem = _check_line(obj)
        if problem:
            raise RecordError(f"run record {path!r} is corrupt: line {i} of {len(objs)} ({obj.get('type', 'no type')}) {problem}; "
                              "it is not what redline writes (edited or written by another program?)")
        if i == 1:
            continue
        kind = obj.get("type")
        if kind == "sample":
            rec.samples.append(obj)
        elif kind == "steps":
            rec.marks.extend(tuple(m) for m in obj["marks"])
        elif kind == "epoch":
            rec.epochs.append(obj)
        elif kind == "profile":
            rec.profile = obj
        elif kind == "probe":
            rec.probe = obj
        elif kind == "end":
            rec.end = obj
        elif kind == "snapshot":
            header["snapshot"] = obj.get("snapshot")
        elif kind == "sample_stop":
            notes.append(f"sampling stopped at {obj.get('t')} s: {obj.get('reason')}")
    rec.marks.sort(key=lambda m: m[2])
    if rec.end is None:
        notes.append("no end line: the run did not finish (crashed, killed, or still running); what it wrote is reported")
    return rec


__all__ = ["SCHEMA", "RecordError", "RecordWriter", "RunRecord", "load"]

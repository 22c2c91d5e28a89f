"""Memory probe: total and available RAM (psutil) and the cgroup memory limit."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from .cpu import cgroup_dirs
from .snapshot import MemoryInfo, NotAvailable

# cgroup v1 writes "no limit" as a huge number rounded to the page size.
_V1_UNLIMITED = 1 << 62


def memory_limit(root: Path) -> int | None | NotAvailable:
    """The tightest cgroup memory limit on this process's path, in bytes; None when unlimited."""
    version, dirs = cgroup_dirs(root, "memory")
    if version == "none":
        return NotAvailable("no cgroup filesystem found")
    name = "memory.max" if version == "v2" else "memory.limit_in_bytes"
    limits = []
    for d in dirs:
        try:
            text = (d / name).read_text().strip()
        except OSError:
            continue
        if text == "max":
            continue
        try:
            value = int(text)
        except ValueError:
            return NotAvailable(f"unreadable {d / name}: {text!r}")
        if value < _V1_UNLIMITED:
            limits.append(value)
    return min(limits) if limits else None


def probe_memory(root: str | os.PathLike = "/") -> MemoryInfo:
    try:
        vm = psutil.virtual_memory()
        total, avail = vm.total, vm.available
    except (psutil.Error, OSError) as exc:
        total = avail = NotAvailable(f"psutil failed: {exc}")
    return MemoryInfo(total_bytes=total, available_bytes=avail, cgroup_limit_bytes=memory_limit(Path(root)))

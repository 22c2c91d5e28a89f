"""CPU probe: counts, affinity, container quota, topology and features.

Counts and affinity come from psutil; topology, model and features from
``/proc/cpuinfo``; the quota from the cgroup files; NUMA nodes from sysfs.
Every file path is taken under ``root`` so tests can fake the whole tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from .snapshot import CPU_FEATURES, CPUInfo, NotAvailable

# /proc/cpuinfo flag names for each feature redline reports.
_FLAG_NAMES = {
    "avx2": ("avx2",),
    "fma": ("fma",),
    "avx512f": ("avx512f",),
    "avx512_bf16": ("avx512_bf16",),
    "amx": ("amx_tile", "amx_bf16", "amx_int8"),
}


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def parse_cpuinfo(text: str) -> list[dict]:
    """One dict per processor block of /proc/cpuinfo."""
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, _, value = line.partition(":")
        current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return [b for b in blocks if "processor" in b]


def _topology(blocks: list[dict]) -> dict[int, tuple[str, str]] | None:
    """CPU id -> (socket, core), or None when /proc/cpuinfo does not say."""
    topo = {}
    for b in blocks:
        if "physical id" not in b or "core id" not in b:
            return None
        try:
            topo[int(b["processor"])] = (b["physical id"], b["core id"])
        except ValueError:
            return None
    return topo or None


def _features(blocks: list[dict]) -> dict | NotAvailable:
    flags = None
    for b in blocks:
        if "flags" in b:
            flags = set(b["flags"].split())
            break
    if flags is None:
        return NotAvailable("/proc/cpuinfo lists no x86 flags")
    return {name: any(f in flags for f in _FLAG_NAMES[name]) for name in CPU_FEATURES}


# ---------------------------------------------------------------- cgroups

def _own_cgroups(root: Path) -> list[tuple[str, str]]:
    """(controllers, path) pairs from /proc/self/cgroup."""
    text = _read(root / "proc/self/cgroup") or ""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[1], parts[2]))
    return out


def _walk_up(base: Path, rel: str) -> list[Path]:
    """The cgroup directory of ``rel`` under ``base`` and all its ancestors up to ``base``.

    Inside a container without a cgroup namespace the path named in
    /proc/self/cgroup may not exist under the mount; the mount root then holds
    the container's own limits, and is always included.
    """
    dirs = []
    rel_path = Path(rel.lstrip("/"))
    while rel_path.parts:
        dirs.append(base / rel_path)
        rel_path = rel_path.parent
    dirs.append(base)
    return [d for d in dirs if d.is_dir()]


def _v2_quota(text: str) -> float | None:
    quota, _, period = text.strip().partition(" ")
    if quota == "max":
        return None
    return int(quota) / int(period or 100000)


def _v1_quota(quota_text: str, period_text: str) -> float | None:
    quota = int(quota_text.strip())
    if quota <= 0:
        return None
    return quota / int(period_text.strip())


def cgroup_dirs(root: Path, controller: str) -> tuple[str, list[Path]]:
    """("v2" | "v1", directories to read ``controller`` limits from, innermost first)."""
    cg = root / "sys/fs/cgroup"
    own = _own_cgroups(root)
    for controllers, rel in own:
        names = controllers.split(",")
        if controller in names:
            dirs = []
            for mount in {cg / controllers, cg / controller}:
                dirs += _walk_up(mount, rel)
            if dirs:
                return "v1", dirs
    if (cg / "cgroup.controllers").is_file():
        rel = next((r for c, r in own if c == ""), "/")
        return "v2", _walk_up(cg, rel)
    return "none", []


def cpu_quota(root: Path) -> float | None | NotAvailable:
    """The tightest CPU quota on this process's cgroup path, in CPUs; None when unlimited."""
    try:
        version, dirs = cgroup_dirs(root, "cpu")
        limits = []
        for d in dirs:
            if version == "v2":
                text = _read(d / "cpu.max")
                if text is not None:
                    limits.append(_v2_quota(text))
            else:
                q, p = _read(d / "cpu.cfs_quota_us"), _read(d / "cpu.cfs_period_us")
                if q is not None and p is not None:
                    limits.append(_v1_quota(q, p))
    except (ValueError, ZeroDivisionError) as exc:
        return NotAvailable(f"unreadable cgroup CPU quota: {exc}")
    if version == "none":
        return NotAvailable("no cgroup filesystem found")
    limits = [x for x in limits if x is not None]
    return min(limits) if limits else None


# ---------------------------------------------------------------- the probe

def _affinity() -> tuple | NotAvailable:
    try:
        return tuple(sorted(psutil.Process().cpu_affinity()))
    except (AttributeError, NotImplementedError):
        return NotAvailable("CPU affinity is not supported on this platform")
    except psutil.Error as exc:
        return NotAvailable(f"psutil could not read CPU affinity: {exc}")


def _count(logical: bool):
    try:
        n = psutil.cpu_count(logical=logical)
    except (psutil.Error, OSError) as exc:
        return NotAvailable(f"psutil failed: {exc}")
    return n if n else NotAvailable("psutil could not count them")


def probe_cpu(root: str | os.PathLike = "/") -> CPUInfo:
    root = Path(root)
    cpuinfo_text = _read(root / "proc/cpuinfo")
    blocks = parse_cpuinfo(cpuinfo_text) if cpuinfo_text else []
    no_cpuinfo = NotAvailable("/proc/cpuinfo not readable")

    logical = _count(logical=True)
    physical = _count(logical=False)
    affinity = _affinity()
    topo = _topology(blocks)

    if topo:
        sockets = len({s for s, _ in topo.values()})
        cpus = affinity if not isinstance(affinity, NotAvailable) else tuple(topo)
        physical_in_affinity = len({topo[c] for c in cpus if c in topo}) or NotAvailable("affinity CPUs missing from /proc/cpuinfo")
    else:
        reason = "/proc/cpuinfo has no physical id/core id" if blocks else no_cpuinfo.reason
        sockets = NotAvailable(reason)
        if isinstance(affinity, NotAvailable) or (not isinstance(logical, NotAvailable) and len(affinity) == logical):
            physical_in_affinity = physical
        else:
            physical_in_affinity = NotAvailable(f"{reason}; cannot map affinity CPUs to cores")

    node_dir = root / "sys/devices/system/node"
    if node_dir.is_dir():
        numa_nodes = len([p for p in node_dir.glob("node[0-9]*") if p.is_dir()]) or NotAvailable("no node entries in sysfs")
    else:
        numa_nodes = NotAvailable("sysfs has no NUMA node directory")

    first = blocks[0] if blocks else {}
    model = first.get("model name") or first.get("Model") or NotAvailable("no model name in /proc/cpuinfo" if blocks else no_cpuinfo.reason)
    vendor = first.get("vendor_id") or NotAvailable("no vendor_id in /proc/cpuinfo" if blocks else no_cpuinfo.reason)
    features = _features(blocks) if blocks else no_cpuinfo

    return CPUInfo(
        logical=logical,
        physical=physical,
        affinity=affinity,
        quota=cpu_quota(root),
        physical_in_affinity=physical_in_affinity,
        sockets=sockets,
        numa_nodes=numa_nodes,
        model=model,
        vendor=vendor,
        features=features,
    )

"""The process layout of `redline launch`: pure, from a snapshot and the user's options, each choice with its reason.

One host or several: ``world = hosts x nproc_per_host`` processes, ranked host by host. Each local process gets
an equal, contiguous share of the usable CPUs (pinned, so the JAX and tf.data thread pools size themselves to it),
the Keras JAX backend and the ``KERAS_DISTRIBUTION_*`` variables that ``keras.distribution.initialize()`` reads.
The coordinator listens on loopback unless several hosts are asked for.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..detection.snapshot import available
from ..errors import UsageError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Proc:
    rank: int
    local_rank: int
    cpus: tuple  # CPU ids it is pinned to; () where it is not pinned
    threads: int
    env: dict


@dataclass
class LaunchPlan:
    hosts: int
    host_rank: int
    nproc_per_host: int
    world: int
    coordinator: str  # HOST:PORT
    procs: list  # this host's processes
    reasons: dict = field(default_factory=dict)  # setting -> why
    cluster: str | None = None  # "SLURM" / "Open MPI" where that environment was found

    def text(self) -> str:
        lines = [f"redline launch: {self.world} process(es): {self.hosts} host(s) x {self.nproc_per_host}; this host is "
                 f"{self.host_rank}; coordinator {self.coordinator}"]
        for p in self.procs:
            cpus = f"CPUs {_ranges(p.cpus)}" if p.cpus else "not pinned"
            lines.append(f"  rank {p.rank} (local {p.local_rank}): {p.threads} thread(s), {cpus}, KERAS_BACKEND=jax")
        for k, why in self.reasons.items():
            lines.append(f"  {k}: {why}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"hosts": self.hosts, "host_rank": self.host_rank, "nproc_per_host": self.nproc_per_host,
                "world": self.world, "coordinator": self.coordinator, "cluster": self.cluster, "reasons": self.reasons,
                "procs": [{"rank": p.rank, "local_rank": p.local_rank, "cpus": list(p.cpus), "threads": p.threads,
                           "env": p.env} for p in self.procs]}


def _ranges(cpus) -> str:
    out, start, prev = [], None, None
    for c in list(cpus) + [None]:
        if start is None:
            start = prev = c
        elif c is not None and c == prev + 1:
            prev = c
        else:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = c
    return ",".join(out)


def whole(value, name: str, low: int, example: str) -> int:
    """``value`` as a whole number >= low, or a UsageError that says what was given and what is valid."""
    try:
        n = int(str(value), 10)
    except ValueError:
        raise UsageError(f"{name} {value!r} is not a whole number: give {low} or more, e.g. {name} {example}") from None
    if n < low:
        raise UsageError(f"{name} {value!r} is not valid: give {low} or more, e.g. {name} {example}")
    return n


def parse_address(text: str, what: str = "--coordinator") -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) -> (host, port); a UsageError for anything else."""
    host, sep, port = str(text).rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"{what} {text!r} is not HOST:PORT with a port of 1-65535: give e.g. {what} 10.0.0.1:29500")
    return host, int(port)


def cluster_environment(env=None) -> tuple[str | None, dict]:
    """('SLURM' / 'Open MPI' / None, {hosts, host_rank, nproc_per_host where the environment says})."""
    env = os.environ if env is None else env
    if "OMPI_COMM_WORLD_SIZE" in env and "OMPI_COMM_WORLD_RANK" in env:
        return "Open MPI", {"hosts": int(env["OMPI_COMM_WORLD_SIZE"]), "host_rank": int(env["OMPI_COMM_WORLD_RANK"]),
                            "nproc_per_host": 1}
    if "SLURM_JOB_ID" in env and "SLURM_NTASKS" in env and "SLURM_PROCID" in env:
        return "SLURM", {"hosts": int(env["SLURM_NTASKS"]), "host_rank": int(env["SLURM_PROCID"]), "nproc_per_host": 1}
    return None, {}


def default_nproc(snapshot) -> tuple[int, str]:
    gpus = snapshot.gpus.visible
    if gpus:
        return 1, (f"one process drives this host's {len(gpus)} GPU(s) through DataParallel (one process per GPU "
                   "was not measured against it here)")
    nodes = snapshot.cpu.numa_nodes if available(snapshot.cpu.numa_nodes) else 1
    if nodes > 1:
        return nodes, f"one process per NUMA node ({nodes}), each pinned to its node's CPUs"
    return 1, "one NUMA node and no GPU: one process uses every usable core (more processes split the same cores)"


def plan_launch(snapshot, *, nproc=None, hosts=1, host_rank=0, coordinator=None, port=None, env=None) -> LaunchPlan:
    """The layout for this host. ``port``: the free port chosen for a loopback coordinator (the caller finds one)."""
    env = os.environ if env is None else env
    reasons = {}
    cluster, found = cluster_environment(env)
    hosts = whole(hosts, "--hosts", 1, "2")
    host_rank = whole(host_rank, "--host-rank", 0, "0")
    if cluster and hosts == 1 and host_rank == 0 and nproc is None:
        hosts, host_rank, nproc = found["hosts"], found["host_rank"], found["nproc_per_host"]
        reasons["cluster"] = (f"{cluster} environment: {hosts} task(s), this is task {host_rank}, one process per task "
                              "(jax.distributed reads the same variables)")
    if not 0 <= host_rank < hosts:
        raise UsageError(f"--host-rank {host_rank} is not valid with --hosts {hosts}: give 0 to {hosts - 1}")
    if nproc is None:
        nproc, reasons["processes per host"] = default_nproc(snapshot)
    else:
        nproc = whole(nproc, "--nproc-per-host", 1, "2")
        reasons["processes per host"] = "as asked (--nproc-per-host)"
    world = hosts * nproc
    if hosts > 1:
        if coordinator is None and not cluster:
            raise UsageError(f"--hosts {hosts} needs --coordinator HOST:PORT, the address of host 0 that every host can "
                             "reach, e.g. --coordinator 10.0.0.1:29500")
        host, p = parse_address(coordinator) if coordinator else (env.get("SLURM_LAUNCH_NODE_IPADDR", LOOPBACK), port)
        reasons["coordinator"] = "host 0 listens on every interface: other hosts must reach it"
    elif coordinator is not None:
        host, p = parse_address(coordinator)
        reasons["coordinator"] = "as asked (--coordinator)"
    else:
        host, p = LOOPBACK, port
        reasons["coordinator"] = "one host: the coordinator listens on loopback only, on a free port"
    address = f"[{host}]:{p}" if ":" in host else f"{host}:{p}"

    usable = list(snapshot.cpu.affinity) if available(snapshot.cpu.affinity) else list(range(snapshot.cpu.usable))
    usable = usable[: snapshot.cpu.usable]  # a quota below the affinity count: use that many
    share = max(1, len(usable) // nproc)
    if nproc > 1 and len(usable) >= nproc:
        reasons["threads"] = (f"{len(usable)} usable CPUs split into {nproc} contiguous shares of {share}, each process "
                              "pinned to its share so its thread pools size themselves to it")
    elif nproc > 1:
        reasons["threads"] = f"{nproc} processes on {len(usable)} usable CPU(s): more processes than CPUs, none pinned"
    else:
        reasons["threads"] = f"one process per host: all {len(usable)} usable CPUs, not pinned"
    procs = []
    for local in range(nproc):
        rank = host_rank * nproc + local
        cpus = tuple(usable[local * share:(local + 1) * share]) if nproc > 1 and len(usable) >= nproc else ()
        threads = len(cpus) or max(1, len(usable) // nproc)
        penv = {"KERAS_BACKEND": "jax", "KERAS_DISTRIBUTION_JOB_ADDRESSES": address,
                "KERAS_DISTRIBUTION_NUM_PROCESSES": str(world), "KERAS_DISTRIBUTION_PROCESS_ID": str(rank),
                "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"}
        procs.append(Proc(rank, local, cpus, threads, penv))
    reasons["backend"] = ("Keras' JAX backend: keras.distribution runs multi-process fit over jax.distributed (gloo on "
                          "CPUs, NCCL on GPUs); TensorFlow's MultiWorkerMirroredStrategy fails with Keras 3 fit "
                          "(keras-team/keras#20585)" + ("" if world > 1 else "; one process in all: no distribution "
                                                        "is installed (it would only cost time), backups and restarts stay"))
    return LaunchPlan(hosts, host_rank, nproc, world, address, procs, reasons, cluster)

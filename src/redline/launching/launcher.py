"""Start this host's processes of a launch plan, watch them, stop and restart the group when a worker dies.

Each worker runs in its own session (its process group holds anything it starts) and gets SIGKILL when the
launcher dies. Output is read as it comes and tagged ``[rank k]``; by default only rank 0's is shown, the others'
last lines are kept and shown when that rank fails. A worker killed by a signal is a dead worker: the whole group
is stopped and started again, from the last backup where there is a checkpoint folder, up to ``max_restarts``
times. A worker that exits with an error of its own (a Python exception) is not retried: its rank and exit code
are reported and the code is passed on.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .worker import ENV, EXIT_SETUP, EXIT_TF_ONLY, MARK

UPSTREAM = "https://github.com/keras-team/keras/issues/20585"
STOP_GRACE_S = 5.0


@dataclass
class Outcome:
    code: int
    restarts: int = 0
    message: str = ""
    events: list = field(default_factory=list)  # what the workers reported (backups, restores, the batch)


class _Reader(threading.Thread):
    """Copies one worker's output to ours, each line tagged; keeps its last lines and its REDLINE-LAUNCH events."""

    def __init__(self, rank: int, stream, show: bool, out, events: list, lock):
        super().__init__(daemon=True)
        self.rank, self.stream, self.show, self.out, self.events, self.lock = rank, stream, show, out, events, lock
        self.tail = collections.deque(maxlen=20)

    def run(self):
        pending = b""
        while True:
            chunk = os.read(self.stream.fileno(), 65536)
            if not chunk:
                break
            pending += chunk
            while True:
                cut = min((i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0), default=-1)
                if cut < 0:
                    break
                line, end, pending = pending[:cut], pending[cut:cut + 1], pending[cut + 1:]
                self._line(line.decode(errors="replace"), end.decode())
        if pending:
            self._line(pending.decode(errors="replace"), "\n")

    def _line(self, text: str, end: str):
        if text.startswith(MARK):
            try:
                self.events.append(json.loads(text[len(MARK):]))
            except ValueError:
                pass
            return
        if text.strip():
            self.tail.append(text)
        if self.show:
            with self.lock:
                self.out.write(f"{prefix_of(self.rank)}{text}{end}" if text else end)  # a progress bar's "\r" stays one
                self.out.flush()


def prefix_of(rank: int) -> str:
    return f"[rank {rank}] "


def _signal_group(proc, sig) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(procs) -> None:
    """SIGTERM to every worker's process group, SIGKILL to what is left after the grace time; reaps them all."""
    for p in procs:
        if p.poll() is None:
            _signal_group(p, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        _signal_group(p, signal.SIGKILL)  # the group may hold children even where the worker itself has exited
        try:
            p.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass


def launch(plan, script: str, args, *, checkpoint_dir=None, max_restarts: int = 3, all_ranks: bool = False,
           global_batch: int | None = None, out=None, log=None) -> Outcome:
    out = out or sys.stdout
    log = log or (lambda msg: print(f"redline launch: {msg}", file=sys.stderr, flush=True))
    lock = threading.Lock()
    stop = {"signal": None}

    def on_signal(signum, frame):
        stop["signal"] = signum

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    restarts, events = 0, []
    try:
        while True:
            procs, readers = [], []
            for p in plan.procs:
                cfg = {"rank": p.rank, "world": plan.world, "cpus": list(p.cpus), "checkpoint_dir": checkpoint_dir,
                       "global_batch": global_batch}
                env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, **p.env, ENV: json.dumps(cfg), "PYTHONUNBUFFERED": "1"}
                proc = subprocess.Popen([sys.executable, "-m", "redline.launching.worker", script, *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
                r = _Reader(p.rank, proc.stdout, all_ranks or p.rank == 0, out, events, lock)
                r.start()
                procs.append(proc)
                readers.append(r)
            failed = None
            while failed is None:
                if stop["signal"] is not None:
                    stop_group(procs)
                    name = signal.Signals(stop["signal"]).name
                    return Outcome(128 + stop["signal"], restarts, f"stopped by {name}: every worker was stopped", events)
                codes = [p.poll() for p in procs]
                if all(c == 0 for c in codes):
                    break
                ended = [(rank, c) for rank, c in zip((p.rank for p in plan.procs), codes) if c not in (None, 0)]
                if ended:  # a worker killed by a signal first: its peers' errors may follow from its death (a
                    # collective's "Connection reset by peer" on rank 0 after rank 1 was killed is not rank 0's own)
                    failed = min(ended, key=lambda rc: rc[1] >= 0)
                else:
                    time.sleep(0.1)
            if failed is None:
                for r in readers:
                    r.join(timeout=5)
                return Outcome(0, restarts, "every process finished", events)
            rank, code = failed
            stop_group(procs)
            for r in readers:
                r.join(timeout=5)
            reader = readers[[p.rank for p in plan.procs].index(rank)]
            said = [e for e in events if e.get("rank") == rank and e["kind"] in ("setup-failed", "sharding", "tf-only")]
            if code == EXIT_TF_ONLY:
                return Outcome(2, restarts, tf_only_message(said[-1]["error"] if said else ""), events)
            if code == EXIT_SETUP and said:
                return Outcome(2, restarts, f"rank {rank}: {said[-1]['error']}", events)
            if code < 0:  # killed by a signal: a dead worker
                sig = signal.Signals(-code).name
                if restarts >= max_restarts:
                    return Outcome(128 - code, restarts, f"rank {rank} was killed by {sig}; {restarts} restart(s) used of "
                                   f"--max-restarts {max_restarts}: giving up", events)
                restarts += 1
                backup = _latest(checkpoint_dir)
                gone = ", ".join(str(p.pid) for p in procs)
                log(f"rank {rank} was killed by {sig}: every worker stopped (pids {gone}); restart {restarts} of {max_restarts} "
                    + (f"from the backup of epoch {backup}" if backup is not None else
                       "from the start (no backup yet" + ("" if checkpoint_dir else ": give --checkpoint-dir") + ")"))
                continue
            tail = "\n".join(f"  {prefix_of(rank)}{line}" for line in list(reader.tail)[-8:])
            return Outcome(code, restarts, f"rank {rank} exited with code {code} (the script's own error: not retried)"
                           + (f"; its last lines:\n{tail}" if tail and not (all_ranks or rank == 0) else ""), events)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _latest(checkpoint_dir) -> int | None:
    if not checkpoint_dir:
        return None
    try:
        with open(os.path.join(checkpoint_dir, "latest.json")) as f:
            return json.load(f)["epoch"]
    except (OSError, ValueError, KeyError):
        return None


def tf_only_message(error: str) -> str:
    error = " ".join(error.replace("\x1b[1m", "").replace("\x1b[0m", "").split())  # one line, no terminal codes
    return ("this script cannot run on the JAX backend: it failed inside TensorFlow (a model that calls tf.* ops itself"
            + (f": {error[:200]}" if error else "") + "). Multi-process fit needs keras.distribution on JAX: with Keras 3, "
            "TensorFlow's MultiWorkerMirroredStrategy fails in fit on PerReplica values (" + UPSTREAM + ", open). Replace "
            "the tf.* calls with keras.ops to scale out; for an input-bound TensorFlow job, `redline data-service` moves the "
            "preprocessing to other processes or hosts instead")

"""Spares: trial processes started ahead of their turn, so a trial does not wait for its own imports.

Every trial process of a script imports keras (and with it TensorFlow or JAX) before the script's first line of
training: 2.5-5 s of a trial that measures for 3-4. A spare is the next trial's process, started while the current
one starts up: it imports keras under the environment its trial will have, says "ready", and waits on a pipe for
the trial itself (its candidate's settings, deadline, sandbox), which it then runs exactly as a fresh trial process
would. A spare never takes CPU time from a measurement: from the moment the running trial says "measuring" until it
has its figures (or, in the rest of its script, until a later fit it times has run: "measured"), a spare not yet
ready is stopped (SIGSTOP), and a ready one only waits on its pipe. A spare the tune did not use ends with it, and
(on Linux) with its parent process however that ends, stopped or not.

Only a script whose first trial showed that importing keras early changes nothing gets spares
(:func:`backend_for`): the script sets no environment variable before it imports keras, other than its own
KERAS_BACKEND line, under which the spare then imports keras, as the script would.
"""

from __future__ import annotations

import json
import os
import signal
import threading

from .trials import TrialProcess, trial_env

#: spares kept waiting at most (a guess that did not come true stays, in case its trial comes later)
KEEP = 2
#: the running trial's phases after which its paused spares go on: it has its figures, or the later fit it timed
#: (the rest of the script runs cut short, and a later fit that traces anew is timed: what such a fit costs a run;
#: kfold's folds on JAX read 0.86 s with spares importing beside them, 0.64 s in the runs)
RESUME = ("figures", "measured")


def backend_for(first: dict) -> str | None | bool:
    """From the first trial's result: False where the script must import keras itself (it sets an environment
    variable first, other than KERAS_BACKEND, or the trial did not say), else the backend its own line pins (None: the
    environment's)."""
    before = first.get("env_before_keras")
    if first.get("status") != "ok" or before is None or set(before) - {"KERAS_BACKEND"}:
        return False
    return first.get("pinned_backend") if "KERAS_BACKEND" in before else None


class Spares:
    """The spares of one tune of ``script``; ``pinned``: the backend the script's own line sets (backend_for)."""

    def __init__(self, script: str, args, pinned: str | None):
        self.script, self.args, self.pinned = script, list(args), pinned
        self.waiting: list[tuple[str, TrialProcess]] = []
        self.stopped: list[TrialProcess] = []
        self.taken = 0  # spares that ran a trial
        self.lock = threading.Lock()  # pause() runs on the running trial's output reader

    def _key(self, cand) -> tuple[str, dict, dict]:
        env = trial_env(cand)
        # the backend keras is imported under: the script's own line, unless the candidate's overrides it
        backend = env.get("KERAS_BACKEND") if cand.trial.get("force_backend") or not self.pinned else self.pinned
        gate = {"backend": backend, "parent": os.getpid()}
        return json.dumps([sorted(env.items()), gate]), env, gate

    def take(self, cand) -> TrialProcess | None:
        """A live spare for ``cand``'s trial, or None."""
        key = self._key(cand)[0]
        with self.lock:
            for i, (k, proc) in enumerate(self.waiting):
                if k == key and proc.proc.poll() is None:
                    del self.waiting[i]
                    self.taken += 1
                    return proc
        return None

    def beside(self, running: TrialProcess | None, ahead) -> None:
        """While ``running`` starts up (None: no trial measures now): a spare for each candidate in ``ahead`` (the
        trials expected next, at most KEEP), and every spare still importing paused once ``running`` measures."""
        for cand in ahead or ():
            key, env, gate = self._key(cand)
            if not any(k == key for k, _ in self.waiting):
                with self.lock:
                    self.waiting.append((key, TrialProcess(self.script, self.args, env, gate=gate)))
                    old = self.waiting[:-KEEP]
                    del self.waiting[:-KEEP]
                for _, proc in old:
                    proc.end()
        if running is None:
            return
        running.on_phase = lambda phase: (self.pause() if phase == "measuring"
                                          else self.resume() if phase in RESUME else None)
        if "measuring" in running.phases and "figures" not in running.phases:  # said before the hook was in place
            self.pause()

    def pause(self) -> None:
        with self.lock:
            for _, proc in self.waiting:
                if "ready" not in proc.phases and proc.proc.poll() is None and proc not in self.stopped:
                    proc.signal(signal.SIGSTOP)
                    self.stopped.append(proc)

    def resume(self) -> None:
        with self.lock:
            for proc in self.stopped:
                proc.signal(signal.SIGCONT)
            self.stopped = []

    def __enter__(self) -> Spares:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """End every spare that was not used."""
        with self.lock:
            spares, self.waiting, self.stopped = self.waiting, [], []
        for _, proc in spares:
            proc.end()


__all__ = ["KEEP", "RESUME", "Spares", "backend_for"]

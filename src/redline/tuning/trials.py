"""Trial processes: the user's script under a candidate, in a fresh process of its own group, with a deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .harness import ENV, MARK


def _trial_env(cand, trial: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    # no __pycache__ left in the user's folder by a trial
    env.update({"TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"), "PYTHONDONTWRITEBYTECODE": "1", **cand.env})
    env[ENV] = json.dumps({**trial, **cand.trial})
    return env


def sandbox_for(script: str, root: str) -> dict:
    """The sandbox of one trial: a fresh scratch folder under ``root``; the script's folder and the working directory
    protected."""
    return {"scratch": tempfile.mkdtemp(prefix="trial-", dir=root),
            "protect": sorted({os.path.dirname(os.path.abspath(script)), os.getcwd()})}


def run_trial(script: str, args: list, cand, trial: dict, timeout: float) -> dict:
    """One trial process; its result dict (status ok / no-fit / script-error / failed / timeout).

    The harness stops measuring 2 s before ``timeout`` and reports what it has; the process is killed at ``timeout``."""
    cmd = [sys.executable, "-m", "redline.tuning.harness", script, *args]
    trial = {**trial, "deadline": time.time() + max(1, timeout) - 2}
    if trial.get("sandbox_root"):  # each trial its own scratch: no trial sees what another wrote
        trial["sandbox"] = sandbox_for(script, trial.pop("sandbox_root"))
    # its own process group: whatever the script starts (data workers, servers, tools) ends with the trial
    # and the trial ends when the harness does: a child the script left running may still hold the output pipes open
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_trial_env(cand, trial),
                            start_new_session=True)
    texts = {}
    readers = [threading.Thread(target=lambda name, f: texts.__setitem__(name, f.read()), args=(name, f), daemon=True)
               for name, f in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for r in readers:
        r.start()
    timed_out = False
    try:
        proc.wait(timeout=max(1, timeout))
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _end_group(proc)
        proc.wait()
        for r in readers:
            r.join(timeout=10)
    stdout, stderr = texts.get("stdout", ""), texts.get("stderr", "")
    if timed_out:
        found = _result_line(stdout)
        if found is not None and found.get("status") == "ok":  # measured; what came after it ran out of time
            if found.get("partial"):  # stopped in the middle of its measurements: what it had by then
                found["not_measured"] = [*found.get("not_measured", []), f"the rest of this trial's measurements: it was "
                                         f"stopped at the budget ({timeout:.0f} s), in the middle of a run"]
            return {**found, "after_fit": {"status": "timeout"}, "stderr": stderr[-3000:]}
        return {"status": "timeout", "error": f"no result within {timeout:.0f} s (the budget)", "stderr": stderr[-2000:]}
    proc = subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            out = json.loads(line[len(MARK):])
            out["stderr"] = proc.stderr[-3000:]
            out["stdout"] = proc.stdout[: proc.stdout.rfind(MARK)][-3000:]
            return out
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
    return {"status": "failed", "error": f"the trial process ended with exit code {proc.returncode} and no result: {tail}"[-600:],
            "stderr": proc.stderr[-3000:]}


def _result_line(stdout: str) -> dict | None:
    """The last result line the harness wrote, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            try:
                return json.loads(line[len(MARK):])
            except ValueError:  # cut off by the kill
                continue
    return None


def _end_group(proc) -> None:
    """SIGKILL to the trial's process group: the harness and anything the script started that is still running."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):  # the group has already ended
        pass


__all__ = ["run_trial"]

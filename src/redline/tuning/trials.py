"""Trial processes: the user's script under a candidate, in a process group of its own, with a deadline."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .child_fits import say
from .wire import ENV, GATE, MARK, PHASE


def trial_env(cand) -> dict:
    """The environment of ``cand``'s trial processes, without the trial itself."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, GATE)}
    # no __pycache__ left in the user's folder by a trial
    env.update({"TF_CPP_MIN_LOG_LEVEL": env.get("TF_CPP_MIN_LOG_LEVEL", "2"), "PYTHONDONTWRITEBYTECODE": "1", **cand.env})
    return env


#: folders a path the script names may not protect as a whole: the root, the temporary folder itself (where
#: TensorFlow's autograph writes the modules it then imports), the folder of every user's home, the mount points (a
#: home may: "~/model.keras" protects it, its hidden folders left alone, as where it is the working directory)
_TOO_WIDE = ("/", "/tmp", "/var/tmp", "/var", "/home", "/mnt", "/media", "/srv", "/opt")
#: nor anything in the system's own folders
_SYSTEM = ("/dev", "/proc", "/sys", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/boot", "/run", "/var/lib",
           "/var/run", "/var/cache")


def named_folders(script: str) -> list[str]:
    """The folders of the absolute paths the script's source names (``"/tmp/ckpt/checkpoint.model.keras"``, as Keras'
    own ModelCheckpoint example writes; ``"~/logs"``): a trial writes there too, and a checkpoint a user kept at such a
    path was overwritten by a trial's model. A file's folder, or the path itself where it has no suffix (the folder
    of a prefix the script adds to: ``"/tmp/run_" + name``); none that covers a system folder, or the temporary
    folder as a whole. A file or a prefix right in such a folder (``"/tmp/checkpoint.weights.h5"``, as the published
    vision transformer example checkpoints; ``"/tmp/run_" + name``) is given as itself with "*" added: the paths that
    begin with it (tuning/sandbox.Sandbox.prefixes)."""
    import ast

    try:
        with open(script, "rb") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []
    prefixes = {id(n.left) for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add)}
    prefixes |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values[:1]}
    named = [(n.value.strip(), id(n) in prefixes) for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    named += [(text, False) for text in _in_settings(os.path.dirname(os.path.abspath(script)))]
    out = set()
    for text, prefix in named:
        if not text.startswith(("/", "~/")) or text.startswith("//") or "\n" in text or len(text) > 4096:
            continue
        path = os.path.normpath(os.path.expanduser(text))
        folder = os.path.dirname(path) if prefix or os.path.splitext(path)[1] else path
        hidden = any(part.startswith(".") for part in folder.split(os.sep))  # a cache (~/.keras): as the sandbox
        # leaves hidden folders alone in the folders it protects, a download there stays for the next trial
        if hidden or any(folder == d or folder.startswith(d + "/") for d in _SYSTEM):
            continue
        if folder not in _TOO_WIDE:
            out.add(folder)
        elif path not in _TOO_WIDE:  # right in the temporary folder: the path itself, and what begins with it
            out.add(path + "*")
    return sorted(out)


def _in_settings(folder: str) -> list[str]:
    """The absolute paths the settings files in ``folder`` give (``"output_dir": "/mnt/runs/exp1"`` in a config.json
    the script reads and writes under)."""
    from .sources import MAX_BYTES, SETTINGS

    out = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return out
    for name in names:
        path = os.path.join(folder, name)
        if not name.lower().endswith(SETTINGS) or not os.path.isfile(path) or os.path.getsize(path) > MAX_BYTES:
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                out += re.findall(r"(?<![\w.:/~])(~?/[\w.\-/]+)", f.read())
        except OSError:  # unreadable here: the script cannot read it either
            continue
    return out


def sandbox_for(script: str, root: str) -> dict:
    """The sandbox of one trial: a fresh scratch folder under ``root``; the script's folder, the working directory and
    the folders of the absolute paths the script names (named_folders) protected."""
    return {"scratch": tempfile.mkdtemp(prefix="trial-", dir=root),
            "protect": sorted({os.path.dirname(os.path.abspath(script)), os.getcwd(), *named_folders(script)})}


class TrialProcess:
    """One harness process of the script, in a process group of its own: whatever the script starts (data workers,
    servers, tools) ends with the trial. Started with its trial, or ahead of its turn (``gate``: it imports keras, says
    "ready" and waits for its trial on a pipe: tuning/spares.py). Its output is read line by line as it comes; the
    harness's phase lines go to ``on_phase`` instead."""

    def __init__(self, script: str, args, env: dict, trial: dict | None = None, gate: dict | None = None):
        cmd = [sys.executable, "-m", "redline.tuning.harness", script, *args]
        self.phases, self.on_phase, self.texts, self.pipe = set(), None, {}, None
        self.results = queue.SimpleQueue()  # the harness's figures once measured (not its partial figures)
        fds = ()
        if gate is not None:
            read, self.pipe = os.pipe()
            env, fds = {**env, GATE: str(read), ENV: json.dumps({"gate": gate})}, (read,)
        else:
            env = {**env, ENV: json.dumps(trial)}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env,
                                     start_new_session=True, pass_fds=fds)
        if fds:
            os.close(fds[0])
        self.readers = [threading.Thread(target=self._read, args=(name, f), daemon=True)
                        for name, f in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr))]
        for r in self.readers:
            r.start()

    def _read(self, name: str, f) -> None:
        parts = []
        for line in f:
            at = line.find(PHASE)
            if at < 0:
                parts.append(line)
                if line.startswith(MARK):
                    try:
                        res = json.loads(line[len(MARK):])
                    except ValueError:  # cut off by the kill at the deadline: the text keeps it, as it is
                        continue
                    self.phases.add("figures")
                    if not res.get("partial"):
                        if self.on_phase is not None:  # said before the result is read: the spares go on first
                            self.on_phase("figures")
                        self.results.put(res)
                continue
            parts.append(line[:at])  # what the script printed on that line before it
            self.phases.add(line[at + len(PHASE):].strip())
            if self.on_phase is not None:
                self.on_phase(line[at + len(PHASE):].strip())
        self.texts[name] = "".join(parts)

    def go(self, trial: dict) -> None:
        """A spare's trial: it runs from here."""
        os.write(self.pipe, (json.dumps(trial) + "\n").encode())
        os.close(self.pipe)
        self.pipe = None

    def signal(self, sig) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):  # the group has already ended
            pass

    def end(self) -> None:
        """SIGKILL to the process group (the harness and anything the script started that is still running); the
        output read to its end."""
        if self.pipe is not None:
            os.close(self.pipe)
            self.pipe = None
        self.signal(signal.SIGKILL)
        self.proc.wait()
        for r in self.readers:
            r.join(timeout=10)


def run_trial(script: str, args: list, cand, trial: dict, timeout: float, spares=None, ahead=None,
              on_result=None) -> dict:
    """One trial process; its result dict (status ok / no-fit / script-error / failed / timeout).

    The harness stops measuring 2 s before ``timeout`` and reports what it has; the process is killed at ``timeout``.
    With ``spares`` (tuning/spares.py), a spare already started for ``cand`` runs the trial, and one is started for
    each of ``ahead``, the trials expected next, while this one starts up; those this trial's measurement paused go on
    as soon as it has its figures, and pause again while the rest of its script times a later fit (tuning/spares.py).
    ``on_result(result)``: called once it has its figures (the rest of the script may still run).
    ``trial["measure_by"]`` (read here, not passed on): seconds after which a trial that has no figures yet is ended,
    with status "slow-start" (its start alone makes it lose: tuning/passes.py)."""
    measure_by = trial.get("measure_by")
    trial = {**{k: v for k, v in trial.items() if k != "measure_by"}, "deadline": time.time() + max(1, timeout) - 2}
    if trial.get("sandbox_root"):  # each trial its own scratch: no trial sees what another wrote
        trial["sandbox"] = sandbox_for(script, trial.pop("sandbox_root"))
    trial = {**trial, **cand.trial}
    proc = spares.take(cand) if spares is not None else None
    if proc is not None:
        proc.go(trial)
    else:
        proc = TrialProcess(script, args, trial_env(cand), trial)
    if spares is not None:
        spares.beside(proc, ahead)
    timed_out, slow, until = False, False, time.monotonic() + max(1, timeout)
    start_by = time.monotonic() + measure_by if measure_by else None
    try:
        while True:
            try:
                proc.proc.wait(timeout=max(0.0, min(0.25, until - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= until:
                    timed_out = True
                    break
                if start_by is not None and time.monotonic() >= start_by and "figures" not in proc.phases:
                    slow = True
                    break
            finally:  # here, on this thread: the hook may start processes (a spare's parent is the thread that starts it)
                while not proc.results.empty():
                    res = proc.results.get()
                    if on_result is not None:
                        on_result(res)
    finally:
        # the trial ends when the harness does: a child the script left running may still hold the output pipes open
        proc.end()
        if spares is not None:
            spares.resume()
    while on_result is not None and not proc.results.empty():  # said just before the process ended
        on_result(proc.results.get())
    stdout, stderr = proc.texts.get("stdout", ""), proc.texts.get("stderr", "")
    if slow:
        return {"status": "slow-start", "waited_s": round(measure_by, 1),
                "error": f"no figures after {measure_by:.0f} s", "stderr": stderr[-2000:]}
    if timed_out:
        found = _result_line(stdout)
        if found is not None and found.get("status") == "ok":  # measured; what came after it ran out of time
            if found.get("partial"):  # stopped in the middle of its measurements: what it had by then
                found["not_measured"] = [*found.get("not_measured", []), f"the rest of this trial's measurements: it was "
                                         f"stopped at the budget ({timeout:.0f} s), in the middle of a run"]
            return {**found, "after_fit": {"status": "timeout"}, "stderr": stderr[-3000:]}
        return {"status": "timeout", "error": f"no result within {timeout:.0f} s (the budget)", "stderr": stderr[-2000:]}
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            out = json.loads(line[len(MARK):])
            if out.get("status") == "no-fit" and out.get("child_fits"):  # it did fit, in processes it started
                out["error"] = say(out["child_fits"])
            out["stderr"] = stderr[-3000:]
            out["stdout"] = stdout[: stdout.rfind(MARK)][-3000:]
            return out
    tail = "\n".join((stdout + stderr).strip().splitlines()[-6:])
    return {"status": "failed", "error": f"the trial process ended with exit code {proc.proc.returncode} and no result: "
                                         f"{tail}"[-600:], "stderr": stderr[-3000:]}


def _result_line(stdout: str) -> dict | None:
    """The last result line the harness wrote, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            try:
                return json.loads(line[len(MARK):])
            except ValueError:  # cut off by the kill
                continue
    return None


#: TensorFlow's and absl's own log lines ("I0000 00:00:1796330844.776124 22472 port.cc:153] oneDNN custom operations
#: are on ...", "WARNING: All log messages before absl::InitializeLog() ...", and the second line of the CPU-feature
#: notice, "To enable the following instructions: AVX2 ..."): not what the script last said
_RUNTIME_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::"
                          r"|To enable the following instructions: )")


def missing_module(error: str) -> str:
    """Where the script imports a module this Python does not have, which Python the trials run it with: redline's
    own, often another environment than the one the user's packages are in."""
    found = re.match(r"ModuleNotFoundError: No module named '([^']+)'", error or "")
    if not found:
        return ""
    return (f"; the trials run it with redline's Python, {sys.executable}: install {found.group(1).split('.')[0]!r} "
            "into it, or install redline into the environment that has it")


#: a traceback's frame line of redline's own code (the sandbox's wrappers around open, np.load's open among them)
_OWN_FRAME = re.compile(r'^\s*File "' + re.escape(os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep))
_CARETS = re.compile(r"^\s*[\^~]+\s*$")  # Python 3.11's markers under a frame's source line


def _script_lines(text: str) -> list[str]:
    """``text``'s lines less the runtime's log lines, Python's frames of runpy (which runs the script) and redline's own
    frames, each with its source line (a file the script could not open failed inside the sandbox's wrapper, whose
    line was quoted as if it were the script's), and the caret lines under source lines."""
    out, skipping = [], None
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if skipping is not None and line.strip() and indent > skipping:
            continue  # the skipped frame's source line and its carets
        skipping = None
        if not line.strip() or _RUNTIME_LOG.match(line) or _CARETS.match(line):
            continue
        if line.lstrip().startswith('File "<frozen runpy>"') or _OWN_FRAME.match(line):
            skipping = indent
            continue
        out.append(line)
    return out


def last_output(res: dict, lines: int = 8, chars: int = 300) -> str:
    """The last ``lines`` lines a trial's script printed (stdout, then stderr), the runtime's own log lines left out,
    joined with " | ", whole lines up to ``chars`` characters (the last one cut from the left where it alone is
    longer): what an error line quotes of it. Tracebacks come without runpy's frames and redline's (_script_lines)."""
    out = _script_lines(res.get("stdout", "") + "\n" + res.get("stderr", ""))
    kept = []
    for line in reversed(out[-lines:]):
        if kept and len(" | ".join([line, *kept])) > chars:
            break
        kept.insert(0, line)
    text = " | ".join(kept)
    return text if len(text) <= chars else "..." + text[3 - chars:]


__all__ = ["TrialProcess", "last_output", "run_trial", "trial_env"]

"""Tuned choices kept between runs, one file per script and arguments, under the user's cache directory.

A choice is applied only while everything it was measured under still holds:
the script's workload as its code sets it (tuning/workload.py: comments, prints,
epochs, learning rate and verbose may change), and so of its own modules and
settings files (tuning/sources.py), its arguments (where they differ
only in the numbers given to --epochs, --lr / --learning-rate or --verbose, the
choice saved under the others stands), the machine (CPU
model, usable cores, ISA features, GPUs, driver) and the versions of Keras and
its backends. Anything else is stale, and lookup() says which part changed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import warnings

from ..errors import UsageError

SCHEMA = "redline.tuned/1"
#: `run --tune`'s finding that tuning would not pay (save_skip), in the folder's skipped/ beside the choices
SKIP_SCHEMA = "redline.not-tuned/1"


def cache_dir(environ=os.environ) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "redline", "tuned")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def script_facts(script: str, args) -> dict:
    path = os.path.abspath(script)
    from .workload import fingerprint

    with open(path, "rb") as f:
        data = f.read()
    return {"path": path, "sha256": _sha(data), "workload": fingerprint(data), "args": list(args)}


def machine_facts(snapshot) -> dict:
    c, g, rt = snapshot.cpu, snapshot.gpus, snapshot.runtime
    features = sorted(k for k, v in c.features.items() if v) if isinstance(c.features, dict) else str(c.features)
    return {
        "cpu_model": str(c.model), "usable_cpus": c.usable, "features": features,
        "gpus": [str(d.name) for d in g.visible], "driver": str(g.driver_version),
        "versions": {"keras": str(rt.keras_version), "tensorflow": str(rt.tensorflow_version),
                     "jax": str(rt.jax_version), "torch": str(rt.torch_version)},
    }


def entry_path(script: str, args, environ=os.environ) -> str:
    name = _sha(json.dumps([os.path.abspath(script), list(args)]).encode())[:24]
    return os.path.join(cache_dir(environ), f"{name}.json")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def save(script: str, args, snapshot, result: dict, environ=os.environ) -> str:
    """Write the choice; UsageError (with the folder) when the cache cannot be written."""
    from .sources import fingerprints

    facts = {**script_facts(script, args), "sources": fingerprints(result.get("sources"))}
    entry = {"schema": SCHEMA, "tuned": _now(), "script": facts, "machine": machine_facts(snapshot), "result": result}
    return _write(entry_path(script, args, environ), entry, "the tuned choice")


def skip_path(script: str, args, environ=os.environ) -> str:
    return os.path.join(cache_dir(environ), "skipped", os.path.basename(entry_path(script, args, environ)))


def save_skip(script: str, args, snapshot, why: str, budget: float | None, environ=os.environ, sources=(),
              untunable: bool = False) -> str:
    """`redline run --tune`'s finding that tuning would not pay here (``why``, from its first trial), or that the
    script cannot be tuned at all (``untunable``: it never calls Model.fit, or trains in its own loop), kept so that the
    next `run --tune` of the same script bytes (and of ``sources``, the files beside it the first trial saw it use:
    tuning/sources.py), arguments and --budget (None: auto) runs at once instead of paying a first trial again to find
    the same. UsageError where it cannot be written."""
    facts = {**script_facts(script, args), "raw_sources": {p: _raw(p) for p in sources or ()}}
    entry = {"schema": SKIP_SCHEMA, "found": _now(), "script": facts, "machine": machine_facts(snapshot), "why": why,
             "budget": budget, "untunable": untunable}
    what = "the finding that the script cannot be tuned" if untunable else "the finding that tuning would not pay"
    return _write(skip_path(script, args, environ), entry, what)


def skip_found(script: str, args, snapshot, budget: float | None, environ=os.environ) -> dict | None:
    """The kept finding (save_skip) where it still holds: the same script bytes and those of the files beside it that
    it uses (an edit may change the training it predicts: epochs count there), arguments, --budget, machine and
    versions; None otherwise."""
    try:
        with open(skip_path(script, args, environ), encoding="utf-8") as f:
            entry = json.load(f)
        same = (entry["schema"] == SKIP_SCHEMA and entry["budget"] == budget
                and entry["script"]["sha256"] == script_facts(script, args)["sha256"]
                and all(_raw(p) == was for p, was in (entry["script"].get("raw_sources") or {}).items()))
    except (OSError, ValueError, KeyError, TypeError):  # none kept, or unreadable: the first trial decides again
        return None
    return entry if same and _machine_changed(entry, snapshot) is None else None


def _raw(path: str) -> str | None:
    """sha256 of a file's bytes (an edit to the epochs in config.json may change the training a finding predicted);
    None where it cannot be read."""
    try:
        with open(path, "rb") as f:
            return _sha(f.read())
    except OSError:
        return None


def _write(path: str, entry: dict, what: str) -> str:
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(entry, f, indent=1, default=str)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"{what} could not be saved in {folder!r} ({exc.strerror}); set XDG_CACHE_HOME to a "
                         "folder you can write to") from None
    return path


def lookup(script: str, args, snapshot, environ=os.environ) -> tuple[dict | None, str | None]:
    """(entry, None) when a tuned choice matches; (None, why not) otherwise. A corrupt file is warned about and removed."""
    path, same_but = entry_path(script, args, environ), None
    if not os.path.exists(path):
        path, same_but = _neutral_match(script, args, environ)
    if path is None:
        others = other_arguments(script, environ)
        if others:  # tuned with other arguments (`--epochs 1` to be quick, or a redline option put after the script)
            shown = "; ".join(" ".join(a) or "no arguments" for a in others[:3])
            return None, (f"not tuned with these arguments ({' '.join(args) or 'none'}): a choice is saved for this "
                          f"script with {shown}; arguments are part of the key (but for the numbers given to --epochs, "
                          "--lr or --verbose), so run `redline tune` with the ones you run it with")
        return None, "not tuned yet: `redline tune SCRIPT` measures and keeps a choice"
    try:
        with open(path, encoding="utf-8") as f:
            entry = json.load(f)
        if not isinstance(entry, dict) or entry.get("schema") != SCHEMA:
            raise ValueError("not a redline tuned-choice file")
        from .result import Choice

        try:
            Choice.from_dict(entry["result"]["chosen"]["settings"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"no choice in it ({type(exc).__name__}: {exc})") from None
    except (OSError, ValueError) as exc:
        warnings.warn(f"redline: the tuned-choice file {path!r} is unreadable ({exc}); it is ignored and will be rebuilt "
                      "by the next `redline tune`", RuntimeWarning, stacklevel=2)
        try:
            os.unlink(path)
        except OSError:
            pass  # removing it is a courtesy; the next save replaces it anyway
        return None, "the saved choice was unreadable and was removed"
    now_script = script_facts(script, args)
    if entry["script"]["sha256"] != now_script["sha256"]:
        if entry["script"].get("workload") != now_script["workload"]:
            return None, (f"stale: the script changed since it was tuned ({entry['tuned']}) beyond comments, prints, "
                          "epochs, learning rate or verbose; run `redline tune` again")
        entry["note"] = ("the script changed since it was tuned, in comments, prints, epochs, learning rate or verbose "
                         "only: the choice stands")
    from .sources import changed as sources_changed

    moved = sources_changed(entry["script"].get("sources"), script)
    if moved:  # its own modules and settings files: a model defined in model.py is the workload too
        return None, f"stale: {moved} ({entry['tuned']}); run `redline tune` again"
    if same_but is not None:
        said = " ".join(same_but) or "no arguments"
        entry["note"] = ((entry["note"] + "; ") if entry.get("note") else "") + (
            f"tuned with {said}: the arguments differ only in epochs, learning rate or verbose, so the choice stands")
    changed = _machine_changed(entry, snapshot)
    return (None, changed) if changed else (entry, None)


def _machine_changed(entry: dict, snapshot) -> str | None:
    """Why ``entry`` was made on another machine or other versions (stale), or None."""
    now_machine = machine_facts(snapshot)
    for key, what in (("cpu_model", "CPU"), ("usable_cpus", "usable CPUs"), ("features", "CPU features"),
                      ("gpus", "GPUs"), ("driver", "GPU driver")):
        if entry["machine"].get(key) != now_machine[key]:
            return f"stale: tuned on another machine ({what} {entry['machine'].get(key)!r}, now {now_machine[key]!r})"
    for name, version in now_machine["versions"].items():
        if entry["machine"]["versions"].get(name) != version:
            return f"stale: {name} was {entry['machine']['versions'].get(name)} when tuned, now {version}; run `redline tune` again"
    return None


def neutral_args(args) -> list[str]:
    """The arguments with the numbers given to options that cannot change what a step costs (``--epochs 50``,
    ``--lr=3e-4``, ``--verbose 2``: the names of workload.NEUTRAL, dashes or underscores) read as ``*``, in one form
    for ``--name=value`` and ``--name value``. Only numbers are taken as such values: ``--verbose data.csv`` is a
    flag, then a positional argument."""
    from .workload import NEUTRAL

    def neutral(option: str) -> bool:
        return option.startswith("--") and option[2:].lower().replace("-", "_") in NEUTRAL

    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    out, args = [], [str(a) for a in args]
    for i, a in enumerate(args):
        name, eq, value = a.partition("=")
        if eq and neutral(name) and number(value):
            out.extend([name, "*"])  # --epochs=5 and --epochs 5 are one option
        elif i > 0 and neutral(args[i - 1]) and number(a):  # "--epochs=5" itself is no option name
            out.append("*")
        else:
            out.append(a)
    return out


def _saved(script: str, environ=os.environ):
    """(tuned time, arguments, file) of every choice saved for ``script`` (the same file), most recent first."""
    folder, found = cache_dir(environ), []
    if not os.path.isdir(folder):
        return []
    path = os.path.abspath(script)
    for name in os.listdir(folder):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                entry = json.load(f)
            if entry["script"]["path"] == path:
                found.append((entry.get("tuned", ""), [str(a) for a in entry["script"].get("args") or []],
                              os.path.join(folder, name)))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable files are lookup()'s to report, when their own key is asked for
    return sorted(found, reverse=True)


def _neutral_match(script: str, args, environ=os.environ):
    """(file, its arguments) of the latest choice saved for ``script`` under arguments that differ from ``args`` only
    in epochs, learning rate or verbose; (None, None) where there is none."""
    want = neutral_args(args)
    for _, saved_args, path in _saved(script, environ):
        if neutral_args(saved_args) == want:
            return path, saved_args
    return None, None


def other_arguments(script: str, environ=os.environ) -> list[list[str]]:
    """The arguments of every choice saved for ``script`` (the same file), most recent first."""
    return [a for _, a, _ in _saved(script, environ)]


def clear(script: str | None, args=(), environ=os.environ) -> int:
    """Remove one script's choice (and its kept finding that tuning would not pay), or all with script None; the
    number of files removed."""
    if script is not None:
        paths = [p for p in (entry_path(script, args, environ), skip_path(script, args, environ)) if os.path.exists(p)]
    else:
        paths = [os.path.join(folder, name) for folder in (cache_dir(environ), os.path.join(cache_dir(environ), "skipped"))
                 if os.path.isdir(folder) for name in os.listdir(folder) if name.endswith(".json")]
    for path in paths:
        os.unlink(path)
    return len(paths)


__all__ = ["SCHEMA", "SKIP_SCHEMA", "cache_dir", "clear", "entry_path", "lookup", "machine_facts", "neutral_args",
           "other_arguments", "save", "save_skip", "script_facts", "skip_found", "skip_path"]

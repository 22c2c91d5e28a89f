"""The trial process: run the user's unchanged script until its first ``fit``, then measure candidates there.

``python -m redline.tuning.harness SCRIPT [ARGS...]`` with the trial in the
environment variable REDLINE_TRIAL (JSON). The process-wide settings of the
trial (backend, oneDNN, threads) are already in the environment, set by the
parent before this process started. The script runs as ``__main__`` with its
own argv; everything it prints goes where it always goes. At its first
``Model.fit`` the harness takes over: it measures each in-process candidate
(steps_per_execution, jit_compile, the input path) from the same starting
weights and optimizer state, in interleaved rounds, prints one result line
and ends the process without training further.
"""

from __future__ import annotations

import io
import json
import os
import runpy
import sys
import time
import traceback

from .measure import measure_fit

MARK = "REDLINE-TRIAL "
ENV = "REDLINE_TRIAL"


def _emit(result: dict) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, (MARK + json.dumps(result, default=str) + "\n").encode())


def _finish(result: dict, code: int = 0) -> None:
    _emit(result)
    os._exit(code)  # the script's own training is not needed: end here, without running its clean-up


class _Compiles:
    """Model.compile, recorded, so a candidate can recompile the model with the script's own arguments."""

    def __init__(self, keras):
        self.calls = {}
        owner = keras.Model
        original = owner.compile
        calls = self.calls

        def compile(model, *args, **kwargs):
            calls[id(model)] = (args, dict(kwargs))
            return original(model, *args, **kwargs)

        owner.compile = compile
        self.original = original


def _watch_backend(force: bool) -> dict:
    """Record where the script sets KERAS_BACKEND itself (``os.environ[...] = ...`` before keras is imported: later it
    has no effect); with ``force``, ignore it, so the trial's backend is measured against the script's line (shown as
    advice, never applied). ``setdefault`` is a default, not a pin: it gives way to a backend already set, as it does
    under ``python script.py``."""
    seen = {"pinned": None, "line": None, "ignored": False}
    env_type = type(os.environ)
    setitem, setdefault = env_type.__setitem__, env_type.setdefault
    state = {"default": False}

    def __setitem__(self, key, value):
        if self is os.environ and key == "KERAS_BACKEND" and not state["default"] and "keras" not in sys.modules:
            frame = sys._getframe(1)
            seen["pinned"], seen["line"] = str(value), f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
            if force:
                seen["ignored"] = True
                return
        setitem(self, key, value)

    def setdefault_(self, key, value=None):
        state["default"] = True
        try:
            return setdefault(self, key, value)
        finally:
            state["default"] = False

    env_type.__setitem__, env_type.setdefault = __setitem__, setdefault_
    return seen


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    trial = json.loads(os.environ.get(ENV, "{}"))
    script = argv[0]
    started = time.perf_counter()
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if trial.get("verbose") else (lambda msg: None)
    from ..applying.after_import import when_imported

    if trial.get("parallel_map"):  # when the script imports TensorFlow (which imports keras): not before
        from ..data.rewrite import parallel_maps

        when_imported("tensorflow", lambda tf: parallel_maps(int(trial["parallel_map"])))

    pin = _watch_backend(bool(trial.get("force_backend")))
    opener = io.open  # before the sandbox: the numerics check's shared weights live outside the user's folders
    if trial.get("sandbox"):  # the script's writes kept off the user's folders
        from .sandbox import install as sandbox

        sandbox(trial["sandbox"]["scratch"], trial["sandbox"]["protect"])
    state = {"fits": 0}
    complete = trial.get("mode") == "complete"
    counts = {}

    def fit(model, x=None, y=None, *args, **kwargs):
        state["fits"] += 1
        names = ("batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data", "shuffle")
        kw = {**dict(zip(names, args)), **kwargs, "x": x, "y": y}
        t0 = time.perf_counter()
        owner, original_fit, compiles = state["owner"], state["fit"], state["compiles"]
        if trial.get("mode") == "diagnose":
            owner.fit = original_fit  # diagnose() runs fit itself
            from ..diagnosis.probe import diagnose

            try:
                d = diagnose(model, x, y, batch_size=kw.get("batch_size"), record=trial["record"],
                             seconds=trial.get("seconds", 1.5), repeats=trial.get("repeats", 2))
            except Exception as exc:  # the measurement failed on this script: say so, with where
                _finish({"status": "failed", "stage": "diagnose", "error": f"{type(exc).__name__}: {exc}"[:500],
                         "trace": traceback.format_exc()[-2000:]}, 3)
            _finish({"status": "ok", "kind": d.kind, "measure_s": round(time.perf_counter() - t0, 2)})
        try:
            result = measure_fit(model, original_fit, kw, trial, compiles, log, opener=opener)
        except Exception as exc:  # the measurement itself failed on this script: say so, with where
            _finish({"status": "failed", "stage": "measure", "error": f"{type(exc).__name__}: {exc}"[:500],
                     "trace": traceback.format_exc()[-2000:]}, 3)
        result.update({"status": "ok", "setup_s": round(t0 - started, 2), "measure_s": round(time.perf_counter() - t0, 2),
                       "pinned_backend": pin["pinned"], "pinned_at": pin["line"], "pin_ignored": pin["ignored"]})
        _finish(result)

    def on_keras(keras):
        """Once the script imports keras (its backend fixed by then, by the script's own line where it has one)."""
        if trial.get("precision"):
            keras.mixed_precision.set_global_policy(trial["precision"])
        if complete:
            from .completion import install as cut

            cut(keras, counts)
            return
        state["compiles"] = _Compiles(keras)
        state["owner"], state["fit"] = keras.Model, keras.Model.fit
        keras.Model.fit = fit

    when_imported("keras", on_keras)
    sys.argv = [script, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    if complete:  # the whole script, its training cut short: how does it end?
        from .completion import outcome

        ended = None
        try:
            runpy.run_path(script, run_name="__main__")
        except BaseException as exc:  # noqa: BLE001  how the script ended is the result, whatever it was
            ended = exc
            if not isinstance(exc, SystemExit):
                traceback.print_exc()
        _finish({**outcome(ended, script, counts), "pinned_backend": pin["pinned"], "pin_ignored": pin["ignored"]}, 0)
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        _finish({"status": "no-fit", "exit_code": code, "error": f"the script exited with code {code} before calling fit"}, 0)
    except BaseException as exc:  # the script's own error before fit: reported with its traceback, as Python would
        traceback.print_exc()
        _finish({"status": "script-error", "error": f"{type(exc).__name__}: {exc}"[:500]}, 0)
    _finish({"status": "no-fit", "exit_code": 0, "error": "the script ended without calling Model.fit"}, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

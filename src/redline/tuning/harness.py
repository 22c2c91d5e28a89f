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

import json
import os
import runpy
import sys
import time
import traceback

MARK = "REDLINE-TRIAL "
ENV = "REDLINE_TRIAL"


def _emit(result: dict) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, (MARK + json.dumps(result, default=str) + "\n").encode())


def _finish(result: dict, code: int = 0) -> None:
    _emit(result)
    os._exit(code)  # the script's own training is not needed: end here, without running its clean-up


def _parallel_maps(usable: int) -> None:
    """Sequential Dataset.map calls become parallel ones with the order kept (the script's pipeline, unchanged)."""
    import tensorflow as tf

    original = tf.data.Dataset.map

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None, **kw):  # noqa: A001
        if num_parallel_calls is None:
            num_parallel_calls, deterministic = usable, True if deterministic is None else deterministic
        return original(self, map_func, num_parallel_calls=num_parallel_calls, deterministic=deterministic, name=name, **kw)

    tf.data.Dataset.map = map


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


def _steps_in_epoch(x, y, batch_size) -> int | None:
    from keras.src.trainers.data_adapters import get_data_adapter  # the input path fit builds

    try:
        return get_data_adapter(x, y, batch_size=batch_size, shuffle=False).num_batches
    except (ValueError, TypeError):
        return None


def measure_fit(model, fit, fit_args: dict, trial: dict, compiles: _Compiles, log) -> dict:
    """Every in-process candidate in ``trial["candidates"]``, measured in interleaved rounds from the same state."""
    import keras

    from ..diagnosis.probe import _KeepState, _Marks

    x, y = fit_args.get("x"), fit_args.get("y")
    batch_size = fit_args.get("batch_size")
    if batch_size is None and y is not None or (batch_size is None and hasattr(x, "__array__")):
        batch_size = 32  # Keras' own default for arrays
    steps_epoch = _steps_in_epoch(x, y, batch_size)
    args, kwargs = compiles.calls.get(id(model), ((), {}))
    own = {k: kwargs[k] for k in ("steps_per_execution", "jit_compile") if k in kwargs}
    candidates = trial["candidates"]
    seconds = trial.get("seconds", 1.0)
    deadline = time.perf_counter() + trial["budget_s"] if trial.get("budget_s") else None
    late = lambda: deadline is not None and time.perf_counter() > deadline  # noqa: E731
    rounds = trial.get("rounds", 3)
    base_kwargs = {k: v for k, v in fit_args.items() if k not in ("x", "y", "epochs", "callbacks", "verbose",
                                                                    "steps_per_epoch", "validation_data", "validation_split",
                                                                    "initial_epoch", "batch_size")}
    out = {"steps_in_epoch": steps_epoch, "batch_size": batch_size, "script_compile": own,
           "data": type(x).__name__, "candidates": {}}

    def recompile(cand):
        if cand.get("own"):
            kw = kwargs  # the script's own compile arguments, exactly
        else:
            kw = {**kwargs, "steps_per_execution": cand["steps_per_execution"], "jit_compile": cand["jit_compile"]}
        compiles.original(model, *args, **kw)

    bs = batch_size if hasattr(x, "__array__") else None  # arrays take a batch size; datasets come batched

    def run(cand, steps):
        marks = _Marks()
        fit(model, x, y, batch_size=bs, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[marks],
            **{k: v for k, v in base_kwargs.items() if k in ("shuffle", "class_weight", "sample_weight")})
        return marks.steady_rate()

    if not model.built or not model.optimizer.built:
        run({"own": True}, 1)  # one step builds the model and its optimizer, so their whole state can be put back
    with _KeepState(model) as keep:
        plan, calib = {}, {}

        def calibrate(name, cand):
            """Warm, then find a step count that runs about ``seconds``; its rate, or the candidate dropped with why."""
            if late():
                out.setdefault("not_measured", []).append(f"{name}: the budget ran out")
                return None
            try:
                recompile(cand)
                spe = kwargs.get("steps_per_execution", 1) if cand.get("own") else cand["steps_per_execution"]
                cap = steps_epoch or 10**6
                if spe > cap:
                    raise ValueError(f"steps_per_execution={spe} is more than the {cap} steps of an epoch")
                run(cand, min(max(2 * spe, min(8 * spe, cap)), cap))  # trace/compile and warm
                n = min(max(4 * spe, 16), cap)
                rate, took = run(cand, n)
                while took < seconds / 3 and n < cap:  # grow until the timing is worth something
                    n = min(cap, n * 4)
                    rate, took = run(cand, n)
                n = int(rate * seconds) if rate else n
                n = max(3 * spe, n - n % spe)
                plan[name] = min(n, cap - cap % spe if cap >= spe else spe)
                calib[name] = rate
                return rate
            except Exception as exc:  # a candidate the backend cannot run (XLA, memory, ...) is dropped, with why
                out["candidates"][name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                log(f"  dropped {name}: {type(exc).__name__}: {str(exc)[:120]}")
                return None
            finally:
                try:
                    keep.restore()
                except Exception:  # noqa: BLE001  the model may be unusable after a failed compile; the next recompile decides
                    log(f"  (state could not be restored after {name})")

        candidates = dict(candidates)
        for name, cand in list(candidates.items()):
            calibrate(name, cand)
        ladder = trial.get("ladder")
        if ladder:
            # steps_per_execution 2, 4, 8, ...: on while doubling gains at least `flattens` over the best so far, up to an
            # epoch's steps. A single calibration run is noisy, so the ladder stops only after three flat doublings in a
            # row, and every step it measured then goes into the interleaved rounds: the choice rests on medians.
            best_s, best_rate, steps, flat = 1, calib.get("default") or 0.0, [], 0
            s = 2
            while s <= (steps_epoch or 4096):
                cand = {"steps_per_execution": s, "jit_compile": ladder.get("jit_compile", "auto")}
                rate = calibrate(f"spe {s}", cand)
                steps.append([s, round(rate or 0.0, 2)])
                if not rate:
                    break
                if rate < best_rate * (1 + ladder.get("flattens", 0.05)):
                    flat += 1
                    if flat == 3:
                        break
                else:
                    best_s, best_rate, flat = s, rate, 0
                s *= 2
            out["ladder"] = steps
            for s_, rate in steps:
                if rate and f"spe {s_}" in plan:
                    candidates[f"spe {s_}"] = {"steps_per_execution": s_, "jit_compile": ladder.get("jit_compile", "auto")}
            if best_s > 1 and ladder.get("try_jit"):
                candidates[f"spe {best_s} + jit"] = {"steps_per_execution": best_s, "jit_compile": True}
                calibrate(f"spe {best_s} + jit", candidates[f"spe {best_s} + jit"])
        for r in range(rounds):
            for name, cand in candidates.items():
                if name not in plan:
                    continue
                if late() and r:
                    out.setdefault("not_measured", []).append(f"{name}, round {r + 1}: the budget ran out")
                    continue
                try:
                    recompile(cand)
                    rate, took = run(cand, plan[name])
                except Exception as exc:  # failed on a later round: dropped as well
                    out["candidates"][name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                    plan.pop(name)
                    continue
                finally:
                    keep.restore()
                rec = out["candidates"].setdefault(name, {"steps_per_s": [], "steps": plan[name]})
                rec["steps_per_s"].append(round(rate, 3))
                rec.setdefault("seconds", []).append(round(took, 3))
    out["backend"] = keras.backend.backend()
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    trial = json.loads(os.environ.get(ENV, "{}"))
    script = argv[0]
    started = time.perf_counter()
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if trial.get("verbose") else (lambda msg: None)
    if trial.get("parallel_map"):
        _parallel_maps(int(trial["parallel_map"]))
    import keras

    if trial.get("precision"):
        keras.mixed_precision.set_global_policy(trial["precision"])
    compiles = _Compiles(keras)
    owner = keras.Model
    original_fit = owner.fit
    state = {"fits": 0}

    def fit(model, x=None, y=None, *args, **kwargs):
        state["fits"] += 1
        names = ("batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data", "shuffle")
        kw = {**dict(zip(names, args)), **kwargs, "x": x, "y": y}
        t0 = time.perf_counter()
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
            result = measure_fit(model, original_fit, kw, trial, compiles, log)
        except Exception as exc:  # the measurement itself failed on this script: say so, with where
            _finish({"status": "failed", "stage": "measure", "error": f"{type(exc).__name__}: {exc}"[:500],
                     "trace": traceback.format_exc()[-2000:]}, 3)
        result.update({"status": "ok", "setup_s": round(t0 - started, 2), "measure_s": round(time.perf_counter() - t0, 2)})
        _finish(result)

    owner.fit = fit
    sys.argv = [script, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
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

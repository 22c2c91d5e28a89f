"""The trial process: run the user's unchanged script until its first ``fit``, then measure candidates there.

``python -m redline.tuning.harness SCRIPT [ARGS...]`` with the trial in the
environment variable REDLINE_TRIAL (JSON), or, for a spare started ahead of its
turn (tuning/spares.py), on the pipe REDLINE_TRIAL_GATE names, read once keras
is imported. The process-wide settings of the
trial (backend, oneDNN, threads) are already in the environment, set by the
parent before this process started. The script runs as ``__main__`` with its
own argv; everything it prints goes where it always goes. At its first
``Model.fit`` the harness takes over: it measures each in-process candidate
(steps_per_execution, jit_compile, the input path) from the same starting
weights and optimizer state, in interleaved rounds, prints one result line
and ends the process without training further. Only a trial whose settings
carry "sandbox" (tune always gives one, tuning/sandbox.py) keeps the script's
writes out of its folders: run by hand without it, the script writes where it
always writes.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import traceback

from ..applying.entry import execute, module_for, package_hint, prepare, print_script_error
from .backend_pin import watch_backend, watch_set_backend
from .completion import FIT_ARGS
from .child_fits import cut_fit as child_fit, listen as children_tell
from .measure import measure_fit
from .eager_pin import watch as watch_eager
from .fork_watch import watch as watch_forks
from .no_user import install as no_user
from .own_loop import OWN_LOOP_S, message, watch as own_loop
from .recompile import Compiles, strategy_scope
from .steps import tf_paid, untimed
from .wire import ENV, GATE, emit as _emit, finish as _finish, gate as _gate, phase as _phase


#: seconds the first trial gives the rest of the script (training cut short) to show its other fits
DISCOVER_S = 60.0
#: and each later per-process trial ("follow"): where the rest runs longer, a completion trial of its own decides
FOLLOW_S = 20.0


def _watchdog(state, counts, seconds: float) -> None:
    """End the trial with what it found once the rest of the script has run ``seconds`` (a script that serves, plots
    or waits after training); ``state["watch"]``: when, None while a later fit is measured (then it starts again)."""
    import threading

    state["watch"] = time.monotonic() + seconds

    def stop():
        while state["watch"] is None or time.monotonic() < state["watch"]:
            time.sleep(0.25)
        # not a verdict on how the script ends: a completion trial of its own decides that where it is needed
        _finish({**state["result"], "fits": state["log"],
                 "after_fit": {"status": "timeout", "error": f"the rest of the script ran over {seconds:.0f} s: not "
                                                             "followed further", "calls": counts}})

    threading.Thread(target=stop, daemon=True, name="redline-discovery-watchdog").start()


def _end_of_discovery(state, ended, script, counts) -> None:
    """The first trial's result, with the script's fits and how the rest of it ended (training cut short)."""
    from .completion import outcome

    _finish({**state["result"], "fits": state["log"], "after_fit": outcome(ended, script, counts)})


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if os.environ.get(GATE):
        _gate(json.loads(os.environ.get(ENV, "{}")).get("gate") or {})
    trial = json.loads(os.environ.get(ENV, "{}"))
    script, parent = argv[0], os.getpid()  # parent: the script's own process (a fit in a fork of it is a child's)
    module = module_for(script)  # `redline tune -m pkg.train`: run as `python -m` runs it (applying/entry.py)
    started = time.perf_counter()
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if trial.get("verbose") else (lambda msg: None)
    from ..applying.after_import import clock, when_imported
    from ..applying.build_ahead import install as build_ahead
    from ..applying.iterator_release import install as release

    clock("tensorflow")  # Keras on JAX imports it at its first model save: not a compile (tuning/steps.untimed)
    if trial.get("parallel_map"):  # when the script imports TensorFlow (which imports keras): not before
        from ..data.rewrite import parallel_maps

        when_imported("tensorflow", lambda tf: parallel_maps(int(trial["parallel_map"])))

    maps = {}  # the sequential Dataset.map calls up to the measured fit's figures: what "parallel maps" would change
    if trial.get("discover") or int(trial.get("fit_index") or 1) > 1:  # search reads the first trial's, or its re-run's
        from ..data.rewrite import count_sequential_maps

        when_imported("tensorflow", lambda tf: count_sequential_maps(maps))

    no_user()  # the script's input() prompts get Enter: no one is at a trial's keyboard
    opener, box = io.open, None  # before the sandbox: the numerics check's shared weights are outside the folders
    if trial.get("sandbox"):  # the script's writes kept off the user's folders
        from .sandbox import install as sandbox

        box = sandbox(trial["sandbox"]["scratch"], trial["sandbox"]["protect"])
        from .sandbox_children import carry, inherit

        inherit(trial["sandbox"]["scratch"], trial["sandbox"]["protect"])  # and in the processes the script starts,
        carry()  # those given an environment of their own too
        children_tell(os.path.dirname(os.path.realpath(trial["sandbox"]["scratch"])))  # redline's own folder
    from .precision_pin import watch as watch_precision
    from .threads_pin import watch as watch_threads

    threads = watch_threads(bool(trial.get("force_threads")))  # the script's own settings, not the sandbox's
    policy = watch_precision(bool(trial.get("force_precision")))
    watch_eager()  # tf.config.run_functions_eagerly(True): where the script calls it
    forks = watch_forks()  # processes forked while JAX runs (PyDataset workers): a deadlock waiting to happen
    pin = watch_backend(bool(trial.get("force_backend")), bool(trial.get("force_onednn")))  # outermost: its caller is
    # the script's line
    state = {"fits": 0, "log": [], "result": None, "fitted": {}}  # fitted: model id -> its compiles at its last fit
    complete = trial.get("mode") == "complete"
    counts = {}
    fit_index = int(trial.get("fit_index") or 1)  # the fit to measure (tuning/fits.py); earlier ones run cut short

    def batch_of(kw):
        """The fit's batch size as Keras takes it: arrays get its default of 32."""
        from ..data.rewrite import input_kind

        return kw.get("batch_size") or (32 if input_kind(kw.get("x")) == "arrays" else None)

    def at_call(model, kw) -> dict:
        """The fit as the script calls it: its fingerprint, before anything builds the model (a Sequential without an
        Input has no weights until its first step), as `redline run` reads it at each fit (applying/per_fit.py); and
        whether it traces a new step function, as in a run of the script: the model's first fit, or the first since
        the script compiled it again (k folds of fresh models, a base unfrozen and recompiled), whatever the
        trial's own recompiles did in between."""
        from .fits import fingerprint

        compiles = state["compiles"].count.get(id(model), 0)
        traces = state["fitted"].get(id(model)) != compiles  # an id reused by a new model: compiled once more
        state["fitted"][id(model)] = compiles
        return {"fingerprint": fingerprint(model, state["compiles"].calls.get(id(model)), kw.get("x"), batch_of(kw)),
                "traces": traces}

    def record(model, kw, measured=None, called=None):
        """This fit in the trial's list of the script's fits: its fingerprint (``called``: at_call(), taken before a
        measurement built the model) and size."""
        from ..data.rewrite import input_kind, training_part
        from .fits import least_epochs, stops_early
        from .steps import steps_in_epoch

        if measured is None:  # as Keras counts it: under validation_split, the arrays' part it trains on
            x, y = kw.get("x"), kw.get("y")
            if kw.get("validation_split") and input_kind(x) == "arrays":
                x, y, _ = training_part((x, y, None), kw["validation_split"])
            steps = kw.get("steps_per_epoch") or steps_in_epoch(x, y, batch_of(kw), count_s=0)
            epochs = max(1, int(kw.get("epochs") or 1) - int(kw.get("initial_epoch") or 0))
        else:
            steps, epochs = measured["steps_in_epoch"], measured["epochs"]
        state["log"].append({"index": state["fits"], **(called or at_call(model, kw)),
                             "epochs": epochs, "steps_in_epoch": steps, "measured": measured is not None,
                             "stops_early": stops_early(kw.get("callbacks"), epochs), **step_of(measured),
                             **({"least_epochs": least} if (least := least_epochs(kw.get("callbacks"), epochs)) else {})})

    def step_of(measured) -> dict:
        """A measured fit's seconds a training step (the median of its rounds), as fits.longest reads it."""
        from .compare import median

        rates = ((measured or {}).get("candidates") or {}).get("default", {}).get("steps_per_s") or []
        return {"step_s": round(1 / median(rates), 6)} if rates and min(rates) > 0 else {}

    def pins() -> dict:
        return {"pinned_backend": pin["pinned"], "pinned_at": pin["line"], "pin_ignored": pin["ignored"],
                "env_before_keras": sorted(pin["env"]), "threads_set_at": threads["at"],
                "threads_set": threads["set"], "threads_ignored": threads["ignored"],
                "precision_set_at": policy["at"], "precision_set": policy["set"],
                "precision_ignored": policy["ignored"], "forks_under_jax": forks["forks"],
                "onednn_set_at": pin["onednn_at"], "onednn_set": pin["onednn"]}

    def sources() -> dict:
        """The first trial's: the user's modules and settings files the script has used (tuning/sources.py)."""
        if not trial.get("discover") or box is None:
            return {}
        from .sources import seen

        return {"sources": seen(script, trial["sandbox"]["protect"], box.read)}

    def measured(model, kw, settings, t0, emit=None, ends=False) -> dict:
        """This fit's candidates measured (tuning/measure.py), with the trial's bookkeeping around the figures.
        ``ends``: the measurement may end the trial itself (a rival judged while its first execution runs)."""
        from ..monitoring.contention import Contention

        _phase("measuring")  # a spare still importing is paused until this trial has its figures
        watch = Contention().start()  # how much of the machine the measurement did not have (steal, other processes)
        kept = lambda result: {**result, "status": "ok", "setup_s": round(t0 - started, 2),  # noqa: E731
                               "measure_s": round(time.perf_counter() - t0, 2), "contention": watch.stop(), **pins(),
                               "tf_import_s": round(untimed(t0, time.perf_counter()), 2),  # left out of its compile
                               "tf_s": tf_paid(),  # and what the process paid for it in all (tuning/payoff.py)
                               "fit_index": state["fits"], **maps, **sources()}
        with strategy_scope(model):  # where the script built and compiled it (redline builds optimizers, recompiles)
            result = measure_fit(model, state["fit"], kw, settings, state["compiles"], log, opener=opener, emit=emit,
                                 finish=(lambda result: _finish(kept(result))) if ends else None)
        return kept(result)

    def later(model, kw, plain) -> None:
        """The first trial, at a later fit that trains longer than every fit before it (a frozen base, then the whole
        model): measured here too, Keras' own fit, evaluate and predict put back meanwhile, so the tune needs no
        trial process of its own to measure it; the watchdog waits. Its figures go in the result as "later"."""
        owner, t0, cuts = state["owner"], time.perf_counter(), (state["owner"].fit, state["owner"].evaluate,
                                                                 state["owner"].predict)
        state["watch"], state["log"][-1]["measured"] = None, True
        owner.fit, owner.evaluate, owner.predict = plain
        try:  # the loss checked after as many steps as at the first fit, as every later trial of the tune does
            check = (state["result"].get("check") or {}).get("steps") or trial.get("check_steps")
            state["result"]["later"] = measured(model, kw, {**trial, "check_steps": check}, t0)
            state["log"][-1].update(step_of(state["result"]["later"]))
        except Exception as exc:  # noqa: BLE001  not measured here: the tune measures it in a trial process of its own
            state["result"]["later"] = {"status": "failed", "fit_index": state["fits"],
                                        "error": f"{type(exc).__name__}: {exc}"[:500]}
        finally:
            owner.fit, owner.evaluate, owner.predict = cuts
            state["watch"] = time.monotonic() + float(trial.get("discover_s", DISCOVER_S))
        if state["result"]["later"].get("status") == "ok":  # not inside the measurement: its figures stand whatever
            python_extra(model, state["log"][-1])  # this timing meets
        _emit({**state["result"], "fits": state["log"]})  # the spares this measurement paused go on

    def python_extra(model, entry) -> None:
        """The first trial, at the first later fit that traces anew: what `python` pays more at its start than this
        process, which built its state ahead (tuning/fits.python_extra_s), on the fit's record."""
        from .fits import python_extra_s

        if trial.get("python_drops") and entry.get("traces") and not any("python_extra_s" in f for f in state["log"]):
            extra = python_extra_s(model)
            if extra is not None:
                entry["python_extra_s"] = extra

    def fit(model, *args, **kwargs):
        state["fits"] += 1
        if os.getpid() != parent:  # a forked child's fit (a Pool worker's): not measured, cut short
            return child_fit(state["fit"])(model, *args, **kwargs)
        kw = {**dict(zip(FIT_ARGS, args)), **kwargs}
        x, y = kw.get("x"), kw.get("y")
        t0 = time.perf_counter()
        owner, original_fit = state["owner"], state["fit"]
        called = at_call(model, kw)  # k folds of one unbuilt model: one fingerprint, the measured fold's too
        if state["fits"] < fit_index and trial.get("mode") != "diagnose":  # a fit before the one measured: cut short
            from .completion import run_cut

            record(model, kw, called=called)
            return run_cut(original_fit, model, kw)
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
            result = measured(model, kw, trial, t0, emit=lambda part: _emit({**part, "status": "ok", **pins()}),
                              ends=True)
        except Exception as exc:  # the measurement itself failed on this script: say so, with where
            _finish({"status": "failed", "stage": "measure", "error": f"{type(exc).__name__}: {exc}"[:500],
                     "trace": traceback.format_exc()[-2000:]}, 3)
        behind = "behind" in result.get("candidates", {}).get("default", {})  # decisively behind: never chosen
        if not (trial.get("discover") or trial.get("follow")) or behind or result.get("pruned"):
            _finish(result)
        # the first trial goes on (and, with "follow", every per-process trial): the rest of the script with its
        # training cut short, every later fit recorded; how it ends is the completion check of this candidate
        import keras

        from .completion import install as cut_all

        record(model, kw, measured=result, called=called)
        state["result"] = result
        _emit(result)  # the measurement stands whatever the rest of the script does (tuning/trials.py reads the last line)
        _watchdog(state, counts, float(trial.get("discover_s", DISCOVER_S if trial.get("discover") else FOLLOW_S)))
        owner.fit = original_fit  # the cut versions wrap Keras' own fit, not this one
        plain = (owner.fit, owner.evaluate, owner.predict)
        cut_all(keras, counts)
        cut_fit = keras.Model.fit

        def recorded(model_, *a, **k):
            if os.getpid() != parent:  # a child forked after the measured fit: not measured, cut short
                return child_fit(plain[0])(model_, *a, **k)
            from .fits import size, timed_cut

            state["fits"] += 1
            kw_ = {**dict(zip(FIT_ARGS, a)), **k}
            record(model_, kw_)
            entry = state["log"][-1]
            if trial.get("discover") and size(entry) > max(size(f) for f in state["log"][:-1]):
                later(model_, kw_, plain)
                return cut_fit(model_, *a, **k)
            _phase("measuring")  # timed: a spare still importing is paused meanwhile (tuning/spares.py)
            try:
                out = timed_cut(cut_fit, model_, kw_, entry)  # its start and its step's time
                python_extra(model_, entry)
            finally:
                _phase("measured")
            return out

        keras.Model.fit = recorded
        return cut_fit(model, **kw)

    def on_keras(keras):
        """Once the script imports keras (its backend fixed by then, by the script's own line where it has one), and
        again where keras.config.set_backend imports it anew."""
        watch_set_backend(keras, pin, bool(trial.get("force_backend")))
        release(keras)  # as `redline run` runs a tuned choice on TensorFlow: each finished iterator off the loop
        build_ahead(keras)  # and a model's state built before its first traced step
        if trial.get("precision"):
            keras.mixed_precision.set_global_policy(trial["precision"])
        if complete:
            from .completion import install as cut

            cut(keras, counts)
            return
        state["compiles"] = Compiles(keras)
        state["owner"], state["fit"] = keras.Model, keras.Model.fit
        keras.Model.fit = fit
        seconds = float(trial.get("own_loop_s", OWN_LOOP_S))
        state["own_loop"] = own_loop(keras, script, state, seconds, lambda seen: _finish(
            {"status": "own-loop", "error": message(seen, seconds), "own_loop_at": seen["at"]}, 0))

    when_imported("keras", on_keras)
    prepare(script, argv[1:], module)
    if complete:  # the whole script, its training cut short: how does it end?
        from .completion import outcome

        ended = None
        try:
            execute(script, module)
        except BaseException as exc:  # noqa: BLE001  how the script ended is the result, whatever it was
            ended = exc
            if not isinstance(exc, SystemExit):
                print_script_error(exc)
        _finish({**outcome(ended, script, counts), "pinned_backend": pin["pinned"], "pin_ignored": pin["ignored"]}, 0)
    try:
        execute(script, module)
    except SystemExit as exc:
        if state["result"] is not None:
            _end_of_discovery(state, exc, script, counts)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:  # sys.exit("message"): printed, as Python would
            print(exc.code, file=sys.stderr, flush=True)
        _finish({"status": "no-fit", "exit_code": code, "error": f"the script exited with code {code} before calling fit"}, 0)
    except BaseException as exc:  # the script's own error before fit: reported with its traceback, as Python would
        print_script_error(exc)
        if state["result"] is not None:
            _end_of_discovery(state, exc, script, counts)
        hint = package_hint(script, exc, "tune")  # a module of a package run as a file: -m says how
        _finish({"status": "script-error", "error": f"{type(exc).__name__}: {exc}"[:500]
                 + (f" ({hint.removeprefix('redline: ')})" if hint else "")}, 0)
    if state["result"] is not None:
        _end_of_discovery(state, None, script, counts)
    seen = state.get("own_loop") or {}
    _finish({"status": "no-fit", "exit_code": 0, "error": "the script ended without calling Model.fit"
             + (f"; {message(seen)}" if seen.get("t") is not None else "")}, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

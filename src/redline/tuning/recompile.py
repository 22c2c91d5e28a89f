"""Switching a model between compile knobs (steps_per_execution, jit_compile, run_eagerly, and TensorFlow's
run_functions_eagerly flag) inside a trial, without compiling it again where it can be helped."""

from __future__ import annotations

import os
import sys

from ..applying.compile_defaults import compile_owner
from . import eager_pin

FUNCTIONS = ("train_function", "test_function", "predict_function")


def _key(knobs: dict) -> str:
    return repr(sorted(knobs.items()))


class Recompile:
    """``recompile(cand)``: the script's own compile, but the knobs ``knobs_of(cand)``. Only where they change, and then
    without a new compile: the knobs are set on the model compiled by the script, and where it already ran under them,
    their traced (and, on JAX, jitted) functions are put back. A new compile (the first, where the script's own was not
    seen) makes a new optimizer and metrics where the script names them by string, traces and compiles again, and on
    JAX once more for each new batch shape (an epoch's last, partial batch) inside the next run: switching candidates
    round after round made figures erratic. ``knobs``: what the model is compiled with now (None: unknown, so the
    next switch compiles again; set so after a failure)."""

    def __init__(self, model, compiles, knobs_of):
        self.model, self.compiles, self.knobs_of = model, compiles, knobs_of
        self.args, self.kwargs = compiles.calls.get(id(model), ((), {}))
        self.knobs = {} if id(model) in compiles.calls else None  # the script's own compile to begin with
        self.built = {}  # knobs (as a key) -> the model's train/test/predict functions traced and compiled under them
        self.flag = eager_pin.eager()  # whether TensorFlow's functions run eagerly as the script left them (or None)

    def __call__(self, cand) -> None:
        model, built, knobs = self.model, self.built, self.knobs_of(cand)
        if self.knobs == knobs:
            return
        if self.knobs is not None:
            built[_key(self.knobs)] = {f: getattr(model, f, None) for f in FUNCTIONS}
            if self.knobs == {} and "own" not in built:  # the script's own values, read from its compile
                built["own"] = {"steps_per_execution": model.steps_per_execution, "jit_compile": model.jit_compile,
                                "run_eagerly": model.run_eagerly,
                                **({eager_pin.KNOB: self.flag} if self.flag is not None else {})}
            if "own" in built:  # the knobs set on the model as it is (its optimizer, loss and metrics kept): its
                # functions are built again under them only where they did not run before
                saved = built.get(_key(knobs)) or {f: None for f in FUNCTIONS}
                for k, v in {**built["own"], **knobs}.items():
                    _set(model, k, v)
                for f, fn in saved.items():
                    setattr(model, f, fn)
                self.knobs = knobs
                return
        self.knobs = None
        # a compile makes a new optimizer and metrics where the script names them by string: functions traced before
        # would update the old ones
        for k in [k for k in built if k != "own"]:
            built.pop(k)
        self.compiles.original(model, *self.args, **{**self.kwargs, **{k: v for k, v in knobs.items()
                                                                       if k != eager_pin.KNOB}})
        if self.flag is not None:  # the candidate's, else the script's own
            eager_pin.set_eager(knobs.get(eager_pin.KNOB, self.flag))
        self.knobs = knobs


def _set(model, knob: str, value) -> None:
    """One knob on the compiled model; TensorFlow's eager flag is process-wide (a traced function reads it per call)."""
    if knob == eager_pin.KNOB:
        eager_pin.set_eager(value)
    else:
        setattr(model, knob, value)


def jit_unsupported(model) -> str | None:
    """Why ``jit_compile=True`` cannot change how ``model`` trains, or None: Keras keeps XLA off for a model with a
    layer that does not support it (random augmentation, for one), with a warning, so such a candidate would measure
    the script's own compile again (a new trace of a large model costs a trial tens of seconds)."""
    try:
        from keras.src.trainers.trainer import model_supports_jit
    except ImportError:  # another Keras: measured, as before
        return None
    if model_supports_jit(model):
        return None
    layers = [type(x).__name__ for x in model._flatten_layers() if not getattr(x, "supports_jit", True)]
    return ("Keras runs this model without XLA whatever jit_compile says"
            + (f" ({', '.join(sorted(set(layers))[:3])} does not support it)" if layers else "")
            + ": it would run as the script's own compile")


class Compiles:
    """Model.compile, recorded, so a candidate can recompile the model with the script's own arguments."""

    def __init__(self, keras):
        self.calls, self.count = {}, {}  # the script's own calls per model: the last one's arguments, how many
        self.lines = {}  # and where it made the last one (file:line), for advice on its arguments
        owner = compile_owner(keras.Model)  # where Keras defines compile: a patch on keras.Model left every model
        original = vars(owner)["compile"]  # loaded in the script uncompiled (compile_owner)
        calls, count, lines = self.calls, self.count, self.lines

        def compile(model, *args, **kwargs):
            calls[id(model)] = (args, dict(kwargs))
            count[id(model)] = count.get(id(model), 0) + 1
            caller = sys._getframe(1)
            lines[id(model)] = f"{os.path.basename(caller.f_code.co_filename)}:{caller.f_lineno}"
            return original(model, *args, **kwargs)

        owner.compile = compile
        self.original = original


def build_optimizer(model, log) -> bool:
    """The optimizer's variables made as Keras' fit makes them before its first step; False where it cannot."""
    try:
        model.optimizer.build(model.trainable_variables)
    except (ValueError, TypeError, NotImplementedError, AttributeError) as exc:
        log(f"  the optimizer not built ahead ({type(exc).__name__}: {str(exc)[:120]}): one step builds it")
        return False
    return bool(model.optimizer.built)


def strategy_scope(model):
    """The tf.distribute strategy's scope a model was built under (a MirroredStrategy script builds and compiles in
    ``with strategy.scope():``, and its optimizer's variables can only be made there), else a scope that does
    nothing. Keras on TensorFlow keeps the strategy on the model; other backends have none."""
    import contextlib

    strategy = getattr(model, "_distribute_strategy", None)
    return strategy.scope() if strategy is not None and hasattr(strategy, "scope") else contextlib.nullcontext()


__all__ = ["Compiles", "Recompile", "build_optimizer", "jit_unsupported", "strategy_scope"]

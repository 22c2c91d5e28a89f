"""The training step traced once, not twice, on TensorFlow.

Keras on TensorFlow without a distribution strategy leaves a model's unbuilt state (its layers' weights where the
model has no input shape, the compiled loss and metrics, the optimizer's slots) to its first traced step
(``TensorFlowTrainer._maybe_symbolic_build`` returns at once). ``tf.function`` then traces that step twice: once
making the variables, once more to check that a call makes none. On JAX and torch, and on TensorFlow under a
strategy, Keras builds that state before the first step instead (``Trainer._symbolic_build``, from the input's
shapes), and the step is traced once. A script that compiles again between its fits (fine-tuning: a frozen base, then
the whole model, each with a new optimizer) pays the second trace at each fit: 6-7 s of a 15-s first step on a
fine-tuning script on a 2-core Zen 4 VM (benchmarks/results/build-ahead-*.txt).

``install()`` has ``fit`` and ``evaluate`` build it ahead there too, as Keras does under a strategy: from the input's
shapes (the element spec of the tf.data pipeline Keras made of it: no batch is read), with Keras' own
``_symbolic_build``. The variables are the same, made in the same order with the same initial values (zeros for
the optimizer's and the metrics', the layers' initializers in layer order), so the numbers trained are the same.
Where it cannot (an input whose spec is not plain tensors, a model Keras cannot build from shapes alone), it leaves
the build to the first step, as Keras does; so too a model of the script's own class not built yet (its layers may
take other tensors than the input); ``stats()`` says how often each happened.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import weakref

from ..planning.planner import BUILD_AHEAD_OFF, patch_off

_MARK = "__redline_build_ahead__"
#: what Keras' _symbolic_build raises where a model cannot be built from shapes alone (its own words: "Unable to
#: automatically build the model"), or an input it cannot read shapes from
_CANNOT = (ValueError, RuntimeError, TypeError, NotImplementedError, AttributeError)
_stats = {"built": 0, "ready": 0, "left": {}}
_seen = weakref.WeakKeyDictionary()  # model -> (its compile's _state() when last looked at, the specs it built from)


def _state(model) -> tuple:
    """What a new compile replaces: the optimizer, the compiled metrics and loss (their ids)."""
    return tuple(id(getattr(model, n, None)) for n in ("optimizer", "_compile_metrics", "_compile_loss"))


def _unbuilt(model) -> bool:
    """Something the first step would build: the model's layers, its compiled loss or metrics, its optimizer."""
    parts = (getattr(model, "_compile_metrics", None), getattr(model, "_compile_loss", None),
             getattr(model, "optimizer", None))
    return (any(p is not None and not p.built for p in parts)
            or not all(layer.built for layer in model._flatten_layers()))


def _shapes(iterator):
    """The input's batch as Keras would read its shapes (tensor specs, batch size None where it varies), from the
    tf.data pipeline the epoch iterator made; None where it has no plain-tensor spec (ragged, sparse, an optional)."""
    import tensorflow as tf

    dataset = getattr(iterator, "_distributed_dataset", None)
    spec = getattr(dataset, "element_spec", None)
    if spec is None:
        return None
    flat = tf.nest.flatten(spec)
    if not flat or not all(isinstance(s, tf.TensorSpec) for s in flat):
        return None
    return spec


def _build(model, iterator, data_batch) -> None:
    """Once per model and compile (_seen): a loop of train_on_batch calls looks its models' layers over once, and a
    layer the model never calls (unbuilt for good) does not make each call build again."""
    if (_seen.get(model) or (None,))[0] == _state(model):
        return
    _seen[model] = (_state(model), None)
    if not _unbuilt(model):
        _stats["ready"] += 1
        return
    if not model.built and not _sequential(model):
        _left("a model of its own class not built yet: its first step builds its layers")
        return
    batch = data_batch if data_batch is not None else _shapes(iterator)
    if batch is None:
        _left("the input has no plain tensor spec")
        return
    try:
        model._symbolic_build(data_batch=batch)
    except _CANNOT as exc:  # the first step builds it, as Keras does without a strategy (and says why, if it fails)
        _left(f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}")
        return
    _stats["built"] += 1
    _seen[model] = (_state(model), batch if data_batch is None else None)  # a batch of train_on_batch's: not kept


def built_from(model):
    """The input's tensor specs (as ``fit`` and ``evaluate`` read them) that the state of ``model``'s current compile
    was built from ahead, or None where it was not (nothing unbuilt, left to the first step, not looked at, or built
    from a batch ``train_on_batch`` was given): where `python` traces the first step twice and this process once."""
    seen = _seen.get(model)
    return seen[1] if seen is not None and seen[0] == _state(model) else None


def _sequential(model) -> bool:
    """A keras.Sequential with Keras' own call and train_step: its first step builds its layers from the input's shape
    symbolically, as _symbolic_build does. A model class of the script's own may call its layers on other tensors
    than the input (a GAN's generator on noise): built from the input ahead, a layer could take the wrong shape."""
    import keras

    from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

    return (isinstance(model, keras.Sequential) and type(model).call is keras.Sequential.call
            and type(model).train_step is TensorFlowTrainer.train_step)


def _left(why: str) -> None:
    _stats["left"][why] = _stats["left"].get(why, 0) + 1


def install(keras=None) -> str | None:
    """Patch Keras' TensorFlow trainer so that ``fit``, ``evaluate``, ``train_on_batch`` and ``test_on_batch`` build
    what is unbuilt before the first step where no strategy does. Returns None where it is in place (now or before),
    else why not (BUILD_AHEAD_OFF set to 0 in the environment; another backend, where Keras does it already; a Keras
    without that hook)."""
    keras = keras if keras is not None else sys.modules.get("keras")
    why = patch_off(keras.backend.backend() if keras is not None else None, os.environ, BUILD_AHEAD_OFF)
    if why is not None:
        return why
    try:
        cls = importlib.import_module("keras.src.backend.tensorflow.trainer").TensorFlowTrainer
        original = vars(cls)["_maybe_symbolic_build"]
        cls._symbolic_build  # noqa: B018  (Keras' own build from shapes, used below)
    except (ImportError, AttributeError, KeyError) as exc:
        return f"this Keras has no TensorFlowTrainer._maybe_symbolic_build to hook ({exc})"
    if getattr(original, _MARK, False):
        return None

    @functools.wraps(original)
    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if getattr(self, "_distribute_strategy", None) is None:  # under a strategy, Keras builds it itself
            _build(self, iterator, data_batch)
        return original(self, iterator=iterator, data_batch=data_batch)

    setattr(_maybe_symbolic_build, _MARK, True)
    cls._maybe_symbolic_build = _maybe_symbolic_build
    return None


def installed() -> bool:
    """The imported Keras' TensorFlow trainer is patched (install())."""
    cls = getattr(sys.modules.get("keras.src.backend.tensorflow.trainer"), "TensorFlowTrainer", None)
    return bool(getattr(vars(cls).get("_maybe_symbolic_build") if cls else None, _MARK, False))


def stats() -> dict:
    """In this process: the fits and evaluations built ahead, those that found everything built already, and those
    left to their first step (by why)."""
    return {"built": _stats["built"], "ready": _stats["ready"], "left": dict(_stats["left"])}


__all__ = ["built_from", "install", "installed", "stats"]

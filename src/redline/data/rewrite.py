"""The input a script hands to ``Model.fit``, rewritten into a faster path: what ``redline tune`` measures and
``redline run`` applies.

Each rewrite is named by a spec (a small dict, saved with the tuned choice):

- ``{"input": "optimize", "deterministic": True}``: a ``tf.data.Dataset`` through ``redline.data.optimize()``
  (tf.data's own map parallelisation and map+batch fusion, a prefetch stage, a private thread pool,
  autotune off); ``deterministic=False`` only behind ``--allow order``;
- ``{"input": "pipeline"}``: numpy arrays through ``redline.data.pipeline()`` with ``repeat()`` and
  ``steps_per_epoch``, instead of Keras' own array adapter (which builds a new iterator each epoch: the epoch-start
  stall); under ``validation_split`` the pipeline carries the part Keras trains on, and the part it validates on is
  passed as ``validation_data``, at the script's batch;
- ``{"input": "batch", "factor": k}``: arrays with k times the batch (changes the math: ``--allow batch``);
- ``{"input": "workers", "workers": n}``: a ``keras.utils.PyDataset`` read by n threads.

A Python generator object is left as it is: it can be read by one consumer only, so neither worker
processes nor a second reader can be put in front of it without the script's generator function.
"""

from __future__ import annotations

import functools
import sys

KEEPS_MATH = ("optimize", "pipeline", "workers")


class Unsupported(Exception):
    """This rewrite does not apply to this fit call; the message says why."""


def input_kind(x) -> str:
    """'dataset', 'arrays', 'pydataset', 'generator' or 'other' for fit's x."""
    import inspect

    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(x, tf.data.Dataset):
        return "dataset"
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(x, keras.utils.PyDataset):
        return "pydataset"
    if inspect.isgenerator(x):
        return "generator"
    leaves = x.values() if isinstance(x, dict) else (x if isinstance(x, (tuple, list)) else [x])
    if leaves and all(hasattr(a, "__array__") and hasattr(a, "shape") for a in leaves):
        return "arrays"
    return "other"


def candidates(kind: str, allow=(), usable: int = 1) -> tuple[dict, list]:
    """({name: spec} to measure for this kind of input, [what is not measured and why])."""
    out, skipped = {}, []
    if kind == "dataset":
        out["input: redline.data.optimize"] = {"input": "optimize", "deterministic": True}
        if "order" in allow:
            out["input: optimize, any order"] = {"input": "optimize", "deterministic": False}
    elif kind == "arrays":
        out["input: redline.data pipeline"] = {"input": "pipeline"}
        if "batch" in allow:
            out["input: batch x2"] = {"input": "batch", "factor": 2}
            out["input: batch x4"] = {"input": "batch", "factor": 4}
    elif kind == "pydataset":
        if usable > 1:
            out[f"input: PyDataset, {usable} threads"] = {"input": "workers", "workers": usable}
        else:
            skipped.append("PyDataset workers: one usable core")
    elif kind == "generator":
        skipped.append("the input path: fit got a Python generator object, which only one reader can consume; "
                       "worker processes need its generator function (redline.data.generator(fn, ...))")
    if kind != "arrays" and "batch" in allow:
        skipped.append(f"larger batches: fit got a {kind}, whose batches the script builds itself")
    if kind != "dataset" and "order" in allow:
        skipped.append(f"nondeterministic order: fit got {kind}, not a tf.data pipeline")
    return out, skipped


def training_part(arrays, split: float):
    """The part of ``arrays`` (a structure of arrays, None kept) fit trains on under ``validation_split=split``: the
    first floor(n * (1 - split)) samples, as Keras cuts them (no shuffle before the cut)."""
    return _cut(arrays, split)[0]


def _cut(arrays, split: float) -> tuple:
    """(training part, validation part) of ``arrays`` as Keras' ``validation_split`` cuts them."""
    import math

    import keras

    leaves = [a for a in keras.tree.flatten(arrays) if a is not None]
    at = int(math.floor(len(leaves[0]) * (1.0 - split))) if leaves else 0
    part = lambda sl: keras.tree.map_structure(lambda a: None if a is None else a[sl], arrays)  # noqa: E731
    return part(slice(None, at)), part(slice(at, None))


def _tuples(arrays):
    """``arrays`` with its lists made tuples: Keras takes a list of arrays as the model's several inputs, tf.data as one
    array stacked from them (a two-input model was then given one input of shape (2, n, ...))."""
    if isinstance(arrays, (list, tuple)):
        return tuple(_tuples(a) for a in arrays)
    if isinstance(arrays, dict):
        return {k: _tuples(v) for k, v in arrays.items()}
    return arrays


def rewrite(spec: dict, x, y, batch_size, fit_kwargs: dict) -> tuple:
    """(x, y, batch_size, extra fit kwargs) for ``spec``; Unsupported where it does not apply to this call."""
    how = spec.get("input")
    kind = input_kind(x)
    if how == "optimize":
        if kind != "dataset":
            raise Unsupported(f"fit got {kind}, not a tf.data.Dataset")
        from . import optimize

        return optimize(x, deterministic=spec.get("deterministic", True)), y, batch_size, {}
    if how in ("pipeline", "batch"):
        if kind != "arrays":
            raise Unsupported(f"fit got {kind}, not numpy arrays")
        split = fit_kwargs.get("validation_split")
        for arg in ("sample_weight", "steps_per_epoch", *(["validation_split"] if how == "batch" else [])):
            if fit_kwargs.get(arg) is not None and (arg != "validation_split" or split):
                raise Unsupported(f"fit was given {arg}, which this input path does not carry")
        bs = batch_size or 32
        if how == "batch":
            return x, y, bs * int(spec["factor"]), {}
        from .pipeline import pipeline

        x, y, extra = _tuples(x), _tuples(y), {}
        if split and fit_kwargs.get("validation_data") is None:  # Keras validates on the arrays' last part: so here
            (x, y), validation = _cut((x, y), split)
            extra = {"validation_split": 0.0, "validation_data": validation if validation[1] is not None else validation[0],
                     "validation_batch_size": fit_kwargs.get("validation_batch_size") or bs}
        elif split:  # validation_data given as well: Keras ignores validation_split
            extra = {"validation_split": 0.0}
        source = x if y is None else (x, y)
        ds = pipeline(source, batch_size=bs, shuffle=bool(fit_kwargs.get("shuffle", True)), deterministic=True, repeat=True)
        return ds, None, None, {"steps_per_epoch": ds.redline.steps_per_epoch, **extra}
    if how == "workers":
        if kind != "pydataset":
            raise Unsupported(f"fit got {kind}, not a keras.utils.PyDataset")
        if (x.workers or 1) > 1:
            raise Unsupported(f"the PyDataset already has workers={x.workers}, set by the script")
        import copy

        x = copy.copy(x)  # the script's own PyDataset stays as it is (the trial measures it as written too)
        x.workers, x.use_multiprocessing = int(spec["workers"]), False
        return x, y, batch_size, {}
    raise Unsupported(f"unknown input rewrite {how!r}")


def describe(spec: dict) -> str:
    how = spec.get("input")
    return {"optimize": "the tf.data input through redline.data.optimize()"
                        + ("" if spec.get("deterministic", True) else " in any order"),
            "pipeline": "the numpy arrays through a redline.data pipeline",
            "batch": f"a {spec.get('factor')}x larger batch",
            "workers": f"the PyDataset read by {spec.get('workers')} threads"}.get(how, str(spec))


def install(spec: dict, log=None) -> None:
    """Patch keras.Model.fit so that each call's input takes ``spec``; a call it does not fit runs unchanged, with a note."""
    import keras

    log = log or (lambda msg: print(msg, file=sys.stderr))
    owner = keras.Model
    original = owner.fit
    if getattr(original, "__redline_input__", None) is not None:
        original = original.__wrapped__

    names = ("x", "y", "batch_size", "epochs", "verbose", "callbacks", "validation_split", "validation_data", "shuffle")

    @functools.wraps(original)
    def fit(model, *args, **kwargs):
        kw = {**dict(zip(names, args)), **kwargs}
        try:
            x, y, bs, extra = rewrite(spec, kw.get("x"), kw.get("y"), kw.get("batch_size"), kw)
        except Unsupported as why:
            log(f"redline: the tuned input path is not applied to this fit call: {why}")
            return original(model, **kw)
        kw.update({"x": x, "y": y, "batch_size": bs, **extra})
        return original(model, **kw)

    fit.__redline_input__ = dict(spec)
    owner.fit = fit


#: callers whose Dataset.map calls are not the script's pipeline (Keras' own adapters map arrays in every fit)
NOT_THE_SCRIPT = ("keras.", "tensorflow.", "redline.")


def count_sequential_maps(counts: dict) -> None:
    """Count the script's Dataset.map calls that parallel_maps below would change (no num_parallel_calls) in
    ``counts["sequential_maps"]``: those made by Keras, TensorFlow or redline themselves are not counted. Each call
    runs as written."""
    import tensorflow as tf

    original = tf.data.Dataset.map
    counts.setdefault("sequential_maps", 0)

    @functools.wraps(original)
    def map(self, map_func, *args, **kw):  # noqa: A001
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if (args[0] if args else kw.get("num_parallel_calls")) is None and not caller.startswith(NOT_THE_SCRIPT):
            counts["sequential_maps"] += 1
        return original(self, map_func, *args, **kw)

    tf.data.Dataset.map = map


def parallel_maps(usable: int) -> None:
    """Sequential Dataset.map calls become parallel ones with the order kept (the script's pipeline, unchanged)."""
    import tensorflow as tf

    original = tf.data.Dataset.map
    if getattr(original, "__redline_parallel__", None):
        return

    @functools.wraps(original)
    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None, **kw):  # noqa: A001
        if num_parallel_calls is None:
            num_parallel_calls, deterministic = usable, True if deterministic is None else deterministic
        return original(self, map_func, num_parallel_calls=num_parallel_calls, deterministic=deterministic, name=name, **kw)

    map.__redline_parallel__ = usable
    tf.data.Dataset.map = map

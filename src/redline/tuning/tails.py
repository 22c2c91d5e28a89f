"""An input cut to a few batches that keeps the last, smaller batch each of the script's epochs ends with.

An epoch whose samples the batch size does not divide ends with a batch of another shape, and a step function is
traced and compiled for that shape in every run (each later fit of a fresh model pays it again: a later fold on JAX
0.31 s cut to 2 batches, 0.56-0.58 s with its last batch, as a run pays it). A fit cut short (the completion trial,
the later fits a trial times) keeps that batch where the input says what it is: numpy arrays (their length), and a
tf.data pipeline whose last batching step is known (its batch size, its input's cardinality, no drop_remainder).
pandas DataFrames and Series count as arrays: Keras takes them as it takes numpy arrays (the tutorials' regression
fits its DataFrame of features as it is).
"""

from __future__ import annotations

import math
import sys

#: the most a cut fit copies to keep the arrays' last batch: beyond it, the fit is cut by steps instead
TAIL_BYTES = 256 * 2**20
#: the batch Keras gives arrays where a call passes none
KERAS_BATCH = 32
#: tf.data steps (class names) that keep one batch an element, between a pipeline's batching and its end
ONE_TO_ONE = ("_PrefetchDataset", "_MapDataset", "_ParallelMapDataset", "CacheDataset", "_OptionsDataset",
              "_ShuffleDataset")
#: tf.data batching steps (class names) that end an epoch with the remainder unless drop_remainder
BATCHING = ("_BatchDataset", "_ParallelBatchDataset", "_PaddedBatchDataset")


def _frame(v) -> bool:
    """``v`` is a pandas DataFrame or Series (read here without importing pandas)."""
    return type(v).__module__.split(".")[0] == "pandas" and hasattr(v, "iloc")


def _nbytes(a) -> int:
    """The bytes of an array's, a DataFrame's or a Series' values."""
    import numpy as np

    return int(np.sum(a.memory_usage(index=False))) if _frame(a) else a.nbytes


def leaves(v) -> list | None:
    """The numpy arrays, pandas DataFrames and Series ``v`` holds (one, or lists, tuples and dicts of them, None among
    them); None where it holds anything else (a tf.data.Dataset, a generator, a tensor)."""
    import numpy as np

    if v is None:
        return []
    if isinstance(v, np.ndarray) or _frame(v):
        return [v] if v.ndim else None
    parts = list(v.values()) if isinstance(v, dict) else list(v) if isinstance(v, (list, tuple)) else None
    if parts is None:
        return None
    out = []
    for part in parts:
        got = leaves(part)
        if got is None:
            return None
        out += got
    return out


def batched(kw: dict, key: str = "batch_size", x: str = "x", steps: str = "steps_per_epoch") -> dict:
    """``kw`` (a fit, evaluate or predict call's arguments by name) with the batch Keras gives arrays made explicit
    under ``key`` where its input (``kw[x]``) is arrays and the call passes no batch size: ``ceil(n / kw[steps])``
    where the call gives a step count, else 32. A call cut short by steps then trains the batches of a run: given a
    step count and no batch size, Keras splits arrays into that many batches, so the knowledge-distillation example's
    fits (2,048 samples, no batch_size) cut to 2 steps trained batches of 1,024, a step 2.0 s where a run's takes
    0.08 s, and a predict cut to 2 steps of 60,000 images would have run batches of 30,000."""
    from ..data.rewrite import input_kind

    if kw.get(key) is not None or kw.get(x) is None or input_kind(kw[x]) != "arrays":
        return kw
    n, own = _length(kw[x]), kw.get(steps)
    return {**kw, key: math.ceil(n / int(own)) if own and n else KERAS_BATCH}


def _length(v) -> int | None:
    """The samples in ``v``: its first array's (as Keras counts them), through dicts, lists and tuples."""
    while isinstance(v, (dict, list, tuple)) and v:
        v = next(iter(v.values())) if isinstance(v, dict) else v[0]
    shape = getattr(v, "shape", None)
    return int(shape[0]) if shape else None


def take(v, rows):
    """``v`` (as leaves() reads it) with each array's ``rows`` (a slice or an index array)."""
    if v is None:
        return None
    if isinstance(v, dict):
        return {k: take(x, rows) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(take(x, rows) for x in v)
    return v.iloc[rows] if _frame(v) else v[rows]


def rows(data) -> int | None:
    """The samples in ``data`` (x, y, sample_weight) where each is numpy arrays of one length; else None."""
    got = [leaves(v) for v in data]
    if any(g is None for g in got):
        return None
    lengths = {len(a) for g in got for a in g}
    return lengths.pop() if len(lengths) == 1 else None


def arrays(data, batch: int, steps: int):
    """``data`` (x, y, sample_weight as numpy arrays) cut to ``steps`` full batches and the data's last, partial
    batch; the data itself where that is all of it. None where the data is no such arrays or has no partial batch,
    or where the copy would take more than TAIL_BYTES: cut by steps then."""
    import numpy as np

    n = rows(data)
    if not n or not batch or not n % batch:
        return None
    if n <= steps * batch + n % batch:
        return data
    if sum(_nbytes(a) for v in data for a in leaves(v)) / n * (steps * batch + n % batch) > TAIL_BYTES:
        return None
    at = np.r_[0:steps * batch, n - n % batch:n]
    return tuple(take(v, at) for v in data)


def _last_batch(ds) -> int | None:
    """The size of the smaller batch that ends each pass over ``ds`` (a tf.data.Dataset); None where there is none
    or the pipeline does not say (an unknown or infinite cardinality, a step after its batching that may change the
    number of batches: filter, unbatch, repeat, take...)."""
    node = ds
    while type(node).__name__ in ONE_TO_ONE:
        node = getattr(node, "_input_dataset", None)
    if type(node).__name__ not in BATCHING or bool(node._drop_remainder.numpy()):
        return None
    batch, n = int(node._batch_size.numpy()), int(node._input_dataset.cardinality().numpy())
    return n % batch if batch > 0 and n > 0 and n % batch else None


def dataset(ds, steps: int):
    """``ds`` (a finite tf.data.Dataset, as a fit takes it without steps_per_epoch) cut to its first ``steps``
    batches and a batch of the size its last one has (the first rows of one more batch); ``ds`` itself where that is
    all of it. None where ``ds`` is no tf.data.Dataset or its last batch is unknown: cut by steps then."""
    tf = sys.modules.get("tensorflow")  # a script that made a tf.data.Dataset has imported it
    if tf is None or not isinstance(ds, tf.data.Dataset):
        return None
    last = _last_batch(ds)
    if last is None:
        return None
    if int(ds.cardinality().numpy()) <= steps + 1:
        return ds

    def head(*element):
        cut = tf.nest.map_structure(lambda t: t[:last], element)
        return cut if len(cut) > 1 else cut[0]

    try:
        return ds.take(steps).concatenate(ds.take(1).map(head))
    except (TypeError, ValueError) as exc:  # an element tf.data cannot slice so (a SparseTensor): cut by steps
        print(f"[redline] the input's last batch is not kept in a fit cut short: {exc}", file=sys.stderr)
        return None


__all__ = ["BATCHING", "ONE_TO_ONE", "TAIL_BYTES", "arrays", "dataset", "leaves", "rows", "take"]

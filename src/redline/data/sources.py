"""Where a pipeline's elements come from: arrays, datasets, generators, PyDatasets and files.

read() turns any supported source into (kind, element count, dataset of single
elements or None for in-memory arrays, worker processes); pipeline() then puts
the stages in order. Each source kind is checked here, so a source that cannot
work fails with a message that names it before tf.data sees it.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError

@dataclass(frozen=True)
class GeneratorSource:
    """A Python generator function as a source; see generator()."""

    fn: object
    output_signature: object
    shardable: bool
    num_shards: int | None = None
    #: elements per epoch, when known: it gives steps_per_epoch
    size: int | None = None
    #: why it cannot be split over worker processes (said when the pipeline is built); None when it can
    why_serial: str | None = None


@dataclass(frozen=True)
class FileSource:
    kind: str  # "tfrecord" or "images"
    files: tuple
    labels: tuple = ()
    class_names: tuple = ()
    parse_fn: object = None
    image_size: tuple = (224, 224)


def generator(fn, *, output_signature, size: int | None = None, num_shards: int | None = None) -> GeneratorSource:
    """Wrap a generator function yielding single elements; ``size`` is their number per epoch, if known.

    If fn accepts ``shard`` and ``num_shards``, pipeline() runs one shard per
    worker process (shard k yields elements k, k + num_shards, ...); otherwise
    it runs in this process, under the GIL, and says so.
    """
    if not callable(fn):
        raise UsageError(f"generator() needs a generator function, got {type(fn).__name__}; pass the function, not its result")
    params = inspect.signature(fn).parameters
    shardable = "shard" in params and "num_shards" in params
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise UsageError(f"size={size!r} is not valid: give the number of elements per epoch, or None if unknown")
    why = None if shardable else (
        f"the generator {getattr(fn, '__name__', fn)!r} takes no shard/num_shards arguments, so it runs in one process under "
        "the GIL; add them (yield every num_shards-th element starting at shard) to run it in parallel")
    return GeneratorSource(fn=fn, output_signature=output_signature, shardable=shardable, num_shards=num_shards, size=size, why_serial=why)


SOURCES = "numpy arrays, a tuple or dict of them, a tf.data.Dataset, redline.data.generator(...), a keras.utils.PyDataset or files"


def _arrays_length(source) -> int:
    import tensorflow as tf

    if source is None:
        raise UsageError(f"source=None: give the data to read: {SOURCES}")
    if isinstance(source, list):
        raise UsageError(f"the source is a Python list of {len(source)} item(s): give np.asarray(your_list) for one array, "
                         "or a tuple (x, y) of arrays for features and labels")
    leaves = tf.nest.flatten(source)
    if not leaves:
        raise UsageError(f"the source holds no arrays; give {SOURCES}")
    scalars = [p for p, x in _named_leaves(source) if np.ndim(x) == 0]
    if scalars:
        raise UsageError(f"{scalars[0]} is a scalar ({type(dict(_named_leaves(source))[scalars[0]]).__name__}), which has no rows; "
                         "give arrays with one row per element")
    paths = [p for p, _ in _named_leaves(source)]
    lengths = [len(np.asarray(x)) if np.ndim(x) else 0 for x in leaves]
    if len(set(lengths)) != 1:
        shown = ", ".join(f"{p} has {n}" for p, n in zip(paths, lengths))
        raise UsageError(f"mismatched array lengths: {shown} rows; every array needs one row per element (fix the arrays; nothing is trimmed)")
    if lengths[0] == 0:
        raise UsageError(f"the arrays have no rows ({paths[0]} has shape {np.shape(leaves[0])}); give at least one element")
    return lengths[0]


def _named_leaves(obj, prefix="source"):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _named_leaves(v, f"{prefix}[{k!r}]")
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            yield from _named_leaves(v, f"{prefix}[{i}]")
    else:
        yield prefix, obj


def _cardinality(ds):
    import tensorflow as tf

    c = int(ds.cardinality())
    if c == tf.data.INFINITE_CARDINALITY:
        raise UsageError("the dataset is infinite (it repeats already): pass the dataset before .repeat(); redline repeats it per epoch itself")
    return None if c < 0 else c


def _is_py_dataset(source) -> bool:
    try:
        import keras
    except ImportError:
        return False
    return isinstance(source, keras.utils.PyDataset)


def _map(ds, fn, parallel, deterministic, n, in_order=None):
    from .errors import guard_map

    return guard_map(ds, fn, parallel, deterministic, n, in_order=in_order)


def _array_rows(source, n, shuffle, seed, parallel, deterministic, batch_size, drop_remainder, then=None):
    """(dataset, batched): rows gathered from in-memory arrays by (shuffled) index.

    With batch_size, whole batches of indices are gathered at once: one op per
    batch instead of one per element. ``then`` is fused into the same parallel
    map as the gather, so no sequential stage sits in front of it.
    """
    import tensorflow as tf

    from .errors import _call

    tensors = tf.nest.map_structure(tf.constant, source)
    index = tf.data.Dataset.range(n)
    if shuffle:
        index = index.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    take = lambda i: tf.nest.map_structure(lambda t: tf.gather(t, i), tensors)  # noqa: E731
    if batch_size:
        index = index.batch(batch_size, drop_remainder=drop_remainder)
        return index.map(take, num_parallel_calls=parallel, deterministic=deterministic), True
    if then is not None:
        return index.map(lambda i: _call(then, take(i)), num_parallel_calls=parallel, deterministic=deterministic), False
    return index.map(take), False


def _py_dataset_elements(py_ds, shard=0, num_shards=1):
    """The single elements of a keras.utils.PyDataset's batches, batch by batch, for one shard of its batches."""
    for i in range(shard, len(py_ds), num_shards):
        batch = py_ds[i]
        batch = batch if isinstance(batch, tuple) else (batch,)
        for j in range(len(batch[0])):
            yield tuple(np.asarray(b[j]) for b in batch)


def _py_dataset_source(py_ds) -> GeneratorSource:
    import functools
    import pickle

    import tensorflow as tf

    if len(py_ds) == 0:
        raise UsageError("the PyDataset is empty: its __len__ is 0")
    first, last = py_ds[0], py_ds[len(py_ds) - 1]
    first = first if isinstance(first, tuple) else (first,)
    last = last if isinstance(last, tuple) else (last,)
    spec = tuple(tf.TensorSpec(np.asarray(b).shape[1:], tf.as_dtype(np.asarray(b).dtype)) for b in first)
    size = (len(py_ds) - 1) * len(first[0]) + len(last[0])
    fn = functools.partial(_py_dataset_elements, py_ds)
    try:
        pickle.dumps(py_ds)
    except Exception as exc:  # whatever stops pickling, the dataset stays in this process
        why = (f"the PyDataset cannot be sent to worker processes ({type(exc).__name__}: {exc}); it runs in this process under "
               "the GIL: define its class at module level and keep its state picklable to run it in parallel")
        return GeneratorSource(fn=lambda: fn(shard=0, num_shards=1), output_signature=spec, shardable=False, size=size, why_serial=why)
    return GeneratorSource(fn=fn, output_signature=spec, shardable=True, size=size)


def _generator_dataset(src: GeneratorSource, plan, batch_size, notes):
    import tensorflow as tf

    from .workers import ShardedGenerator, start_mode

    spec = src.output_signature
    workers = src.num_shards or plan.data_threadpool.value
    why = src.why_serial
    if src.shardable and workers > 1:
        mode, why = start_mode(src.fn)
        if mode is not None:
            chunk = max(1, min(batch_size, 256))
            batched_spec = tf.nest.map_structure(lambda s: tf.TensorSpec((None, *s.shape), s.dtype), spec)
            gen = ShardedGenerator(src.fn, workers, chunk, mode)
            return tf.data.Dataset.from_generator(gen, output_signature=batched_spec).unbatch(), gen
    if why:
        notes.append(why)
    fn = src.fn
    return tf.data.Dataset.from_generator(lambda: fn(shard=0, num_shards=1) if src.shardable else fn(), output_signature=spec), None


def _file_dataset(src: FileSource, map_fn, parallel, deterministic):
    import tensorflow as tf

    from .errors import guard_map

    n_files = len(src.files)
    if src.kind == "tfrecord":
        files = tf.data.Dataset.from_tensor_slices(list(src.files))
        ds = files.interleave(tf.data.TFRecordDataset, cycle_length=max(1, min(parallel, n_files)),
                              num_parallel_calls=parallel, deterministic=deterministic)
        if src.parse_fn is not None:
            ds = ds.map(src.parse_fn, num_parallel_calls=parallel, deterministic=deterministic)
        if map_fn is not None:
            ds = ds.map(map_fn, num_parallel_calls=parallel, deterministic=deterministic)
        return ds, None
    size = src.image_size

    def load(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(tf.image.convert_image_dtype(image, tf.float32), size)
        return image, label

    ds = tf.data.Dataset.from_tensor_slices((list(src.files), list(src.labels)))
    ds = guard_map(ds, load, parallel, deterministic, n_files, names=src.files)
    if map_fn is not None:
        ds = ds.map(map_fn, num_parallel_calls=parallel, deterministic=deterministic)
    return ds, n_files


def read(source, map_fn, plan, batch_size, parallel, deterministic, notes):
    """(kind, elements or None, dataset of single elements with map_fn applied or None for plain arrays,
    the ShardedGenerator whose worker processes feed it, or None)."""
    import tensorflow as tf

    if isinstance(source, tf.data.Dataset):
        n = _cardinality(source)
        return "dataset", n, (_map(source, map_fn, parallel, deterministic, n) if map_fn else source), None
    if isinstance(source, GeneratorSource) or _is_py_dataset(source):
        kind = "generator" if isinstance(source, GeneratorSource) else "pydataset"
        gen = source if kind == "generator" else _py_dataset_source(source)
        ds, workers = _generator_dataset(gen, plan, batch_size, notes)
        return kind, gen.size, (_map(ds, map_fn, parallel, deterministic, gen.size) if map_fn else ds), workers
    if isinstance(source, FileSource):
        ds, n = _file_dataset(source, map_fn, parallel, deterministic)
        return source.kind, n, ds, None
    if isinstance(source, (str, os.PathLike)):
        raise UsageError(f"source={str(source)!r} is a path: wrap it as redline.data.tfrecord(pattern, parse_fn) or "
                         "redline.data.image_folder(path)")
    return "arrays", _arrays_length(source), None, None

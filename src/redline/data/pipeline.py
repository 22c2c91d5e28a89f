"""redline.data.pipeline(): tf.data input pipelines built for throughput from the plan.

Order of stages: source -> map_fn (parallel) -> cache (if it fits the budget)
-> shuffle -> augment (parallel) -> batch -> batch_map_fn -> repeat ->
prefetch, on a private thread pool sized by the plan, built on the CPU.
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from .budget import Decision, cache_decision, shuffle_buffer

ARRAY_TYPES = (np.ndarray,)


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


@dataclass
class PipelineInfo:
    """What pipeline() built and why; attached to the dataset as ``ds.redline``."""

    source: str
    elements: int | None
    batch_size: int
    steps_per_epoch: int | None
    repeat: bool
    cache: Decision
    shuffle_buffer: int | None
    parallel_calls: int
    prefetch: int
    threadpool: int
    ram_budget_bytes: int | None
    deterministic: bool
    workers: int = 0
    notes: list = field(default_factory=list)

    def fit_kwargs(self) -> dict:
        """Arguments for model.fit that go with this pipeline."""
        return {"steps_per_epoch": self.steps_per_epoch} if self.repeat and self.steps_per_epoch else {}


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


def _arrays_length(source) -> int:
    import tensorflow as tf

    leaves = tf.nest.flatten(source)
    if not leaves:
        raise UsageError("the source holds no arrays; give numpy arrays, a tuple or dict of them, a tf.data.Dataset, a generator or files")
    paths = [p for p, _ in _named_leaves(source)]
    lengths = [len(np.asarray(x)) if np.ndim(x) else 0 for x in leaves]
    if len(set(lengths)) != 1:
        shown = ", ".join(f"{p} has {n}" for p, n in zip(paths, lengths))
        raise UsageError(f"mismatched array lengths: {shown} rows; every array needs one row per element (fix the arrays; nothing is trimmed)")
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


def _element_bytes(spec) -> int | None:
    import tensorflow as tf

    total = 0
    for s in tf.nest.flatten(spec):
        if not s.shape.is_fully_defined():
            return None
        total += int(np.prod(s.shape.as_list() or [1])) * s.dtype.size
    return total


def _resolve_plan(plan):
    if plan is not None:
        return plan
    from ..detection import detect
    from ..planning import plan as make_plan

    return make_plan(detect())


def _validate(batch_size, cache, memory_budget):
    if batch_size is None or isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise UsageError(f"batch_size={batch_size!r} is not valid: give a whole number of samples of 1 or more, e.g. batch_size=32")
    if cache not in ("auto", True, False):
        raise UsageError(f"cache={cache!r} is not valid: use 'auto' (when it fits the memory budget), True or False")
    if memory_budget is not None and (isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget <= 0):
        raise UsageError(f"memory_budget={memory_budget!r} is not valid: give bytes as a positive integer, or None for the plan's budget")


def pipeline(source, map_fn=None, *, batch_size, augment=None, batch_map_fn=None, shuffle=True, cache="auto",
             drop_remainder=False, deterministic=False, repeat=True, seed=None, plan=None, memory_budget=None,
             prefetch_to_device=None):
    """A tf.data.Dataset ready for ``model.fit(ds, **ds.redline.fit_kwargs())``.

    source: numpy arrays (or a tuple/dict of them), a tf.data.Dataset of
    single elements, generator(fn, ...), or files from tfrecord() /
    image_folder(). map_fn is deterministic preprocessing (cached when it fits
    the memory budget); augment is random per-element work after the cache;
    batch_map_fn is vectorised work on whole batches. Every element appears
    once per epoch; deterministic=True fixes the order (seed defaults to 0).
    """
    import tensorflow as tf

    _validate(batch_size, cache, memory_budget)
    plan = _resolve_plan(plan)
    budget = memory_budget if memory_budget is not None else _budget()
    parallel = plan.data_parallel_calls.value
    if deterministic and seed is None:
        seed = 0
    notes, workers, batched = [], 0, False

    with tf.device("/cpu:0"):
        if isinstance(source, tf.data.Dataset):
            kind, n = "dataset", _cardinality(source)
            ds = _map(source, map_fn, parallel, deterministic, n) if map_fn else source
        elif isinstance(source, GeneratorSource):
            kind, n = "generator", source.size
            ds, workers = _generator_dataset(source, plan, batch_size, notes)
            ds = _map(ds, map_fn, parallel, deterministic, n) if map_fn else ds
        elif _is_py_dataset(source):
            kind = "pydataset"
            gen_source = _py_dataset_source(source)
            n = gen_source.size
            ds, workers = _generator_dataset(gen_source, plan, batch_size, notes)
            ds = _map(ds, map_fn, parallel, deterministic, n) if map_fn else ds
        elif isinstance(source, FileSource):
            kind = source.kind
            ds, n = _file_dataset(source, map_fn, parallel, deterministic)
        elif isinstance(source, (str, os.PathLike)):
            raise UsageError(f"source={str(source)!r} is a path: wrap it as redline.data.tfrecord(pattern, parse_fn) or "
                             "redline.data.image_folder(path)")
        else:
            kind = "arrays"
            n = _arrays_length(source)
            ds = None

        augmented = False
        if kind == "arrays" and map_fn is None:
            decision = Decision(False, "nothing expensive to cache: the arrays are already in memory and map_fn is None")
            ds, batched = _array_rows(source, n, shuffle, seed, parallel, deterministic,
                                      batch_size if augment is None else None, drop_remainder, then=augment)
            augmented = augment is not None
        else:
            if kind == "arrays":
                in_order = _array_rows(source, n, False, seed, parallel, deterministic, None, False)[0]
                ds = _map(in_order, map_fn, parallel, deterministic, n)
            decision = cache_decision(cache, n, _element_bytes(ds.element_spec), budget,
                                      has_map=map_fn is not None or kind in ("tfrecord", "images"))
            if kind == "arrays" and shuffle and not decision.used:
                # shuffle indices (8 bytes an element) rather than mapped elements
                rows = _array_rows(source, n, True, seed, parallel, deterministic, None, False)[0]
                ds = _map(rows, map_fn, parallel, deterministic, n, in_order=in_order)
        if decision.used:
            ds = ds.cache()

        buffer = None
        if kind == "arrays" and not decision.used:
            buffer = n if shuffle else None  # a full permutation of the indices
        elif shuffle:
            buffer = shuffle_buffer(n, _element_bytes(ds.element_spec), budget, batch_size)
            ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            if n and buffer < n:
                notes.append(f"shuffle buffer of {buffer} elements, below the {n} elements, to stay within the memory budget")
        if augment is not None and not augmented:
            ds = ds.map(augment, num_parallel_calls=parallel, deterministic=deterministic)
        if not batched:
            ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=parallel, deterministic=deterministic)
        if batch_map_fn is not None:
            ds = ds.map(batch_map_fn, num_parallel_calls=parallel, deterministic=deterministic)
        steps = None
        if n is not None:
            steps = n // batch_size if drop_remainder else -(-n // batch_size)
            if drop_remainder and n % batch_size:
                notes.append(f"drop_remainder=True drops {n % batch_size} of {n} elements each epoch (different ones each epoch when shuffled)")
        elif repeat:
            notes.append("the number of elements is unknown: give fit() steps_per_epoch yourself, or use repeat=False")
        if repeat:
            ds = ds.repeat()
        prefetch = plan.data_prefetch.value
        if prefetch_to_device is None:
            prefetch_to_device = plan.strategy.value == "one-gpu"
        if prefetch_to_device and tf.config.list_logical_devices("GPU"):
            ds = ds.apply(tf.data.experimental.prefetch_to_device("/gpu:0", buffer_size=prefetch))
        else:
            ds = ds.prefetch(prefetch)
        ds = ds.with_options(_options(plan, budget, deterministic))

    for note in notes:
        warnings.warn(f"redline.data: {note}", stacklevel=2)
    ds.redline = PipelineInfo(source=kind, elements=n, batch_size=batch_size, steps_per_epoch=steps, repeat=repeat,
                              cache=decision, shuffle_buffer=buffer, parallel_calls=parallel, prefetch=prefetch,
                              threadpool=plan.data_threadpool.value, ram_budget_bytes=budget, deterministic=deterministic,
                              workers=workers, notes=notes)
    return ds


def _budget():
    from ..detection import detect

    b = detect().memory.budget_bytes
    return b if isinstance(b, int) else None


def _options(plan, budget, deterministic):
    import tensorflow as tf

    o = tf.data.Options()
    o.threading.private_threadpool_size = plan.data_threadpool.value
    o.threading.max_intra_op_parallelism = 1  # one thread per input op: the model's pool keeps the cores
    o.deterministic = bool(deterministic)
    o.autotune.enabled = False  # explicit sizes from the plan; its optimisation thread causes the epoch-start stall
    if budget:
        o.autotune.ram_budget = int(budget)
    o.experimental_optimization.map_and_batch_fusion = True
    o.experimental_optimization.map_parallelization = True
    o.experimental_optimization.parallel_batch = True
    return o


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

    from .workers import ShardedGenerator

    spec = src.output_signature
    workers = src.num_shards or plan.data_threadpool.value
    if src.shardable and workers > 1:
        chunk = max(1, min(batch_size, 256))
        batched_spec = tf.nest.map_structure(lambda s: tf.TensorSpec((None, *s.shape), s.dtype), spec)
        ds = tf.data.Dataset.from_generator(ShardedGenerator(src.fn, workers, chunk), output_signature=batched_spec)
        return ds.unbatch(), workers
    if src.why_serial:
        notes.append(src.why_serial)
    fn = src.fn
    return tf.data.Dataset.from_generator(lambda: fn(shard=0, num_shards=1) if src.shardable else fn(), output_signature=spec), 0


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

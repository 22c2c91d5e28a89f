"""redline.data.pipeline(): tf.data input pipelines built for throughput from the plan.

Order of stages: source -> map_fn (parallel) -> cache (if it fits the budget)
-> shuffle -> augment (parallel) -> batch -> batch_map_fn -> repeat ->
prefetch, on a private thread pool sized by the plan, built on the CPU.
"""

from __future__ import annotations

import warnings
import weakref
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError
from .budget import Decision, cache_decision, shuffle_buffer
from .sources import FileSource, GeneratorSource, _array_rows, _map, generator, read  # noqa: F401  (generator: re-exported)


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
    _feeder: object = field(default=None, repr=False, compare=False)

    def close(self) -> None:
        """Stop the pipeline's worker processes now (a generator or PyDataset source); nothing to do otherwise.
        They also stop when the dataset is garbage-collected and when this process exits."""
        if self._feeder is not None:
            self._feeder.close()

    @property
    def workers_alive(self) -> int:
        return self._feeder.alive if self._feeder is not None else 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def fit_kwargs(self) -> dict:
        """Arguments for model.fit that go with this pipeline."""
        return {"steps_per_epoch": self.steps_per_epoch} if self.repeat and self.steps_per_epoch else {}


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
             prefetch_to_device=None, service=None):
    """A tf.data.Dataset ready for ``model.fit(ds, **ds.redline.fit_kwargs())``.

    source: numpy arrays (or a tuple/dict of them), a tf.data.Dataset of
    single elements, generator(fn, ...), or files from tfrecord() /
    image_folder(). map_fn is deterministic preprocessing (cached when it fits
    the memory budget); augment is random per-element work after the cache;
    batch_map_fn is vectorised work on whole batches. Every element appears
    once per epoch; deterministic=True fixes the order (seed defaults to 0).
    service="grpc://HOST:PORT": the stages before the prefetch run on a tf.data
    service (`redline data-service dispatcher|worker`); each service worker
    produces its own stream of the pipeline ("parallel_epochs").
    """
    import tensorflow as tf

    _validate(batch_size, cache, memory_budget)
    plan = _resolve_plan(plan)
    budget = memory_budget if memory_budget is not None else _budget()
    parallel = plan.data_parallel_calls.value
    if deterministic and seed is None:
        seed = 0
    notes, batched = [], False

    with tf.device("/cpu:0"):
        kind, n, ds, feeder = read(source, map_fn, plan, batch_size, parallel, deterministic, notes)

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
        if service is not None:
            if feeder is not None:
                raise UsageError(f"service={service!r}: a Python generator source cannot run on the tf.data service (its "
                                 "workers have no access to this process's Python); keep service=None for it")
            from .service import distribute

            ds = distribute(ds, service)
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
                              workers=feeder.num_shards if feeder else 0, notes=notes, _feeder=feeder)
    if feeder is not None:  # the workers end with the dataset: collected, closed, or at exit
        weakref.finalize(ds, feeder.close)
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

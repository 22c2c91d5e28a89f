"""Input pipelines for the bench: the naive one tutorials write, and the one the plan calls for."""

from __future__ import annotations


def naive(workload, x, y, batch_size):
    """What the usual tutorial writes: shuffle, a sequential map, batch; no prefetch; finite."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x))
    if workload.augment is not None:
        ds = ds.map(workload.augment)
    return ds.batch(batch_size)


def planned(workload, x, y, batch_size, plan):
    """Endless, shuffled per epoch, parallel map sized by the plan, prefetched, on a private pool.

    Indices are shuffled and the arrays gathered a batch at a time, as Keras
    does for arrays; repeat() with steps_per_epoch avoids building a new
    iterator, and its start-up stall, at every epoch.
    """
    import tensorflow as tf

    n = len(x)
    xs, ys = tf.constant(x), tf.constant(y)
    parallel = plan.data_parallel_calls.value
    ds = tf.data.Dataset.range(n).shuffle(n, reshuffle_each_iteration=True).repeat()
    if workload.augment is not None:
        aug = workload.augment
        ds = ds.map(lambda i: aug(tf.gather(xs, i), tf.gather(ys, i)), num_parallel_calls=parallel, deterministic=False)
        ds = ds.batch(batch_size, drop_remainder=True)
    else:
        ds = ds.batch(batch_size, drop_remainder=True)
        ds = ds.map(lambda i: (tf.gather(xs, i), tf.gather(ys, i)), num_parallel_calls=parallel, deterministic=False)
    ds = ds.prefetch(plan.data_prefetch.value)
    options = tf.data.Options()
    options.threading.private_threadpool_size = plan.data_threadpool.value
    options.autotune.enabled = False  # sizes are explicit; its optimisation thread causes the epoch-start stall
    return ds.with_options(options)

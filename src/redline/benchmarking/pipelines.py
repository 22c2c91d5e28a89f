"""The bench's reference pipelines: the naive ones tutorials write, and the no-input-cost ceiling.

redline's own pipelines come from redline.data."""

from __future__ import annotations


def naive(workload, x, y, batch_size):
    """What the usual tutorial writes: shuffle, a sequential map, batch; no prefetch; finite."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x))
    if workload.augment is not None:
        ds = ds.map(workload.augment)
    return ds.batch(batch_size)


def naive_generator(gen, output_signature, batch_size):
    """What the usual tutorial writes for a Python generator: from_generator, batch."""
    import tensorflow as tf

    return tf.data.Dataset.from_generator(gen, output_signature=output_signature).batch(batch_size)


def pre_augmented(workload, x, y):
    """The workload's images augmented once, as an array: the ceiling where input costs nothing."""
    import numpy as np
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(workload.augment, num_parallel_calls=tf.data.AUTOTUNE).batch(256)
    return np.concatenate([images.numpy() for images, _ in ds])

"""generator: a Python generator doing per-sample numpy feature work (GIL-bound) feeding a small MLP. Input-bound."""

import numpy as np

from .base import Workload, training_flops

FEATURES = 64
SAMPLES = 4096
LAYERS = [(FEATURES * 64, False), (64 * 10, True)]


def samples(shard=0, num_shards=1, n=SAMPLES, seed=0):
    """Deterministic samples; shard k of num_shards yields elements k, k+num_shards, ..."""
    for i in range(shard, n, num_shards):
        rng = np.random.default_rng(seed * 1_000_003 + i)
        img = rng.random((16, 16), dtype=np.float32)
        feats = [
            img.mean(axis=0),
            img.std(axis=0),
            np.sort(img, axis=1)[:, -1],
            np.abs(np.fft.rfft(img.ravel()))[:16].astype(np.float32),
        ]
        yield np.concatenate(feats).astype(np.float32), np.int32(int(img[0, 0] * 10) % 10)


def output_signature():
    import tensorflow as tf

    return (tf.TensorSpec((FEATURES,), tf.float32), tf.TensorSpec((), tf.int32))


def build_model():
    import keras

    return keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])


WORKLOAD = Workload(
    name="generator", description="Python generator with per-sample numpy features into a 64-64-10 MLP, batch 64",
    bound="input", batch_size=64, samples=SAMPLES, flops_per_sample=training_flops(LAYERS), build_model=build_model,
    make_data=None, generator=samples, output_signature=output_signature,
    loss="sparse_categorical_crossentropy_logits",
)

"""mlp: the classic 784-128-10 classifier at batch 32. Dispatch-bound: tiny steps, many of them."""

import numpy as np

from .base import Workload, training_flops

LAYERS = [(784 * 128, False), (128 * 10, True)]


def build_model():
    import keras

    return keras.Sequential([
        keras.Input((784,)),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10),
    ])


def make_data(seed=0, samples=32768):
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 784), dtype=np.float32)
    y = x[:, :10].argmax(axis=1).astype(np.int32)
    return x, y


WORKLOAD = Workload(
    name="mlp", description="784-128-10 MLP, batch 32", bound="dispatch", batch_size=32, samples=16384,
    flops_per_sample=training_flops(LAYERS), build_model=build_model,
    make_data=lambda seed=0: make_data(seed, 16384),
    loss="sparse_categorical_crossentropy_logits",
)

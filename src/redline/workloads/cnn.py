"""cnn: two Conv2D layers, a pool and a dense layer on 28x28x1 at batch 128. Compute-bound."""

import numpy as np

from .base import Workload, conv_macs, training_flops

LAYERS = [
    (conv_macs(26, 26, 32, 3, 3, 1), False),
    (conv_macs(24, 24, 64, 3, 3, 32), True),
    (12 * 12 * 64 * 10, True),
]


def build_model():
    import keras

    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def make_data(seed=0, samples=2048):
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 28, 28, 1), dtype=np.float32)
    y = (x[:, :2, :5, 0].reshape(samples, 10).argmax(axis=1)).astype(np.int32)
    return x, y


WORKLOAD = Workload(
    name="cnn", description="2xConv2D + pool + dense on 28x28x1, batch 128", bound="compute", batch_size=128,
    samples=1024, flops_per_sample=training_flops(LAYERS), build_model=build_model,
    make_data=lambda seed=0: make_data(seed, 1024),
    loss="sparse_categorical_crossentropy_logits",
)

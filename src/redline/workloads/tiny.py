"""tiny: a 16-32-1 tabular regressor at batch 16. Overhead-bound: the step is almost all framework."""

import numpy as np

from .base import Workload, training_flops

LAYERS = [(16 * 32, False), (32 * 1, True)]


def build_model():
    import keras

    return keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])


def make_data(seed=0, samples=8192):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, 16), dtype=np.float32)
    y = (x[:, :4].sum(axis=1, keepdims=True) + 0.1 * rng.standard_normal((samples, 1))).astype(np.float32)
    return x, y


WORKLOAD = Workload(
    name="tiny", description="16-32-1 tabular regressor, batch 16", bound="overhead", batch_size=16,
    samples=8192, flops_per_sample=training_flops(LAYERS), build_model=build_model,
    make_data=lambda seed=0: make_data(seed, 8192), loss="mse",
)

"""embed: an embedding + average-pooling text classifier on token ids. Memory-bound: gathers, few FLOPs."""

import numpy as np

from .base import Workload, training_flops

VOCAB, SEQ, DIM = 20000, 64, 32
# The embedding is trainable, so both dense layers need input gradients.
LAYERS = [(DIM * 32, True), (32 * 2, True)]


def build_model():
    import keras

    return keras.Sequential([
        keras.Input((SEQ,), dtype="int32"),
        keras.layers.Embedding(VOCAB, DIM),
        keras.layers.GlobalAveragePooling1D(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(2),
    ])


def make_data(seed=0, samples=16384):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCAB, (samples, SEQ), dtype=np.int32)
    y = (x[:, 0] % 2).astype(np.int32)
    return x, y


WORKLOAD = Workload(
    name="embed", description=f"Embedding({VOCAB}, {DIM}) + pooling on {SEQ} tokens, batch 64", bound="memory",
    batch_size=64, samples=16384, flops_per_sample=training_flops(LAYERS), build_model=build_model,
    make_data=lambda seed=0: make_data(seed, 16384),
    loss="sparse_categorical_crossentropy_logits",
)

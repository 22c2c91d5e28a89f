# A Python generator with numpy preprocessing per batch, fed straight to fit, as tutorials do.
import numpy as np
import keras

rng = np.random.default_rng(4)
features = rng.normal(size=(8000, 20)).astype("float32")
targets = (features @ rng.normal(size=20) > 0).astype("float32")


def batches(batch_size=64):
    while True:
        order = rng.permutation(len(features))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[i:i + batch_size]
            x = (features[idx] - features.mean(axis=0)) / features.std(axis=0)  # per-batch numpy work
            yield x, targets[idx]


model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy")
model.fit(batches(), steps_per_epoch=125, epochs=3)

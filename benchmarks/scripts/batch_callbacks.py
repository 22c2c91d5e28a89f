# A classifier with the per-batch callbacks of the "writing your own callbacks" guide and the FAQ: a loss history
# recorded every batch, and a learning-rate warm-up set by hand at each batch's start for the first 500 batches.
import numpy as np
import keras


class LossHistory(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.losses = []

    def on_batch_end(self, batch, logs=None):
        self.losses.append(logs.get("loss"))


class WarmUp(keras.callbacks.Callback):
    def __init__(self, target, steps):
        super().__init__()
        self.target, self.steps, self.seen = target, steps, 0

    def on_train_batch_begin(self, batch, logs=None):
        if self.seen < self.steps:
            self.model.optimizer.learning_rate.assign(self.target * (self.seen + 1) / self.steps)
        self.seen += 1


rng = np.random.default_rng(11)
x = rng.normal(size=(32000, 40)).astype("float32")
y = (x[:, :5].sum(axis=1) + 0.3 * rng.normal(size=32000) > 0).astype("float32")
model = keras.Sequential([keras.Input((40,)), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
history, warm = LossHistory(), WarmUp(1e-3, 500)
model.fit(x, y, batch_size=32, epochs=6, validation_split=0.1, callbacks=[history, warm], verbose=2)
print("losses recorded:", len(history.losses), "warm-up calls:", warm.seen)

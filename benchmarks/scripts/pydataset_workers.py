# A keras.utils.PyDataset with worker processes, as the Keras 3 guide's arguments allow: workers=2,
# use_multiprocessing=True, batches made in numpy (a noise augmentation and a feature transform), an MLP.
import math

import numpy as np
import keras


class Features(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        lo = idx * self.batch_size
        xb = self.x[lo:lo + self.batch_size]
        noise = np.random.default_rng(idx).normal(scale=0.05, size=xb.shape)
        xb = np.concatenate([xb + noise, np.tanh(xb), xb ** 2], axis=1).astype("float32")
        return xb, self.y[lo:lo + self.batch_size]


rng = np.random.default_rng(4)
x = rng.normal(size=(24000, 32)).astype("float32")
y = (np.sin(x[:, 0]) + x[:, 1] * x[:, 2] > 0).astype("float32")
train = Features(x[:20000], y[:20000], 64, workers=2, use_multiprocessing=True)
val = Features(x[20000:], y[20000:], 256, workers=2, use_multiprocessing=True)
model = keras.Sequential([keras.Input((96,)), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(train, validation_data=val, epochs=5, verbose=2)
print("done", model.evaluate(val, verbose=0))

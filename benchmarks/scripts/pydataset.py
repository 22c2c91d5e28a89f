# A keras.utils.PyDataset as the Keras 3 guide writes one: batches made in Python (a random crop and flip in numpy),
# a small convnet, validation on a second PyDataset, and a checkpoint of the best model.
import math
import numpy as np
import keras


class Images(keras.utils.PyDataset):
    def __init__(self, x, y, batch_size, augment=False, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size, self.augment = x, y, batch_size, augment
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, idx):
        lo = idx * self.batch_size
        xb = self.x[lo:lo + self.batch_size]
        yb = self.y[lo:lo + self.batch_size]
        if self.augment:
            flip = self.rng.random(len(xb)) < 0.5
            xb = np.where(flip[:, None, None, None], xb[:, :, ::-1, :], xb)
            dx, dy = self.rng.integers(0, 5, size=2)
            xb = np.pad(xb, ((0, 0), (2, 2), (2, 2), (0, 0)))[:, dy:dy + 32, dx:dx + 32, :]
        return xb.astype("float32") / 255.0, yb


rng = np.random.default_rng(1)
x = rng.integers(0, 256, size=(6000, 32, 32, 3), dtype=np.uint8)
y = rng.integers(0, 10, size=(6000,))
train = Images(x[:5000], y[:5000], batch_size=64, augment=True)
val = Images(x[5000:], y[5000:], batch_size=128)

model = keras.Sequential([
    keras.Input((32, 32, 3)),
    keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Flatten(),
    keras.layers.Dense(128, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(train, validation_data=val, epochs=4,
          callbacks=[keras.callbacks.ModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True)])
print("done")

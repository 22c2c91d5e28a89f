# A tabular classifier written for reproducible results, as the "reproducibility" sections write it (data made
# synthetic): one seed for Python, NumPy and the backend, deterministic ops, a fit with validation and early stopping.
import numpy as np
import tensorflow as tf
import keras
from keras import layers

keras.utils.set_random_seed(42)
tf.config.experimental.enable_op_determinism()

rng = np.random.default_rng(42)
x = rng.normal(size=(60000, 40)).astype("float32")
w = rng.normal(size=(40, 1)).astype("float32")
y = (x @ w + 0.5 * rng.normal(size=(60000, 1)) > 0).astype("float32")

model = keras.Sequential([
    keras.Input(shape=(40,)),
    layers.Dense(256, activation="relu"),
    layers.BatchNormalization(),
    layers.Dropout(0.3),
    layers.Dense(256, activation="relu"),
    layers.Dropout(0.3),
    layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
early = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
model.fit(x, y, batch_size=256, epochs=8, validation_split=0.2, callbacks=[early], verbose=2)
print("accuracy", model.evaluate(x, y, verbose=0)[1])

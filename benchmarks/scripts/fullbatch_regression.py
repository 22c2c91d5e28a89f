# A small-data regression trained full-batch for many epochs, as small-data and physics-informed tutorials write it:
# one step an epoch (batch_size=len(x)), validation data every epoch, verbose=0, the history read at the end.
import numpy as np
import keras
from keras import layers

rng = np.random.default_rng(0)
x = rng.normal(size=(506, 13)).astype("float32")
y = (x @ rng.normal(size=(13, 1)) + 0.5 * np.sin(x[:, :1] * 3)).astype("float32")
x_val, y_val = x[400:], y[400:]
x, y = x[:400], y[:400]

model = keras.Sequential([
    keras.Input(shape=(13,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
history = model.fit(x, y, batch_size=len(x), epochs=600, validation_data=(x_val, y_val), verbose=0)
print("final val_mae", history.history["val_mae"][-1])

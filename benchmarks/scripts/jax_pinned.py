"""A regression MLP as tutorials write it for JAX: the backend pinned with os.environ before keras is imported,
numpy arrays standardised by hand, batch 32, validation_split, EarlyStopping that restores the best weights, a
ReduceLROnPlateau, verbose=2, then an evaluate on held-out data and a few predictions printed. Synthetic data in the
shape of California housing (8 features, 20,640 rows)."""

import os

os.environ["KERAS_BACKEND"] = "jax"

import keras  # noqa: E402
import numpy as np  # noqa: E402

rng = np.random.default_rng(42)
n = 20640
x = rng.normal(size=(n, 8)).astype("float32")
w = rng.normal(size=(8,))
y = (x @ w + 0.5 * np.sin(3 * x[:, 0]) + 0.3 * x[:, 1] * x[:, 2] + rng.normal(scale=0.2, size=n)).astype("float32")

split = int(0.8 * n)
x_train, x_test, y_train, y_test = x[:split], x[split:], y[:split], y[split:]
mean, std = x_train.mean(axis=0), x_train.std(axis=0)
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std

model = keras.Sequential([
    keras.Input(shape=(8,)),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(64, activation="relu"),
    keras.layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])

callbacks = [
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
    keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2),
]
history = model.fit(x_train, y_train, batch_size=32, epochs=20, validation_split=0.2, callbacks=callbacks, verbose=2)

loss, mae = model.evaluate(x_test, y_test, verbose=0)
print(f"test mse {loss:.4f}, mae {mae:.4f}")
print("predictions:", model.predict(x_test[:5], verbose=0).ravel().round(2), "targets:", y_test[:5].round(2))

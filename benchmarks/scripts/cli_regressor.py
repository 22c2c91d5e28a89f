"""Train a regressor from the command line, as project templates write it (synthetic data): argparse, a main() under
the `__main__` guard, `from tensorflow import keras`, tf.data with a whole-set shuffle and a per-element map,
Normalization.adapt, EarlyStopping and CSVLogger, evaluate, then the model and its metrics saved under --out."""
import argparse
import json
import os

import numpy as np
import tensorflow as tf
from tensorflow import keras


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", default="artifacts")
    return p.parse_args()


def make_data(n=24000, d=12, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32") * rng.uniform(0.5, 20, size=d).astype("float32")
    w = rng.normal(size=(d,)).astype("float32")
    y = (np.tanh(x / 10) @ w + 0.1 * rng.normal(size=n)).astype("float32")
    return x, y


def pipeline(x, y, batch_size, training):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=1)
    ds = ds.map(lambda a, b: (tf.math.log1p(tf.abs(a)) * tf.sign(a), b))
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build(norm):
    inputs = keras.Input((12,))
    h = norm(inputs)
    for units in (256, 256, 128):
        h = keras.layers.Dense(units, activation="relu")(h)
        h = keras.layers.Dropout(0.1)(h)
    out = keras.layers.Dense(1)(h)
    model = keras.Model(inputs, out)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    return model


def main(args):
    keras.utils.set_random_seed(7)
    x, y = make_data()
    split = int(0.8 * len(x))
    train = pipeline(x[:split], y[:split], args.batch_size, True)
    val = pipeline(x[split:], y[split:], args.batch_size, False)
    norm = keras.layers.Normalization()
    norm.adapt(train.map(lambda a, b: a))
    model = build(norm)
    os.makedirs(args.out, exist_ok=True)
    history = model.fit(train, validation_data=val, epochs=args.epochs, verbose=2,
                        callbacks=[keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
                                   keras.callbacks.CSVLogger(os.path.join(args.out, "log.csv"))])
    loss, mae = model.evaluate(val, verbose=0)
    model.save(os.path.join(args.out, "model.keras"))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump({"val_loss": loss, "val_mae": mae, "epochs": len(history.history["loss"])}, f)
    print(f"val mae {mae:.4f}")


if __name__ == "__main__":
    main(parse())

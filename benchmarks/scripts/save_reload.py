# A regression MLP as a command-line tutorial writes it: argparse with defaults, a Normalization layer adapted to the
# data, validation_split and the progress bar, then the model saved, loaded back and evaluated.
import argparse
import os
import tempfile

import numpy as np
import keras

parser = argparse.ArgumentParser(description="train a small regression model")
parser.add_argument("--epochs", type=int, default=100)
parser.add_argument("--batch-size", type=int, default=32)
parser.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "regressor.keras"))
args = parser.parse_args()

keras.utils.set_random_seed(1)
rng = np.random.default_rng(0)
x = rng.random((8000, 12)).astype("float32")
y = (x @ rng.random(12) + 0.1 * rng.random(8000)).astype("float32")

inputs = keras.Input((x.shape[1],))
norm = keras.layers.Normalization()
norm.adapt(x)
z = norm(inputs)
for units in (128, 64):
    z = keras.layers.Dense(units, activation="relu")(z)
model = keras.Model(inputs, keras.layers.Dense(1)(z))
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, validation_split=0.2, verbose=1)

model.save(args.out)
restored = keras.models.load_model(args.out)
print("restored model: loss and mae", restored.evaluate(x, y, verbose=0))

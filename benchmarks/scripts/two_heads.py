# A functional model with two outputs (a class and a value), losses and weights per output, sample weights,
# validation_split, and the script's own mixed precision policy, as the multi-output guides write it.
import argparse
import numpy as np
import keras
from keras import layers

parser = argparse.ArgumentParser()
parser.add_argument("--epochs", type=int, default=5)
args = parser.parse_args()

keras.mixed_precision.set_global_policy("mixed_bfloat16")
rng = np.random.default_rng(1)
x = rng.normal(size=(8000, 64)).astype("float32")
y_class = (x[:, 0] > 0).astype("int32")
y_value = x[:, 1:3].sum(axis=1, keepdims=True).astype("float32")
weights = rng.uniform(0.5, 1.5, size=(8000,)).astype("float32")

inputs = keras.Input((64,), name="features")
h = layers.Dense(128, activation="relu")(inputs)
h = layers.Dropout(0.2)(h)
h = layers.Dense(64, activation="relu")(h)
cls = layers.Dense(2, activation="softmax", name="cls", dtype="float32")(h)
val = layers.Dense(1, name="val", dtype="float32")(h)
model = keras.Model(inputs, {"cls": cls, "val": val})
model.compile(optimizer="adam",
              loss={"cls": "sparse_categorical_crossentropy", "val": "mse"},
              loss_weights={"cls": 1.0, "val": 0.5},
              metrics={"cls": ["accuracy"], "val": ["mae"]})
model.fit(x, {"cls": y_class, "val": y_value}, sample_weight=weights, validation_split=0.1, batch_size=32,
          epochs=args.epochs, shuffle=True, verbose=2)
print("done", model.evaluate(x, {"cls": y_class, "val": y_value}, verbose=0, return_dict=True))

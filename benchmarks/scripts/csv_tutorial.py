# TensorFlow's "Load CSV data" tutorial: tf.data.experimental.make_csv_dataset over a CSV file (written here first
# where it is missing, in the working folder), a map that stacks the columns, and a model saved at the end.
import os
import numpy as np
import tensorflow as tf
import keras

if not os.path.exists("abalone.csv"):
    rng = np.random.default_rng(0)
    x = rng.random((20000, 7)).astype("float32")
    age = x @ np.arange(1, 8, dtype="float32") + rng.normal(0, 0.1, 20000)
    with open("abalone.csv", "w") as f:
        f.write("length,diameter,height,whole,shucked,viscera,shell,age\n")
        for row, a in zip(x, age):
            f.write(",".join(f"{v:.4f}" for v in row) + f",{a:.3f}\n")

ds = tf.data.experimental.make_csv_dataset("abalone.csv", batch_size=64, label_name="age", num_epochs=1,
                                           shuffle=True)
ds = ds.map(lambda feats, label: (tf.stack(list(feats.values()), axis=1), label))

model = keras.Sequential([keras.Input((7,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(ds, epochs=10, verbose=2)
model.save("abalone.keras")

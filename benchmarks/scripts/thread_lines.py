# As the thread-tuning articles write it: the backend pinned, thread pools sized to "physical cores" copied from
# another machine (16), numpy arrays into fit with validation_split and verbose=2.
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf

physical_cores = 16  # Replace with your actual core count
tf.config.threading.set_intra_op_parallelism_threads(physical_cores)
tf.config.threading.set_inter_op_parallelism_threads(physical_cores)
print(f"Intra-op threads: {tf.config.threading.get_intra_op_parallelism_threads()}")

import keras
from keras import layers

rng = np.random.default_rng(0)
x = rng.normal(size=(12000, 64)).astype("float32")
y = (x[:, :8].sum(axis=1) > 0).astype("float32")
model = keras.Sequential([keras.Input((64,)), layers.Dense(256, activation="relu"), layers.Dense(256, activation="relu"),
                          layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=64, epochs=4, validation_split=0.1, verbose=2)

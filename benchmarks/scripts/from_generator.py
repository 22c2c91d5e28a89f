# A Python generator wrapped in tf.data.Dataset.from_generator (its length unknown to tf.data), batched and prefetched,
# as the guides show for data that does not fit in memory; an MLP, validation arrays, verbose=2.
import numpy as np
import tensorflow as tf
import keras

rng = np.random.default_rng(0)
W = rng.normal(size=(32, 1)).astype("float32")


def samples():
    g = np.random.default_rng(1)
    for _ in range(6144):
        x = g.normal(size=(32,)).astype("float32")
        yield x, np.float32(x @ W[:, 0] > 0)


ds = tf.data.Dataset.from_generator(samples, output_signature=(tf.TensorSpec((32,), tf.float32),
                                                               tf.TensorSpec((), tf.float32)))
ds = ds.batch(64).prefetch(tf.data.AUTOTUNE)
xv = rng.normal(size=(1024, 32)).astype("float32")
yv = (xv @ W[:, 0] > 0).astype("float32")

model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(ds, validation_data=(xv, yv), epochs=5, verbose=2)

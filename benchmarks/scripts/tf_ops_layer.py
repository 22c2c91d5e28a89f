# A model whose custom layer calls tf.* ops directly, as many TensorFlow-era tutorials write it.
import numpy as np
import tensorflow as tf
import keras

rng = np.random.default_rng(5)
x = rng.normal(size=(10000, 32)).astype("float32")
y = (np.abs(x).sum(axis=1) > 25).astype("float32")


class LogScale(keras.layers.Layer):
    def call(self, inputs):
        return tf.math.log1p(tf.abs(inputs)) * tf.sign(inputs)


model = keras.Sequential([keras.Input((32,)), LogScale(), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=64, epochs=3)

"""Small training scripts the tests run as users' scripts."""

#: a model whose layer calls tf.* ops itself: runs on TensorFlow only
TF_OPS = """
import numpy as np, tensorflow as tf, keras
class Log(keras.layers.Layer):
    def call(self, x):
        return tf.math.log1p(tf.abs(x))
x = np.ones((256, 4), "float32"); y = np.ones((256, 1), "float32")
model = keras.Sequential([keras.Input((4,)), Log(), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
"""

# A classifier left with run_eagerly=True from a debugging session, as the "debugging a Keras model" guides advise
# while a step is being inspected (the print in the custom layer only shows with it).
import numpy as np
import keras
from keras import layers


class Scale(layers.Layer):
    def call(self, x):
        return x * 0.5


rng = np.random.default_rng(3)
x = rng.normal(size=(12000, 48)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype("int32")
model = keras.Sequential([keras.Input((48,)), layers.Dense(128, activation="relu"), Scale(),
                          layers.Dense(64, activation="relu"), layers.Dense(2, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"], run_eagerly=True)
model.fit(x, y, batch_size=64, epochs=4, validation_split=0.1, verbose=2)
print("eval", model.evaluate(x[:2000], y[:2000], verbose=0))

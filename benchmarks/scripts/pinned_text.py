# A text classifier as keras.io examples write it: the backend pinned in the script before keras is imported,
# token ids in numpy arrays, validation data, an EarlyStopping callback.
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import keras
from keras import layers

vocab, length = 20000, 200
rng = np.random.default_rng(2)
x_train = rng.integers(1, vocab, size=(12000, length))
y_train = (x_train[:, :20].mean(axis=1) > vocab / 2).astype("int32")
x_val = rng.integers(1, vocab, size=(2000, length))
y_val = (x_val[:, :20].mean(axis=1) > vocab / 2).astype("int32")

inputs = keras.Input(shape=(None,), dtype="int64")
h = layers.Embedding(vocab, 64)(inputs)
h = layers.Dropout(0.5)(h)
h = layers.Conv1D(64, 7, padding="valid", activation="relu", strides=3)(h)
h = layers.Conv1D(64, 7, padding="valid", activation="relu", strides=3)(h)
h = layers.GlobalMaxPooling1D()(h)
h = layers.Dense(64, activation="relu")(h)
outputs = layers.Dense(1, activation="sigmoid", name="predictions")(h)
model = keras.Model(inputs, outputs)
model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=4, batch_size=64,
          callbacks=[keras.callbacks.EarlyStopping(patience=3)])

# An LSTM text classifier on integer token sequences, as a tutorial writes it.
import numpy as np
import keras
from keras import layers

vocab, length = 5000, 64
rng = np.random.default_rng(1)
x = rng.integers(1, vocab, size=(4000, length))
y = (x[:, :8].mean(axis=1) > vocab / 2).astype("int32")

model = keras.Sequential([
    keras.Input((length,), dtype="int32"),
    layers.Embedding(vocab, 32),
    layers.LSTM(32),
    layers.Dense(1, activation="sigmoid"),
])
model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=32, epochs=3, validation_split=0.1)

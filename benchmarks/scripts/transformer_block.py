# One transformer encoder block over token sequences, from keras layers, as the Keras examples build it.
import numpy as np
import keras
from keras import layers

vocab, length, dim = 2000, 32, 32
rng = np.random.default_rng(3)
x = rng.integers(0, vocab, size=(4000, length))
y = rng.integers(0, 2, size=4000)

inputs = keras.Input((length,))
h = layers.Embedding(vocab, dim)(inputs)
attn = layers.MultiHeadAttention(num_heads=2, key_dim=dim)(h, h)
h = layers.LayerNormalization()(h + attn)
ff = layers.Dense(dim * 2, activation="relu")(h)
h = layers.LayerNormalization()(h + layers.Dense(dim)(ff))
h = layers.GlobalAveragePooling1D()(h)
outputs = layers.Dense(2, activation="softmax")(h)
model = keras.Model(inputs, outputs)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=32, epochs=3)

# Text classification with the TextVectorization layer inside the model (strings in, as keras.io's end-to-end
# example exports it): tf.data of string tensors, validation data, verbose=2. JAX cannot take the strings.
import numpy as np
import tensorflow as tf
import keras
from keras import layers

rng = np.random.default_rng(0)
words = np.array([f"w{i}" for i in range(3000)])
good, bad = set(words[:200]), set(words[200:400])
texts, labels = [], []
for _ in range(20000):
    sent = rng.choice(words, rng.integers(5, 30))
    texts.append(" ".join(sent))
    labels.append(float(sum(w in good for w in sent) > sum(w in bad for w in sent)))
texts, labels = np.array(texts), np.array(labels, dtype="float32")

vectorize = layers.TextVectorization(max_tokens=3000, output_mode="int", output_sequence_length=32)
vectorize.adapt(texts)

inputs = keras.Input(shape=(1,), dtype="string")
x = vectorize(inputs)
x = layers.Embedding(3000, 32)(x)
x = layers.GlobalAveragePooling1D()(x)
x = layers.Dense(32, activation="relu")(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, outputs)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
train_ds = tf.data.Dataset.from_tensor_slices((texts[:18000, None], labels[:18000])).shuffle(18000).batch(32)
val_ds = tf.data.Dataset.from_tensor_slices((texts[18000:, None], labels[18000:])).batch(32)
model.fit(train_ds, epochs=4, validation_data=val_ds, verbose=2)
print(model.predict(tf.constant([["w1 w2 w3"]]), verbose=0))

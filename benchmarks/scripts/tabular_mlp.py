# A small tabular MLP, as a tutorial writes it: numpy arrays straight into fit, a small batch.
import numpy as np
import keras

rng = np.random.default_rng(0)
x = rng.normal(size=(20000, 16)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype("float32")

model = keras.Sequential([
    keras.Input((16,)),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(32, activation="relu"),
    keras.layers.Dense(1, activation="sigmoid"),
])
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(x, y, batch_size=16, epochs=3, verbose=2)
print("final accuracy", model.evaluate(x, y, verbose=0)[1])

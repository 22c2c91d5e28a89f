# A small convnet on 28x28 digits, as the published "simple MNIST convnet" example writes it (data made synthetic):
# two conv blocks, dropout, batch 128, a validation split.
import numpy as np
import keras
from keras import layers

rng = np.random.default_rng(5)
x_train = rng.random((20000, 28, 28, 1)).astype("float32")
y_train = keras.utils.to_categorical(rng.integers(0, 10, size=20000), 10)

model = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
    layers.MaxPooling2D(pool_size=(2, 2)),
    layers.Flatten(),
    layers.Dropout(0.5),
    layers.Dense(10, activation="softmax"),
])
model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=128, epochs=4, validation_split=0.1)

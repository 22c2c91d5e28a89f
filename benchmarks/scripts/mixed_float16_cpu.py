# A small CIFAR-10-style convnet written as GPU tutorials write it (data made synthetic): mixed precision switched on
# with one line after the imports, the last activation kept in float32, validation data, `verbose=2`. On a CPU,
# which has no float16 arithmetic, that line costs most of the run: `redline tune` measures float32 (and the
# CPU's native mixed policy, where it has one) against it and shows the gain as advice; the line stays the script's.
import numpy as np
import keras
from keras import layers

keras.mixed_precision.set_global_policy("mixed_float16")

num_classes = 10
rng = np.random.default_rng(0)
x_train = rng.random((6000, 32, 32, 3), dtype="float32")
y_train = rng.integers(0, num_classes, 6000)
x_test = rng.random((1000, 32, 32, 3), dtype="float32")
y_test = rng.integers(0, num_classes, 1000)

model = keras.Sequential([
    keras.Input(shape=(32, 32, 3)),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.Conv2D(32, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"),
    layers.Conv2D(64, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dense(256, activation="relu"),
    layers.Dropout(0.5),
    layers.Dense(num_classes),
    layers.Activation("softmax", dtype="float32"),
])
model.summary()
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
history = model.fit(x_train, y_train, batch_size=64, epochs=4, validation_data=(x_test, y_test), verbose=2)
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0], "Test accuracy:", score[1])

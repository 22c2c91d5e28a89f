# A tf.data pipeline as the guides write it (cache, shuffle, batch, prefetch AUTOTUNE), the backend pinned, TensorBoard,
# CSVLogger, a learning-rate schedule and EarlyStopping, validation on its own dataset, the model saved after fit.
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
import keras

keras.utils.set_random_seed(42)
n = 6000
x = np.random.rand(n, 28, 28, 1).astype("float32")
y = np.random.randint(0, 10, size=(n,))
train = tf.data.Dataset.from_tensor_slices((x[:5000], y[:5000])).cache().shuffle(5000).batch(64).prefetch(tf.data.AUTOTUNE)
val = tf.data.Dataset.from_tensor_slices((x[5000:], y[5000:])).batch(64).prefetch(tf.data.AUTOTUNE)

model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(32, 3, activation="relu"),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
callbacks = [
    keras.callbacks.TensorBoard(log_dir="logs/fit"),
    keras.callbacks.CSVLogger("training.csv"),
    keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.9),
    keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
]
history = model.fit(train, validation_data=val, epochs=6, callbacks=callbacks)
model.save("model.keras")
print("val accuracy", history.history["val_accuracy"][-1])

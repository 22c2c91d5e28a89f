# An older tutorial's image classifier, written against tf.keras: ImageDataGenerator.flow feeds numpy images with
# augmentation, a small CNN, ModelCheckpoint on val_accuracy, a CSVLogger.
import numpy as np
import tensorflow as tf
from tensorflow.keras.preprocessing.image import ImageDataGenerator

rng = np.random.default_rng(3)
x = rng.random((3000, 32, 32, 3)).astype("float32")
y = tf.keras.utils.to_categorical((x[:, :16, :, 0].mean(axis=(1, 2)) > x[:, 16:, :, 0].mean(axis=(1, 2))).astype(int), 2)
x_train, x_val, y_train, y_val = x[:2500], x[2500:], y[:2500], y[2500:]

datagen = ImageDataGenerator(rotation_range=10, width_shift_range=0.1, horizontal_flip=True)
model = tf.keras.Sequential([
    tf.keras.layers.Input((32, 32, 3)),
    tf.keras.layers.Conv2D(32, 3, activation="relu"), tf.keras.layers.MaxPooling2D(),
    tf.keras.layers.Conv2D(64, 3, activation="relu"), tf.keras.layers.MaxPooling2D(),
    tf.keras.layers.Flatten(), tf.keras.layers.Dense(64, activation="relu"), tf.keras.layers.Dense(2, activation="softmax"),
])
model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
callbacks = [tf.keras.callbacks.ModelCheckpoint("best.keras", monitor="val_accuracy", save_best_only=True),
             tf.keras.callbacks.CSVLogger("training.csv")]
model.fit(datagen.flow(x_train, y_train, batch_size=32), epochs=3, validation_data=(x_val, y_val),
          callbacks=callbacks)
print("val accuracy", model.evaluate(x_val, y_val, verbose=0)[1])

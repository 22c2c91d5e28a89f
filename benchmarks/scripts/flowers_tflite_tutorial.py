# TensorFlow's "Image classification" tutorial (flowers), as written there: JPEG folders read with
# image_dataset_from_directory (a seeded validation split), cache/shuffle/prefetch, an augmentation Sequential and a
# Rescaling layer in the model, a small convnet with dropout, fit with validation data, a prediction on one image
# with tf.nn.softmax, then the tutorial's TensorFlow Lite step: the model converted with TFLiteConverter, written to
# model.tflite and run through the TFLite interpreter's signature runner. The download (flower_photos) is replaced by
# synthetic photos written once; images 96x96 instead of 180x180 keep the run short on 2 cores.
import os

import numpy as np
import tensorflow as tf
from tensorflow import keras
from tensorflow.keras import layers
from tensorflow.keras.models import Sequential

data_dir = os.path.join("data", "flower_photos")
if not os.path.exists(data_dir):
    rng = np.random.default_rng(0)
    for k, name in enumerate(["daisy", "dandelion", "roses", "sunflowers", "tulips"]):
        os.makedirs(os.path.join(data_dir, name))
        for i in range(120):
            img = rng.integers(0, 256, size=(110, 130, 3), dtype=np.uint8)
            img[:, :, k % 3] //= 2 + k // 3  # a colour cast per class
            tf.io.write_file(os.path.join(data_dir, name, f"{i}.jpg"), tf.io.encode_jpeg(img))

batch_size = 32
img_height = 96
img_width = 96

train_ds = tf.keras.utils.image_dataset_from_directory(
    data_dir, validation_split=0.2, subset="training", seed=123, image_size=(img_height, img_width),
    batch_size=batch_size)
val_ds = tf.keras.utils.image_dataset_from_directory(
    data_dir, validation_split=0.2, subset="validation", seed=123, image_size=(img_height, img_width),
    batch_size=batch_size)
class_names = train_ds.class_names
print(class_names)

AUTOTUNE = tf.data.AUTOTUNE
train_ds = train_ds.cache().shuffle(1000).prefetch(buffer_size=AUTOTUNE)
val_ds = val_ds.cache().prefetch(buffer_size=AUTOTUNE)

num_classes = len(class_names)
data_augmentation = keras.Sequential([
    layers.RandomFlip("horizontal", input_shape=(img_height, img_width, 3)),
    layers.RandomRotation(0.1),
    layers.RandomZoom(0.1),
])

model = Sequential([
    data_augmentation,
    layers.Rescaling(1. / 255),
    layers.Conv2D(16, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Dropout(0.2),
    layers.Flatten(),
    layers.Dense(128, activation="relu"),
    layers.Dense(num_classes, name="outputs"),
])
model.compile(optimizer="adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
              metrics=["accuracy"])
model.summary()

epochs = 8
history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)
acc = history.history["accuracy"]
val_acc = history.history["val_accuracy"]
print("final accuracy", acc[-1], "val", val_acc[-1])

img = tf.io.decode_jpeg(tf.io.read_file(os.path.join(data_dir, "roses", "0.jpg")))
img_array = tf.expand_dims(tf.image.resize(img, (img_height, img_width)), 0)
predictions = model.predict(img_array)
score = tf.nn.softmax(predictions[0])
print("This image most likely belongs to {} with a {:.2f} percent confidence."
      .format(class_names[np.argmax(score)], 100 * np.max(score)))

converter = tf.lite.TFLiteConverter.from_keras_model(model)
tflite_model = converter.convert()
with open("model.tflite", "wb") as f:
    f.write(tflite_model)

interpreter = tf.lite.Interpreter(model_content=tflite_model)
print(interpreter.get_signature_list())
classify_lite = interpreter.get_signature_runner("serving_default")
predictions_lite = classify_lite(**{interpreter.get_signature_list()["serving_default"]["inputs"][0]: img_array})
predictions_lite = next(iter(predictions_lite.values()))
score_lite = tf.nn.softmax(predictions_lite)
print("TFLite: {} with {:.2f} percent confidence".format(class_names[np.argmax(score_lite)], 100 * np.max(score_lite)))
print(np.max(np.abs(predictions - predictions_lite)))

# A small CNN fed by a tf.data pipeline with a random augmentation map, as tutorials write it (no parallel map).
import numpy as np
import tensorflow as tf
import keras
from keras import layers

rng = np.random.default_rng(2)
images = rng.integers(0, 255, size=(3000, 36, 36, 3), dtype=np.uint8)
labels = rng.integers(0, 10, size=3000)


def augment(image, label):
    image = tf.image.random_crop(image, (32, 32, 3))
    image = tf.image.random_flip_left_right(image)
    image = tf.image.random_brightness(tf.cast(image, tf.float32) / 255.0, 0.1)
    return image, label


ds = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(3000).map(augment).batch(64)

model = keras.Sequential([
    keras.Input((32, 32, 3)),
    layers.Conv2D(16, 3, activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(32, 3, activation="relu"),
    layers.GlobalAveragePooling2D(),
    layers.Dense(10),
])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(ds, epochs=3)

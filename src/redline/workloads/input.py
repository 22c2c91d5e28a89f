"""input: a small image model behind a per-image augmentation that costs more than the model. Input-bound."""

import numpy as np

from .base import Workload, conv_macs, training_flops

RAW = (48, 48, 3)
LAYERS = [(conv_macs(16, 16, 16, 3, 3, 3), False), (16 * 10, True)]


def augment(image, label):
    """Random crop, resize, flip and colour jitter: the usual tf.image augmentation."""
    import tensorflow as tf

    x = tf.image.random_crop(image, (40, 40, 3))
    x = tf.image.convert_image_dtype(x, tf.float32)
    x = tf.image.resize(x, (32, 32))
    x = tf.image.random_flip_left_right(x)
    x = tf.image.random_saturation(x, 0.7, 1.3)
    x = tf.image.random_hue(x, 0.05)
    x = tf.image.random_contrast(x, 0.8, 1.2)
    return tf.clip_by_value(x, 0.0, 1.0), label


def build_model():
    import keras

    return keras.Sequential([
        keras.Input((32, 32, 3)),
        keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10),
    ])


def make_data(seed=0, samples=4096):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (samples, *RAW), dtype=np.uint8)
    y = (x[:, 0, :10, 0].argmax(axis=1)).astype(np.int32)
    return x, y


WORKLOAD = Workload(
    name="input", description="augmented 48x48 images into a one-conv model, batch 64", bound="input",
    batch_size=64, samples=4096, flops_per_sample=training_flops(LAYERS), build_model=build_model,
    make_data=lambda seed=0: make_data(seed, 4096), augment=augment,
    loss="sparse_categorical_crossentropy_logits",
)

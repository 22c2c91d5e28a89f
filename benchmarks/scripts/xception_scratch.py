# Image classification from scratch, as the published Keras example writes it: a small Xception-style network
# (separable convolutions, residual blocks, batch norm), augmentation mapped over a tf.data pipeline, a checkpoint
# callback each epoch. Images are 90x90 here and synthetic (no download); batch 128, steps of seconds on a small CPU.
import numpy as np
import tensorflow as tf
import keras
from keras import layers

image_size = (90, 90)
batch_size = 128
rng = np.random.default_rng(5)
images = rng.integers(0, 256, size=(896, *image_size, 3)).astype("float32")
labels = (images[:, :, :45, 0].mean(axis=(1, 2)) > images[:, :, 45:, 0].mean(axis=(1, 2))).astype("float32")
train_ds = tf.data.Dataset.from_tensor_slices((images[:768], labels[:768])).shuffle(768).batch(batch_size)
val_ds = tf.data.Dataset.from_tensor_slices((images[768:], labels[768:])).batch(batch_size)

data_augmentation_layers = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]


def data_augmentation(images):
    for layer in data_augmentation_layers:
        images = layer(images)
    return images


train_ds = train_ds.map(lambda img, label: (data_augmentation(img), label), num_parallel_calls=tf.data.AUTOTUNE)
train_ds = train_ds.prefetch(tf.data.AUTOTUNE)
val_ds = val_ds.prefetch(tf.data.AUTOTUNE)


def make_model(input_shape, num_classes):
    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(128, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for size in [256, 512, 728]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    x = layers.SeparableConv2D(1024, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    units = 1 if num_classes == 2 else num_classes
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(units, activation=None)(x)
    return keras.Model(inputs, outputs)


model = make_model(input_shape=image_size + (3,), num_classes=2)
epochs = 4
callbacks = [keras.callbacks.ModelCheckpoint("save_at_{epoch}.keras")]
model.compile(optimizer=keras.optimizers.Adam(3e-4), loss=keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=[keras.metrics.BinaryAccuracy(name="acc")])
model.fit(train_ds, epochs=epochs, callbacks=callbacks, validation_data=val_ds)

"""Image segmentation with a U-Net-like architecture (after the keras.io example; synthetic shapes instead of the
Oxford pets)."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import keras
from keras import layers

img_size = (96, 96)
num_classes = 3
batch_size = 16


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, size=(n, *img_size, 3)).astype("float32")
    y = np.zeros((n, *img_size, 1), dtype="uint8")
    yy, xx = np.mgrid[: img_size[0], : img_size[1]]
    for i in range(n):
        cy, cx, r = rng.integers(20, 76), rng.integers(20, 76), rng.integers(8, 20)
        disk = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        y[i, ..., 0][disk] = 1
        y[i, ..., 0][(yy - cy) ** 2 + (xx - cx) ** 2 < (r // 2) ** 2] = 2
        x[i][disk] += 0.8
    return x, y


def get_model(img_size, num_classes):
    inputs = keras.Input(shape=img_size + (3,))
    x = layers.Conv2D(32, 3, strides=2, padding="same")(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    previous_block_activation = x
    for filters in [64, 128]:
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, strides=2, padding="same")(previous_block_activation)
        x = layers.add([x, residual])
        previous_block_activation = x
    for filters in [128, 64, 32]:
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.Conv2DTranspose(filters, 3, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.UpSampling2D(2)(x)
        residual = layers.UpSampling2D(2)(previous_block_activation)
        residual = layers.Conv2D(filters, 1, padding="same")(residual)
        x = layers.add([x, residual])
        previous_block_activation = x
    outputs = layers.Conv2D(num_classes, 3, activation="softmax", padding="same")(x)
    return keras.Model(inputs, outputs)


train_x, train_y = make_data(640, 0)
val_x, val_y = make_data(96, 1)
model = get_model(img_size, num_classes)
model.summary()
model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
callbacks = [keras.callbacks.ModelCheckpoint("oxford_segmentation.keras", save_best_only=True)]
epochs = 4
model.fit(train_x, train_y, batch_size=batch_size, epochs=epochs, validation_data=(val_x, val_y),
          callbacks=callbacks, verbose=2)
val_preds = model.predict(val_x[:8])
print("mask classes predicted:", np.unique(np.argmax(val_preds, axis=-1)))

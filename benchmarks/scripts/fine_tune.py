# Transfer learning, then fine-tuning, as the published Keras guide writes it: a MobileNetV2 base frozen under a new
# head for a few epochs, then unfrozen and trained again at a low learning rate for longer. Two fits of one model;
# the second trains longest. tf.data input, validation data, a checkpoint callback. (No download here: the base
# starts from random weights and the images are synthetic.)
import numpy as np
import tensorflow as tf
import keras
from keras import layers

rng = np.random.default_rng(0)
images = rng.random((480, 96, 96, 3), dtype=np.float32) * 255.0
labels = (images[:, :48, :, 0].mean(axis=(1, 2)) > images[:, 48:, :, 0].mean(axis=(1, 2))).astype("float32")
train_ds = tf.data.Dataset.from_tensor_slices((images[:320], labels[:320])).shuffle(320).batch(32).prefetch(tf.data.AUTOTUNE)
validation_ds = tf.data.Dataset.from_tensor_slices((images[320:], labels[320:])).batch(32).prefetch(tf.data.AUTOTUNE)

data_augmentation = keras.Sequential([layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)])
base_model = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None)
base_model.trainable = False

inputs = keras.Input(shape=(96, 96, 3))
x = data_augmentation(inputs)
x = layers.Rescaling(scale=1 / 127.5, offset=-1)(x)
x = base_model(x, training=False)
x = layers.GlobalAveragePooling2D()(x)
x = layers.Dropout(0.2)(x)
outputs = layers.Dense(1)(x)
model = keras.Model(inputs, outputs)

model.compile(optimizer=keras.optimizers.Adam(), loss=keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=[keras.metrics.BinaryAccuracy()])
print("Training the new head")
model.fit(train_ds, epochs=2, validation_data=validation_ds)

base_model.trainable = True
model.compile(optimizer=keras.optimizers.Adam(1e-5), loss=keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=[keras.metrics.BinaryAccuracy()])
print("Fine-tuning the whole model")
checkpoint = keras.callbacks.ModelCheckpoint("fine_tuned.keras", save_best_only=True)
model.fit(train_ds, epochs=8, validation_data=validation_ds, callbacks=[checkpoint])

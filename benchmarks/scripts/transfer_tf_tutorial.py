# TensorFlow's "Transfer learning and fine-tuning" tutorial, as written there: JPEG folders read with
# image_dataset_from_directory, a test split taken off the validation set, prefetch, an augmentation Sequential, the
# MobileNetV2 preprocess_input, a frozen MobileNetV2 base called with training=False, evaluate before training, a
# first fit, then the top of the base unfrozen, a recompile at a tenth of the learning rate, and a second fit that
# goes on from the first (initial_epoch=len(history.epoch)); then evaluate and predict_on_batch with tf.nn.sigmoid.
# The download (cats_and_dogs_filtered) is replaced by synthetic photos written once, and the base starts from random
# weights (weights=None: no ImageNet download). The tutorial's 160x160 images and full MobileNetV2: steps of about
# half a second or more on 2 cores.
import os

import numpy as np
import tensorflow as tf

PATH = os.path.join("data", "cats_and_dogs_filtered")
if not os.path.exists(PATH):
    rng = np.random.default_rng(0)
    for split, n in (("train", 192), ("validation", 96)):
        for label, name in enumerate(("cats", "dogs")):
            folder = os.path.join(PATH, split, name)
            os.makedirs(folder)
            for i in range(n // 2):
                img = rng.integers(0, 256, size=(180, 200, 3), dtype=np.uint8)
                img[:, :, label] //= 2  # a colour cast per class, so there is something to learn
                tf.io.write_file(os.path.join(folder, f"{name}.{i}.jpg"), tf.io.encode_jpeg(img))

train_dir = os.path.join(PATH, "train")
validation_dir = os.path.join(PATH, "validation")

BATCH_SIZE = 32
IMG_SIZE = (160, 160)

train_dataset = tf.keras.utils.image_dataset_from_directory(train_dir, shuffle=True, batch_size=BATCH_SIZE,
                                                            image_size=IMG_SIZE)
validation_dataset = tf.keras.utils.image_dataset_from_directory(validation_dir, shuffle=True,
                                                                 batch_size=BATCH_SIZE, image_size=IMG_SIZE)
class_names = train_dataset.class_names

val_batches = tf.data.experimental.cardinality(validation_dataset)
test_dataset = validation_dataset.take(val_batches // 3)
validation_dataset = validation_dataset.skip(val_batches // 3)
print("Number of validation batches: %d" % tf.data.experimental.cardinality(validation_dataset))
print("Number of test batches: %d" % tf.data.experimental.cardinality(test_dataset))

AUTOTUNE = tf.data.AUTOTUNE
train_dataset = train_dataset.prefetch(buffer_size=AUTOTUNE)
validation_dataset = validation_dataset.prefetch(buffer_size=AUTOTUNE)
test_dataset = test_dataset.prefetch(buffer_size=AUTOTUNE)

data_augmentation = tf.keras.Sequential([
    tf.keras.layers.RandomFlip("horizontal"),
    tf.keras.layers.RandomRotation(0.2),
])
preprocess_input = tf.keras.applications.mobilenet_v2.preprocess_input

IMG_SHAPE = IMG_SIZE + (3,)
base_model = tf.keras.applications.MobileNetV2(input_shape=IMG_SHAPE, include_top=False, weights=None)
image_batch, label_batch = next(iter(train_dataset))
feature_batch = base_model(image_batch)
print(feature_batch.shape)
base_model.trainable = False

global_average_layer = tf.keras.layers.GlobalAveragePooling2D()
prediction_layer = tf.keras.layers.Dense(1, activation="linear")

inputs = tf.keras.Input(shape=IMG_SHAPE)
x = data_augmentation(inputs)
x = preprocess_input(x)
x = base_model(x, training=False)
x = global_average_layer(x)
x = tf.keras.layers.Dropout(0.2)(x)
outputs = prediction_layer(x)
model = tf.keras.Model(inputs, outputs)

base_learning_rate = 0.0001
model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=base_learning_rate),
              loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
              metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0, name="accuracy")])

initial_epochs = 3
loss0, accuracy0 = model.evaluate(validation_dataset)
print("initial loss: {:.2f}".format(loss0))
print("initial accuracy: {:.2f}".format(accuracy0))

history = model.fit(train_dataset, epochs=initial_epochs, validation_data=validation_dataset)

base_model.trainable = True
print("Number of layers in the base model: ", len(base_model.layers))
fine_tune_at = 100
for layer in base_model.layers[:fine_tune_at]:
    layer.trainable = False

model.compile(loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
              optimizer=tf.keras.optimizers.RMSprop(learning_rate=base_learning_rate / 10),
              metrics=[tf.keras.metrics.BinaryAccuracy(threshold=0, name="accuracy")])
print(len(model.trainable_variables))

fine_tune_epochs = 5
total_epochs = initial_epochs + fine_tune_epochs
history_fine = model.fit(train_dataset, epochs=total_epochs, initial_epoch=len(history.epoch),
                         validation_data=validation_dataset)

loss, accuracy = model.evaluate(test_dataset)
print("Test accuracy :", accuracy)

image_batch, label_batch = test_dataset.as_numpy_iterator().next()
predictions = model.predict_on_batch(image_batch).flatten()
predictions = tf.nn.sigmoid(predictions)
predictions = tf.where(predictions < 0.5, 0, 1)
print("Predictions:\n", predictions.numpy())
print("Labels:\n", label_batch)

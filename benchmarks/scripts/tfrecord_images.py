# Images stored as TFRecord shards, read back as the "load TFRecords efficiently" tutorials write it: a command line
# (argparse) for the epochs, batch size and folder; shards written once if missing; TFRecordDataset with parallel
# reads, parse_single_example + decode_png in a parallel map, shuffle, batch, prefetch(AUTOTUNE); a small convnet;
# EarlyStopping with restore_best_weights, a CSV log, then evaluate.
import argparse
import os

import numpy as np
import tensorflow as tf
import keras

parser = argparse.ArgumentParser(description="Train a convnet on images stored as TFRecords")
parser.add_argument("--epochs", type=int, default=6)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--data-dir", default="tfrecords")
args = parser.parse_args()

AUTOTUNE = tf.data.AUTOTUNE
IMAGE = 64


def serialize(image, label):
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[tf.io.encode_png(image).numpy()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


os.makedirs(args.data_dir, exist_ok=True)
rng = np.random.default_rng(0)
for shard in range(8):
    path = os.path.join(args.data_dir, f"shard-{shard:02d}.tfrec")
    if os.path.exists(path):
        continue
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(400):
            label = int(rng.integers(10))
            image = rng.integers(0, 120, size=(IMAGE, IMAGE, 3)).astype("uint8") + np.uint8(label * 12)
            writer.write(serialize(image, label))

features = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.int64)}


def parse(record):
    example = tf.io.parse_single_example(record, features)
    image = tf.io.decode_png(example["image"], channels=3)
    image = tf.cast(image, tf.float32) / 255.0
    return image, example["label"]


def augment(image, label):
    image = tf.image.random_flip_left_right(image)
    image = tf.image.random_brightness(image, 0.1)
    return image, label


def load(files, training):
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=AUTOTUNE)
    ds = ds.map(parse, num_parallel_calls=AUTOTUNE)
    if training:
        ds = ds.shuffle(2048).map(augment, num_parallel_calls=AUTOTUNE)
    return ds.batch(args.batch_size).prefetch(AUTOTUNE)


files = sorted(tf.io.gfile.glob(os.path.join(args.data_dir, "*.tfrec")))
train_ds, val_ds = load(files[:7], True), load(files[7:], False)

model = keras.Sequential([
    keras.Input((IMAGE, IMAGE, 3)),
    keras.layers.Conv2D(32, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(64, 3, activation="relu"),
    keras.layers.MaxPooling2D(),
    keras.layers.Conv2D(128, 3, activation="relu"),
    keras.layers.GlobalAveragePooling2D(),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
callbacks = [keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True),
             keras.callbacks.CSVLogger("training_log.csv")]
model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, callbacks=callbacks)
loss, acc = model.evaluate(val_ds)
print(f"validation accuracy {acc:.3f}")

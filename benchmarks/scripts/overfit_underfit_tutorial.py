# TensorFlow's "Overfit and underfit" tutorial, as written there, shortened: the Higgs CSV read with
# tf.data.experimental.CsvDataset (GZIP), rows packed in batches of 10,000 then unbatched, a validation split taken
# and cached, a shuffled, repeated, batched training pipeline with steps_per_epoch, an InverseTimeDecay schedule, and
# compile_and_fit() for each model: a Tiny, Small, Medium and Large network, then L2, dropout and both, each with its
# own callbacks (the tutorial's EpochDots, EarlyStopping on val_binary_crossentropy, TensorBoard into a temporary
# folder), verbose=0. Seven fits of seven models. The download (HIGGS.csv.gz) is replaced by a synthetic file written
# once, and max_epochs/patience are cut from 10,000/200 to 40/8.
import os
import pathlib
import shutil
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.keras import layers, regularizers

logdir = pathlib.Path(tempfile.mkdtemp()) / "tensorboard_logs"
shutil.rmtree(logdir, ignore_errors=True)

FEATURES = 28
gz = os.path.join("data", "HIGGS.csv.gz")
if not os.path.exists(gz):
    import gzip

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12000, FEATURES)).astype("float32")
    y = (x[:, :4].sum(axis=1) + 0.5 * rng.normal(size=12000) > 0).astype("float32")
    os.makedirs("data", exist_ok=True)
    with gzip.open(gz, "wt") as f:
        for label, row in zip(y, x):
            f.write(",".join([f"{label:.1f}", *(f"{v:.6f}" for v in row)]) + "\n")

ds = tf.data.experimental.CsvDataset(gz, [float(), ] * (FEATURES + 1), compression_type="GZIP")


def pack_row(*row):
    label = row[0][:, tf.newaxis]  # Keras 3's binary cross-entropy wants the label's rank equal to the output's
    features = tf.stack(row[1:], 1)
    return features, label


packed_ds = ds.batch(10000).map(pack_row).unbatch()

N_VALIDATION = int(1e3)
N_TRAIN = int(1e4)
BUFFER_SIZE = int(1e4)
BATCH_SIZE = 500
STEPS_PER_EPOCH = N_TRAIN // BATCH_SIZE

validate_ds = packed_ds.take(N_VALIDATION).cache()
train_ds = packed_ds.skip(N_VALIDATION).take(N_TRAIN).cache()
validate_ds = validate_ds.batch(BATCH_SIZE)
train_ds = train_ds.shuffle(BUFFER_SIZE).repeat().batch(BATCH_SIZE)

lr_schedule = tf.keras.optimizers.schedules.InverseTimeDecay(
    0.001, decay_steps=STEPS_PER_EPOCH * 1000, decay_rate=1, staircase=False)


def get_optimizer():
    return tf.keras.optimizers.Adam(lr_schedule)


class EpochDots(tf.keras.callbacks.Callback):
    """tensorflow_docs.modeling.EpochDots: a dot per epoch, a report every 100."""

    def __init__(self, report_every=100, dot_every=1):
        super().__init__()
        self.report_every, self.dot_every = report_every, dot_every

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.report_every == 0:
            print()
            print("Epoch: {:d}, ".format(epoch), end="")
            for name, value in sorted((logs or {}).items()):
                print("{}:{:0.4f}".format(name, value), end=",  ")
            print()
        if epoch % self.dot_every == 0:
            print(".", end="", flush=True)


def get_callbacks(name):
    return [
        EpochDots(),
        tf.keras.callbacks.EarlyStopping(monitor="val_binary_crossentropy", patience=8),
        tf.keras.callbacks.TensorBoard(logdir / name),
    ]


def compile_and_fit(model, name, optimizer=None, max_epochs=40):
    if optimizer is None:
        optimizer = get_optimizer()
    model.compile(optimizer=optimizer,
                  loss=tf.keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[tf.keras.metrics.BinaryCrossentropy(from_logits=True, name="binary_crossentropy"),
                           "accuracy"])
    model.summary()
    history = model.fit(train_ds, steps_per_epoch=STEPS_PER_EPOCH, epochs=max_epochs, validation_data=validate_ds,
                        callbacks=get_callbacks(name), verbose=0)
    return history


size_histories = {}
tiny_model = tf.keras.Sequential([layers.Dense(16, activation="elu", input_shape=(FEATURES,)), layers.Dense(1)])
size_histories["Tiny"] = compile_and_fit(tiny_model, "sizes/Tiny")

small_model = tf.keras.Sequential([
    layers.Dense(16, activation="elu", input_shape=(FEATURES,)),
    layers.Dense(16, activation="elu"),
    layers.Dense(1),
])
size_histories["Small"] = compile_and_fit(small_model, "sizes/Small")

medium_model = tf.keras.Sequential([
    layers.Dense(64, activation="elu", input_shape=(FEATURES,)),
    layers.Dense(64, activation="elu"),
    layers.Dense(64, activation="elu"),
    layers.Dense(1),
])
size_histories["Medium"] = compile_and_fit(medium_model, "sizes/Medium")

large_model = tf.keras.Sequential([
    layers.Dense(512, activation="elu", input_shape=(FEATURES,)),
    layers.Dense(512, activation="elu"),
    layers.Dense(512, activation="elu"),
    layers.Dense(512, activation="elu"),
    layers.Dense(1),
])
size_histories["large"] = compile_and_fit(large_model, "sizes/large")

shutil.rmtree(logdir / "regularizers/Tiny", ignore_errors=True)
shutil.copytree(logdir / "sizes/Tiny", logdir / "regularizers/Tiny")
regularizer_histories = {"Tiny": size_histories["Tiny"]}

l2_model = tf.keras.Sequential([
    layers.Dense(512, activation="elu", kernel_regularizer=regularizers.l2(0.001), input_shape=(FEATURES,)),
    layers.Dense(512, activation="elu", kernel_regularizer=regularizers.l2(0.001)),
    layers.Dense(512, activation="elu", kernel_regularizer=regularizers.l2(0.001)),
    layers.Dense(512, activation="elu", kernel_regularizer=regularizers.l2(0.001)),
    layers.Dense(1),
])
regularizer_histories["l2"] = compile_and_fit(l2_model, "regularizers/l2")

dropout_model = tf.keras.Sequential([
    layers.Dense(512, activation="elu", input_shape=(FEATURES,)),
    layers.Dropout(0.5),
    layers.Dense(512, activation="elu"),
    layers.Dropout(0.5),
    layers.Dense(512, activation="elu"),
    layers.Dropout(0.5),
    layers.Dense(512, activation="elu"),
    layers.Dropout(0.5),
    layers.Dense(1),
])
regularizer_histories["dropout"] = compile_and_fit(dropout_model, "regularizers/dropout")

combined_model = tf.keras.Sequential([
    layers.Dense(512, kernel_regularizer=regularizers.l2(0.0001), activation="elu", input_shape=(FEATURES,)),
    layers.Dropout(0.5),
    layers.Dense(512, kernel_regularizer=regularizers.l2(0.0001), activation="elu"),
    layers.Dropout(0.5),
    layers.Dense(512, kernel_regularizer=regularizers.l2(0.0001), activation="elu"),
    layers.Dropout(0.5),
    layers.Dense(512, kernel_regularizer=regularizers.l2(0.0001), activation="elu"),
    layers.Dropout(0.5),
    layers.Dense(1),
])
regularizer_histories["combined"] = compile_and_fit(combined_model, "regularizers/combined")

for name, h in {**size_histories, **regularizer_histories}.items():
    print(f"{name}: {len(h.epoch)} epochs, val_binary_crossentropy {min(h.history['val_binary_crossentropy']):.4f}")

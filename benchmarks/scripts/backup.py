# Fault-tolerant training as the Keras callbacks guide writes it: BackupAndRestore so an interrupted run resumes,
# a CSV log, EarlyStopping and a ReduceLROnPlateau, tf.data input with a parallel map.
import numpy as np
import tensorflow as tf
import keras

rng = np.random.default_rng(11)
x = rng.normal(size=(20000, 24)).astype("float32")
y = (x[:, :4].sum(axis=1) > 0).astype("int32")

def scale(features, label):
    return tf.math.tanh(features * 0.5), label

ds = tf.data.Dataset.from_tensor_slices((x[:18000], y[:18000])).shuffle(4096).map(scale, num_parallel_calls=tf.data.AUTOTUNE).batch(128).prefetch(tf.data.AUTOTUNE)
val = tf.data.Dataset.from_tensor_slices((x[18000:], y[18000:])).map(scale).batch(128)
model = keras.Sequential([keras.Input((24,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(64, activation="relu"),
                          keras.layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
model.fit(ds, validation_data=val, epochs=5, verbose=2,
          callbacks=[keras.callbacks.BackupAndRestore("backup"), keras.callbacks.CSVLogger("log.csv"),
                     keras.callbacks.EarlyStopping(patience=2), keras.callbacks.ReduceLROnPlateau(patience=1)])

# Multi-device training as the distributed-training guide writes it: build and compile under a
# MirroredStrategy scope, then fit numpy arrays. On a machine with one device it runs one replica.
import numpy as np
import tensorflow as tf
import keras

strategy = tf.distribute.MirroredStrategy()
print(f"Number of devices: {strategy.num_replicas_in_sync}")
with strategy.scope():
    model = keras.Sequential([keras.Input((20,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

rng = np.random.default_rng(4)
x = rng.normal(size=(20000, 20)).astype("float32")
y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 1).astype("int32")
model.fit(x, y, batch_size=64 * strategy.num_replicas_in_sync, epochs=3, validation_split=0.1)
model.save("mirrored.keras")

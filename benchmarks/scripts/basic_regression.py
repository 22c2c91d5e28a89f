# Basic regression as the TensorFlow tutorial writes it (fuel efficiency): a few hundred rows, a Normalization
# layer adapted to the features, 100 epochs of ~8 batches with validation_split=0.2 and verbose=0, the history kept.
import numpy as np
import tensorflow as tf
import keras
from keras import layers

rng = np.random.default_rng(2)
features = (rng.normal(size=(392, 9)).astype("float32") * [1, 100, 50, 1000, 3, 5, 1, 1, 1]
            + [5, 200, 100, 3000, 15, 76, 0, 0, 0])
w = rng.normal(size=(9,)).astype("float32")
labels = ((features - features.mean(0)) / features.std(0)) @ w + 23 + rng.normal(size=392).astype("float32")
train_features, test_features = features[:314], features[314:]
train_labels, test_labels = labels[:314], labels[314:]

normalizer = layers.Normalization(axis=-1)
normalizer.adapt(np.array(train_features))


def build_and_compile_model(norm):
    model = keras.Sequential([norm, layers.Dense(64, activation="relu"), layers.Dense(64, activation="relu"),
                              layers.Dense(1)])
    model.compile(loss="mean_absolute_error", optimizer=tf.keras.optimizers.Adam(0.001))
    return model


dnn_model = build_and_compile_model(normalizer)
history = dnn_model.fit(train_features, train_labels, validation_split=0.2, verbose=0, epochs=100)
print("final val_loss", history.history["val_loss"][-1])
print("test MAE", dnn_model.evaluate(test_features, test_labels, verbose=0))

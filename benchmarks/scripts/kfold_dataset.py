# K-fold cross-validation with a tf.data pipeline per fold, as TensorFlow tutorials build their inputs: a fresh model
# per fold, shuffled batches of 64 (each epoch ends with a smaller batch), prefetch, the fold's validation data.
import numpy as np
import tensorflow as tf
import keras
from keras import layers

rng = np.random.default_rng(5)
features = rng.normal(size=(4000, 20)).astype("float32")
labels = (features[:, :4].sum(axis=1) + rng.normal(size=4000) * 0.3 > 0).astype("int32")


def make_ds(x, y, training):
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x))
    return ds.batch(64).prefetch(tf.data.AUTOTUNE)


def build_model():
    model = keras.Sequential([keras.Input((20,)), layers.Dense(128, activation="relu"), layers.Dropout(0.2),
                              layers.Dense(64, activation="relu"), layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


k = 4
fold = len(features) // k
scores = []
for i in range(k):
    val = slice(i * fold, (i + 1) * fold)
    train_idx = np.r_[0:i * fold, (i + 1) * fold:len(features)]
    train_ds = make_ds(features[train_idx], labels[train_idx], training=True)
    val_ds = make_ds(features[val], labels[val], training=False)
    model = build_model()
    history = model.fit(train_ds, validation_data=val_ds, epochs=10, verbose=0)
    scores.append(history.history["val_accuracy"][-1])
    print(f"fold {i}: val_accuracy {scores[-1]:.3f}")
print("mean val_accuracy", np.mean(scores))

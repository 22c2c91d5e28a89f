# The TensorFlow tutorial "Classification on imbalanced data", shortened: a bias initialized from the class ratio,
# the initial weights saved to a temporary file and loaded before each model trains, a long list of metrics (AUC-PR
# among them), EarlyStopping on val_prc with restore_best_weights, then three fits: the baseline, class weights, and
# an oversampled tf.data pipeline (sample_from_datasets, repeated, steps_per_epoch). The credit-card download is
# replaced by synthetic transactions of the same width.
import os
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow import keras

rng = np.random.default_rng(42)
n, d = 60_000, 29
labels = (rng.random(n) < 0.02).astype("int64")
features = rng.normal(size=(n, d)).astype("float32") + labels[:, None] * rng.normal(0.6, 0.2, size=(1, d))
features = features.astype("float32")
order = rng.permutation(n)
train_features, val_features, test_features = np.split(features[order], [int(0.64 * n), int(0.8 * n)])
train_labels, val_labels, test_labels = np.split(np.expand_dims(labels[order], -1), [int(0.64 * n), int(0.8 * n)])
mean, std = train_features.mean(axis=0), train_features.std(axis=0)
train_features = np.clip((train_features - mean) / std, -5, 5)
val_features = np.clip((val_features - mean) / std, -5, 5)
test_features = np.clip((test_features - mean) / std, -5, 5)
neg, pos = np.bincount(train_labels[:, 0])
print(f"Examples:\n    Total: {neg + pos}\n    Positive: {pos} ({100 * pos / (neg + pos):.2f}% of total)\n")

METRICS = [
    keras.metrics.BinaryCrossentropy(name="cross entropy"),
    keras.metrics.MeanSquaredError(name="Brier score"),
    keras.metrics.TruePositives(name="tp"),
    keras.metrics.FalsePositives(name="fp"),
    keras.metrics.TrueNegatives(name="tn"),
    keras.metrics.FalseNegatives(name="fn"),
    keras.metrics.BinaryAccuracy(name="accuracy"),
    keras.metrics.Precision(name="precision"),
    keras.metrics.Recall(name="recall"),
    keras.metrics.AUC(name="auc"),
    keras.metrics.AUC(name="prc", curve="PR"),
]


def make_model(metrics=METRICS, output_bias=None):
    if output_bias is not None:
        output_bias = keras.initializers.Constant(output_bias)
    model = keras.Sequential([
        keras.Input(shape=(train_features.shape[-1],)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(1, activation="sigmoid", bias_initializer=output_bias),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=keras.losses.BinaryCrossentropy(),
                  metrics=metrics)
    return model


EPOCHS = 8
BATCH_SIZE = 2048
early_stopping = tf.keras.callbacks.EarlyStopping(monitor="val_prc", verbose=1, patience=10, mode="max",
                                                  restore_best_weights=True)

initial_bias = np.log([pos / neg])
model = make_model(output_bias=initial_bias)
model.summary()
results = model.evaluate(train_features, train_labels, batch_size=BATCH_SIZE, verbose=0)
print("Loss: {:0.4f}".format(results[0]))
initial_weights = os.path.join(tempfile.mkdtemp(), "initial.weights.h5")
model.save_weights(initial_weights)

# the baseline
model = make_model()
model.load_weights(initial_weights)
baseline_history = model.fit(train_features, train_labels, batch_size=BATCH_SIZE, epochs=EPOCHS,
                             callbacks=[early_stopping], validation_data=(val_features, val_labels))
baseline_results = model.evaluate(test_features, test_labels, batch_size=BATCH_SIZE, verbose=0)
for name, value in zip(model.metrics_names, baseline_results):
    print(name, ": ", value)

# class weights
weight_for_0 = (1 / neg) * ((neg + pos) / 2.0)
weight_for_1 = (1 / pos) * ((neg + pos) / 2.0)
class_weight = {0: weight_for_0, 1: weight_for_1}
weighted_model = make_model()
weighted_model.load_weights(initial_weights)
weighted_history = weighted_model.fit(train_features, train_labels, batch_size=BATCH_SIZE, epochs=EPOCHS,
                                      callbacks=[early_stopping], validation_data=(val_features, val_labels),
                                      class_weight=class_weight)

# oversampling with tf.data
bool_train_labels = train_labels[:, 0] != 0
pos_features, neg_features = train_features[bool_train_labels], train_features[~bool_train_labels]
pos_labels, neg_labels = train_labels[bool_train_labels], train_labels[~bool_train_labels]
BUFFER_SIZE = 100000


def make_ds(features, labels):
    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    ds = ds.shuffle(BUFFER_SIZE).repeat()
    return ds


pos_ds, neg_ds = make_ds(pos_features, pos_labels), make_ds(neg_features, neg_labels)
resampled_ds = tf.data.Dataset.sample_from_datasets([pos_ds, neg_ds], weights=[0.5, 0.5])
resampled_ds = resampled_ds.batch(BATCH_SIZE).prefetch(2)
resampled_steps_per_epoch = int(np.ceil(2.0 * neg / BATCH_SIZE))
val_ds = tf.data.Dataset.from_tensor_slices((val_features, val_labels)).cache()
val_ds = val_ds.batch(BATCH_SIZE).prefetch(2)
resampled_model = make_model()
resampled_model.load_weights(initial_weights)
output_layer = resampled_model.layers[-1]
output_layer.bias.assign([0])
resampled_history = resampled_model.fit(resampled_ds, epochs=EPOCHS, steps_per_epoch=resampled_steps_per_epoch,
                                        callbacks=[early_stopping], validation_data=val_ds)
resampled_results = resampled_model.evaluate(test_features, test_labels, batch_size=BATCH_SIZE, verbose=0)
for name, value in zip(resampled_model.metrics_names, resampled_results):
    print(name, ": ", value)

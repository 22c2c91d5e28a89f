# K-fold cross-validation as the "Deep Learning with Python" regression example writes it: a fresh model per fold,
# numpy arrays, the fold's validation data, verbose=0, scores collected.
import numpy as np
import keras
from keras import layers

rng = np.random.default_rng(3)
train_data = rng.normal(size=(4000, 13)).astype("float32")
train_targets = (train_data @ rng.normal(size=(13,)) + rng.normal(size=4000) * 0.1).astype("float32")


def build_model():
    model = keras.Sequential([layers.Dense(64, activation="relu"), layers.Dense(64, activation="relu"), layers.Dense(1)])
    model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
    return model


k = 4
num_val_samples = len(train_data) // k
all_scores = []
for i in range(k):
    print(f"Processing fold #{i}")
    val_data = train_data[i * num_val_samples: (i + 1) * num_val_samples]
    val_targets = train_targets[i * num_val_samples: (i + 1) * num_val_samples]
    partial_train_data = np.concatenate([train_data[:i * num_val_samples], train_data[(i + 1) * num_val_samples:]], axis=0)
    partial_train_targets = np.concatenate([train_targets[:i * num_val_samples], train_targets[(i + 1) * num_val_samples:]], axis=0)
    model = build_model()
    model.fit(partial_train_data, partial_train_targets, validation_data=(val_data, val_targets), epochs=8, batch_size=16, verbose=0)
    val_mse, val_mae = model.evaluate(val_data, val_targets, verbose=0)
    all_scores.append(val_mae)
print("mean MAE", np.mean(all_scores))

# Regression on a pandas DataFrame, as the fuel-efficiency tutorial writes it: features and labels popped from a
# DataFrame, a Normalization layer adapted to them, and the DataFrame passed to fit as it is.
import numpy as np
import pandas as pd
import keras
from keras import layers

rng = np.random.default_rng(0)
n = 40000
raw = pd.DataFrame({
    "Cylinders": rng.choice([4, 6, 8], size=n),
    "Displacement": rng.uniform(70, 450, size=n),
    "Horsepower": rng.uniform(45, 230, size=n),
    "Weight": rng.uniform(1600, 5100, size=n),
    "Acceleration": rng.uniform(8, 25, size=n),
    "Model Year": rng.integers(70, 83, size=n),
    "Origin": rng.choice([1, 2, 3], size=n),
})
raw["MPG"] = 60 - raw["Weight"] / 120 - raw["Horsepower"] / 15 + rng.normal(0, 2, size=n)
raw["Origin"] = raw["Origin"].map({1: "USA", 2: "Europe", 3: "Japan"})
dataset = pd.get_dummies(raw, columns=["Origin"], prefix="", prefix_sep="", dtype=float)
train_dataset = dataset.sample(frac=0.8, random_state=0)
test_dataset = dataset.drop(train_dataset.index)
train_features = train_dataset.copy()
test_features = test_dataset.copy()
train_labels = train_features.pop("MPG")
test_labels = test_features.pop("MPG")

normalizer = layers.Normalization(axis=-1)
normalizer.adapt(np.array(train_features))

dnn_model = keras.Sequential([
    normalizer,
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(1),
])
dnn_model.compile(loss="mean_absolute_error", optimizer=keras.optimizers.Adam(0.001))
history = dnn_model.fit(train_features, train_labels, validation_split=0.2, verbose=0, epochs=12)
hist = pd.DataFrame(history.history)
hist["epoch"] = history.epoch
print(hist.tail())
test_results = {"dnn_model": dnn_model.evaluate(test_features, test_labels, verbose=0)}
print(pd.DataFrame(test_results, index=["Mean absolute error [MPG]"]).T)
test_predictions = dnn_model.predict(test_features).flatten()
print(test_predictions[:5])

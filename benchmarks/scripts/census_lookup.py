# Structured data from a pandas DataFrame: numeric columns normalized, string columns through StringLookup, one
# functional model with an input per column, fed through tf.data from the DataFrame's columns as the structured-data
# tutorial does.
import numpy as np
import pandas as pd
import keras
import tensorflow as tf
from keras import layers

rng = np.random.default_rng(3)
n = 30011
df = pd.DataFrame({
    "age": rng.integers(18, 90, size=n).astype("float32"),
    "hours": rng.uniform(5, 80, size=n).astype("float32"),
    "education": rng.choice(["hs", "college", "masters", "phd"], size=n),
    "sector": rng.choice(["private", "public", "self", "none"], size=n),
})
df["target"] = ((df["age"] > 40) & (df["education"] != "hs")).astype("float32")
train = df.sample(frac=0.85, random_state=1)
test = df.drop(train.index)
y_train = train.pop("target")
y_test = test.pop("target")

inputs, encoded = {}, []
for name in ["age", "hours"]:
    inp = keras.Input(shape=(1,), name=name)
    norm = layers.Normalization()
    norm.adapt(train[name].to_numpy().reshape(-1, 1))
    inputs[name] = inp
    encoded.append(norm(inp))
for name in ["education", "sector"]:
    inp = keras.Input(shape=(1,), name=name, dtype="string")
    lookup = layers.StringLookup(output_mode="one_hot")
    lookup.adapt(train[name].to_numpy())
    inputs[name] = inp
    encoded.append(lookup(inp))
x = layers.concatenate(encoded)
x = layers.Dense(64, activation="relu")(x)
x = layers.Dropout(0.2)(x)
out = layers.Dense(1, activation="sigmoid")(x)
model = keras.Model(inputs, out)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])


def df_to_dataset(dataframe, labels, shuffle=True, batch_size=64):
    frame = {key: value.to_numpy()[:, None] for key, value in dataframe.items()}
    ds = tf.data.Dataset.from_tensor_slices((frame, labels.to_numpy()))
    if shuffle:
        ds = ds.shuffle(buffer_size=len(dataframe))
    return ds.batch(batch_size).prefetch(batch_size)


val = train.sample(frac=0.2, random_state=2)
y_val = y_train[val.index]
fit_part = train.drop(val.index)
y_fit = y_train[fit_part.index]
model.fit(df_to_dataset(fit_part, y_fit), epochs=8, validation_data=df_to_dataset(val, y_val, shuffle=False), verbose=2)
print("test", model.evaluate(df_to_dataset(test, y_test, shuffle=False), verbose=0))

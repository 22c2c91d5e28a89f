# Structured data with keras.utils.FeatureSpace, as the published structured-data example writes it: dict features
# (floats normalized, a string and an integer category, a feature cross) adapted on a tf.data pipeline and applied in its
# map, validation data, one line per epoch (verbose=2). Synthetic data (no download).
import numpy as np
import tensorflow as tf
import keras
from keras import layers

n = 30000
rng = np.random.default_rng(0)
data = {
    "age": rng.integers(20, 80, n).astype("float32"),
    "chol": rng.normal(240, 40, n).astype("float32"),
    "thal": rng.choice(["fixed", "normal", "reversible"], n),
    "cp": rng.integers(0, 4, n).astype("int64"),
}
target = ((data["age"] > 50) ^ (data["thal"] == "normal")).astype("int64")
ds = tf.data.Dataset.from_tensor_slices((data, target)).shuffle(n, seed=0)
val_ds = ds.take(5000).batch(32)
train_ds = ds.skip(5000).batch(32)

feature_space = keras.utils.FeatureSpace(
    features={
        "age": keras.utils.FeatureSpace.float_normalized(),
        "chol": keras.utils.FeatureSpace.float_normalized(),
        "thal": keras.utils.FeatureSpace.string_categorical(num_oov_indices=0),
        "cp": keras.utils.FeatureSpace.integer_categorical(num_oov_indices=0),
    },
    crosses=[keras.utils.FeatureSpace.cross(feature_names=("thal", "cp"), crossing_dim=16)],
    output_mode="concat",
)
feature_space.adapt(train_ds.map(lambda x, _: x))
preprocessed_train = train_ds.map(lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
preprocessed_val = val_ds.map(lambda x, y: (feature_space(x), y), num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

encoded = keras.Input(shape=(feature_space.get_encoded_features().shape[-1],))
h = layers.Dense(64, activation="relu")(encoded)
h = layers.Dropout(0.3)(h)
out = layers.Dense(1, activation="sigmoid")(h)
model = keras.Model(encoded, out)
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
model.fit(preprocessed_train, validation_data=preprocessed_val, epochs=6, verbose=2)
print("done")

# Weather forecasting with an LSTM as keras.io's timeseries example writes it (data made synthetic): windows from
# timeseries_dataset_from_array, EarlyStopping and a ModelCheckpoint of the best weights, the progress bar on,
# a few predictions after training.
import numpy as np
import keras
from keras import layers

# synthetic hourly readings: 7 features with daily and yearly cycles
rng = np.random.default_rng(42)
n = 60_000
t = np.arange(n)
features = np.stack([
    10 + 8 * np.sin(2 * np.pi * t / 24) + 5 * np.sin(2 * np.pi * t / (24 * 365)) + rng.normal(0, 1, n),
    1000 + 5 * np.sin(2 * np.pi * t / (24 * 7)) + rng.normal(0, 0.5, n),
    60 + 20 * np.cos(2 * np.pi * t / 24) + rng.normal(0, 3, n),
    rng.gamma(2, 1.5, n),
    5 + 3 * np.sin(2 * np.pi * t / 24 + 1) + rng.normal(0, 1, n),
    rng.normal(0, 1, n).cumsum() * 0.01,
    8 + 6 * np.sin(2 * np.pi * t / 24 - 0.5) + rng.normal(0, 1, n),
], axis=1).astype("float32")

split_fraction = 0.715
train_split = int(split_fraction * n)
step = 6
past = 720
future = 72
learning_rate = 0.001
batch_size = 256
epochs = 4

mean = features[:train_split].mean(axis=0)
std = features[:train_split].std(axis=0)
features = (features - mean) / std
train_data = features[:train_split]
val_data = features[train_split:]

start = past + future
end = start + train_split
x_train = train_data
y_train = features[start:end, [1]]
sequence_length = int(past / step)

dataset_train = keras.preprocessing.timeseries_dataset_from_array(
    x_train, y_train, sequence_length=sequence_length, sampling_rate=step, batch_size=batch_size)

x_end = len(val_data) - past - future
label_start = train_split + past + future
x_val = val_data[:x_end]
y_val = features[label_start:][:, [1]]
dataset_val = keras.preprocessing.timeseries_dataset_from_array(
    x_val, y_val, sequence_length=sequence_length, sampling_rate=step, batch_size=batch_size)

for batch in dataset_train.take(1):
    inputs, targets = batch
print("Input shape:", inputs.numpy().shape)
print("Target shape:", targets.numpy().shape)

inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
lstm_out = keras.layers.LSTM(32)(inputs)
outputs = keras.layers.Dense(1)(lstm_out)

model = keras.Model(inputs=inputs, outputs=outputs)
model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
model.summary()

path_checkpoint = "model_checkpoint.weights.h5"
es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
modelckpt_callback = keras.callbacks.ModelCheckpoint(
    monitor="val_loss", filepath=path_checkpoint, verbose=1, save_weights_only=True, save_best_only=True)

history = model.fit(dataset_train, epochs=epochs, validation_data=dataset_val,
                    callbacks=[es_callback, modelckpt_callback])

for x, y in dataset_val.take(3):
    print("predicted", float(model.predict(x, verbose=0)[0][0]), "true", float(y[0].numpy()[0]))

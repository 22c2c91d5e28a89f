# Timeseries forecasting as the published weather example writes it: keras.utils.timeseries_dataset_from_array,
# an LSTM, a checkpoint of the best model and EarlyStopping, inside a main() under a __main__ guard.
import numpy as np
import keras


def main():
    rng = np.random.default_rng(0)
    t = np.arange(30000, dtype="float32")
    features = np.stack([np.sin(t / 50), np.cos(t / 80), rng.normal(size=t.shape).astype("float32") * 0.1,
                         np.sin(t / 7)], axis=1).astype("float32")
    target = np.roll(features[:, 0], -72)
    split = 24000
    past, batch = 120, 256
    train = keras.utils.timeseries_dataset_from_array(features[:split], target[:split], sequence_length=past // 6,
                                                      sampling_rate=6, batch_size=batch)
    val = keras.utils.timeseries_dataset_from_array(features[split:], target[split:], sequence_length=past // 6,
                                                    sampling_rate=6, batch_size=batch)
    inputs = keras.Input((past // 6, features.shape[1]))
    x = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5),
                 keras.callbacks.ModelCheckpoint("model_checkpoint.weights.h5", monitor="val_loss",
                                                 save_weights_only=True, save_best_only=True)]
    history = model.fit(train, epochs=6, validation_data=val, callbacks=callbacks)
    print("best val_loss", min(history.history["val_loss"]))


if __name__ == "__main__":
    main()

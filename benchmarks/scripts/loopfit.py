# Training one epoch at a time in a Python loop, as custom-schedule tutorials write it: fit(epochs=1) per epoch, the
# learning rate set by hand between fits, a log line each epoch.
import numpy as np
import keras

rng = np.random.default_rng(7)
x = rng.normal(size=(16000, 32)).astype("float32")
y = (np.sin(x[:, 0]) + x[:, 1] ** 2 > 1).astype("float32")
model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dropout(0.2), keras.layers.Dense(128, activation="relu"),
                          keras.layers.Dense(1, activation="sigmoid")])
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
for epoch in range(6):
    model.optimizer.learning_rate.assign(1e-3 * 0.7 ** epoch)
    hist = model.fit(x, y, batch_size=64, epochs=1, validation_split=0.1, verbose=0)
    print(f"epoch {epoch}: loss {hist.history['loss'][0]:.4f} val_acc {hist.history['val_accuracy'][0]:.3f}")

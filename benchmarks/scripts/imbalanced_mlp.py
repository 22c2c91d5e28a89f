# Imbalanced classification with an MLP, as the published fraud-detection example writes it: a large batch,
# class weights, a validation split, metrics, a checkpoint callback and one line per epoch (verbose=2).
import numpy as np
import keras

rng = np.random.default_rng(1)
n, features = 60000, 30
x = rng.normal(size=(n, features)).astype("float32")
y = ((x[:, :3].sum(axis=1) + 0.5 * rng.normal(size=n)) > 3.2).astype("float32")  # about 4% positives
mean, std = x.mean(axis=0), x.std(axis=0)
x = (x - mean) / std

counts = np.bincount(y.astype(int))
class_weight = {0: 1.0 / counts[0], 1: 1.0 / counts[1]}

model = keras.Sequential([
    keras.Input((features,)),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(256, activation="relu"),
    keras.layers.Dropout(0.3),
    keras.layers.Dense(1, activation="sigmoid"),
])
metrics = [keras.metrics.FalseNegatives(name="fn"), keras.metrics.FalsePositives(name="fp"),
           keras.metrics.TrueNegatives(name="tn"), keras.metrics.TruePositives(name="tp"),
           keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=metrics)
callbacks = [keras.callbacks.ModelCheckpoint("fraud_model_at_epoch_{epoch}.keras"),
             keras.callbacks.EarlyStopping(monitor="val_loss", patience=50)]
model.fit(x, y, batch_size=2048, epochs=12, verbose=2, callbacks=callbacks, validation_split=0.2,
          class_weight=class_weight)

# A model-garden-style script: absl flags and logging, main() under app.run behind a __main__ guard, a small
# convnet with validation data, a ModelCheckpoint and verbose=2, then evaluate.
import os

from absl import app, flags, logging
import numpy as np
import tensorflow as tf
import keras

FLAGS = flags.FLAGS
flags.DEFINE_integer("epochs", 4, "Number of epochs to train.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Learning rate.")
flags.DEFINE_string("model_dir", "checkpoints", "Where to write checkpoints.")


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.normal(size=(n, 28, 28, 1)).astype("float32") * 0.5
    for i in range(n):
        x[i, 2 * y[i]:2 * y[i] + 6, 4:24, 0] += 1.0
    return x, y


def build_model():
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])


def main(argv):
    del argv  # Unused.
    logging.info("Training for %d epochs with batch size %d", FLAGS.epochs, FLAGS.batch_size)
    x_train, y_train = make_data(12000, 0)
    x_test, y_test = make_data(2000, 1)
    model = build_model()
    model.compile(optimizer=keras.optimizers.Adam(FLAGS.learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    os.makedirs(FLAGS.model_dir, exist_ok=True)
    ckpt = keras.callbacks.ModelCheckpoint(os.path.join(FLAGS.model_dir, "best.keras"), save_best_only=True)
    model.fit(x_train, y_train, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs,
              validation_data=(x_test, y_test), callbacks=[ckpt], verbose=2)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    logging.info("Test accuracy: %.4f", acc)


if __name__ == "__main__":
    app.run(main)

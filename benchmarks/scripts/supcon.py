# Supervised contrastive learning, as the published Keras example writes it: a baseline classifier trained end to
# end, then an encoder pretrained with a contrastive loss (a keras.losses.Loss whose __call__ normalises the
# projections and compares every pair in the batch with tf ops), then a classifier on the frozen encoder. Three fits,
# three models sharing layers; an augmentation model adapted to the data; numpy arrays into fit. (CIFAR-10 replaced by
# synthetic 32x32 images whose class is a coloured patch; a small conv encoder in place of ResNet50V2.)
import os

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np
import tensorflow as tf
import keras
from keras import layers

num_classes = 10
input_shape = (32, 32, 3)

rng = np.random.default_rng(42)
y_train = rng.integers(0, num_classes, size=2400)
y_test = rng.integers(0, num_classes, size=480)


def make_images(y):
    x = rng.normal(0.0, 30.0, size=(len(y), 32, 32, 3)) + 120.0
    for i, c in enumerate(y):
        r, col = divmod(int(c), 5)
        x[i, 4 + 12 * r:12 + 12 * r, 2 + 6 * col:6 + 6 * col, c % 3] += 90.0
    return np.clip(x, 0, 255).astype("float32")


x_train, x_test = make_images(y_train), make_images(y_test)
print(f"x_train shape: {x_train.shape} - y_train shape: {y_train.shape}")

learning_rate = 0.001
batch_size = 265
hidden_units = 512
projection_units = 128
num_epochs = 6
dropout_rate = 0.5
temperature = 0.05

data_augmentation = keras.Sequential(
    [
        layers.Normalization(),
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(0.02),
    ]
)
# Setting the state of the normalization layer.
data_augmentation.layers[0].adapt(x_train)


def create_encoder():
    inputs = keras.Input(shape=input_shape)
    augmented = data_augmentation(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(augmented)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    outputs = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="cifar10-encoder")


encoder = create_encoder()
encoder.summary()


def create_classifier(encoder, trainable=True):
    for layer in encoder.layers:
        layer.trainable = trainable

    inputs = keras.Input(shape=input_shape)
    features = encoder(inputs)
    features = layers.Dropout(dropout_rate)(features)
    features = layers.Dense(hidden_units, activation="relu")(features)
    features = layers.Dropout(dropout_rate)(features)
    outputs = layers.Dense(num_classes, activation="softmax")(features)

    model = keras.Model(inputs=inputs, outputs=outputs, name="cifar10-classifier")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy()],
    )
    return model


# Experiment 1: the baseline classification model
encoder = create_encoder()
classifier = create_classifier(encoder)
classifier.summary()

history = classifier.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs)

accuracy = classifier.evaluate(x_test, y_test)[1]
print(f"Test accuracy: {round(accuracy * 100, 2)}%")


# Experiment 2: supervised contrastive learning
class SupervisedContrastiveLoss(keras.losses.Loss):
    def __init__(self, temperature=1, name=None):
        super().__init__(name=name)
        self.temperature = temperature

    def __call__(self, labels, feature_vectors, sample_weight=None):
        # Normalize feature vectors
        feature_vectors_normalized = tf.math.l2_normalize(feature_vectors, axis=1)
        # Compute logits
        logits = tf.divide(
            tf.matmul(feature_vectors_normalized, tf.transpose(feature_vectors_normalized)),
            self.temperature,
        )
        # n-pairs loss: each sample's positives are the samples of its class
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1, 1])
        same = tf.cast(tf.equal(labels, tf.transpose(labels)), logits.dtype)
        targets = same / tf.reduce_sum(same, axis=1, keepdims=True)
        return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=logits))


def add_projection_head(encoder):
    inputs = keras.Input(shape=input_shape)
    features = encoder(inputs)
    outputs = layers.Dense(projection_units, activation="relu")(features)
    model = keras.Model(inputs=inputs, outputs=outputs, name="cifar-encoder_with_projection-head")
    return model


encoder = create_encoder()

encoder_with_projection_head = add_projection_head(encoder)
encoder_with_projection_head.compile(
    optimizer=keras.optimizers.Adam(learning_rate),
    loss=SupervisedContrastiveLoss(temperature),
)

encoder_with_projection_head.summary()

history = encoder_with_projection_head.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs)

classifier = create_classifier(encoder, trainable=False)

history = classifier.fit(x=x_train, y=y_train, batch_size=batch_size, epochs=num_epochs)

accuracy = classifier.evaluate(x_test, y_test)[1]
print(f"Test accuracy: {round(accuracy * 100, 2)}%")

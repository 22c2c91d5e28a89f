"""Point cloud classification with PointNet (after the keras.io example; synthetic shapes instead of ModelNet10)."""
import os

os.environ["KERAS_BACKEND"] = "tensorflow"  # the example runs on any backend; its tf.data map needs TensorFlow ops

import numpy as np
import tensorflow as tf
import keras
from keras import layers

keras.utils.set_random_seed(seed=42)

NUM_POINTS = 1024
NUM_CLASSES = 10
BATCH_SIZE = 32


def make_shapes(n, rng):
    """Point clouds of noisy primitives standing in for the ModelNet10 meshes, sampled as trimesh would."""
    points, labels = [], []
    for i in range(n):
        label = i % NUM_CLASSES
        u = rng.uniform(-1, 1, size=(NUM_POINTS, 3))
        scale = 1 + 0.1 * label
        if label % 3 == 0:  # spheres of growing size
            u = u / np.linalg.norm(u, axis=1, keepdims=True) * scale
        elif label % 3 == 1:  # boxes
            u = np.sign(u) * np.abs(u) ** (1.0 / (1 + label)) * scale
        else:  # cylinders
            u[:, :2] = u[:, :2] / np.linalg.norm(u[:, :2], axis=1, keepdims=True) * scale
        points.append(u + rng.normal(0, 0.02, size=u.shape))
        labels.append(label)
    return np.array(points, "float32"), np.array(labels)


rng = np.random.default_rng(0)
train_points, train_labels = make_shapes(800, rng)
test_points, test_labels = make_shapes(200, rng)
CLASS_MAP = {i: f"shape_{i}" for i in range(NUM_CLASSES)}


def augment(points, label):
    # jitter points
    points += tf.random.uniform(points.shape, -0.005, 0.005, dtype=tf.float32)
    # shuffle points
    points = tf.random.shuffle(points)
    return points, label


train_size = 0.8
dataset = tf.data.Dataset.from_tensor_slices((train_points, train_labels))
test_dataset = tf.data.Dataset.from_tensor_slices((test_points, test_labels))
train_dataset_size = int(len(dataset) * train_size)

dataset = dataset.shuffle(len(train_points)).map(augment)
test_dataset = test_dataset.shuffle(len(test_points)).batch(BATCH_SIZE)

train_dataset = dataset.take(train_dataset_size).batch(BATCH_SIZE)
validation_dataset = dataset.skip(train_dataset_size).batch(BATCH_SIZE)


def conv_bn(x, filters):
    x = layers.Conv1D(filters, kernel_size=1, padding="valid")(x)
    x = layers.BatchNormalization(momentum=0.0)(x)
    return layers.Activation("relu")(x)


def dense_bn(x, filters):
    x = layers.Dense(filters)(x)
    x = layers.BatchNormalization(momentum=0.0)(x)
    return layers.Activation("relu")(x)


class OrthogonalRegularizer(keras.regularizers.Regularizer):
    def __init__(self, num_features, l2reg=0.001):
        self.num_features = num_features
        self.l2reg = l2reg
        self.eye = keras.ops.eye(num_features)

    def __call__(self, x):
        x = keras.ops.reshape(x, (-1, self.num_features, self.num_features))
        xxt = keras.ops.tensordot(x, x, axes=(2, 2))
        xxt = keras.ops.reshape(xxt, (-1, self.num_features, self.num_features))
        return keras.ops.sum(self.l2reg * keras.ops.square(xxt - self.eye))

    def get_config(self):
        config = super().get_config()
        config.update({"num_features": self.num_features, "l2reg_strength": self.l2reg})
        return config


def tnet(inputs, num_features):
    # Initialise bias as the identity matrix
    bias = keras.initializers.Constant(np.eye(num_features).flatten())
    reg = OrthogonalRegularizer(num_features)

    x = conv_bn(inputs, 32)
    x = conv_bn(x, 64)
    x = conv_bn(x, 512)
    x = layers.GlobalMaxPooling1D()(x)
    x = dense_bn(x, 256)
    x = dense_bn(x, 128)
    x = layers.Dense(
        num_features * num_features,
        kernel_initializer="zeros",
        bias_initializer=bias,
        activity_regularizer=reg,
    )(x)
    feat_T = layers.Reshape((num_features, num_features))(x)
    # Apply affine transformation to input features
    return layers.Dot(axes=(2, 1))([inputs, feat_T])


inputs = keras.Input(shape=(NUM_POINTS, 3))

x = tnet(inputs, 3)
x = conv_bn(x, 32)
x = conv_bn(x, 32)
x = tnet(x, 32)
x = conv_bn(x, 32)
x = conv_bn(x, 64)
x = conv_bn(x, 512)
x = layers.GlobalMaxPooling1D()(x)
x = dense_bn(x, 256)
x = layers.Dropout(0.3)(x)
x = dense_bn(x, 128)
x = layers.Dropout(0.3)(x)

outputs = layers.Dense(NUM_CLASSES, activation="softmax")(x)

model = keras.Model(inputs=inputs, outputs=outputs, name="pointnet")
model.summary()

model.compile(
    loss="sparse_categorical_crossentropy",
    optimizer=keras.optimizers.Adam(learning_rate=0.001),
    metrics=["sparse_categorical_accuracy"],
)

model.fit(train_dataset, epochs=6, validation_data=validation_dataset)

data = test_dataset.take(1)

points, labels = list(data)[0]
points = points[:8, ...]
labels = labels[:8]

# run test data through model
preds = model.predict(points)
preds = keras.ops.argmax(preds, -1)

points = points.numpy()

for i in range(8):
    print("pred: {:}, label: {:}".format(CLASS_MAP[preds[i].numpy()], CLASS_MAP[labels.numpy()[i]]))

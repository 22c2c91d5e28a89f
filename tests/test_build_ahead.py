"""A model's state built before its first traced step on TensorFlow (redline.applying.build_ahead)."""

import types

import numpy as np
import pytest

import machines as m
from redline.applying import build_ahead
from redline.planning import plan


def test_other_backends_are_left_alone():
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "jax"))
    assert "jax" in build_ahead.install(fake)
    assert plan(m.vm_2core(), backend="jax").build_ahead.value is None


def test_redline_build_ahead_0_turns_it_off_in_the_plan_and_in_install(monkeypatch):
    on = plan(m.vm_2core()).build_ahead
    assert on.value is True and on.applied and "traces it twice" in on.reason
    off = plan(m.vm_2core(REDLINE_BUILD_AHEAD="0")).build_ahead
    assert off.value is False and off.source == "environment" and "REDLINE_BUILD_AHEAD=0" in off.reason
    assert plan(m.vm_2core(REDLINE_BUILD_AHEAD="1")).build_ahead.value is True
    monkeypatch.setenv("REDLINE_BUILD_AHEAD", "off")
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "tensorflow"))
    assert "REDLINE_BUILD_AHEAD=off" in build_ahead.install(fake)


def test_the_variable_reaches_the_plan_through_detection(monkeypatch):
    """`redline run --dry-run` shows the plan of the snapshot detection takes: the variable must be in it."""
    import redline

    monkeypatch.setenv("REDLINE_BUILD_AHEAD", "no")
    off = plan(redline.detect(), backend="tensorflow").build_ahead
    assert off.value is False and "REDLINE_BUILD_AHEAD=no" in off.reason


def _keras_on_tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"the trainer patched is TensorFlow's; keras runs on {keras.backend.backend()} here")
    return keras


def _traced(keras, fits):
    """Per fit: how many times its training step was traced (calls of the model in a graph that is not one of
    Keras' scratch graphs for shapes), and the weights after all of them. ``fits(model, counter_layer)``."""
    import tensorflow as tf

    counts = []

    class Count(keras.layers.Layer):
        def call(self, x):
            if "scratch" not in getattr(tf.compat.v1.get_default_graph(), "name", ""):
                counts[-1] += 1
            return x

    def fit(model, *args, **kwargs):
        counts.append(0)
        return model.fit(*args, **kwargs)

    keras.utils.set_random_seed(5)
    model = fits(Count, fit)
    return counts, model.get_weights()


def _two_fits(keras, x, y):
    """A fit (arrays, validation), a compile with a new optimizer and metrics, another fit (a tf.data pipeline)."""
    import tensorflow as tf

    def fits(Count, fit):
        model = keras.Sequential([Count(), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2),
                                  keras.layers.Dense(3)])  # no input shape: built in the first fit
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        fit(model, x, y, batch_size=32, epochs=2, validation_split=0.25, verbose=0)
        model.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        fit(model, tf.data.Dataset.from_tensor_slices((x, y)).shuffle(64, seed=1).batch(32), epochs=2, verbose=0)
        return model
    return fits


@pytest.mark.slow
def test_each_fit_traces_its_step_once_and_trains_the_same_weights():
    keras = _keras_on_tensorflow()
    x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
    y = (x.sum(axis=1) * 3 / 8).astype("int64") % 3
    trainer = __import__("keras.src.backend.tensorflow.trainer", fromlist=["TensorFlowTrainer"]).TensorFlowTrainer
    original = vars(trainer)["_maybe_symbolic_build"]
    plain_counts, plain = _traced(keras, _two_fits(keras, x, y))
    try:
        assert build_ahead.install(keras) is None and build_ahead.installed()
        before = build_ahead.stats()
        counts, ahead = _traced(keras, _two_fits(keras, x, y))
        after = build_ahead.stats()
    finally:
        trainer._maybe_symbolic_build = original
    # Keras' own way: each fit's step traced twice (its first call makes variables), the first fit's validation
    # step once more; built ahead, once each
    assert plain_counts == [3, 2], plain_counts
    assert counts == [2, 1], counts
    assert after["built"] - before["built"] >= 2, after  # the two fits (the validation found it built)
    for a, b in zip(plain, ahead, strict=True):
        np.testing.assert_array_equal(a, b)  # the same variables, the same initial values, the same training


@pytest.mark.slow
def test_what_cannot_be_built_from_shapes_is_left_to_the_first_step():
    keras = _keras_on_tensorflow()
    import tensorflow as tf

    rng = np.random.default_rng(1)
    images, labels = rng.random((64, 4, 2), dtype=np.float32), rng.random(64, dtype=np.float32)

    class Gan(keras.Model):  # its call is its generator on noise; its training step feeds the images elsewhere
        def __init__(self):
            super().__init__()
            self.generator = keras.Sequential([keras.layers.Dense(8), keras.layers.Reshape((4, 2))])
            self.critic = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(1)])

        def call(self, noise):
            return self.generator(noise)

        def train_step(self, data):
            real, _ = data
            noise = tf.random.normal((tf.shape(real)[0], 3))
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(self.critic(self(noise))) - tf.reduce_mean(self.critic(real))
            self.optimizer.apply_gradients(zip(tape.gradient(loss, self.trainable_variables), self.trainable_variables))
            return {"loss": loss}

    class TrainingOnly(keras.Model):  # a built model whose call cannot run as Keras builds from shapes
        def build(self, shape):
            self.w = self.add_weight(shape=(int(np.prod(shape[1:])), 1))

        def call(self, v, training=None):
            if not training:
                raise ValueError("this model runs in training only")
            return tf.reshape(v, (-1, self.w.shape[0])) @ self.w

    trainer = __import__("keras.src.backend.tensorflow.trainer", fromlist=["TensorFlowTrainer"]).TensorFlowTrainer
    original = vars(trainer)["_maybe_symbolic_build"]
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    try:
        assert build_ahead.install(keras) is None
        gan = Gan()
        gan.compile("adam")
        # built ahead from the images, its generator would take their shape and its step fail; left to the step
        gan_loss = gan.fit(data, epochs=1, verbose=0).history["loss"][0]
        model = TrainingOnly()
        model.compile("sgd", "mse")
        first = model.fit(data, epochs=1, verbose=0).history["loss"][0]  # not built yet: left to its step
        model.compile("adam", "mse")  # built now, a new optimizer: Keras' symbolic build fails, left to the step
        second = model.fit(data, epochs=1, verbose=0).history["loss"][0]
        left = build_ahead.stats()["left"]
    finally:
        trainer._maybe_symbolic_build = original
    assert np.isfinite([gan_loss, first, second]).all()  # trained, their state built in the first step as Keras does
    assert any("not built yet" in why for why in left), left
    assert any("TrainingOnly" in why for why in left), left


@pytest.mark.slow
def test_a_model_is_looked_over_once_per_compile_even_with_a_layer_it_never_calls():
    keras = _keras_on_tensorflow()

    class Unused(keras.Model):  # a layer made and never called: unbuilt for good
        def __init__(self):
            super().__init__()
            self.dense, self.spare = keras.layers.Dense(1), keras.layers.Dense(3)

        def call(self, v):
            return self.dense(v)

    x = np.random.default_rng(2).random((32, 4), dtype=np.float32)
    y = x.sum(axis=1)
    trainer = __import__("keras.src.backend.tensorflow.trainer", fromlist=["TensorFlowTrainer"]).TensorFlowTrainer
    original = vars(trainer)["_maybe_symbolic_build"]
    try:
        assert build_ahead.install(keras) is None
        model = Unused()
        model.compile("sgd", "mse")
        before = build_ahead.stats()
        for _ in range(4):
            model.train_on_batch(x, y)
        model.fit(x, y, epochs=1, verbose=0)
        once = build_ahead.stats()
        model.compile("adam", "mse")  # a new optimizer: looked over again
        model.train_on_batch(x, y)
        again = build_ahead.stats()
    finally:
        trainer._maybe_symbolic_build = original
    tries = lambda s: s["built"] + s["ready"] + sum(s["left"].values())  # noqa: E731
    assert tries(once) - tries(before) == 1, (before, once)
    assert tries(again) - tries(once) == 1 and again["built"] - once["built"] == 1, (once, again)
    assert not model.spare.built and model.optimizer.built


@pytest.mark.slow
def test_python_s_extra_trace_is_timed_without_changing_the_model():
    keras = _keras_on_tensorflow()
    from redline.tuning.fits import python_extra_s

    x = np.random.default_rng(3).random((64, 8), dtype=np.float32)
    y = x.sum(axis=1)

    def model_():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
        model.compile("adam", "mse", metrics=["mae"])
        return model

    plain = model_()
    plain.fit(x, y, epochs=1, verbose=0)
    assert python_extra_s(plain) is None  # nothing built ahead: the first step built it, as under `python`
    trainer = __import__("keras.src.backend.tensorflow.trainer", fromlist=["TensorFlowTrainer"]).TensorFlowTrainer
    original = vars(trainer)["_maybe_symbolic_build"]
    try:
        assert build_ahead.install(keras) is None
        model = model_()
        model.fit(x, y, epochs=1, verbose=0)
        optimizer, weights = model.optimizer, [w.numpy().copy() for w in model.weights]
        steps = int(optimizer.iterations.numpy())
        extra = python_extra_s(model)
        assert extra is not None and 0.0 <= extra < 60.0
        assert model.optimizer is optimizer and int(optimizer.iterations.numpy()) == steps == 2
        for a, b in zip(weights, model.weights, strict=True):
            np.testing.assert_array_equal(a, b.numpy())
        model.fit(x, y, epochs=1, verbose=0)  # trains on, as before
        assert int(optimizer.iterations.numpy()) == 4
    finally:
        trainer._maybe_symbolic_build = original

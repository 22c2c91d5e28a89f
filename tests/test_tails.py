"""A fit cut short on a tf.data pipeline keeps the smaller batch its epochs end with (tuning/tails.py), as it does on
numpy arrays: that batch's shape traces and compiles a step of its own in every run, and a later fit's start timed
without it reads short (a later fold on JAX: 0.31 s cut to 2 batches, 0.56-0.58 s with its last batch)."""

import importlib.util
import subprocess
import sys

import pytest

from tune_helpers import ENV

PIPELINES = """
import json, numpy as np, tensorflow as tf
from redline.tuning import tails
from redline.tuning.completion import cut
rng = np.random.default_rng(0)
x, y = rng.random((1003, 4), dtype=np.float32), rng.integers(0, 2, 1003)
base = tf.data.Dataset.from_tensor_slices((x, y))
AUTO = tf.data.AUTOTUNE
cases = {
    "batched": base.shuffle(1003).batch(32).prefetch(AUTO),
    "mapped after batching": base.batch(32).map(lambda a, b: (a * 2, b), num_parallel_calls=AUTO).cache().prefetch(2),
    "dict": tf.data.Dataset.from_tensor_slices(({"a": x, "b": x[:, :2]}, y)).batch(32).with_options(tf.data.Options()),
    "padded": base.padded_batch(32),
    "drop_remainder": base.batch(32, drop_remainder=True),
    "no remainder": base.take(992).batch(32),
    "filtered": base.filter(lambda a, b: b > 0).batch(32),
    "repeated": base.batch(32).repeat(),
    "unbatched after": base.batch(32).unbatch().batch(16),
    "short": base.take(70).batch(32),
}
out = {}
for name, ds in cases.items():
    got = tails.dataset(ds, 2)
    sizes = None if got is None else [int(tf.nest.flatten(e)[0].shape[0]) for e in got]
    out[name] = {"sizes": sizes, "same": got is ds}
kw = cut(type("M", (), {"steps_per_execution": 1})(), {"x": cases["batched"], "validation_data": cases["dict"],
                                                      "epochs": 4, "steps_per_epoch": None})
out["cut"] = {k: v for k, v in kw.items() if k in ("steps_per_epoch", "validation_steps", "epochs") and v}
kw = cut(type("M", (), {"steps_per_execution": 1})(), {"x": cases["batched"], "steps_per_epoch": 20})
out["own steps"] = {"steps_per_epoch": kw["steps_per_epoch"], "same": kw["x"] is cases["batched"]}
print("OUT", json.dumps(out))
"""


def _run(code, backend):
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec(backend) is None:
        pytest.skip(f"TensorFlow or {backend} is not installed")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**ENV, "KERAS_BACKEND": backend})
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    return json.loads(out.stdout.split("OUT ", 1)[1])


def test_a_batched_pipeline_is_cut_to_its_first_batches_and_one_of_its_last_batch_s_size():
    got = _run(PIPELINES, "tensorflow")
    for name in ("batched", "mapped after batching", "dict", "padded"):
        assert got[name]["sizes"] == [32, 32, 1003 % 32], (name, got[name])
    # no smaller last batch, or a pipeline that does not say what it is: cut by steps as before
    for name in ("drop_remainder", "no remainder", "filtered", "repeated", "unbatched after"):
        assert got[name]["sizes"] is None, (name, got[name])
    assert got["short"]["same"], got["short"]  # 2 batches and the last one are all of it: whole
    assert got["cut"] == {"epochs": 1}, got["cut"]  # no steps cut for either: each batch of the cut input once
    assert got["own steps"] == {"steps_per_epoch": 2, "same": True}, got["own steps"]  # the script's own steps


FIT = """
import json, numpy as np, tensorflow as tf, keras
from redline.tuning.completion import cut
rng = np.random.default_rng(0)
x, y = rng.random((1003, 4), dtype=np.float32), rng.integers(0, 2, 1003)
train = tf.data.Dataset.from_tensor_slices((x[:803], y[:803])).shuffle(803).batch(64).prefetch(tf.data.AUTOTUNE)
val = tf.data.Dataset.from_tensor_slices((x[803:], y[803:])).batch(64)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
seen = {"train": [], "val": []}
class Sizes(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        seen["train"].append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
    def on_test_batch_end(self, batch, logs=None):
        seen["val"].append(batch)
h = model.fit(**cut(model, {"x": train, "validation_data": val, "epochs": 5, "verbose": 0, "callbacks": [Sizes()]}))
print("OUT", json.dumps({"steps": seen["train"][-1], "val_batches": len(seen["val"]),
                         "val": len(h.history["val_loss"]), "epochs": len(h.history["loss"])}))
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_cut_fit_on_tf_data_trains_two_batches_and_the_last_one_and_validates_the_same_way(backend):
    """803 training samples in batches of 64 (the last of 35), 200 validation (the last of 8): 3 steps, 3 validation
    batches, one epoch, on Keras' own fit."""
    assert _run(FIT, backend) == {"steps": 3, "val_batches": 3, "val": 1, "epochs": 1}

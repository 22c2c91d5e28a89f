"""A fit cut short (the completion trial, the rest of the script after a measurement) validates where the script's own
fit does: a fit with validation_freq=2 cut to one epoch never validated, and a script reading
``history.history["val_accuracy"]`` failed in the trial alone (KeyError), so no candidate could be checked to finish
and later fits went unseen."""

import importlib.util
import types

import numpy as np
import pytest

from redline.tuning.completion import cut
from redline.tuning.search import Candidate, run_trial
from tune_helpers import ENV, script

MODEL = types.SimpleNamespace(steps_per_execution=1)


@pytest.mark.parametrize("kw, epochs", [
    ({"epochs": 6}, 1),                                                            # no validation: one epoch
    ({"epochs": 6, "validation_split": 0.2}, 1),                                   # validates every epoch
    ({"epochs": 6, "validation_split": 0.2, "validation_freq": 2}, 2),             # the second epoch validates
    ({"epochs": 8, "validation_data": ([0], [0]), "validation_freq": 2, "initial_epoch": 3}, 4),
    ({"epochs": 6, "validation_split": 0.2, "validation_freq": [3, 5]}, 3),
    ({"epochs": 3, "validation_split": 0.2, "validation_freq": 4}, 1),             # the script never validates
    ({"validation_split": 0.2, "validation_freq": 2}, 1),                          # Keras' default: one epoch
])
def test_a_cut_fit_runs_the_epochs_it_takes_to_validate_as_the_script_s_fit_does(kw, epochs):
    got = cut(MODEL, kw)
    assert got["epochs"] == epochs and got["steps_per_epoch"] == 2, got
    assert ("validation_steps" in got) == bool(kw.get("validation_split") or kw.get("validation_data")), got


SWEEP = """
import numpy as np, keras
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
for units in (8, 16):
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    history = model.fit(x, y, batch_size=32, epochs=4, validation_split=0.25, validation_freq=2, verbose=0)
    print("VAL", units, len(history.history["val_loss"]), flush=True)
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_script_that_reads_its_validation_history_finishes_in_the_completion_trial(tmp_path, monkeypatch):
    s = script(tmp_path, SWEEP)
    monkeypatch.chdir(tmp_path)
    trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1, "mode": "complete",
             "sandbox_root": str(tmp_path.parent)}
    monkeypatch.setattr("os.environ", {**ENV, "KERAS_BACKEND": "tensorflow"})
    res = run_trial(s, [], Candidate("as written"), trial, 120)
    assert res["status"] == "complete" and res["exit_code"] == 0 and res["calls"]["fit"] == 2, res
    assert "VAL 8 1" in res["stdout"] and "VAL 16 1" in res["stdout"], res["stdout"][-500:]
    assert res["tf_s"] > 0, res  # the script's import of keras on TensorFlow: what its process paid for it


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="JAX and TensorFlow are needed")
@pytest.mark.parametrize("saves", [False, True])
def test_the_completion_trial_says_whether_the_whole_script_imported_tensorflow_on_jax(tmp_path, monkeypatch, saves):
    """A JAX run over numpy arrays never imports TensorFlow, unless the script does something that needs it after
    fit: Keras' model saving on JAX imports it (tuning/payoff.unpaid_at_end takes the credit back there)."""
    text = SWEEP + ('model.save("m.keras")\n' if saves else "")
    monkeypatch.chdir(tmp_path)
    trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1, "mode": "complete",
             "sandbox_root": str(tmp_path.parent)}
    monkeypatch.setattr("os.environ", {**ENV, "KERAS_BACKEND": "jax"})
    res = run_trial(script(tmp_path, text), [], Candidate("backend jax", {"KERAS_BACKEND": "jax"}), trial, 120)
    assert res["status"] == "complete" and res["exit_code"] == 0, res
    assert (res["tf_s"] > 0) == saves, res["tf_s"]


def _arrays(n, width=3):
    import numpy as np

    x = np.arange(n * width, dtype="float32").reshape(n, width)
    return x, x[:, :1] * 2


def test_a_cut_fit_on_arrays_keeps_the_data_s_last_partial_batch_as_each_epoch_of_the_script_ends():
    """The last batch of an epoch over arrays whose length the batch does not divide has its own shape, and a step
    function compiles for it (a later fold's fit on JAX: 0.31 s cut to 2 batches, 0.56-0.58 s with that batch): a cut
    fit keeps it, so a later fit's start is timed as a run pays it."""
    x, y = _arrays(3000)
    vx, vy = _arrays(1000)
    got = cut(MODEL, {"x": x, "y": y, "batch_size": 16, "epochs": 8, "validation_data": (vx, vy),
                      "steps_per_epoch": 150, "validation_steps": 50})  # the script's own: each cut batch once
    assert "steps_per_epoch" not in got and "validation_steps" not in got, got.keys()
    assert len(got["x"]) == len(got["y"]) == 2 * 16 + 3000 % 16
    assert (got["x"][:32] == x[:32]).all() and (got["x"][32:] == x[-8:]).all() and (got["y"][32:] == y[-8:]).all()
    gx, gy = got["validation_data"]
    assert len(gx) == len(gy) == 2 * 16 + 1000 % 16 and (gx[-8:] == vx[-8:]).all()
    assert got["epochs"] == 1


def test_validation_split_is_split_off_as_keras_splits_it_before_the_cut():
    x, y = _arrays(4001)
    w = x[:, 0].copy()
    got = cut(MODEL, {"x": [x, x], "y": {"out": y}, "sample_weight": w, "batch_size": 32, "validation_split": 0.25})
    at = 3000  # floor(4001 * 0.75): Keras' training samples, the last 1,001 its validation's
    assert got["validation_split"] == 0.0 and "steps_per_epoch" not in got and "validation_steps" not in got
    assert [len(a) for a in got["x"]] == [64 + at % 32] * 2 and len(got["y"]["out"]) == len(got["sample_weight"])
    assert (got["x"][1][-(at % 32):] == x[at - at % 32:at]).all()
    vx, vy, vw = got["validation_data"]
    assert len(vx[0]) == 64 + 1001 % 32 and (vx[0][-(1001 % 32):] == x[-(1001 % 32):]).all() and len(vw) == len(vx[0])


def test_a_dataframe_and_a_series_are_cut_as_arrays_are_by_position_not_by_their_index():
    """The tutorials' regression fits a pandas DataFrame of features and a Series of labels, both with the shuffled
    index DataFrame.sample leaves: Keras slices them by position, so the cut keeps the same rows (iloc) and the last
    partial batch, and the validation Keras would split off."""
    pd = pytest.importorskip("pandas")
    x, y = _arrays(4001)
    order = np.random.default_rng(0).permutation(4001)
    frame = pd.DataFrame(x, index=order, columns=["a", "b", "c"])
    labels = pd.Series(y[:, 0], index=order)
    got = cut(MODEL, {"x": frame, "y": labels, "batch_size": 32, "validation_split": 0.25})
    at = 3000  # Keras' training samples, by position
    assert isinstance(got["x"], pd.DataFrame) and isinstance(got["y"], pd.Series), type(got["x"])
    assert len(got["x"]) == len(got["y"]) == 64 + at % 32 and "steps_per_epoch" not in got
    assert (got["x"].to_numpy()[-(at % 32):] == x[at - at % 32:at]).all()
    assert (got["y"].to_numpy()[:64] == y[:64, 0]).all()
    vx, vy = got["validation_data"][:2]
    assert len(vx) == len(vy) == 64 + 1001 % 32 and (vx.to_numpy()[-(1001 % 32):] == x[-(1001 % 32):]).all()


def test_arrays_without_a_partial_batch_are_cut_by_steps():
    x, y = _arrays(3200)
    got = cut(MODEL, {"x": x, "y": y, "batch_size": 32, "validation_data": (x, y)})
    assert got["x"] is x and got["steps_per_epoch"] == 2 and got["validation_steps"] == 2


def test_arrays_cut_by_steps_train_and_validate_the_batches_keras_gives_them_in_a_run():
    """Given a step count and no batch size, Keras splits arrays into that many batches: the distillation example's
    fits (2,048 samples, no batch_size) cut to 2 steps trained batches of 1,024 (a step 2.0 s, a run's 0.08 s)."""
    x, y = _arrays(2048)
    got = cut(MODEL, {"x": x, "y": y, "validation_data": (x[:512], y[:512])})
    assert got["steps_per_epoch"] == 2 and got["validation_steps"] == 2 and got["batch_size"] == 32, got.keys()
    assert got["validation_batch_size"] == 32  # as a run validates: Keras' own, not the validation steps' split
    assert cut(MODEL, {"x": x, "y": y, "batch_size": 64})["batch_size"] == 64  # the script's own stands
    # the script's own steps_per_epoch and no batch size: a run trains batches of ceil(2048 / 10), the last of 203
    got = cut(MODEL, {"x": x, "y": y, "steps_per_epoch": 10})
    assert got["batch_size"] == 205 and len(got["x"]) == 2 * 205 + 203 and "steps_per_epoch" not in got
    # data of another kind trains as it comes; arrays it validates on get Keras' own batch
    got = cut(MODEL, {"x": iter([x]), "validation_data": (x[:512], y[:512])})
    assert "batch_size" not in got and got["validation_batch_size"] == 32, got.keys()


def test_arrays_of_no_more_than_the_steps_and_their_last_batch_run_whole():
    """34 samples in batches of 16: 2 batches and the last one of 2 are all of it; 2 steps would leave that out."""
    x, y = _arrays(34)
    got = cut(MODEL, {"x": x, "y": y, "batch_size": 16, "validation_data": (x, y), "steps_per_epoch": 2})
    assert got["x"] is x and "steps_per_epoch" not in got and "validation_steps" not in got, got.keys()
    assert got["validation_data"][0] is x


def test_other_inputs_are_cut_by_steps():
    x, _ = _arrays(100)
    got = cut(MODEL, {"x": iter([x]), "validation_data": iter([x])})  # a generator, as a script may pass one
    assert got["steps_per_epoch"] == 2 and got["validation_steps"] == 2


def test_a_tail_that_would_copy_too_much_is_cut_by_steps(monkeypatch):
    from redline.tuning import tails

    x, y = _arrays(3000)
    monkeypatch.setattr(tails, "TAIL_BYTES", (2 * 16 + 8) * (x[0].nbytes + y[0].nbytes) - 1)
    got = cut(MODEL, {"x": x, "y": y, "batch_size": 16})
    assert got["x"] is x and got["steps_per_epoch"] == 2
    monkeypatch.setattr(tails, "TAIL_BYTES", (2 * 16 + 8) * (x[0].nbytes + y[0].nbytes))
    assert len(cut(MODEL, {"x": x, "y": y, "batch_size": 16})["x"]) == 40


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_cut_fit_on_arrays_trains_its_full_batches_and_the_last_one_and_validates_on_keras(backend):
    """On a real model: two inputs by name, sample weights and validation_split, as a script may pass them: the cut
    fit runs 3 training steps (2 full batches, then the smaller last one) and validates."""
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    code = """
import numpy as np, keras
from redline.tuning.completion import cut
rng = np.random.default_rng(0)
x = {"a": rng.random((1003, 4), dtype=np.float32), "b": rng.random((1003, 2), dtype=np.float32)}
y = (x["a"].sum(axis=1) > 2).astype("int32")
a, b = keras.Input((4,), name="a"), keras.Input((2,), name="b")
model = keras.Model([a, b], keras.layers.Dense(2, activation="softmax")(keras.layers.Concatenate()([a, b])))
model.compile("adam", "sparse_categorical_crossentropy")
seen = []
class Shapes(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        seen.append(int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)))
kw = cut(model, {"x": x, "y": y, "sample_weight": np.ones(1003, "float32"),
                 "batch_size": 64, "epochs": 5, "validation_split": 0.2, "verbose": 0, "callbacks": [Shapes()]})
h = model.fit(**kw)
print("ROWS", len(kw["x"]["a"]), len(kw["validation_data"][0]["a"]), "STEPS", seen[-1],
      "VAL", len(h.history["val_loss"]))
# no batch size, no partial batch: fit, evaluate and predict cut by steps run the batches of 32 a run runs
class Seen(keras.metrics.Metric):
    def __init__(self):
        super().__init__(name="seen")
        self.n = self.add_variable(shape=(), initializer="zeros", name="n")
    def update_state(self, y_true, y_pred, sample_weight=None):
        self.n.assign_add(keras.ops.cast(keras.ops.shape(y_true)[0], "float32"))
    def result(self):
        return self.n * 1.0
from redline.tuning import completion
completion.install(keras, {})
x2 = {"a": rng.random((2048, 4), dtype=np.float32), "b": rng.random((2048, 2), dtype=np.float32)}
y2 = (x2["a"].sum(axis=1) > 2).astype("int32")
model.compile("adam", "sparse_categorical_crossentropy", metrics=[Seen()])
h = model.fit(x2, y2, validation_data=(x2, y2), verbose=0)
print("SEEN", int(h.history["seen"][0]), int(h.history["val_seen"][0]),
      "EVAL", int(model.evaluate(x2, y2, verbose=0, return_dict=True)["seen"]), "PRED", len(model.predict(x2, verbose=0)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**ENV, "KERAS_BACKEND": backend})
    assert out.returncode == 0, out.stderr[-2000:]
    # floor(1003 * 0.8) = 802 training samples (802 % 64 = 34 in the last batch), 201 validation (201 % 64 = 9)
    assert "ROWS 162 137 STEPS 3 VAL 1" in out.stdout, out.stdout[-500:]
    assert "SEEN 64 64 EVAL 64 PRED 64" in out.stdout, out.stdout[-500:]  # 2 steps of 32 each (2 of 1,024 before)

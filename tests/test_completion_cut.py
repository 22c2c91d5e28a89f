"""A fit cut short (the completion trial, the rest of the script after a measurement) validates where the script's own
fit does: a fit with validation_freq=2 cut to one epoch never validated, and a script reading
``history.history["val_accuracy"]`` failed in the trial alone (KeyError), so no candidate could be checked to finish
and later fits went unseen."""

import importlib.util
import types

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

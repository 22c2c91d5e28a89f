"""Every fit that matters: the first trial records the script's fits; the one that trains longest is measured."""

import importlib.util

import pytest

import machines as m
from tune_helpers import script, trial
from redline.tuning.fits import longest, size
from redline.tuning.search import Candidate

FINE_TUNE = """
import numpy as np
import keras
rng = np.random.default_rng(0)
x = rng.random((512, 16), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
base = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(32, activation="relu")])
model = keras.Sequential([base, keras.layers.Dense(1)])
base.trainable = False  # a frozen base first, as the transfer-learning guides do
model.compile("adam", "mse")
model.fit(x, y, batch_size=32, epochs=2, verbose=0)
base.trainable = True  # then the whole model, for longer, at a lower learning rate
model.compile(keras.optimizers.Adam(1e-4), "mse")
model.fit(x, y, batch_size=32, epochs=10, verbose=0)
print("DONE", flush=True)
"""


def test_the_longest_fit_is_the_one_measured_and_equals_stay_the_first():
    a, b = {"index": 1, "epochs": 2, "steps_in_epoch": 16}, {"index": 2, "epochs": 10, "steps_in_epoch": 16}
    assert size(a) == 32 and longest([a, b]) is b
    assert longest([a, {**a, "index": 2}])["index"] == 1  # k folds of one model: the first
    assert size({"epochs": 3, "steps_in_epoch": None}) == 0 and longest([]) is None


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_the_first_trial_records_every_fit_and_a_later_trial_measures_the_longest(tmp_path):
    from redline.tuning.search import run_trial

    s = script(tmp_path, FINE_TUNE)
    first = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "discover": True}, 180)
    assert first["status"] == "ok" and first["fit_index"] == 1, first
    fits = first["fits"]
    assert [(f["index"], f["epochs"], f["steps_in_epoch"]) for f in fits] == [(1, 2, 16), (2, 10, 16)], fits
    assert fits[0]["fingerprint"] != fits[1]["fingerprint"]  # the base trains in the second: another workload
    assert first["after_fit"]["status"] == "complete" and "DONE" in first["stdout"]  # the rest ran, cut short
    second = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "fit_index": 2}, 180)
    assert second["status"] == "ok" and second["fit_index"] == 2 and second["epochs"] == 10, second
    assert "DONE" not in second["stdout"]  # measured at fit 2; the first fit ran cut short before it


def test_tune_measures_the_fit_that_trains_longest_in_every_trial(monkeypatch):
    from redline.tuning import search

    seen = []
    fits = [{"index": 1, "epochs": 2, "steps_in_epoch": 16, "fingerprint": "a"},
            {"index": 2, "epochs": 10, "steps_in_epoch": 16, "fingerprint": "b"}]

    def fake(script, args, cand, trial, timeout):
        seen.append((trial.get("discover", False), trial.get("fit_index", 1)))
        res = {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0, 101.0, 99.0]}}, "data": "ndarray",
               "backend": "tensorflow", "steps_in_epoch": 16, "epochs": 2 if trial.get("discover") else 10,
               "inputs": {}, "not_measured": []}
        return {**res, "fits": fits} if trial.get("discover") else res

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert seen[0] == (True, 1) and all(s == (False, 2) for s in seen[1:]), seen
    assert any("fit 2 trains longest" in r for r in result.reasons), result.reasons
    assert result.training_s == pytest.approx((32 + 160) / 100.0)  # both fits, at the rate of the one measured


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_following_trial_whose_rest_runs_too_long_says_timeout_not_a_failure(tmp_path):
    """A per-process trial follows the rest of the script (its completion check); a rest that runs past the watchdog
    ends as "timeout", so the candidate is not dropped as failing: a completion trial of its own decides."""
    from redline.tuning.search import run_trial

    s = script(tmp_path, FINE_TUNE.replace('print("DONE", flush=True)', 'import time\ntime.sleep(600)'))
    res = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "follow": True,
                                                      "discover_s": 1}, 180)
    assert res["status"] == "ok" and res["after_fit"]["status"] == "timeout", res.get("after_fit")
    assert "not followed further" in res["after_fit"]["error"]

"""Learns the same (tuning/numerics.py): a candidate whose loss after the check's steps is not a number, or far
outside what the script as written reaches, is dropped with the figures; real trials share their initial weights."""

import importlib.util
import math

import pytest

import machines as m
from tune_helpers import script
from redline.tuning.numerics import TOL, judge
from redline.tuning.search import Candidate


def test_a_loss_that_is_not_a_number_is_dropped_with_the_figures():
    why = judge([0.52, 0.50, 0.51], [math.nan], steps=20)
    assert why and "nan" in why and "after 20 steps" in why and "0.51" in why


def test_the_band_is_the_script_s_own_spread_widened_by_tol():
    base = [1.0, 1.1]
    assert judge(base, [1.05]) is None and judge(base, [1.3]) is None  # within the spread plus TOL of the size
    assert judge(base, [1.1 + TOL * 1.1 + 0.01]) is not None and judge(base, [0.5]) is not None
    assert judge([], [1.0]) is None and judge([math.nan], [1.0]) is None  # nothing finite to compare with
    assert judge([1.0], []) is None  # a candidate with no check figure is judged on speed alone


def test_a_faster_candidate_that_does_not_learn_is_not_chosen(monkeypatch):
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 300.0}
    losses = {"as written": 0.5, "backend jax": math.nan}

    def fake(script, args, cand, trial, timeout, **_):
        if "ladder" in trial or trial.get("mode") == "complete":
            return {"status": "ok", "candidates": {}, "inputs": {}, "not_measured": [], "exit_code": 0, "fits": 1}
        r = rates.get(cand.name, 50.0)
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "tensorflow", "check": {"loss": losses.get(cand.name, 0.5), "steps": 20, "weights": "shared"}}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert jax.error.startswith("learns differently") and "nan" in jax.error and jax.runs
    assert result.chosen_process is result.default


TRAIN = """
import numpy as np
import keras
x = np.random.default_rng(0).random((640, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.2),
                          keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_trials_share_the_first_trial_s_initial_weights_and_agree(tmp_path):
    from redline.tuning.search import run_trial

    s = script(tmp_path, TRAIN)
    t = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1, "check": True,
         "weights": str(tmp_path / "w.npz")}
    first = run_trial(s, [], Candidate("as written"), t, 120)
    second = run_trial(s, [], Candidate("as written"), t, 120)
    assert first["status"] == second["status"] == "ok", (first, second)
    assert first["check"]["weights"] == "saved" and second["check"]["weights"] == "shared"
    assert math.isfinite(first["check"]["loss"]) and first["check"]["steps"] == 20
    # the same weights, order and seed: two processes of the script as written lie in each other's band
    a, b = first["check"]["loss"], second["check"]["loss"]
    assert judge([a], [b]) is None and abs(a - b) <= 0.05 * max(1.0, abs(a)), (a, b)  # each keeps its own optimizer state

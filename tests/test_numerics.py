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


SEEDED = """
import json, os, random, sys, types
import numpy as np, keras
from redline.applying.seeding import set_random_seed
from redline.tuning.numerics import check
x = np.random.default_rng(0).random((64, 4), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]); model.compile("sgd", "mse")
feed = types.SimpleNamespace(x=x, y=y, batch_size=8, cap=8, kwargs={})
loss = check(model, lambda m, *a, **k: m.fit(*a, **k), feed, 1, None, open)["loss"]  # a trial's check, seeded
out = {"loss": loss, "tensorflow_after_check": "tensorflow" in sys.modules}
set_random_seed(3)
out.update({"tensorflow_imported": "tensorflow" in sys.modules, "drawn": [random.random(), float(np.random.rand())]})
out["keras_seed"] = keras.src.utils.rng_utils.get_random_seed()
import tensorflow as tf
out["drawn"].append(float(tf.random.uniform(())))  # the script's first TensorFlow draw, after it imports TensorFlow
random.seed(3); np.random.seed(3); tf.random.set_seed(3)
out["seeded_now"] = [random.random(), float(np.random.rand()), float(tf.random.uniform(()))]
print("RESULT " + json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("jax") is None,
                    reason="TensorFlow and JAX are both needed")
def test_the_check_s_seed_leaves_tensorflow_unimported_until_the_script_imports_it_then_seeds_it():
    """A JAX process whose script has not imported TensorFlow: a trial's loss check seeds without importing it (Keras'
    own call does, seconds of CPU), and once the script imports it, its first draw is the one the same seed gives."""
    import json
    import subprocess
    import sys

    from tune_helpers import ENV

    r = subprocess.run([sys.executable, "-c", SEEDED], capture_output=True, text=True, timeout=120,
                       env={**ENV, "KERAS_BACKEND": "jax"})
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, r.stderr[-2000:]
    d = json.loads(line[0][7:])
    assert d["tensorflow_after_check"] is False and math.isfinite(d["loss"])
    assert d["tensorflow_imported"] is False and d["keras_seed"] == 3
    assert d["drawn"] == d["seeded_now"]

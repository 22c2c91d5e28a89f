"""A script that forks worker processes (a PyDataset with use_multiprocessing=True, its own fork Pool) forks JAX's
threads when a trial runs it on JAX: Python warns that this will likely deadlock, and PyDataset workers hang under
JAX on GPUs (keras-team/keras#20619). The trial counts such forks; a backend candidate whose trial forked under JAX
is dropped with the reason, the script's own backend never is."""

import importlib.util
import os
import textwrap

import pytest

from tune_helpers import ENV

from redline.tuning.absorb import absorb
from redline.tuning.search import Candidate, run_trial

TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1}

FORKS = """
import multiprocessing as mp
import warnings
import numpy as np
import keras
warnings.simplefilter("ignore", RuntimeWarning)  # JAX's warning at each fork, as the user would see it
with mp.get_context("fork").Pool(2) as pool:
    print("SQUARES", pool.map(abs, [-1, -2]), flush=True)
x = np.random.default_rng(0).random((128, 4), dtype=np.float32)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(x, x.sum(axis=1, keepdims=True), batch_size=16, epochs=1, verbose=0)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="JAX and TensorFlow are both needed")
def test_forks_are_counted_under_jax_only(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "environ", {**ENV})
    p = tmp_path / "train.py"
    p.write_text(textwrap.dedent(FORKS))
    got = {b: run_trial(str(p), [], Candidate(b, {"KERAS_BACKEND": b}), TRIAL, 120) for b in ("jax", "tensorflow")}
    for b, res in got.items():
        assert res["status"] == "ok" and "SQUARES [1, 2]" in res["stdout"], (b, res.get("error"))
    assert got["jax"]["forks_under_jax"] >= 1 and got["tensorflow"]["forks_under_jax"] == 0, got


def test_a_backend_candidate_that_forked_under_jax_is_dropped_and_the_script_s_own_backend_is_not():
    res = {"status": "ok", "forks_under_jax": 28, "candidates": {"default": {"steps_per_s": [585.0, 590.0, 580.0]}}}
    jax, own = Candidate("backend jax", {"KERAS_BACKEND": "jax"}), Candidate("as written")
    absorb(jax, res)
    absorb(own, res)  # a script that runs on JAX itself and forks: its own choice, measured as written
    assert jax.error and "forked 28 process(es) while JAX ran" in jax.error and "keras#20619" in jax.error
    assert own.error is None and own.runs == [585.0, 590.0, 580.0]


def test_tune_never_chooses_a_backend_whose_trial_forked_under_jax_and_shows_what_it_measured(monkeypatch):
    """pydataset_workers: JAX read 1.76x in its trial processes and was chosen; the run forks JAX's threads."""
    import machines as m
    from redline.cli.tune import text
    from redline.tuning import search

    def fake(script, args, cand, trial, timeout, **_):
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [300.0] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": []}
        jax = cand.env.get("KERAS_BACKEND") == "jax"
        rate = 585.0 if jax else 330.0
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [rate, rate * 1.01, rate * 0.99]}},
                "data": "PyDataset", "backend": "jax" if jax else "tensorflow", "forks_under_jax": 28 if jax else 0,
                "contention": {"steal": 0.0, "others": 0.0}}

    monkeypatch.setattr(search, "run_trial", fake)
    r = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert r.chosen_process.name != "backend jax", r.chosen_process.name
    row = next(line for line in text(r).splitlines() if "backend jax" in line and "process" in line)
    assert "585.0" in row and "1.77x" in row and "dropped: the script forked 28" in row, row  # (the note wraps)

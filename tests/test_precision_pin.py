"""A dtype policy the script sets itself (a GPU tutorial's mixed_float16 line run on a CPU) stands: the trial says
where it is set, the precision candidates are measured with that line ignored, and what they show is advice."""

import importlib.util
import os
import textwrap

import pytest

import machines as m
from redline.tuning.candidates import policy_of, precision_unasked, process_candidates
from redline.tuning.search import Candidate, run_trial

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "KERAS_BACKEND", "TF_CONFIG",
                                                                   "XDG_CACHE_HOME", "TF_ENABLE_ONEDNN"))}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"

#: as GPU tutorials write it, through tf.keras: the policy set after the imports, the last layer kept in float32
MIXED = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
import keras
probe = keras.layers.Dense(1)  # a layer made before the policy line: Keras' getter sets its default float32 here
tf.keras.mixed_precision.set_global_policy("mixed_float16")
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.Dense(1, dtype="float32")])
model.compile("adam", "mse")
print("POLICY", keras.config.dtype_policy().name, model.layers[0].compute_dtype, flush=True)
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
"""

TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1}


def _names(cands):
    return {c.name: c for c in cands}


def test_with_the_script_s_own_policy_every_precision_candidate_is_advice_measured_against_its_line():
    bf16 = m.snapshot(m.cpu(2, 2, avx512f=True, avx512_bf16=True))
    plain = m.vm_2core()
    own = policy_of({"precision_set_at": "train.py:7", "precision_set": "mixed_float16"})
    assert own == ("train.py:7", "mixed_float16") and policy_of({"precision_set_at": None}) is None
    got = _names(process_candidates(bf16, "tensorflow", allow=(), policy=own))
    # no --allow needed: advice changes nothing the script runs; float32 and this CPU's native policy, each forced
    assert got["float32"].trial == {"force_precision": True} and "remove that line" in got["float32"].advice
    assert got["mixed_bfloat16"].trial == {"force_precision": True, "precision": "mixed_bfloat16"}
    assert "train.py:7" in got["mixed_bfloat16"].advice and "set mixed_bfloat16 there" in got["mixed_bfloat16"].advice
    # no native bfloat16: only float32 against the line; a script already on the native policy: only float32 too
    assert [c for c in _names(process_candidates(plain, "tensorflow", allow=("precision",), policy=own))
            if "float" in c] == ["float32"]
    mine = _names(process_candidates(bf16, "tensorflow", allow=("precision",), policy=("t.py:3", "mixed_bfloat16")))
    assert "float32" in mine and "mixed_bfloat16" not in mine
    # without a line of the script's: as before, only where --allow precision admits it, and applied, not advice
    assert not [c for c in _names(process_candidates(bf16, "tensorflow", allow=())) if "float" in c]
    chosen = _names(process_candidates(bf16, "tensorflow", allow=("precision",)))["mixed_bfloat16"]
    assert chosen.trial == {"precision": "mixed_bfloat16"} and not chosen.advice and not chosen.error
    # not admitted on a CPU that computes it natively: the tune says so, with the command that measures it; not where
    # it was admitted, where the script's own line makes it advice, or where this CPU has no native bfloat16
    said = precision_unasked(bf16, (), None, "train.py")
    assert said.startswith("mixed_bfloat16: not measured: this CPU has native bfloat16") and said.endswith(
        "`redline tune --allow precision train.py`"), said
    assert precision_unasked(bf16, ("precision",), None, "t.py") is None
    assert precision_unasked(bf16, (), own, "t.py") is None
    assert precision_unasked(plain, (), None, "t.py") is None
    assert precision_unasked(bf16, (), None, "t.py", ["--lr", "1e-3 x"]).endswith("precision t.py --lr '1e-3 x'`")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_trial_says_where_the_script_sets_its_policy_and_ignores_the_line_only_where_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "environ", {**ENV})
    p = tmp_path / "train.py"
    p.write_text(textwrap.dedent(MIXED))
    res = run_trial(str(p), [], Candidate("as written"), TRIAL, 120)
    assert res["status"] == "ok", res
    assert res["precision_set_at"] == "train.py:8" and res["precision_set"] == "mixed_float16", res
    assert not res["precision_ignored"] and "POLICY mixed_float16 float16" in res["stdout"], res["stdout"]
    # the candidate's own policy, set by the trial when keras is imported, is what runs: the script's line ignored
    res = run_trial(str(p), [], Candidate("mixed_bfloat16", trial={"force_precision": True, "precision": "mixed_bfloat16"}),
                    TRIAL, 120)
    assert res["status"] == "ok" and res["precision_ignored"], res
    assert "POLICY mixed_bfloat16 bfloat16" in res["stdout"], res["stdout"]


def test_float32_against_the_script_s_mixed_float16_is_advice_on_few_figures_and_never_applied(monkeypatch):
    """A slow-step script's advice candidate is measured in one process, often of 2 rounds: beyond both spreads, that
    is advice enough (it says how many figures), while a choice would need 3."""
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 90.0, "oneDNN off": 95.0, "1 intra-op thread": 60.0,
             "float32": 580.0, "mixed_bfloat16": 600.0}
    asked, rounds = {}, {}

    def fake(script, args, cand, trial, timeout, **_):
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0] * 3, "knobs": {}}}, "inputs": {},
                    "input_chosen": None, "not_measured": [], "script_compile": {}}
        asked[cand.name] = dict(cand.trial)
        rounds[cand.name] = trial.get("rounds")
        r = rates[cand.name]
        runs = [r, r * 1.01] if cand.trial.get("force_precision") else [r, r * 1.01, r * 0.99]
        return {"status": "ok", "candidates": {"default": {"steps_per_s": runs}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow",
                "precision_set_at": "train.py:7", "precision_set": "mixed_float16"}

    monkeypatch.setattr(search, "run_trial", fake)
    bf16 = m.snapshot(m.cpu(2, 2, avx512f=True, avx512_bf16=True))
    result = search.tune("train.py", budget_s=600, snapshot=bf16, complete=False)
    assert asked["float32"] == {"force_precision": True}, asked
    # advice has one process: it runs a third round there, a rival two a process
    assert rounds["float32"] == rounds["mixed_bfloat16"] == 3 and rounds["backend jax"] == 2, rounds
    assert result.chosen_process is result.default and result.choice()["precision"] is None, result.choice()
    advice = [a for a in result.advice if a.startswith("mixed_bfloat16: 603.0")]
    assert advice and "6.03x, 2 against 3 measurements" in advice[0] and "train.py:7" in advice[0], result.advice

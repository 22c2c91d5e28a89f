"""A debugging session's ``run_eagerly=True`` left in the script's compile: every step runs op by op (a small MLP ran
~20x slower than its graph on Zen 4). It stands, as the script's own choice; the stage measures the graph against it
as advice, naming the compile's line, and measures neither steps_per_execution nor jit_compile, which change nothing
under it."""

import importlib.util
import os
import textwrap

import pytest

from tune_helpers import ENV

from redline.tuning.result import Candidate

needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")


EAGER = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import keras
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse",
              run_eagerly=True)
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
"""


def _trial(tmp_path, monkeypatch, text, cands) -> dict:
    """One real trial of ``text``: the script's own compile and ``cands``, one round each."""
    from redline.tuning.search import run_trial

    monkeypatch.setattr(os, "environ", {**ENV})
    p = tmp_path / "train.py"
    p.write_text(textwrap.dedent(text))
    res = run_trial(str(p), [], Candidate("as written"),
                    {"candidates": {"default": {"own": True}, **cands}, "rounds": 1, "seconds": 0.1}, 120)
    assert res["status"] == "ok", res
    return res


def test_the_stage_measures_the_graph_as_advice_and_no_knob_under_the_script_s_run_eagerly():
    from redline.tuning.inprocess import inprocess_stage

    best = Candidate("as written", runs=[40.0, 41.0, 39.0], passes=[40.0], train_runs=[40.0, 40.5],
                     detail={"script_compile": {"run_eagerly": True}})
    asked = []

    def run(cand, settings, timeout):
        asked.append(settings)
        return {"status": "ok", "steps_in_epoch": 32, "script_compile": {"run_eagerly": True},
                "script_compile_at": "train.py:8", "inputs": {}, "input_chosen": None, "not_measured": [],
                "candidates": {n: {"steps_per_s": rates[n]} for n in settings["candidates"]}}

    rates = {"default": [40.0, 41.0, 40.5], "run_eagerly=False": [800.0, 790.0, 810.0], "jit": [39.0, 40.0, 40.1]}

    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None)
    # before: jit and the ladder measured under run_eagerly=True, where they change nothing, and no graph at all
    assert list(asked[0]["candidates"]) == ["default", "run_eagerly=False"] and asked[0]["ladder"] is None, asked
    assert asked[0]["candidates"]["run_eagerly=False"] == {"run_eagerly": False}
    assert st.chosen_knobs is None, st.chosen_knobs  # advice: never applied
    assert len(st.advice) == 1 and st.advice[0].startswith("run_eagerly=False: 800.0 against 40.5 steps/s"), st.advice
    assert "passes run_eagerly=True to Model.compile itself (train.py:8)" in st.advice[0], st.advice
    assert any("run_eagerly=True, under which" in r for r in st.reasons), st.reasons
    assert not any("no candidate beat the script's own compile" in r for r in st.reasons), st.reasons
    # a script without it: jit and the ladder, as before
    best.detail = {"script_compile": {}}
    inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None)
    assert "jit" in asked[-1]["candidates"] and asked[-1]["ladder"], asked[-1]


@needs_tf
def test_a_trial_reads_the_script_s_run_eagerly_and_its_line_and_switches_the_model_to_the_graph_and_back(tmp_path,
                                                                                                         monkeypatch):
    import keras

    from redline.applying.compile_defaults import compile_owner
    from redline.tuning.recompile import Compiles, Recompile
    res = _trial(tmp_path, monkeypatch, EAGER, {"run_eagerly=False": {"run_eagerly": False}})
    assert res["script_compile"] == {"run_eagerly": True} and res["script_compile_at"] == "train.py:8", res
    assert res["candidates"]["run_eagerly=False"]["steps_per_s"], res["candidates"]
    # the switch itself, in this process: to the graph, then back to the script's own run_eagerly=True (before, the
    # model stayed in the graph once switched: the script's own compile measured without its run_eagerly)
    compiles = Compiles(keras)
    try:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse", run_eagerly=True)
        switch = Recompile(model, compiles, lambda cand: {} if cand.get("own") else cand)
        seen = []
        for cand in ({"run_eagerly": False}, {"own": True}, {"run_eagerly": False}):
            switch(cand)
            seen.append(model.run_eagerly)
        assert seen == [False, True, False], seen
        assert compiles.lines[id(model)].startswith("test_run_eagerly.py:"), compiles.lines
    finally:  # Compiles patched Keras' compile: the original back
        compile_owner(keras.Model).compile = compiles.original


FUNCTIONS_EAGER = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
import keras
tf.config.run_functions_eagerly(True)  # from a debugging session
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
"""


@needs_tf
def test_tensorflow_s_eager_flag_set_by_the_script_is_read_with_its_line_and_the_graph_measured_against_it(
        tmp_path, monkeypatch):
    from redline.tuning.inprocess import inprocess_stage
    res = _trial(tmp_path, monkeypatch, FUNCTIONS_EAGER, {"graph": {"run_functions_eagerly": False}})
    assert res["script_compile"] == {"run_functions_eagerly": True} and res["eager_at"] == "train.py:7", res
    assert res["candidates"]["graph"]["steps_per_s"] and res["candidates"]["default"]["steps_per_s"], res
    # the stage: the graph as advice naming the line, no ladder or jit (before: both measured, and no graph)
    best = Candidate("as written", runs=[40.0, 41.0, 39.0], passes=[40.0], train_runs=[40.0, 40.5],
                     detail={"script_compile": {"run_functions_eagerly": True}})
    asked = []

    def run(cand, settings, timeout):
        asked.append(settings)
        return {**res, "inputs": {}, "input_chosen": None, "not_measured": [], "candidates": {
            "default": {"steps_per_s": [40.0, 40.5, 41.0]},
            "run_functions_eagerly=False": {"steps_per_s": [900.0] * 3}}}

    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None)
    assert asked[0]["candidates"] == {"default": {"own": True}, "run_functions_eagerly=False":
                                      {"run_functions_eagerly": False}} and asked[0]["ladder"] is None, asked
    assert st.chosen_knobs is None and len(st.advice) == 1, (st.chosen_knobs, st.advice)
    assert "calls tf.config.run_functions_eagerly(True) itself (train.py:7): remove that line" in st.advice[0]

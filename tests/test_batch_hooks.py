"""Callbacks the script wrote that act on every batch (a loss history, a learning-rate warm-up): Keras calls them once
an execution, so under steps_per_execution N they would see one batch in N. A steps_per_execution the script does not
pass itself is then advice, never chosen; Keras' own callbacks, which count batches themselves, change nothing."""

import importlib.util
import os
import textwrap

import pytest

from tune_helpers import ENV

from redline.tuning.batch_hooks import every_batch
from redline.tuning.result import Candidate



def test_only_the_script_s_own_batch_hooks_count():
    import keras

    class LossHistory(keras.callbacks.Callback):  # the FAQ's
        def on_train_begin(self, logs=None):
            self.losses = []

        def on_batch_end(self, batch, logs=None):
            self.losses.append(logs.get("loss"))

    class EpochOnly(keras.callbacks.EarlyStopping):
        def on_epoch_end(self, epoch, logs=None):
            super().on_epoch_end(epoch, logs)

    class SavesEachBatch(keras.callbacks.ModelCheckpoint):
        def on_train_batch_end(self, batch, logs=None):
            super().on_train_batch_end(batch, logs)

    theirs = [keras.callbacks.ModelCheckpoint("m.keras", save_freq=10), keras.callbacks.EarlyStopping(),
              keras.callbacks.ProgbarLogger(), keras.callbacks.TerminateOnNaN(), keras.callbacks.History(),
              keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: None), EpochOnly()]
    assert every_batch(theirs) == [] and every_batch(None) == []
    mine = [LossHistory(), keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: None),
            SavesEachBatch("m.keras")]
    assert every_batch(theirs + mine) == ["LossHistory.on_batch_end", "LambdaCallback.on_train_batch_end",
                                          "SavesEachBatch.on_train_batch_end"]
    assert every_batch(mine[0]) == ["LossHistory.on_batch_end"]  # one callback bare, as Keras takes it


def test_with_such_a_callback_every_steps_per_execution_is_advice_and_jit_stays_a_choice():
    from redline.tuning.inprocess import inprocess_stage

    best = Candidate("as written", runs=[700.0, 710.0, 690.0], passes=[700.0], train_runs=[700.0, 705.0],
                     detail={"script_compile": {}})
    rates = {"default": [700.0, 705.0, 710.0], "jit": [900.0, 905.0, 910.0], "spe 32": [2000.0, 2010.0, 1990.0]}

    def run(cand, settings, timeout):
        return {"status": "ok", "steps_in_epoch": 900, "script_compile": {}, "inputs": {}, "input_chosen": None,
                "not_measured": [], "batch_callbacks": ["LossHistory.on_batch_end"],
                "candidates": {n: {"steps_per_s": r, "knobs": {} if n == "default" else
                                   {"jit_compile": True} if n == "jit" else {"steps_per_execution": 32}}
                               for n, r in rates.items()}}

    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None)
    # before: spe 32 chosen, and the script's loss history recorded one batch in 32
    assert st.chosen_knobs is not None and st.chosen_knobs.name == "jit", st.chosen_knobs
    assert len(st.advice) == 1 and st.advice[0].startswith("spe 32: 2,000.0 against 705.0"), st.advice
    assert "(LossHistory.on_batch_end)" in st.advice[0] and "once every 32 batches" in st.advice[0], st.advice


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_trial_names_the_script_s_batch_callbacks(tmp_path, monkeypatch):
    from redline.tuning.search import run_trial

    monkeypatch.setattr(os, "environ", {**ENV})
    p = tmp_path / "train.py"
    p.write_text(textwrap.dedent("""
        import os
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import numpy as np
        import keras
        class WarmUp(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                self.model.optimizer.learning_rate.assign(1e-3)
        x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[WarmUp(), keras.callbacks.History()])
    """))
    res = run_trial(str(p), [], Candidate("as written"), {"candidates": {"default": {"own": True}}, "rounds": 1,
                                                          "seconds": 0.1}, 120)
    assert res["status"] == "ok" and res["batch_callbacks"] == ["WarmUp.on_train_batch_begin"], res

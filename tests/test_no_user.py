"""No one is at a trial's keyboard: the script's input() prompts get Enter (its default answer) a few times, then the
end of input, so a prompt before or after fit neither blocks a trial nor fails it, and the completion check compares
the script's real endings. Before, a trial read tune's own stdin: EOFError without a terminal (the script as written
"did not finish", the choice kept unchecked), a wait for an unseen question with one."""

import importlib.util
import os
import textwrap

import pytest

from tune_helpers import ENV

from redline.tuning.confirm import _ending
from redline.tuning.search import Candidate, run_trial

PROMPTS = """
import numpy as np
import keras
input("press Enter to start training ")
x = np.random.default_rng(0).random((128, 4), dtype=np.float32)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(x, x.sum(axis=1, keepdims=True), batch_size=16, epochs=1, verbose=0)
if input("save the model? [y/N] ").strip().lower() == "y":
    model.save("model.keras")
commands = []
try:
    while True:  # a loop that reads commands until the input ends
        commands.append(input("> "))
except EOFError:
    print("COMMANDS", len(commands), flush=True)
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
@pytest.mark.parametrize("mode", ["measure", "complete"])
def test_a_script_that_asks_before_and_after_fit_is_measured_and_completes(tmp_path, monkeypatch, mode):
    monkeypatch.setattr(os, "environ", {**ENV})
    p = tmp_path / "train.py"
    p.write_text(textwrap.dedent(PROMPTS))
    trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1,
             **({"mode": "complete"} if mode == "complete" else {})}
    res = run_trial(str(p), [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}), trial, 120)
    if mode == "complete":  # the whole script: Enter twice, then one more answer and the end of input
        assert res["status"] == "complete" and res["exit_code"] == 0, res
        assert "COMMANDS 1" in res.get("stdout", ""), res.get("stdout", "")[-1000:]
    else:
        assert res["status"] == "ok" and res["candidates"]["default"]["steps_per_s"], res


def test_an_ending_with_a_traceback_is_said_on_one_line():
    said = _ending({"status": "failed", "error": "no result: File \"x.py\", line 3\n    input()\nEOFError: EOF"})
    assert "\n" not in said and said.endswith("EOFError: EOF"), said

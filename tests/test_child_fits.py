"""Fits the script makes in processes it starts (tuning/child_fits.py): a child's fit is cut short in a trial (a
sweep of an hour ran whole in the first trial), and a script whose fits all run in children is told as such, not as
one that never called fit; a child that is a script of its own is named, the one to tune."""

import importlib.util
import os

import pytest

from redline.tuning.child_fits import MESSAGE, say
from redline.tuning.search import Candidate, run_trial
from redline.tuning.trials import sandbox_for
from tune_helpers import script, trial

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

SWEEP = """
import multiprocessing as mp
import numpy as np


def train(lr):
    import keras
    x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(lr), "mse")
    model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    return int(model.optimizer.iterations)


if __name__ == "__main__":
    with mp.get_context("{context}").Pool(2) as pool:
        print("STEPS", pool.map(train, [1e-3, 1e-2]), flush=True)
"""


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_fits_in_the_script_s_pool_workers_are_cut_short_and_named(tmp_path, context):
    s = script(tmp_path, SWEEP.replace("{context}", context))
    res = run_trial(s, [], Candidate("as written"), {**trial(), "discover": True,
                                                     "sandbox": sandbox_for(s, str(tmp_path))}, 150)
    assert res["status"] == "no-fit" and res["error"] == MESSAGE, res
    assert "STEPS [2, 2]" in res["stdout"], res["stdout"]  # one epoch of 2 steps each, not the 3 epochs of 32 written


DRIVER = """
import os, subprocess, sys
for lr in ("0.001", "0.01"):
    out = subprocess.run([sys.executable, "train_one.py", "--lr", lr], capture_output=True, text=True, check=True,
                         ENV)
    print("CHILD SAID", repr(out.stdout.strip().splitlines()[-1]), flush=True)
    print("FOLDER", sorted(os.listdir(".")), flush=True)
"""
TRAIN_ONE = """
import sys
import numpy as np
import keras
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile(keras.optimizers.Adam(float(sys.argv[2])), "mse")
model.fit(x, y, batch_size=16, epochs=3, verbose=0)
print("ITERATIONS", int(model.optimizer.iterations))
model.save(f"model_{sys.argv[2]}.keras")
"""


def test_a_driver_s_python_subprocesses_are_cut_short_unseen_by_it_and_the_one_to_tune_is_named(tmp_path,
                                                                                                 monkeypatch):
    """A driver reading its children's captured output: the trial's word from a child must not be in it. Given an
    environment of its own, a child ran whole, saved its model in the user's folder, and the trial said the script
    never called fit."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)  # run from its folder, as `python driver.py` there
    s = script(folder, DRIVER.replace("ENV", 'env={"PATH": os.environ["PATH"]}'))  # its own (a bare one as hard)
    (folder / "train_one.py").write_text(TRAIN_ONE)
    res = run_trial(s, [], Candidate("as written"), {**trial(), "discover": True,
                                                     "sandbox": sandbox_for(s, str(tmp_path))}, 150)
    assert res["status"] == "no-fit", res
    assert res["error"] == say([["train_one.py", "--lr", "0.001"], ["train_one.py", "--lr", "0.01"]]), res
    assert res["error"].endswith("; tune the one a process runs, e.g. redline tune train_one.py --lr 0.001"), res
    assert res["stdout"].count("CHILD SAID 'ITERATIONS 2'") == 2, res["stdout"]  # cut short; nothing else in it
    assert "model_0.01.keras" in res["stdout"]  # the script sees what its children wrote, in the trial's scratch
    assert sorted(os.listdir(folder)) == ["train.py", "train_one.py"]  # and the user's folder is as it was

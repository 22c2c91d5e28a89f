"""Fits the script makes in processes it starts (tuning/child_fits.py): a child's fit runs as written, and a script
whose fits all run in children is told as such, not as one that never called fit."""

import importlib.util

import pytest

from redline.tuning.child_fits import MESSAGE
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
def test_fits_in_the_script_s_pool_workers_run_as_written_and_are_named(tmp_path, context):
    s = script(tmp_path, SWEEP.replace("{context}", context))
    res = run_trial(s, [], Candidate("as written"), {**trial(), "discover": True,
                                                     "sandbox": sandbox_for(s, str(tmp_path))}, 150)
    assert res["status"] == "no-fit" and res["error"] == MESSAGE, res
    assert "STEPS [96, 96]" in res["stdout"], res["stdout"]  # 3 epochs of 32 steps each: not cut short, not measured

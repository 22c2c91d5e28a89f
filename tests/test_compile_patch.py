"""A model the script saves and loads again comes back compiled under every patch of Model.compile.

Keras' model loading skips compile where ``cls.compile != Trainer.compile`` ("the model's compile() method is
custom"). A patch set on keras.Model, not on the class that defines compile, made every loaded model uncompiled: its
evaluate failed ("No loss to compute" on TensorFlow, "no attribute 'optimizer'" on JAX) in every trial that ran the
rest of the script, and in `redline run` with a choice made per fit.
"""

import importlib.util
import subprocess
import sys

import pytest

from tune_helpers import ENV, script, trial

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")

SAVE_LOAD = """
import numpy as np
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse", metrics=["mae"])
model.fit(x, y, batch_size=32, epochs=2, verbose=0)
model.save("model.keras")
restored = keras.models.load_model("model.keras")
print("RESTORED", restored.compiled, restored.evaluate(x, y, verbose=0), flush=True)
"""

PATCHED = """
import sys, warnings
import keras
from redline.applying import per_fit
from redline.tuning.recompile import Compiles
from redline.applying import compile_defaults
which = sys.argv[1]
if which == "per_fit":
    per_fit.install({}, lambda x: "arrays", log=lambda msg: None)
elif which == "run":  # as `redline run` installs a tuned choice: the compile defaults, then per-fit knobs over them
    compile_defaults.install({"steps_per_execution": 4}, log=lambda msg: None)
    per_fit.install({}, lambda x: "arrays", log=lambda msg: None)
    assert compile_defaults.installed() == {"steps_per_execution": 4}, compile_defaults.installed()
else:
    Compiles(keras)
warnings.simplefilter("error", UserWarning)  # Keras warns where it leaves a loaded model uncompiled
""" + SAVE_LOAD


@pytest.mark.parametrize("which", ["per_fit", "run", "trial"])
def test_a_model_saved_and_loaded_under_a_compile_patch_comes_back_compiled(tmp_path, which):
    s = script(tmp_path, PATCHED)
    r = subprocess.run([sys.executable, s, which], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                       env={**ENV, "KERAS_BACKEND": "jax"})
    assert r.returncode == 0, r.stderr[-1500:]
    line = next(l for l in r.stdout.splitlines() if l.startswith("RESTORED"))
    assert line.startswith("RESTORED True ["), line  # compiled, and its evaluate gave loss and mae


def test_a_trial_runs_the_rest_of_a_script_that_loads_its_saved_model_to_its_end(tmp_path, monkeypatch):
    """The first trial measures fit, then runs the rest of the script cut short: its saved model, loaded, evaluates."""
    from redline.tuning.search import Candidate, run_trial

    s = script(tmp_path, SAVE_LOAD)
    monkeypatch.chdir(tmp_path)  # no sandbox here: the script saves where it runs
    res = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": "jax"}),
                    {**trial({"default": {"own": True}}), "discover": True}, 180)
    assert res["status"] == "ok", res
    assert res["after_fit"]["status"] == "complete", res["after_fit"]

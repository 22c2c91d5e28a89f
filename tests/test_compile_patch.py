"""A model the script saves and loads again comes back compiled under every patch of Model.compile.

Keras' model loading skips compile where ``cls.compile != Trainer.compile`` ("the model's compile() method is
custom"). A patch set on keras.Model, not on the class that defines compile, made every loaded model uncompiled: its
evaluate failed ("No loss to compute" on TensorFlow, "no attribute 'optimizer'" on JAX) in every trial that ran the
rest of the script, and in `redline run` with a choice made per fit.
"""

import importlib.util
import json
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


UNSEEN = """
import numpy as np
import keras
from redline.applying import compile_defaults, per_fit
lines = []
compile_defaults.install({"steps_per_execution": 4}, log=lambda msg: None)
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
def build(width):
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(width), keras.layers.Dense(1)])
    m.compile("adam", "mse")
    return m
seen = per_fit.fingerprint(build(16), (("adam", "mse"), {}), "arrays", 32)
per_fit.install({}, lambda x: "arrays", log=lines.append, known=(seen,), kept=("KERAS_BACKEND=jax",))
class Spe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print("SPE", self.model.steps_per_execution, flush=True)
for width in (16, 32, 64):
    build(width).fit(x, y, batch_size=32, epochs=1, verbose=0, callbacks=[Spe()])
print("LINES", len(lines), lines[0] if lines else "", flush=True)
"""


def test_a_fit_tune_never_saw_runs_with_the_script_s_own_compile_and_says_so_once(tmp_path):
    """A model whose width comes from outside the script's code (an environment variable, a data file): the tuned
    compile defaults were measured on another model."""
    s = script(tmp_path, UNSEEN)
    r = subprocess.run([sys.executable, s], capture_output=True, text=True, timeout=180, cwd=tmp_path, env=ENV)
    assert r.returncode == 0, r.stderr[-1500:]
    assert [l for l in r.stdout.splitlines() if l.startswith("SPE")] == ["SPE 4", "SPE 1", "SPE 1"], r.stdout
    line = next(l for l in r.stdout.splitlines() if l.startswith("LINES"))
    assert line.startswith("LINES 1 redline: this fit of Sequential is not one `redline tune` saw") and \
        "KERAS_BACKEND=jax, set before the script started, stays" in line, line


TWO_FITS = """
import json, os, sys
import numpy as np
import tensorflow as tf
import keras
lines = []
if os.environ.get("KNOWN"):  # as `redline run` installs a tuned choice that saw these fits
    from redline.applying import compile_defaults, per_fit
    from redline.data.rewrite import input_kind
    compile_defaults.install({"steps_per_execution": 4}, log=lambda msg: None)
    per_fit.install({}, input_kind, log=lines.append, known=tuple(json.loads(os.environ["KNOWN"])))
class Spe(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        print("SPE", self.model.steps_per_execution, flush=True)
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
a = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(1)])
a.compile("adam", "mse")
a.fit(x, y, epochs=1, verbose=0, validation_split=0.25, callbacks=[Spe()])
b = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32), keras.layers.Dense(1)])
b.compile(optimizer=keras.optimizers.SGD(), loss="mae")
b.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(64), epochs=1, verbose=0, callbacks=[Spe()])
print("LINES", len(lines), lines, flush=True)
"""


def test_the_fits_a_trial_saw_are_recognised_under_run(tmp_path, monkeypatch):
    """The fingerprints the first trial records (arrays without a batch size, under validation_split; a tf.data
    input) are those `redline run` computes at the same fits: a choice is never taken for another's."""
    from redline.tuning.search import Candidate, run_trial

    s = script(tmp_path, TWO_FITS)
    monkeypatch.chdir(tmp_path)
    res = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "discover": True}, 180)
    assert res["status"] == "ok" and len(res["fits"]) == 2, res
    known = [f["fingerprint"] for f in res["fits"]]
    r = subprocess.run([sys.executable, s], capture_output=True, text=True, timeout=180, cwd=tmp_path,
                       env={**ENV, "KNOWN": json.dumps(known)})
    assert r.returncode == 0, r.stderr[-1500:]
    assert [l for l in r.stdout.splitlines() if l.startswith(("SPE", "LINES"))] == ["SPE 4", "SPE 4", "LINES 0 []"], \
        r.stdout

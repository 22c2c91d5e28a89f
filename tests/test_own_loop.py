"""A script that trains in its own loop (a tf.GradientTape or jax.grad step, no Model.fit): the first trial stops soon
after the loop's first step and says so, where it used to run the whole loop (or read as "the budget is too small");
a warm-up loop before a fit goes on; `redline run --tune` runs such a script without a tuned choice, and remembers."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from tune_helpers import ENV

from redline.tuning.search import Candidate, run_trial

TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1, "own_loop_s": 1.0}
needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")

#: as the "training loop from scratch" guide writes it on TensorFlow; ``STEPS`` steps (10**9: it never ends)
TF_LOOP = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
import keras
x = np.random.default_rng(0).random((64, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
optimizer = keras.optimizers.Adam(1e-3)

@tf.function
def train_step(xb, yb):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(xb, training=True) - yb))
    grads = tape.gradient(loss, model.trainable_weights)
    optimizer.apply(grads, model.trainable_weights)
    return loss

for step in range(STEPS):
    train_step(x, y)
print("LOOP DONE", flush=True)
"""

#: the JAX guide's loop: a jitted stateless step
JAX_LOOP = """
import os
os.environ["KERAS_BACKEND"] = "jax"
import jax
import numpy as np
import keras
x = np.random.default_rng(0).random((64, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
optimizer = keras.optimizers.Adam(1e-3)
optimizer.build(model.trainable_variables)

def loss_fn(tv, ntv, xb, yb):
    pred, ntv = model.stateless_call(tv, ntv, xb, training=True)
    return keras.ops.mean((pred - yb) ** 2), ntv

grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

@jax.jit
def train_step(state, xb, yb):
    tv, ntv, ov = state
    (loss, ntv), grads = grad_fn(tv, ntv, xb, yb)
    tv, ov = optimizer.stateless_apply(ov, grads, tv)
    return loss, (tv, ntv, ov)

state = ([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
         [v.value for v in optimizer.variables])
for step in range(STEPS):
    loss, state = train_step(state, x, y)
print("LOOP DONE", flush=True)
"""


def _trial(tmp_path, monkeypatch, text, trial=TRIAL, timeout=120):
    monkeypatch.setattr(os, "environ", {**ENV})
    p = tmp_path / "train.py"
    p.write_text(textwrap.dedent(text))
    return run_trial(str(p), [], Candidate("as written"), trial, timeout)


@needs_tf
def test_a_loop_that_never_calls_fit_is_stopped_soon_after_its_first_step_and_said_where(tmp_path, monkeypatch):
    res = _trial(tmp_path, monkeypatch, TF_LOOP.replace("STEPS", "10**9"))
    # before: the loop ran until the trial's timeout ("the budget is too small for even one trial")
    assert res["status"] == "own-loop", res
    assert res["own_loop_at"] == "train.py:20" and "trains in its own loop" in res["error"], res
    assert "LOOP DONE" not in res.get("stdout", ""), res["stdout"][-1000:]


@needs_jax
def test_a_jax_loop_of_stateless_steps_is_stopped_the_same_way(tmp_path, monkeypatch):
    res = _trial(tmp_path, monkeypatch, JAX_LOOP.replace("STEPS", "10**9"))
    # the step's own line: jax.jit traces the Python function in place
    assert res["status"] == "own-loop" and res["own_loop_at"] == "train.py:22", res


#: batch by batch with Keras' own step, as older tutorials (GANs among them) write it
BATCHES = """
import os
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np
import keras
x = np.random.default_rng(0).random((64, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
for epoch in range(STEPS):
    for start in range(0, 64, 16):
        model.train_on_batch(x[start:start + 16], y[start:start + 16])
print("LOOP DONE", flush=True)
"""


@needs_jax
def test_a_train_on_batch_loop_is_named_as_such_with_what_would_make_it_tunable(tmp_path, monkeypatch):
    """It was "a Keras optimizer stepped outside Model.fit": true, but not the words of a script that never touches
    an optimizer itself."""
    res = _trial(tmp_path, monkeypatch, BATCHES.replace("STEPS", "10**9"), {**TRIAL, "own_loop_s": 1.0})
    assert res["status"] == "own-loop" and res["own_loop_at"] == "train.py:11", res
    assert "batch by batch with Model.train_on_batch (train.py:11)" in res["error"], res["error"]
    assert "the same batches given to fit" in res["error"], res["error"]


@needs_tf
def test_a_short_loop_that_ends_says_it_trained_in_its_own_loop_and_a_warm_up_loop_before_fit_goes_on(tmp_path,
                                                                                                    monkeypatch):
    res = _trial(tmp_path, monkeypatch, TF_LOOP.replace("STEPS", "3"))
    assert res["status"] == "no-fit" and "trains in its own loop" in res["error"] and "train.py:20" in res["error"], res
    # a warm-up in its own loop, then fit within the wait: measured as any script
    warm = TF_LOOP.replace("STEPS", "3") + 'model.compile("adam", "mse")\nmodel.fit(x, y, batch_size=8, epochs=1)\n'
    res = _trial(tmp_path, monkeypatch, warm, {**TRIAL, "own_loop_s": 60.0})
    assert res["status"] == "ok" and res["candidates"]["default"]["steps_per_s"], res


@needs_jax
def test_run_tune_runs_a_script_of_its_own_loop_without_a_choice_and_remembers_it(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    s = folder / "train.py"
    s.write_text(textwrap.dedent(JAX_LOOP.replace("STEPS", "3")))  # JAX's: a process starts in half TensorFlow's time
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    runs = [subprocess.run([sys.executable, "-m", "redline", "run", "--tune", str(s)], capture_output=True, text=True,
                           env=env, timeout=300, cwd=folder) for _ in range(2)]
    for r in runs:  # before: exit 2, "cannot be tuned", and the script never ran
        assert r.returncode == 0 and "LOOP DONE" in r.stdout, r.stderr[-2000:]
        assert "not tuning: " in r.stderr and "trains in its own loop" in r.stderr, r.stderr[-2000:]
    assert "found by its first trial" in runs[1].stderr, runs[1].stderr[-2000:]
    # the kept finding is that it cannot be tuned, not that tuning would not pay: `redline tune` would fail the same way
    assert "tunes it anyway" not in runs[1].stderr, runs[1].stderr[-2000:]
    shown = subprocess.run([sys.executable, "-m", "redline", "tune", "--show", str(s)], capture_output=True, text=True,
                           env=env, timeout=120, cwd=folder)
    assert "that it cannot be tuned: " in shown.stdout and "would not pay" not in shown.stdout, shown.stdout
    assert "not tuned yet" not in shown.stdout, shown.stdout

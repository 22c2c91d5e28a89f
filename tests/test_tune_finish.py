"""The whole script must still finish under a tuned choice (the completion trial), and tuning leaves the user's files
as they were (the trial's sandbox)."""

import importlib.util
import os

import pytest

import machines as m
from redline.tuning.search import Candidate, run_trial
from tune_helpers import ENV, script

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("jax") is None:
    pytest.skip("TensorFlow and JAX are both needed", allow_module_level=True)

TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1}


# -- the whole script must still finish; the user's files stay as they are ----------------------------------------------

def test_a_choice_the_script_does_not_finish_under_is_dropped_with_the_line(monkeypatch):
    from redline.tuning import search

    completions = []

    def fake(script, args, cand, trial, timeout, **_):
        if trial.get("mode") == "complete":
            completions.append(cand.name)
            if cand.name == "backend jax":
                return {"status": "incomplete", "error": "AttributeError: 'Variable' object has no attribute '_id'",
                        "where": "train.py:12"}
            return {"status": "complete", "exit_code": 0}
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0] * 3}}, "inputs": {},
                    "input_chosen": None, "not_measured": []}
        r = {"as written": 100.0, "backend jax": 300.0, "1 intra-op thread": 150.0}.get(cand.name, 50.0)
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert "does not finish" in jax.error and "train.py:12" in jax.error and "'_id'" in jax.error
    assert result.chosen_process.name == "1 intra-op thread"  # the next best, checked in turn
    assert completions == ["as written", "backend jax", "1 intra-op thread"]
    assert any("backend jax dropped" in r for r in result.reasons)


def test_where_the_script_does_not_finish_as_written_it_stays_and_tune_says_so(monkeypatch):
    """The script fails after fit as written (a results/ folder it reads is not there): JAX, 3x and failing the same
    way, was kept. Nothing shows a choice finishes where the script finishes: as written stays, and tune says why."""
    from redline.tuning import search

    def fake(script, args, cand, trial, timeout, **_):
        if trial.get("mode") == "complete":
            return {"status": "incomplete", "error": "FileNotFoundError: results/", "where": "train.py:30"}
        r = 300.0 if cand.name == "backend jax" else 100.0
        if "ladder" in trial:  # (in jax's process, it is jax's second process too)
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [r] * 3}}, "inputs": {},
                    "input_chosen": None, "not_measured": []}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_process.name == "as written" and not result.not_measured, result.not_measured
    assert any("the script as written fails after fit" in r and "train.py:30" in r and "'backend jax' is not kept" in r
               for r in result.reasons), result.reasons
    # the in-process stage ran in the script as written's process, not in a second one of jax, and says so
    assert not any("the in-process stage's trial in it" in r for r in result.reasons), result.reasons
    assert result.inprocess and result.chosen_process is result.default


AFTER_FIT = {  # code after fit, as published examples write it: (the code, does it finish on JAX?)
    "saved_model": ("import tensorflow as tf\ntf.saved_model.save(model, 'exported')\n", False),
    "gradient_tape": ("import tensorflow as tf\nwith tf.GradientTape() as tape:\n"
                      "    loss = tf.reduce_mean(model(x[:4]))\n"
                      "grads = tape.gradient(loss, model.trainable_variables)\n", False),
    # Keras-only code, then a tf.summary writer: measured, both finish on JAX too (model.keras and logs/ go to the
    # trial's scratch all the same); one script, so one pair of trials
    "keras_then_summary": ("model.save('model.keras')\nprint(model.evaluate(x, y, verbose=0))\n"
                           "import tensorflow as tf\nw = tf.summary.create_file_writer('logs')\nwith w.as_default():\n"
                           "    tf.summary.write('loss', model.evaluate(x, y, verbose=0), step=model.optimizer.iterations)\n",
                           True),
}
BASE = """
import numpy as np, keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=50, verbose=0)
"""


TENSORBOARD = """
import numpy as np
from tensorflow import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[keras.callbacks.TensorBoard(log_dir="./logs")])
"""


TFRECORD = """
import numpy as np
import tensorflow as tf
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
with tf.io.TFRecordWriter("data.tfrecord") as w:
    for row in x:
        w.write(tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=row))})).SerializeToString())
spec = {"x": tf.io.FixedLenFeature([8], tf.float32)}
ds = tf.data.TFRecordDataset("data.tfrecord").map(lambda r: tf.io.parse_single_example(r, spec)["x"])
ds = ds.map(lambda v: (v, tf.reduce_sum(v, keepdims=True))).batch(16)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds, epochs=3, verbose=0)
"""


LIST_FILES = """
import os
import numpy as np
import tensorflow as tf
import keras
os.makedirs("shards", exist_ok=True)
for i in range(3):
    with open(f"shards/part-{i}.csv", "w") as f:
        f.write("\\n".join(",".join(f"{v:.4f}" for v in row) for row in np.random.default_rng(i).random((128, 8))))
if os.path.exists("shards/part-2.csv"):
    os.remove("shards/part-2.csv")  # a shard the script drops: not to be read
files = tf.data.Dataset.list_files("shards/*.csv", shuffle=False)
assert len(list(files)) == 2, list(files)
ds = tf.data.TextLineDataset(files).map(lambda l: tf.strings.to_number(tf.strings.split(l, ",")))
ds = ds.map(lambda v: (v, tf.reduce_sum(v, keepdims=True))).batch(16)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds, epochs=3, verbose=0)
"""

CACHE_FILE = """
import numpy as np
import tensorflow as tf
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
ds = tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).map(lambda a, b: (a * 2.0, b))
ds = ds.cache("train_cache").shuffle(256).batch(16)  # a cache on disk, as the tf.data performance guide shows it
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds, epochs=3, verbose=0)
"""

TF_CHECKPOINT = """
import numpy as np
import tensorflow as tf
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
ckpt = tf.train.Checkpoint(model=model)
manager = tf.train.CheckpointManager(ckpt, "./tf_ckpts", max_to_keep=2)  # the "Training checkpoints" guide's way
print("RESUMING FROM", manager.latest_checkpoint, flush=True)
ckpt.restore(manager.latest_checkpoint)
model.fit(x, x.sum(axis=1, keepdims=True), batch_size=16, epochs=3, verbose=0)
manager.save()
ckpt.write(file_prefix="single/ckpt")
"""

DATASET_SAVE = """
import numpy as np
import tensorflow as tf
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
tf.data.Dataset.from_tensor_slices((x, x.sum(axis=1, keepdims=True))).save("prepared")  # preprocessed once, kept
ds = tf.data.Dataset.load("prepared").snapshot("snap").batch(16)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds, epochs=3, verbose=0)
"""

CSV_READERS = """
import numpy as np
import tensorflow as tf
import keras
with open("data.csv", "w") as f:  # TensorFlow's "Load CSV data" tutorial, with a file the script writes first
    rows = np.random.default_rng(0).random((256, 4))
    f.write("a,b,c,label\\n" + "\\n".join(",".join(f"{v:.4f}" for v in row) for row in rows))
assert len(list(tf.data.TextLineDataset("data.csv"))) == 257 and tf.io.read_file("data.csv").numpy().startswith(b"a,b")
assert len(list(tf.data.experimental.CsvDataset("data.csv", [0.0] * 4, header=True))) == 256
ds = tf.data.experimental.make_csv_dataset("data.csv", batch_size=16, label_name="label", num_epochs=1, shuffle=False)
ds = ds.map(lambda feats, label: (tf.stack(list(feats.values()), axis=1), label))
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds, epochs=3, verbose=0)
"""

NATIVE_WRITERS = {  # what bypasses Python's files, as scripts use it
    # Dataset.save / load / snapshot: TensorFlow writes and reads the dataset's files itself
    "dataset_save": (DATASET_SAVE, True),
    # tf.data.Dataset.cache(filename): TensorFlow writes train_cache.index and train_cache.data-* itself (they landed
    # in the user's folder, and a trial killed mid-write could leave a cache the real run then trusts)
    "cache": (CACHE_FILE, True),
    # the tf.data tutorials' pattern: tf.io.TFRecordWriter writes a file the script then reads with TFRecordDataset;
    # written into the user's folder before; the reader now finds it in the shadow
    "tfrecord": (TFRECORD, True),
    # files the script wrote (and one it deleted), matched by tf.data.Dataset.list_files, a native glob that saw
    # neither the shadow nor the deletion: "No files matched pattern"
    "list_files": (LIST_FILES, True),
    # a CSV file the script wrote, read back by TensorFlow's own readers: make_csv_dataset's file pattern (the legacy
    # gfile.Glob) said "No files match `file_pattern` data.csv" and the tune stopped; TextLineDataset, CsvDataset and
    # tf.io.read_file of that name read the user's folder
    "csv_readers": (CSV_READERS, True),
    # Keras' TensorBoard callback makes its writer through ``import tensorflow.summary``, a module object apart from
    # ``tf.summary`` as TensorFlow's import leaves it: the measurement (which runs the script's callbacks) wrote
    # logs/train/events.* into the user's folder (its figures need the tensorboard package: the test extra installs
    # it; without it the callback fails and the trial has no figures, but still writes nothing here)
    "tensorboard": (TENSORBOARD, importlib.util.find_spec("tensorboard") is not None),
}


@pytest.mark.parametrize("name", sorted(NATIVE_WRITERS))
def test_native_writers_go_to_the_trial_s_scratch_and_the_script_reads_them_there(tmp_path, monkeypatch, name):
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed")
    text, measured = NATIVE_WRITERS[name]
    s = script(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    trial = {**TRIAL, "sandbox_root": str(tmp_path.parent)}
    res = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}), trial, 120)
    assert res["status"] == "ok", res.get("error")
    assert bool(res["candidates"]["default"].get("steps_per_s")) == measured, res["candidates"]
    assert sorted(os.listdir(tmp_path)) == ["train.py"]


PROFILED = """
import numpy as np
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=2, verbose=0,
          callbacks=[keras.callbacks.TensorBoard(log_dir="./logs", profile_batch=(2, 4))])
PROFILE_BLOCK
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_profiled_tensorboard_callback_writes_its_traces_into_the_trial_s_scratch(tmp_path, monkeypatch, backend):
    """Keras' TensorBoard(profile_batch=...) starts the backend's profiler, which writes its traces natively
    (logs/train/plugins/profile/<time>/*.xplane.pb): 31 files were left in the user's folder by one tune. The profiler's
    own context managers too (tf.profiler.experimental.Profile, jax.profiler.trace)."""
    if importlib.util.find_spec(backend) is None or importlib.util.find_spec("tensorboard") is None:
        pytest.skip(f"{backend} and tensorboard are needed")
    block = ('import tensorflow as tf\nwith tf.profiler.experimental.Profile("prof"):\n    model.predict(x, verbose=0)'
             if backend == "tensorflow" else
             'import jax\nwith jax.profiler.trace("prof"):\n    model.predict(x, verbose=0)')
    s = script(tmp_path, PROFILED.replace("PROFILE_BLOCK", block))
    monkeypatch.chdir(tmp_path)
    res = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": backend}),
                    {**TRIAL, "sandbox_root": str(tmp_path.parent), "follow": True}, 120)
    assert res["status"] == "ok", res.get("error")
    assert sorted(os.listdir(tmp_path)) == ["train.py"], sorted(str(p) for p in tmp_path.rglob("*"))


GFILE_OPS = """
import numpy as np
import tensorflow as tf
import keras
if tf.io.gfile.exists("logs"):  # a fresh log folder each run, as TensorBoard guides clear it
    tf.io.gfile.rmtree("logs")
assert not tf.io.gfile.exists("logs")
tf.io.gfile.makedirs("logs/run1")
tf.io.gfile.copy("notes.txt", "notes_copy.txt", overwrite=True)
tf.io.gfile.rename("notes_copy.txt", "notes_moved.txt")
try:
    tf.io.gfile.rename("notes.txt", "notes_moved.txt")
except tf.errors.AlreadyExistsError:
    pass
tf.io.gfile.remove("notes_moved.txt")
try:
    tf.io.gfile.remove("notes_moved.txt")
except tf.errors.NotFoundError:
    pass
assert tf.io.gfile.isdir("logs/run1") and sorted(tf.io.gfile.listdir(".")) == ["logs", "notes.txt", "train.py"]
x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, x.sum(axis=1, keepdims=True), batch_size=16, epochs=3, verbose=0)
"""


def test_tf_io_gfile_folder_operations_keep_the_user_s_files_and_the_script_sees_its_own(tmp_path, monkeypatch):
    """tf.io.gfile.rmtree / remove / rename / copy / makedirs ran in TensorFlow itself, past the sandbox: a script that
    cleared its log folder deleted the user's logs in every trial."""
    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed")
    s = script(tmp_path, GFILE_OPS)
    (tmp_path / "logs" / "old").mkdir(parents=True)
    (tmp_path / "logs" / "old" / "events.txt").write_text("the user's earlier run")
    (tmp_path / "notes.txt").write_text("notes")
    monkeypatch.chdir(tmp_path)
    res = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}),
                    {**TRIAL, "sandbox_root": str(tmp_path.parent)}, 120)
    assert res["status"] == "ok", res.get("error")
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
        "logs", "logs/old", "logs/old/events.txt", "notes.txt", "train.py"]
    assert (tmp_path / "logs" / "old" / "events.txt").read_text() == "the user's earlier run"


def test_a_script_that_resumes_from_its_checkpoint_folder_resumes_in_a_trial_and_the_folder_stays(tmp_path, monkeypatch):
    """tf.train.Checkpoint and CheckpointManager write their .index / .data-* / checkpoint files from TensorFlow
    itself, past Python's files: a new checkpoint landed in the user's folder. A CheckpointManager folder from the
    script's earlier run: the trial's manager starts from a copy of it in the scratch folder (the script resumes as
    it would), and the user's files keep their bytes."""
    import hashlib
    import subprocess
    import sys

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("TensorFlow is not installed")
    s = script(tmp_path, TF_CHECKPOINT)
    monkeypatch.chdir(tmp_path)
    earlier = subprocess.run([sys.executable, s], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                             env={**ENV, "KERAS_BACKEND": "tensorflow"})
    assert earlier.returncode == 0 and "RESUMING FROM None" in earlier.stdout, earlier.stderr[-1000:]

    def files():
        return {str(p.relative_to(tmp_path)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(tmp_path.rglob("*")) if p.is_file()}

    before = files()
    trial = {**TRIAL, "mode": "complete", "sandbox_root": str(tmp_path.parent)}
    res = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}), trial, 120)
    assert res["status"] == "complete" and res["exit_code"] == 0, res
    assert "tf_ckpts/ckpt-1" in res["stdout"].split("RESUMING FROM", 1)[1].splitlines()[0], res["stdout"][-500:]
    assert files() == before


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(AFTER_FIT))
def test_the_completion_trial_runs_the_code_after_fit_on_each_backend(tmp_path, monkeypatch, name):
    """The whole script, training cut to a few steps: TensorFlow-only code after fit finishes on TensorFlow and fails
    on JAX at its own line; Keras-only code (and a tf.summary writer) finishes on both. Nothing lands in the
    script's folder."""
    code, on_jax = AFTER_FIT[name]
    s = script(tmp_path, BASE + code)
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    trial = {**TRIAL, "mode": "complete", "sandbox_root": str(tmp_path.parent)}
    tf_run = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}), trial, 120)
    assert tf_run["status"] == "complete" and tf_run["exit_code"] == 0 and tf_run["calls"]["fit"] == 1, tf_run
    jax_run = run_trial(s, [], Candidate("backend jax", {"KERAS_BACKEND": "jax"}), trial, 120)
    if on_jax:
        assert jax_run["status"] == "complete", jax_run
    else:
        assert jax_run["status"] == "incomplete" and jax_run["where"].startswith("train.py:"), jax_run
        assert int(jax_run["where"].split(":")[1]) > BASE.count("\n")  # the line after fit where it fails
    assert sorted(os.listdir(tmp_path)) == before  # exported/, logs/, model.keras went to the trial's scratch


WRITER = """
import os, shutil
import numpy as np, keras
with open("log.txt", "a") as f:
    f.write("another run\\n")
with open("notes.txt", "w") as f:
    f.write("fresh")
os.remove("old.txt")
os.makedirs("out", exist_ok=True)
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=3, verbose=0,
          callbacks=[keras.callbacks.ModelCheckpoint("out/ck.weights.h5", save_weights_only=True),
                     keras.callbacks.CSVLogger("out/log.csv")])
model.save("model.keras")
shutil.rmtree("data_dir")
os.rename("rename_me.txt", "renamed.txt")
print("READBACK", open("notes.txt").read(), open("log.txt").read().count("run"), os.path.exists("old.txt"),
      os.path.exists("renamed.txt"), os.path.exists("data_dir"), sorted(os.listdir("out")), flush=True)
"""


def _folder(tmp_path):
    for name, text in (("log.txt", "first run\n"), ("old.txt", "old"), ("rename_me.txt", "r"), ("model.keras", "not a model"),
                       ("data_dir/a.txt", "a")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    return script(tmp_path, WRITER)


def _hashes(folder):
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_a_script_that_writes_appends_deletes_saves_and_checkpoints_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    s = _folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = _hashes(tmp_path)
    res = run_trial(s, [], Candidate("as written"), {**TRIAL, "mode": "complete", "sandbox_root": str(tmp_path.parent)}, 120)
    assert res["status"] == "complete", res
    # the script saw its own writes as it would have: appended, written, deleted, renamed, checkpointed
    assert "READBACK fresh 2 False True False ['ck.weights.h5', 'log.csv']" in res["stdout"], res["stdout"][-800:]
    assert _hashes(tmp_path) == before

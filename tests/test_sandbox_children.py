"""Processes a trial's script starts get the trial's sandbox too: a spawn or forkserver child of multiprocessing (a
fresh interpreter, which runs the script's top-level code again) and a Python subprocess wrote into the user's folder,
where a forked child already wrote into the scratch folder. Their writes land in the trial's scratch, where the
script reads them back."""

import importlib.util
import os
import textwrap

import pytest

from tune_helpers import ENV as TUNE_ENV

from redline.tuning.search import Candidate, run_trial

ENV = {k: v for k, v in TUNE_ENV.items() if k != "PYTHONPATH"}  # the children's path is the trial's to set
TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1}

CHILDREN = """
import multiprocessing as mp
import os
import subprocess
import sys
open("top.log", "a").write(f"{os.getpid()}\\n")  # top-level code: a spawn child runs it again


def work(i):
    with open(f"child-{i}.txt", "w") as f:
        f.write(str(i))
    return i


if __name__ == "__main__":
    with mp.get_context(METHOD).Pool(2) as pool:
        pool.map(work, range(2))
    subprocess.run([sys.executable, "-c", "open('sub.txt', 'w').write('s')"], check=True)
    print("READ BACK", sorted(open(f).read() for f in ("child-0.txt", "child-1.txt", "sub.txt")), flush=True)
    import numpy as np
    import keras
    x = np.random.default_rng(0).random((128, 4), dtype=np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(x, x.sum(axis=1, keepdims=True), batch_size=16, epochs=1, verbose=0)
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
def test_the_script_s_child_processes_write_into_the_trial_s_scratch(tmp_path, monkeypatch, method):
    monkeypatch.setattr(os, "environ", {**ENV})
    folder = tmp_path / "work"
    folder.mkdir()
    p = folder / "train.py"
    p.write_text(textwrap.dedent(CHILDREN.replace("METHOD", repr(method))))
    monkeypatch.chdir(folder)
    res = run_trial(str(p), [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}),
                    {**TRIAL, "sandbox_root": str(tmp_path)}, 120)
    assert res["status"] == "ok", (res.get("error"), res.get("stderr", "")[-2000:])
    assert "READ BACK ['0', '1', 's']" in res["stdout"], res["stdout"][-2000:]
    # before: top.log (spawn), child-*.txt (spawn, forkserver) and sub.txt (every method) in the user's folder
    assert sorted(os.listdir(folder)) == ["train.py"], sorted(os.listdir(folder))


NAMED = """
import keras, numpy as np
import os
CKPT = "{ckpt}"                               # as Keras' own ModelCheckpoint example names one: /tmp/ckpt/...
os.makedirs(os.path.dirname(CKPT), exist_ok=True)
with open(CKPT, "w") as f:
    f.write("a trial's model")
print("READ BACK", open(CKPT).read())
open("{log}", "a").write("a trial ran\\n")    # a folder without a suffix: the path itself is protected
x = np.zeros((64, 4), "float32")
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
m.compile("sgd", "mse")
m.fit(x, x[:, :1], epochs=2, verbose=0)
"""


def test_named_folders_are_the_absolute_paths_a_script_names_but_no_system_or_temporary_folder_whole(tmp_path,
                                                                                                      monkeypatch):
    from redline.tuning.trials import named_folders

    monkeypatch.setenv("HOME", "/home/tester")  # "~" as a user's, whatever the machine's HOME is

    s = tmp_path / "train.py"
    s.write_text('a = "/tmp/ckpt/checkpoint.model.keras"\nb = "/tmp/backup"\nc = "~/logs/fit"\nd = "/tmp"\n'
                 'e = "/tmp/run_" + "x"\nf = "/data/train.csv"\ng = "relative/path.txt"\nh = "/usr/lib/x.so"\n'
                 'i = "/tmp/checkpoint.weights.h5"\nj = "/tmp/"\nk = "/"\n')
    # right in the temporary folder: the paths that begin with the file or the prefix, not the folder
    assert named_folders(str(s)) == sorted(["/tmp/ckpt", "/tmp/backup", "/home/tester/logs/fit", "/data",
                                            "/tmp/run_*", "/tmp/checkpoint.weights.h5*"])
    s.write_text('import os\nlog_dir = f"/tmp/tb/run_{os.getpid()}"\nckpt = "/srv/models/run_" + "1"\n'
                 'data = "~/.keras/datasets/mnist.npz"\nsaved = "~/model.keras"\n')
    assert named_folders(str(s)) == ["/home/tester", "/srv/models", "/tmp/tb"]  # a home: its hidden folders stay out
    (tmp_path / "config.json").write_text('{"output_dir": "/mnt/runs/exp1", "url": "https://example.org/a/b"}')
    (tmp_path / "train.yaml").write_text("checkpoints: ~/ckpts\nlr: 0.001\n")
    assert named_folders(str(s)) == sorted(["/home/tester", "/srv/models", "/tmp/tb", "/mnt/runs/exp1",
                                            "/home/tester/ckpts"])
    (tmp_path / "broken.py").write_text("def (:\n")
    assert named_folders(str(tmp_path / "broken.py")) == []


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_trial_writes_an_absolute_path_the_script_names_into_its_scratch(tmp_path, monkeypatch):
    """`redline tune` of a script checkpointing to /tmp/ckpt/checkpoint.model.keras (outside its folder) overwrote the
    checkpoint a user kept there with a trial's model."""
    monkeypatch.setattr(os, "environ", {**ENV})
    folder, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    folder.mkdir()
    (elsewhere / "ckpt").mkdir(parents=True)
    ckpt = elsewhere / "ckpt" / "checkpoint.model.keras"
    ckpt.write_text("my best model")
    p = folder / "train.py"
    p.write_text(NAMED.replace("{ckpt}", str(ckpt)).replace("{log}", str(elsewhere / "logs")))
    monkeypatch.chdir(folder)
    (tmp_path / "scratch").mkdir()
    res = run_trial(str(p), [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}),
                    {**TRIAL, "sandbox_root": str(tmp_path / "scratch")}, 120)
    assert res["status"] == "ok", (res.get("error"), res.get("stderr", "")[-2000:])
    assert "READ BACK a trial's model" in res["stdout"], res["stdout"][-2000:]  # the script reads its own write
    assert ckpt.read_text() == "my best model" and sorted(os.listdir(elsewhere)) == ["ckpt"]
    assert sorted(os.listdir(elsewhere / "ckpt")) == ["checkpoint.model.keras"]


IN_TMP = """
import numpy as np
import keras
CKPT = "{ckpt}"
x = np.zeros((64, 4), "float32")
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
m.compile("sgd", "mse")
m.save_weights(CKPT)  # before fit: a timed trial ends in it
m.load_weights(CKPT)
open("{ckpt}" + ".log", "w").write("a trial ran")
print("READ BACK", open(CKPT + ".log").read(), flush=True)
m.fit(x, x[:, :1], epochs=2, verbose=0, callbacks=[keras.callbacks.ModelCheckpoint(CKPT, save_weights_only=True)])
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_trial_writes_a_file_the_script_names_right_in_the_temporary_folder_into_its_scratch(tmp_path, monkeypatch):
    """The published vision transformer example checkpoints to "/tmp/checkpoint.weights.h5" and loads it back after
    fit: `redline tune` overwrote the file a user had there with a trial's weights (the temporary folder as a whole
    cannot be protected)."""
    import uuid

    monkeypatch.setattr(os, "environ", {**ENV})
    ckpt = f"/tmp/redline-test-{uuid.uuid4().hex}.weights.h5"
    p = tmp_path / "train.py"
    p.write_text(IN_TMP.replace("{ckpt}", ckpt))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scratch").mkdir()
    try:
        with open(ckpt, "w") as f:
            f.write("my best weights")
        res = run_trial(str(p), [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}),
                        {**TRIAL, "sandbox_root": str(tmp_path / "scratch")}, 120)
        assert res["status"] == "ok", (res.get("error"), res.get("stderr", "")[-2000:])
        assert "READ BACK a trial ran" in res["stdout"], res["stdout"][-2000:]  # the script reads its own writes
        assert open(ckpt).read() == "my best weights" and not os.path.exists(ckpt + ".log")
    finally:
        for path in (ckpt, ckpt + ".log"):
            if os.path.exists(path):
                os.remove(path)


AUTOGRAPH = """
import numpy as np
import tensorflow as tf
import keras


@tf.function
def prep(a, b):
    if tf.reduce_sum(a) > 0:  # autograph converts this: it writes a module in the temporary folder and imports it
        a = a * 2.0
    return a, b


x = np.ones((64, 4), "float32")
ds = tf.data.Dataset.from_tensor_slices((x, x[:, :1])).map(prep).batch(8)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
m.compile("sgd", "mse")
m.fit(ds, epochs=2, verbose=0)
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_trial_s_temporary_files_go_with_its_scratch_where_tmpdir_lies_in_the_user_s_folder(tmp_path, monkeypatch):
    """TMPDIR=./tmp in the script's folder: autograph's generated module went to the sandbox's shadow and was imported
    from TMPDIR, and the trial failed ("Using a symbolic `tf.Tensor` as a Python `bool`")."""
    folder = tmp_path / "work"
    (folder / "tmp").mkdir(parents=True)
    monkeypatch.setattr(os, "environ", {**ENV, "TMPDIR": str(folder / "tmp")})
    p = folder / "train.py"
    p.write_text(AUTOGRAPH)
    monkeypatch.chdir(folder)
    (tmp_path / "scratch").mkdir()
    res = run_trial(str(p), [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}),
                    {**TRIAL, "sandbox_root": str(tmp_path / "scratch")}, 120)
    assert res["status"] == "ok", (res.get("error"), res.get("stderr", "")[-2000:])
    assert os.listdir(folder / "tmp") == []  # nothing of the trial's left in the user's temporary folder either


def test_tune_s_check_afterwards_reads_the_paths_that_begin_with_a_prefix(tmp_path):
    """The files a prefix stands for (a checkpoint right in the temporary folder) are in what tune checks afterwards."""
    from redline.tuning.sandbox import changes, fingerprint

    (tmp_path / "ckpt.weights.h5").write_text("w")
    (tmp_path / "ckpt.weights.h5.d").mkdir()
    (tmp_path / "ckpt.weights.h5.d" / "part").write_text("p")
    (tmp_path / "other.txt").write_text("o")
    prefix = str(tmp_path / "ckpt.weights.h5") + "*"
    before = fingerprint([prefix])
    assert sorted(before) == [str(tmp_path / "ckpt.weights.h5"), str(tmp_path / "ckpt.weights.h5.d" / "part")]
    (tmp_path / "ckpt.weights.h5").write_text("a trial's weights")
    (tmp_path / "ckpt.weights.h5.index").write_text("i")
    assert changes(before, fingerprint([prefix])) == [str(tmp_path / "ckpt.weights.h5"),
                                                       str(tmp_path / "ckpt.weights.h5.index")]

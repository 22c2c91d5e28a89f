"""The script's own choices stand: a backend it pins, its own compile arguments, the variables the user set. What tune
measures against them is advice, never applied; `redline run` applies exactly the measured choice and nothing else;
a trial's processes end with it."""

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import machines as m
from redline.tuning import cache
from redline.tuning.search import Candidate, TuneResult, run_trial

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("jax") is None:
    pytest.skip("TensorFlow and JAX are both needed", allow_module_level=True)

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "KERAS_BACKEND", "TF_CONFIG",
                                                                   "XDG_CACHE_HOME", "TF_ENABLE_ONEDNN"))}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"

#: keras.io style: the backend pinned before `import keras`
PINNED = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import sys
import numpy as np
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
print("AFTER FIT", keras.backend.backend(), model.steps_per_execution,
      sorted(k + "=" + v for k, v in os.environ.items() if k.startswith(("TF_NUM", "OMP_", "MKL_", "TF_ENABLE_ONEDNN"))),
      "release", getattr(getattr(getattr(sys.modules.get("keras.src.backend.tensorflow.trainer"), "TFEpochIterator", None),
                                 "_get_iterator", None), "__redline_release__", False),
      "ahead", getattr(vars(getattr(sys.modules.get("keras.src.backend.tensorflow.trainer"), "TensorFlowTrainer",
                                    object)).get("_maybe_symbolic_build"), "__redline_build_ahead__", False))
"""

TRIAL = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.1}


def script(tmp_path, text, name="train.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


# -- the trial process -----------------------------------------------------------------------------------------------

def test_a_trial_runs_on_the_backend_the_script_pins_and_says_where_it_pins_it(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "environ", {**ENV})  # the trial's environment: none of this test process's settings
    s = script(tmp_path, PINNED)
    res = run_trial(s, [], Candidate("backend jax", {"KERAS_BACKEND": "jax"}), TRIAL, 120)
    assert res["status"] == "ok", res
    assert res["backend"] == "tensorflow" and res["pinned_backend"] == "tensorflow" and res["pinned_at"] == "train.py:3"
    # measured against the script's line only where the search asks for it: then the line is ignored in the trial
    res = run_trial(s, [], Candidate("backend jax", {"KERAS_BACKEND": "jax"}, trial={"force_backend": True}), TRIAL, 120)
    assert res["status"] == "ok" and res["backend"] == "jax" and res["pin_ignored"], res


def test_set_backend_is_a_pin_too_and_the_trial_follows_keras_imported_anew(tmp_path, monkeypatch):
    """keras.config.set_backend removes keras from sys.modules and imports it again: the harness's fit was patched on
    the old Model, so the trial said the script never calls fit."""
    monkeypatch.setattr(os, "environ", {**ENV})
    s = script(tmp_path, PINNED.replace('os.environ["KERAS_BACKEND"] = "tensorflow"', "")
               .replace("import keras\n", 'import keras\nkeras.config.set_backend("jax")\nimport keras\n', 1))
    res = run_trial(s, [], Candidate("as written"), TRIAL, 120)
    assert res["status"] == "ok", res
    assert res["backend"] == "jax" and res["pinned_backend"] == "jax" and res["pinned_at"] == "train.py:7"
    res = run_trial(s, [], Candidate("backend tensorflow", {"KERAS_BACKEND": "tensorflow"},
                                     trial={"force_backend": True}), TRIAL, 120)
    assert res["status"] == "ok" and res["backend"] == "tensorflow" and res["pin_ignored"], res


#: the folklore articles' thread lines, a core count from another machine
THREADS = """
import os
os.environ["KERAS_BACKEND"] = "tensorflow"
import numpy as np
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(16)
tf.config.threading.set_inter_op_parallelism_threads(np.int64(16))  # a count computed with numpy
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
print("THREADS", tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads(), flush=True)
model.fit(x, y, batch_size=16, epochs=1, verbose=0)
"""


def test_a_trial_says_where_the_script_sets_its_threads_and_ignores_the_line_only_where_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "environ", {**ENV})
    s = script(tmp_path, THREADS)
    one = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    res = run_trial(s, [], Candidate("1 intra-op thread", one), TRIAL, 120)
    assert res["status"] == "ok", res
    assert res["threads_set_at"] == "train.py:6" and res["threads_set"] == {"intra": 16, "inter": "16"}
    assert res["pinned_at"] == "train.py:3"  # each watch names the script's own line
    assert "THREADS 16 16" in res["stdout"] and not res["threads_ignored"]  # the script's line won over the variable
    res = run_trial(s, [], Candidate("1 intra-op thread", one, trial={"force_threads": True}), TRIAL, 120)
    assert res["status"] == "ok" and res["threads_ignored"], res
    assert "THREADS 16" not in res["stdout"] and "THREADS" in res["stdout"], res["stdout"]


@pytest.mark.slow
def test_setdefault_is_a_default_not_a_pin(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "environ", {**ENV})
    s = script(tmp_path, PINNED.replace('os.environ["KERAS_BACKEND"] = "tensorflow"',
                                        'os.environ.setdefault("KERAS_BACKEND", "tensorflow")'))
    res = run_trial(s, [], Candidate("backend jax", {"KERAS_BACKEND": "jax"}), TRIAL, 120)
    assert res["status"] == "ok" and res["backend"] == "jax" and res["pinned_backend"] is None, res


@pytest.mark.slow
def test_every_process_the_script_starts_ends_with_its_trial(tmp_path):
    import psutil

    s = script(tmp_path, "import subprocess, sys\n"
                         "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
                         "print('CHILD', child.pid, flush=True)\n" + PINNED)
    res = run_trial(s, [], Candidate("as written"), TRIAL, 120)
    pid = int(res["stdout"].split("CHILD ")[1].split()[0])
    assert res["status"] == "ok", res
    import time

    def gone():
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    deadline = time.monotonic() + 30  # polled: SIGKILL to the group is delivered asynchronously
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(), f"the script's child {pid} outlived its trial"


# -- the search: advice, never applied -------------------------------------------------------------------------------

def _fake_trials(monkeypatch, per_process, inprocess):
    from redline.tuning import search

    def fake(script, args, cand, trial, timeout, **_):
        if "ladder" in trial:
            return {"status": "ok", "candidates": inprocess, "inputs": {}, "input_chosen": None, "not_measured": [],
                    "script_compile": {"steps_per_execution": 1}}
        r = per_process.get(cand.name, 50.0)  # oneDNN, threads: slower
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow",
                "pinned_backend": "tensorflow", "pinned_at": "train.py:3"}

    monkeypatch.setattr(search, "run_trial", fake)
    return search


def test_a_faster_backend_against_the_script_s_own_line_is_advice(monkeypatch):
    rates = {"as written": 100.0, "backend jax": 300.0, "oneDNN off": 50.0, "1 intra-op thread": 60.0}
    inprocess = {"default": {"steps_per_s": [100.0] * 3, "knobs": {}},
                 "spe 8": {"steps_per_s": [250.0, 251.0, 249.0], "knobs": {"steps_per_execution": 8}},
                 "jit": {"steps_per_s": [90.0] * 3, "knobs": {"jit_compile": True}}}
    search = _fake_trials(monkeypatch, rates, inprocess)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    jax = next(c for c in result.processes if c.name == "backend jax")
    assert jax.advice and "train.py:3" in jax.advice and jax.runs               # measured, as advice
    assert result.chosen_process is result.default and "KERAS_BACKEND" not in result.choice()["env"]
    assert any(a.startswith("backend jax: 300.0") and "3.00x" in a for a in result.advice), result.advice
    # the script passes steps_per_execution=1 itself: spe 8 is advice too, and nothing of it is applied
    spe8 = next(c for c in result.inprocess if c.name == "spe 8")
    assert spe8.advice and "steps_per_execution=1" in spe8.advice
    assert result.chosen_knobs is None and result.choice()["compile"] == {}
    assert any(a.startswith("spe 8:") for a in result.advice)
    from redline.cli.tune import text

    shown = text(result)
    assert "advice (not applied" in shown and "advice only" in shown


def test_thread_counts_the_script_sets_itself_are_measured_against_its_line_as_advice(monkeypatch):
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 300.0, "oneDNN off": 50.0, "1 intra-op thread": 150.0,
             "TensorFlow's default threads": 180.0}
    inprocess = {"default": {"steps_per_s": [100.0] * 3, "knobs": {}}}
    asked = {}

    def fake(script, args, cand, trial, timeout, **_):
        if "ladder" in trial:
            return {"status": "ok", "candidates": inprocess, "inputs": {}, "input_chosen": None, "not_measured": [],
                    "script_compile": {}}
        asked[cand.name] = dict(cand.trial)
        r = rates.get(cand.name, 50.0)
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if cand.env.get("KERAS_BACKEND") == "jax" else "tensorflow",
                "threads_set_at": "train.py:4", "threads_set": {"intra": 16},
                "pinned_backend": "tensorflow", "pinned_at": "train.py:2"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    threads = [c for c in result.processes if "thread" in c.name]
    assert {c.name for c in threads} >= {"1 intra-op thread", "TensorFlow's default threads"}
    for c in threads:  # measured with the script's line ignored, shown as advice, never chosen
        assert c.advice and "train.py:4" in c.advice and c.runs and asked[c.name].get("force_threads"), c
    assert result.chosen_process is result.default and result.choice()["env"] == {}
    # the best against each of the script's lines: its backend line and its thread line, each with its figure
    assert any(a.startswith("TensorFlow's default threads: 180.0") and "remove that line" in a for a in result.advice)
    assert any(a.startswith("backend jax: 300.0") and "train.py:2" in a for a in result.advice), result.advice


def test_a_knob_the_script_does_not_set_is_still_chosen(monkeypatch):
    rates = {"as written": 100.0, "backend jax": 90.0, "oneDNN off": 50.0, "1 intra-op thread": 60.0}
    inprocess = {"default": {"steps_per_s": [100.0] * 3, "knobs": {}},
                 "jit": {"steps_per_s": [200.0, 201.0, 199.0], "knobs": {"jit_compile": True}}}
    search = _fake_trials(monkeypatch, rates, inprocess)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_knobs.name == "jit" and result.choice()["compile"] == {"jit_compile": True}
    assert not result.advice


# -- redline run applies the measured choice and nothing else --------------------------------------------------------

def _run(s, env, *flags):
    return subprocess.run([sys.executable, "-m", "redline", "run", *flags, s], capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.mark.slow
def test_run_applies_exactly_the_choice_and_leaves_the_script_s_backend_alone(tmp_path):
    import redline

    s = script(tmp_path, PINNED)
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    # what a tune of a pinned script saves: no backend (advice only), compile defaults where the script passes none
    choice = {"chosen": {"settings": {"env": {}, "compile": {"steps_per_execution": 4}}, "ratio": 1.5},
              "advice": ["backend jax: 300.0 steps/s against 100.0 as written (3.00x); the script sets KERAS_BACKEND"]}
    cache.save(s, [], redline.detect(), choice, env)
    r = _run(s, env)
    assert "release False" in r.stdout and "ahead False" in r.stdout, r.stdout  # saved without: measured without
    assert "nothing else changed" in r.stderr, r.stderr[-2000:]
    # a choice tuned now: every trial on TensorFlow dropped its finished iterators off the epoch loop, and so does run;
    # run under KERAS_BACKEND=jax: the script's own line wins over the environment, as under python
    cache.save(s, [], redline.detect(), {**choice, "chosen": {**choice["chosen"], "settings": {
        **choice["chosen"]["settings"], "release": True, "build_ahead": True}}}, env)
    released = _run(s, {**env, "KERAS_BACKEND": "jax"})
    assert "release True ahead True" in released.stdout, released.stdout
    assert "dropped off the training thread" in released.stderr and "nothing else changed" not in released.stderr
    assert "built before its first traced step" in released.stderr
    for r in (r, released):
        assert r.returncode == 0, r.stderr[-2000:]
        assert "AFTER FIT tensorflow 4 []" in r.stdout, r.stdout        # no thread or oneDNN variable of the plan's
        assert "advice from the tuning (not applied): backend jax" in r.stderr
        assert "chose" not in r.stderr
    # --dry-run says what the run applies: the choice, with its prediction and advice, not the plan it leaves off
    r = _run(s, env, "--dry-run")
    assert r.returncode == 0 and "AFTER FIT" not in r.stdout and "the tuned choice (nothing applied" in r.stdout, r
    assert "steps_per_execution=4" in r.stdout and "(predicted 1.50x" in r.stdout and "backend jax" in r.stdout
    assert "intra_op_threads" not in r.stdout
    r = _run(s, env, "--dry-run", "--no-tuned")
    assert r.returncode == 0 and "the plan (nothing applied" in r.stdout and "intra_op_threads" in r.stdout


@pytest.mark.slow
def test_a_variable_the_user_set_against_the_choice_keeps_the_whole_choice_off(tmp_path):
    import redline

    s = script(tmp_path, PINNED.replace('os.environ["KERAS_BACKEND"] = "tensorflow"\n', ""))
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    choice = {"chosen": {"settings": {"env": {"KERAS_BACKEND": "jax"}, "compile": {"steps_per_execution": 8}}, "ratio": 2.0}}
    cache.save(s, [], redline.detect(), choice, env)
    r = _run(s, {**env, "KERAS_BACKEND": "tensorflow"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "AFTER FIT tensorflow 1" in r.stdout          # neither the backend nor the spe tuned with it
    assert "no tuned choice applied: you set KERAS_BACKEND=tensorflow" in r.stderr and "applied the choice" not in r.stderr
    r = _run(s, env)
    assert "AFTER FIT jax 8" in r.stdout and "applied the choice tuned" in r.stderr


def test_a_pydataset_is_not_changed_in_place_by_the_workers_rewrite():
    import keras
    import numpy as np

    from redline.data.rewrite import rewrite

    class Batches(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.ones((4, 2), "float32"), np.ones((4, 1), "float32")

    mine = Batches()
    theirs = rewrite({"input": "workers", "workers": 2}, mine, None, None, {})[0]
    assert theirs is not mine and theirs.workers == 2 and mine.workers == 1 and not mine.use_multiprocessing
    assert len(theirs) == 2 and np.array_equal(theirs[0][0], mine[0][0])


def test_knobs_are_not_chosen_where_the_in_process_stage_disagrees_with_the_trial_processes(monkeypatch):
    """The time-series case: the in-process stage read the script as written at 47.5 steps/s where its own trial
    processes read 66.6; spe 4 at 1.31x over the lower figure would not predict the run."""
    inprocess = {"default": {"steps_per_s": [47.5, 47.0, 48.0], "knobs": {}},
                 "spe 4": {"steps_per_s": [62.0, 62.5, 61.5], "knobs": {"steps_per_execution": 4}}}
    rates = {"as written": 66.6, "backend jax": 20.0}
    search = _fake_trials(monkeypatch, rates, inprocess)
    monkeypatch.setattr(search, "run_trial", _no_script_compile(search.run_trial))
    stages = []
    counting = search.run_trial

    asked = []

    def count(script, args, cand, trial, timeout, **_):
        stages.append("ladder" in trial)
        if "ladder" in trial:
            asked.append(trial)
        return counting(script, args, cand, trial, timeout)

    monkeypatch.setattr(search, "run_trial", count)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_knobs is None and result.choice()["compile"] == {}
    assert any("not chosen" in r and "47.5" in r and "66.6" in r for r in result.reasons), result.reasons
    assert sum(stages) == 2 and any("measured again" in r for r in result.reasons)  # measured again before giving up
    # the second measures the first one's contenders against the script's own: no ladder, no input path again
    assert asked[0]["ladder"] and "inputs" in asked[0], asked[0]
    assert asked[1]["ladder"] is None and "inputs" not in asked[1] and set(asked[1]["candidates"]) == {"default", "spe 4"}
    assert asked[1]["candidates"]["spe 4"] == {"steps_per_execution": 4}
    agreeing = {"default": {"steps_per_s": [64.0, 65.0, 66.0], "knobs": {}},  # the second time, the figures agree
                "spe 4": {"steps_per_s": [90.0, 91.0, 89.0], "knobs": {"steps_per_execution": 4}}}

    def second_agrees(script, args, cand, trial, timeout, **_):
        res = count(script, args, cand, trial, timeout)
        if "ladder" in trial and sum(stages) % 2 == 0:
            res = {**res, "candidates": agreeing}
        return res

    stages.clear()
    monkeypatch.setattr(search, "run_trial", second_agrees)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_knobs.name == "spe 4" and result.choice()["compile"] == {"steps_per_execution": 4}
    assert sum(stages) == 2 and any("measured again" in r for r in result.reasons)
    # the second reads it faster than the trial processes where the first read it slower: the processes differ, not
    # the stage; the second measurement stands
    agreeing.update({"default": {"steps_per_s": [85.0, 86.0, 84.0], "knobs": {}},
                     "spe 4": {"steps_per_s": [120.0, 121.0, 119.0], "knobs": {"steps_per_execution": 4}}})
    stages.clear()
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_knobs.name == "spe 4" and sum(stages) == 2, result.reasons
    assert any("either side" in r and "47.5" in r and "85.0" in r for r in result.reasons), result.reasons


@pytest.mark.parametrize("stage_lost, trials_lost, stages", [(0.01, 0.2, 1), (0.2, 0.2, 2), (0.01, 0.01, 2),
                                                              (None, 0.2, 2)])
def test_a_stage_that_ran_on_the_machine_as_it_was_stands_where_its_trial_processes_did_not(monkeypatch, stage_lost,
                                                                                            trials_lost, stages):
    """The stage reads the configuration at 47.5 where its trial processes read 66.6. Where the stage's measurement
    lost little of the machine (steal, other processes) and the trial processes' lost more, they ran slow, not the
    stage: its figure stands, with no second stage. Otherwise (both quiet, both not, or not known) it is measured
    again, as before."""
    inprocess = {"default": {"steps_per_s": [47.5, 47.0, 48.0], "knobs": {}},
                 "spe 4": {"steps_per_s": [62.0, 62.5, 61.5], "knobs": {"steps_per_execution": 4}}}
    search = _fake_trials(monkeypatch, {"as written": 66.6, "backend jax": 20.0}, inprocess)
    fake, seen = search.run_trial, []

    def with_contention(script, args, cand, trial, timeout, **_):
        res = fake(script, args, cand, trial, timeout)
        res.pop("script_compile", None)
        seen.append("ladder" in trial)
        share = stage_lost if "ladder" in trial else trials_lost
        return {**res, "contention": {"steal": share, "others": 0.0 if share is not None else None}}

    monkeypatch.setattr(search, "run_trial", with_contention)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    assert sum(seen) == stages, result.reasons
    stood = any("ran on the machine as it was" in r and "its figure stands" in r for r in result.reasons)
    assert stood == (stages == 1), result.reasons
    if stood:
        assert result.chosen_knobs.name == "spe 4"


def test_where_the_stage_times_its_pick_whole_it_agrees_with_the_trial_processes_in_whole_epochs(monkeypatch):
    """The stage's training steps of the configuration (47.5) and its trial processes' training figures (66.6, read
    another way) differ, but the script's own compile timed in whole epochs in the stage (65-67) agrees with its
    trial processes' whole epochs: measured the same way, they agree, and the pick is chosen in one stage."""
    def stage(reference):
        return {"default": {"steps_per_s": [47.5, 47.0, 48.0], "knobs": {}},
                "spe 4": {"steps_per_s": [62.0, 62.5, 61.5], "knobs": {"steps_per_execution": 4}}}, {
            "knobs": "spe 4", "input": None, "reference": {"steps_per_s": reference},
            "pick": {"steps_per_s": [r * 1.3 for r in reference]}}

    for reference, agrees in (([65.0, 66.0, 67.0], True), ([45.0, 46.0, 47.0], False)):
        search, stages = _stage_with_whole(monkeypatch, *stage(reference))
        result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
        if agrees:
            assert len(stages) == 1 and result.chosen_knobs.name == "spe 4", result.reasons
        else:
            assert len(stages) == 2 and result.chosen_knobs is None, result.reasons
            assert any("in whole epochs at 46.0" in r for r in result.reasons), result.reasons


@pytest.mark.parametrize("reference, pick, stands", [([30.0, 31.0, 32.0], [120.0, 121.0, 122.0], True),
                                                      ([30.0, 31.0, 32.0], [60.0, 61.0, 62.0], False),
                                                      ([90.0, 91.0, 92.0], [120.0, 121.0, 122.0], True)])
def test_a_pick_beyond_even_the_trial_processes_figure_stands_where_the_stage_read_the_script_s_own_otherwise(
        monkeypatch, reference, pick, stands):
    """tf_ops_layer: the stage read the script's own compile in whole epochs at 404 steps/s where its trial processes
    read 688, twice, and spe 32 (2,000 steps/s in the same stage) was not chosen. Where the pick, timed whole in the
    stage, beats the trial processes' own figure beyond both spreads, it stands in one stage, its gain predicted
    against their figure (66.6 here), the footing `python` runs on, not the stage's own. Under it, the stage is
    measured again, as before. mixup read the other way (the stage 175.5, its trial processes 149.3, `python` 145.4):
    the prediction said 1.21x against the stage's figure, and `run` delivered 1.42x."""
    inprocess = {"default": {"steps_per_s": reference, "knobs": {}},
                 "spe 32": {"steps_per_s": [125.0, 126.0, 124.0], "knobs": {"steps_per_execution": 32}}}
    whole = {"knobs": "spe 32", "input": None, "reference": {"steps_per_s": reference},
             "pick": {"steps_per_s": pick}}
    search, stages = _stage_with_whole(monkeypatch, inprocess, whole)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core())
    if stands:
        assert len(stages) == 1 and result.chosen_knobs.name == "spe 32", result.reasons
        assert result.whole["gain"] == pytest.approx(121.0 / 66.6, rel=0.02), result.whole
        assert result.ratio() == pytest.approx(121.0 / 66.6, rel=0.02)
        assert any("beyond the trial processes' figure too" in r for r in result.reasons), result.reasons
    else:
        assert len(stages) == 2 and result.chosen_knobs is None, result.reasons


def _stage_with_whole(monkeypatch, inprocess, whole):
    """Fake trials (the script as written at 66.6 steps/s in its trial processes) whose in-process stage reports
    ``inprocess`` and its pick and the script's own compile timed in whole epochs (``whole``); the stages run are
    counted in the list returned."""
    search = _fake_trials(monkeypatch, {"as written": 66.6, "backend jax": 20.0}, inprocess)
    stages, fake = [], search.run_trial

    def with_whole(script, args, cand, trial, timeout, **_):
        res = fake(script, args, cand, trial, timeout)
        res.pop("script_compile", None)
        if "ladder" in trial:
            stages.append(1)
            res = {**res, "whole": whole}
        return res

    monkeypatch.setattr(search, "run_trial", with_whole)
    return search, stages


def _no_script_compile(fake):
    def inner(*a, **k):
        res = fake(*a, **k)
        res.pop("script_compile", None)  # the script passes no compile arguments: spe is the tuner's to choose
        return res
    return inner


# -- one command: redline run --tune, and --budget auto -------------------------------------------------------------

def test_auto_budget_is_a_twentieth_of_the_predicted_training_and_at_least_30_s():
    from redline.tuning.result import Candidate as C
    from redline.tuning.sizing import auto_budget, predicted_training

    assert predicted_training({"steps_in_epoch": 100, "epochs": 30}, C("d", runs=[50.0, 50.0, 50.0])) == 60.0
    assert predicted_training({"steps_in_epoch": None, "epochs": 3}, C("d", runs=[50.0])) is None
    assert auto_budget(60.0) == 30.0 and auto_budget(None) == 30.0
    assert auto_budget(3600.0) == 180.0 and auto_budget(10**9) == 86400.0


def test_tune_says_after_how_many_runs_its_time_is_repaid_by_the_predicted_gain():
    from redline.tuning.sizing import payback, payback_line

    assert payback(69.0, 1.05, 164.0) == {"saved_s": 3.3, "runs": 50}  # 69 s x (1 - 1/1.05) = 3.29 s a run
    assert payback(100.0, 4.0, 50.0) == {"saved_s": 75.0, "runs": 1}
    assert payback(None, 2.0, 50.0) is None and payback(60.0, None, 50.0) is None and payback(60.0, 1.0, 50.0) is None
    line = payback_line(69.0, 1.05, 164.0)
    assert "about 69 s as written" in line and "1.05x" in line and "after about 50 runs" in line
    assert "in the first run" in payback_line(100.0, 4.0, 50.0)
    assert payback_line(60.0, 0.98, 50.0).endswith("the choice is predicted to save none of it")
    assert payback_line(None, 2.0, 50.0) == ""
    # a training shorter than a second is said in tenths: "about 0 s as written, ~0.3 s less a run" was said before
    assert "about 0.4 s as written, ~0.3 s less a run" in payback_line(0.4, 4.31, 24.0)


def test_budget_auto_is_sized_after_the_first_trial_and_a_run_too_short_to_pay_is_not_tuned(monkeypatch):
    from redline.tuning import search

    seen = []

    def fake(script, args, cand, trial, timeout, **_):
        seen.append((cand.name, timeout))
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [10.0, 10.0, 10.0]}}, "data": "ndarray",
                "backend": "tensorflow", "steps_in_epoch": 500, "epochs": 20}  # 1,000 s of training as written

    monkeypatch.setattr(search, "run_trial", fake)
    asked = []
    result = search.tune("train.py", budget_s=None, snapshot=m.vm_2core(),
                         worth_it=lambda training, budget, spent, per_trial: asked.append((training, budget)) or False)
    assert asked == [(1000.0, 50.0)] and result.status == "skipped" and len(seen) == 1
    assert seen[0][1] > 50  # the first trial's own limit is not the budget it is about to size
    result = search.tune("train.py", budget_s=None, snapshot=m.vm_2core(), complete=False)
    assert result.budget_s == 50.0 and result.training_s == 1000.0
    assert any(r.startswith("--budget auto: 50 s") for r in result.reasons)


@pytest.mark.parametrize("argv, words", [
    (["run", "--tune", "--no-tuned", "{script}"], "--tune and --no-tuned contradict"),
    (["run", "--budget", "40", "{script}"], "--budget 40 needs --tune"),
    (["run", "--tune", "--budget", "soon", "{script}"], "'soon' is not a number of seconds or 'auto'"),
    (["tune", "--budget", "10", "{script}"], "'10' is not valid: give 30 to 86400 seconds, or auto"),
])
def test_run_tune_bad_input(capsys, tmp_path, argv, words):
    from clirun import cli

    s = script(tmp_path, "open('RAN', 'w')\n")
    code, out, err = cli(capsys, *[a.replace("{script}", s) for a in argv])
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "RAN").exists()


def test_run_tune_with_the_backend_not_installed(tmp_path):
    from envs import python_without

    s = script(tmp_path, PINNED.replace('os.environ["KERAS_BACKEND"] = "tensorflow"\n', ""))
    r = python_without(("torch",), ["-m", "redline", "run", "--tune", s], env={"KERAS_BACKEND": "torch",
                                                                            "XDG_CACHE_HOME": str(tmp_path / "c")},
                       timeout=60)
    assert r.returncode == 2 and "torch" in r.stderr and "not installed" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


LONG = PINNED.replace('os.environ["KERAS_BACKEND"] = "tensorflow"\n', "").replace(
    'model.fit(x, y, batch_size=16, epochs=1, verbose=0)',
    'stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: setattr(model, "stop_training", True))\n'
    'model.fit(x, y, batch_size=16, epochs=EPOCHS, verbose=0, callbacks=[stop])  # the real run stops after one epoch')


@pytest.mark.slow
def test_run_tune_skips_a_training_shorter_than_the_tuning_and_runs_without_a_tuned_choice(tmp_path):
    """A run that trains for seconds is not tuned (a long one is: test_tune.py's `tuned`, through `run --tune`)."""
    # on the user's JAX (the decision does not depend on the backend; a JAX process starts in half TensorFlow's time)
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache"), "KERAS_BACKEND": "jax"}
    short = script(tmp_path, LONG.replace("EPOCHS", "2"), "short.py")
    args = ["--data", "my data"]
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--tune", short, *args], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0 and "AFTER FIT jax 1" in r.stdout, r.stderr[-2000:]
    assert "not tuning: its training is predicted to take about" in r.stderr and "without a tuned choice" in r.stderr
    # the `redline tune` it suggests names the script's own arguments too: they key the choice it would save
    assert f"`redline tune {short} --data 'my data'` tunes it anyway" in r.stderr, r.stderr[-2000:]
    shown = subprocess.run([sys.executable, "-m", "redline", "tune", "--show", short, *args], capture_output=True,
                           text=True, env=env, timeout=120)
    assert "not tuned yet" in shown.stdout, shown.stdout  # no choice saved
    # the finding is kept: the next `run --tune` of the same bytes runs at once, without a first trial again (a 12-s
    # script ran 22 s under `run --tune` each time, a first trial of 10 s each run)
    kept = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path / "cache") for f in fs if "skipped" in d]
    assert len(kept) == 1, kept
    again = subprocess.run([sys.executable, "-m", "redline", "run", "--tune", short, *args], capture_output=True,
                           text=True, env=env, timeout=300)
    assert again.returncode == 0 and "AFTER FIT jax 1" in again.stdout, again.stderr[-2000:]
    assert "not tuning: its training is predicted to take about" in again.stderr, again.stderr[-2000:]
    assert "found by its first trial" in again.stderr, again.stderr[-2000:]
    shown = subprocess.run([sys.executable, "-m", "redline", "tune", "--show", short, *args], capture_output=True,
                           text=True, env=env, timeout=120)
    assert "no choice applies" in shown.stdout and "that tuning would not pay: its training is predicted" in (
        shown.stdout), shown.stdout
    # other arguments, or an edit (epochs count in the training it predicts), are not that finding: `run --tune` would
    # decide again with a first trial (as the first run above did)
    source = pathlib.Path(short).read_text()
    for edit, other_args in ((False, ["--data", "other"]), (True, args)):
        if edit:
            pathlib.Path(short).write_text(source.replace("epochs=", "epochs=1 + 0 * "))
        shown = subprocess.run([sys.executable, "-m", "redline", "tune", "--show", short, *other_args],
                               capture_output=True, text=True, env=env, timeout=120)
        assert "that tuning would not pay" not in shown.stdout, (edit, shown.stdout)
    pathlib.Path(short).write_text(source)
    cleared = subprocess.run([sys.executable, "-m", "redline", "tune", "--clear", short, *args], capture_output=True,
                             text=True, env=env, timeout=120)
    assert "removed 1 saved file(s)" in cleared.stdout and not os.path.exists(kept[0]), cleared.stdout


@pytest.mark.parametrize("second, chosen", [(1.10, True), (0.98, False)])
def test_a_small_jit_lead_is_measured_again_in_another_process_and_chosen_only_where_it_leads_there_too(second, chosen):
    """PointNet on a 2-core VM: four tunes' stages read jit at 0.93x, 0.99x, 1.03x and 1.12x with tight rounds; its
    later epochs ran ~1.0x under `run`. A jit pick under CONFIRM_JIT needs a second process's lead."""
    from redline.tuning.inprocess import CONFIRM_JIT, inprocess_stage

    def res(jit):
        return {"status": "ok", "steps_in_epoch": 20, "script_compile": {}, "inputs": {}, "input_chosen": None,
                "candidates": {"default": {"steps_per_s": [2.2, 2.21, 2.19], "knobs": {}},
                               "jit": {"steps_per_s": [2.2 * jit] * 3, "knobs": {"jit_compile": True}}}}

    got, settings = iter([res(1.12), res(second)]), []

    def run(cand, trial, timeout):
        settings.append(trial)
        return next(got)

    best = Candidate("as written", runs=[2.2, 2.21, 2.19], passes=[2.2], train_runs=[2.2, 2.21, 2.19])
    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None)
    assert 1.12 < CONFIRM_JIT and len(settings) == 2 and list(settings[1]["candidates"]) == ["default", "jit"]
    assert any("measured again in another process" in r for r in st.reasons), st.reasons
    assert (st.chosen_knobs is not None and st.chosen_knobs.name == "jit") == chosen, st.reasons
    if not chosen:
        assert any("led 1.12x in the stage's first process, 0.98x in its second" in r for r in st.reasons), st.reasons
        assert not any("no candidate beat the script's own compile" in r for r in st.reasons), st.reasons
    # a lead over CONFIRM_JIT, or too little budget for a second process: one process decides
    got, settings, left = iter([res(1.12)]), [], iter([100.0] + [20.0] * 9)
    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: next(left), 30.0, lambda line: None)
    assert len(settings) == 1 and st.chosen_knobs.name == "jit"
    got, settings = iter([res(1.3)]), []
    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None)
    assert len(settings) == 1 and st.chosen_knobs.name == "jit"
    # a lead whose compile the first process already showed cannot pay over the steps it serves: no second process
    whole = {"knobs": "jit", "input": None, "reference": {"steps_per_s": [2.2] * 3, "first_extra_s": 0.5},
             "pick": {"steps_per_s": [2.4] * 3, "first_extra_s": 5.5}}
    got, settings = iter([{**res(1.12), "whole": whole}]), []
    st = inprocess_stage(run, best, "tensorflow", 2, [], lambda: 100.0, 30.0, lambda line: None,
                         served=lambda fit: (120, 1))  # 120 steps at 2.4 against 2.2 steps/s save ~4.5 s, not 5.0 more
    assert len(settings) == 1 and st.chosen_knobs is None, st.reasons
    assert any("its compile costs a run ~5.0 s more" in r for r in st.reasons), st.reasons


@pytest.mark.parametrize("jit_rate, chosen", [(5547.0, "spe 32"), (6400.0, "spe 32 + jit")])
def test_a_jit_pick_gives_way_to_its_twin_without_jit_unless_it_beats_the_twin_beyond_the_spread(jit_rate, chosen):
    """tf_ops_layer on a 2-core VM: spe 32 + jit at 5,547 against spe 32 at 5,333 steps/s was picked, and then not
    applied (its compile dearer than its saving over 471 steps): the run kept neither. The stage's rule and the trial's
    own pick (what it measures whole) agree."""
    from redline.tuning.inprocess import inprocess_stage, pick

    cands = {"default": {"own": True}, "jit": {"jit_compile": True}}
    res = {"status": "ok", "steps_in_epoch": 50, "script_compile": {}, "inputs": {}, "input_chosen": None,
           "candidates": {"default": {"steps_per_s": [1172.0, 1218.0, 1169.0], "knobs": {}},
                          "jit": {"steps_per_s": [1151.0, 1160.0, 1149.0], "knobs": {"jit_compile": True}},
                          "spe 32": {"steps_per_s": [5333.0, 5361.0, 5296.0], "knobs": {"steps_per_execution": 32}},
                          "spe 32 + jit": {"steps_per_s": [jit_rate, jit_rate * 1.01, jit_rate * 0.99],
                                           "knobs": {"steps_per_execution": 32, "jit_compile": True}}}}
    assert pick(res, cands) == chosen
    best = Candidate("as written", runs=[1172.0] * 3, passes=[1172.0], train_runs=[1172.0, 1218.0, 1169.0])
    st = inprocess_stage(lambda cand, trial, timeout: res, best, "tensorflow", 2, [], lambda: 100.0, 30.0,
                         lambda line: None)
    assert st.chosen_knobs is not None and st.chosen_knobs.name == chosen, st.reasons


def test_the_prediction_rests_on_the_choice_measured_in_whole_epochs_and_a_gain_that_does_not_reach_them_is_dropped():
    from redline.tuning.inprocess import Stage
    from redline.tuning.weigh import judge_whole

    def stage():
        return Stage(chosen_knobs=Candidate("spe 16", trial={"knobs": {"steps_per_execution": 16}}, runs=[300.0] * 3))

    whole = {"knobs": "spe 16", "input": None, "reference": {"steps_per_s": [100.0, 104.0, 98.0]},
             "pick": {"steps_per_s": [150.0, 160.0, 155.0]}}
    s = stage()
    judge_whole(s, {"whole": whole})
    time_weighted = (3 / (1 / 150 + 1 / 160 + 1 / 155)) / (3 / (1 / 100 + 1 / 104 + 1 / 98))
    assert s.chosen_knobs.name == "spe 16" and s.whole["gain"] == pytest.approx(time_weighted, abs=1e-4)
    result = TuneResult(script="t.py", args=[], budget_s=60, elapsed_s=1, default=Candidate("as written", runs=[50.0] * 3),
                        processes=[], inprocess=[Candidate("default", runs=[100.0] * 3), s.chosen_knobs],
                        chosen_process=Candidate("backend jax", runs=[100.0] * 3), chosen_knobs=s.chosen_knobs,
                        reasons=[], not_measured=[], whole=s.whole)
    assert result.ratio() == pytest.approx(2.0 * time_weighted, abs=1e-3)  # not 2.0 x 3.0 (its gain in training steps)
    s = stage()
    judge_whole(s, {"whole": {**whole, "pick": {"steps_per_s": [99.0, 97.0, 101.0]}}})  # no faster whole: not applied
    assert s.chosen_knobs is None and s.whole is None and "does not reach the run" in s.reasons[-1]
    s = stage()
    judge_whole(s, {"whole": {**whole, "knobs": "spe 32"}})  # the trial measured another pick whole: nothing to rest on
    assert s.chosen_knobs.name == "spe 16" and s.whole is None and not s.reasons


@pytest.mark.parametrize("twin_rate, chosen, cut", [(3100.0, "spe 32", False), (1000.0, None, False),
                                                     (3100.0, "spe 32", True)])
def test_a_jit_pick_whose_compile_does_not_pay_gives_way_to_its_twin_measured_whole_beside_it(twin_rate, chosen, cut):
    """tf_ops_layer: spe 32 + jit ran 3.09x in whole epochs but its compile cost ~0.7 s against ~0.3 s saved over the
    471 steps it serves; spe 32, in the rounds too, costs no compile beyond the script's own. The trial measures the
    twin whole beside the pick, and the twin stands where it pays; where it does not reach the run either, neither.
    In one thread, spe 32 + jit read 7,462 steps/s and the rounds cut spe 32 after its first (``cut``): its whole
    epochs decide it all the same."""
    from redline.tuning.inprocess import Stage, twin
    from redline.tuning.weigh import judge_whole

    knobs = {"spe 32": {"steps_per_execution": 32}, "spe 32 + jit": {"steps_per_execution": 32, "jit_compile": True}}
    res = {"candidates": {"default": {"steps_per_s": [1117.0, 1125.0, 1114.0], "knobs": {}},
                          "spe 32": {"steps_per_s": [5124.0, 4987.0, 5091.0], "knobs": knobs["spe 32"]},
                          "spe 32 + jit": {"steps_per_s": [5479.0, 5438.0, 5465.0], "knobs": knobs["spe 32 + jit"]}},
           "whole": {"knobs": "spe 32 + jit", "input": None,
                     "reference": {"steps_per_s": [1009.0, 1032.0, 985.0], "first_extra_s": 0.4},
                     "pick": {"steps_per_s": [3113.0, 3120.0, 3110.0], "first_extra_s": 1.1},
                     "twin": {"knobs": "spe 32", "steps_per_s": [twin_rate] * 3, "first_extra_s": 0.05}}}
    if cut:
        res["candidates"]["spe 32"].update(steps_per_s=[5124.0], dropped="0.69x the best in the first round")
    assert twin(res, {"default": {"own": True}}, "spe 32 + jit") == "spe 32"
    assert twin(res, {"default": {"own": True}}, "spe 32") is None  # no jit, no twin
    inprocess = [Candidate(n, trial={"knobs": r["knobs"]}, runs=r["steps_per_s"], dropped=r.get("dropped"))
                 for n, r in res["candidates"].items()]
    s = Stage(inprocess=inprocess, chosen_knobs=inprocess[2])
    judge_whole(s, res, None, (471, 1))
    assert any("spe 32 + jit: not applied" in r and "its compile costs a run ~0.7 s more" in r for r in s.reasons)
    assert (s.chosen_knobs.name if s.chosen_knobs else None) == chosen, s.reasons
    if chosen:
        assert s.whole["gain"] == pytest.approx(3100.0 / (3 / (1 / 1009 + 1 / 1032 + 1 / 985)), abs=1e-3)
        assert "spe 32, the same without jit_compile, in its place" in s.reasons[-1] and "once" not in s.whole
        assert s.chosen_knobs.dropped is None  # (a round's cut: its whole epochs decided it)
    else:
        assert s.whole is None and s.chosen_input is None


@pytest.mark.parametrize("steps, compiles, applied", [(100, 1, False), (2000, 1, True), (500, 4, False)])
def test_a_pick_whose_compile_costs_more_than_it_saves_over_the_training_it_serves_is_not_applied(steps, compiles,
                                                                                                   applied):
    """PointNet on a 2-core VM: jit 1.15x in whole epochs, but its first epoch took 20.2 s against 15.6 and the run
    came out 0.98x. Here: its first epoch, its functions made anew, took 3.5 s more beyond a later one than the
    script's own (4.0 against 0.5); at 10 against 8 steps/s it saves 0.025 s a step."""
    from redline.tuning.inprocess import Stage
    from redline.tuning.weigh import judge_whole, once_cost

    res = {"compile_s": 4.5, "candidates": {"default": {"steps_per_s": [8.0] * 3}, "jit": {"compile_s": 6.5}},
           "whole": {"knobs": "jit", "input": None, "reference": {"steps_per_s": [8.0] * 3, "first_extra_s": 0.5},
                     "pick": {"steps_per_s": [10.0] * 3, "first_extra_s": 4.0}}}
    assert once_cost(res, "jit", None) == pytest.approx(3.5)
    # not measured whole so: its calibration's compile against the script's own (2.0 s here)
    assert once_cost({**res, "whole": {}}, "jit", None) == pytest.approx(2.0) and once_cost(res, None, "x") == 3.5
    s = Stage(chosen_knobs=Candidate("jit", trial={"knobs": {"jit_compile": True}}, runs=[10.0] * 3))
    judge_whole(s, res, None, (steps, compiles))
    saving = steps / 8 - steps / 10
    assert (s.chosen_knobs is not None) == applied == (saving > 3.5 * compiles), s.reasons
    if not applied:
        assert s.whole is None and "its compile costs a run ~3.5 s more than the script's own" in s.reasons[-1]
        assert f"saves only ~{saving:,.1f} s" in s.reasons[-1]
        return
    assert s.whole["once_s"] == pytest.approx(3.5) and "saves ~50.0 s over the 2,000 steps" in s.reasons[-1]
    fits = [{"index": 1, "epochs": 10, "steps_in_epoch": 200, "fingerprint": "a"}]
    result = TuneResult(script="t.py", args=[], budget_s=60, elapsed_s=1, default=Candidate("as written", runs=[8.0] * 3),
                        processes=[], inprocess=[Candidate("default", runs=[8.0] * 3), s.chosen_knobs],
                        chosen_process=Candidate("as written", runs=[8.0] * 3), chosen_knobs=s.chosen_knobs,
                        reasons=[], not_measured=[], whole=s.whole, fits=fits, training_s=250.0)
    # the ratio is the epochs' (the first compile, as a run's start, is left out of it, as every ratio leaves it); the
    # seconds a run saves count it
    assert result.ratio() == result.steady_ratio() == pytest.approx(1.25) and result.once_s() == pytest.approx(3.5)
    assert result.to_dict()["payback"]["saved_s"] == pytest.approx(250 * (1 - 1 / 1.25) - 3.5, abs=0.05)
    from redline.cli.tune import text

    assert "~46.5 s less a run at the predicted 1.25x (its compile's ~3.5 s more counted)" in text(result), text(result)
    # a later fit of a fresh model of the same fingerprint compiles it again: then it is in the ratio
    result.fits = fits + [{"index": 2, "epochs": 10, "steps_in_epoch": 200, "fingerprint": "a", "traces": True}]
    result.default.detail["trace_s"] = 2.0
    assert result.ratio() == pytest.approx((500 + 2.0) / (400 + 2.0 + 3.5))


def test_whole_epochs_in_two_modes_are_compared_by_what_a_run_of_them_delivers():
    """custom_train_step at spe 1 on a 2-core VM: epochs at about 400 or 750 steps/s, epoch by epoch, in processes that
    lost under 1% of the machine. A median of 3 epochs flips between the modes (414 against 810: "disagrees" at
    0.51x); their rates over time do not (0.61x, inside the stage's own spread)."""
    from redline.tuning.compare import over_time
    from redline.tuning.inprocess import _disagree

    stage, processes = [734.0, 395.0, 414.0], [813.9, 810.5, 724.3]
    mine, theirs = Candidate("as written", runs=stage), Candidate("as written", runs=processes)
    assert _disagree(mine, theirs, "in whole epochs ") is not None  # medians
    assert _disagree(mine, theirs, "in whole epochs ", over_time) is None
    assert over_time([100.0, 300.0]) == pytest.approx(150.0)  # 2 epochs of as many steps: 1/100 + 1/300 s a step
    assert _disagree(Candidate("x", runs=[300.0, 310.0, 305.0]), theirs, "", over_time) is not None  # still caught


def test_run_tune_does_not_tune_further_where_the_first_trial_took_the_whole_budget(monkeypatch):
    """xception_scratch (5-s steps, ~140 s of training): --budget auto gives it 30 s, and its first trial alone took
    89-117 s. `run --tune` said "tuning within 30 s first" and then measured nothing more. It now says why it runs
    the script without a tuned choice; a first trial within the budget still goes on."""
    from redline.cli.run import not_worth
    from redline.tuning import search

    assert "less than tuning would take" in not_worth(20.0, 30.0, 5.0)
    assert "its first trial took 95 s, the whole of the 30 s budget" in not_worth(140.0, 30.0, 95.0)
    assert not_worth(1000.0, 50.0, 20.0) is None
    # a text classifier that builds its vocabulary in Python (8 s) before 34 s of training: its first trial took 18 s
    # of --budget auto's 30, another takes as long; the tune measured nothing more and saved "as written" for good,
    # JAX (4.7x run whole) never tried
    assert "its first trial took 18 s of the 30 s budget for a training of about 34 s as written, and another trial " \
           "process takes about 18 s, so nothing else could be measured" in not_worth(34.0, 30.0, 18.0, 18.0)
    assert not_worth(1000.0, 50.0, 20.0, 18.0) is None  # one more fits (50 - 2 - 20 = 28 s)
    clock, asked = {"t": 0.0}, []
    monkeypatch.setattr(search.time, "perf_counter", lambda: clock["t"])

    def fake(script, args, cand, trial, timeout, **_):  # the first trial: 95 s of the fake clock; 140 s of training
        clock["t"] += 95.0
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [0.2, 0.2, 0.2]}}, "data": "ndarray",
                "backend": "tensorflow", "steps_in_epoch": 7, "epochs": 4}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=None, snapshot=m.vm_2core(),
                         worth_it=lambda *a: asked.append(a) or not_worth(*a) is None)
    assert asked == [(140.0, 30.0, 95.0, 95.0)] and result.status == "skipped", asked


@pytest.mark.parametrize("machine, script_value, name, fix", [
    (m.server_2s_64t, "0", "oneDNN on", "remove it"),       # TensorFlow enables it there: the script's "0" turns it off
    (m.vm_2core, "0", "oneDNN on", "set it to 1"),          # TensorFlow leaves it off there: "0" is its default
    (m.vm_2core, "1", "oneDNN off", "remove it")])
def test_a_script_s_own_onednn_line_is_measured_against_the_other_value_as_advice(monkeypatch, machine, script_value,
                                                                                  name, fix):
    """mixup with `os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"` at its top (to silence TensorFlow's message): the trial
    flipped it to "0", which the script's line had set already, and chose "oneDNN off" at 1.14x (noise: the same
    configuration); "oneDNN on", 1.9x there, was never measured."""
    from redline.tuning.candidates import process_candidates, script_pins

    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    pins = script_pins({"onednn_set_at": "mixup.py:2", "onednn_set": script_value})
    c = next(c for c in process_candidates(machine(), "tensorflow", (), **pins) if c.name.startswith("oneDNN"))
    assert c.name == name and c.env == {"TF_ENABLE_ONEDNN_OPTS": "0" if script_value == "1" else "1"}
    assert c.trial == {"force_onednn": True} and c.advice == (
        f"the script sets TF_ENABLE_ONEDNN_OPTS={script_value} itself (mixup.py:2): {fix} there")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")  # the user's environment: measured the other way too, as advice
    c = next(c for c in process_candidates(m.server_2s_64t(), "tensorflow", ()) if c.name.startswith("oneDNN"))
    assert c.name == "oneDNN on" and c.env == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    assert c.trial == {"environment": "TF_ENABLE_ONEDNN_OPTS"}
    assert c.advice == "TF_ENABLE_ONEDNN_OPTS=0 is set in your environment: remove it"
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS")
    c = next(c for c in process_candidates(m.server_2s_64t(), "tensorflow", ()) if c.name.startswith("oneDNN"))
    assert c.name == "oneDNN off" and c.advice is None  # nothing set: a candidate like any


def test_the_other_onednn_value_ahead_of_the_script_s_line_is_said_as_advice():
    from redline.tuning.candidates import process_candidates, script_pins
    from redline.tuning.verdict import process_advice

    pins = script_pins({"onednn_set_at": "mixup.py:2", "onednn_set": "0"})
    procs = process_candidates(m.server_2s_64t(), "tensorflow", (), **pins)
    default, onednn = procs[0], next(c for c in procs if c.name == "oneDNN on")
    default.runs, onednn.runs = [86.0, 87.0], [177.0, 148.8, 181.9]  # mixup, measured (Zen 4)
    said = process_advice(procs, default, default)
    assert said == ["oneDNN on: 177.0 steps/s against 86.5 as written (2.05x, 3 against 2 measurements); the script "
                    "sets TF_ENABLE_ONEDNN_OPTS=0 itself (mixup.py:2): remove it there"], said


def test_run_tune_says_which_rivals_its_budget_left_unmeasured():
    """A ResNet50 of 0.55-s steps under `run --tune`: --budget auto gave it 30 s, its first trial took 25, and the run
    said "tuned in 25 s" and applied "the script as written", a choice every later `run --tune` reuses, with JAX,
    oneDNN and threads never measured and nothing said of them."""
    from redline.cli.run import undecided

    data = {"not_measured": ["backend jax (no trial process): the budget ran out",
                             "oneDNN off (no trial process): the budget ran out",
                             "as written (trial process 2 of 3): the budget ran out"],
            "needs_s": 156}
    said = undecided(data, "train.py")
    assert said == ("; the budget left 2 rival(s) unmeasured (backend jax, oneDNN off): `redline tune train.py` "
                    "(about 156 s) measures them"), said
    assert undecided({"not_measured": data["not_measured"][2:]}, "train.py") == ""  # every rival had a process

"""Spares (tuning/spares.py): a trial's process started ahead of its turn runs the trial as a fresh one would, never
takes CPU time from a measurement, and ends with the tune."""

import importlib.util
import os
import sys
import time

import pytest

from redline.tuning.passes import _expected
from redline.tuning.result import Candidate
from redline.tuning.spares import Spares, backend_for

needs_tf = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None or not sys.platform.startswith("linux"),
                              reason="TensorFlow is not installed, or no /proc to read a process's state from")

# the script says whether keras was imported before its first line: a spare imports it ahead, a fresh process does not
SAYS = """
import sys
print("KERAS BEFORE THE SCRIPT", "keras" in sys.modules, flush=True)
import numpy as np
import keras
x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
"""


@pytest.fixture
def clean_env(monkeypatch):
    from tune_helpers import ENV

    for k in list(os.environ):
        if k not in ENV:
            monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")


def _state(pid: int) -> str | None:
    """The process's state letter from /proc (T: stopped), None once it is gone (or a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
    return None if state in "ZX" else state


def _until(check, seconds: float = 30.0):
    """Poll ``check`` until it holds or the deadline passes; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        got = check()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def test_a_script_gets_spares_only_where_importing_keras_first_changes_nothing():
    assert backend_for({"status": "ok", "env_before_keras": []}) is None  # the environment's backend
    assert backend_for({"status": "ok", "env_before_keras": ["KERAS_BACKEND"], "pinned_backend": "jax"}) == "jax"
    # a variable keras or TensorFlow reads at import (oneDNN, threads, log level) set by the script first: no spares
    assert backend_for({"status": "ok", "env_before_keras": ["KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS"]}) is False
    assert backend_for({"status": "ok"}) is False  # the trial did not say
    assert backend_for({"status": "timeout", "env_before_keras": []}) is False


def test_the_trials_expected_next_are_the_next_due_else_the_leader_and_the_script_s_second_process():
    default, jax, onednn = Candidate("as written"), Candidate("backend jax"), Candidate("oneDNN off")
    one = Candidate("1 intra-op thread")
    default.runs, default.passes = [100.0, 100.0], [100.0]
    jax.runs, jax.passes = [300.0, 300.0], [300.0]
    assert _expected(default, [jax, onednn, one], [onednn, one]) == [onednn, one]  # the next two due
    assert _expected(default, [jax, onednn], [onednn]) == [onednn, default]  # then the script's second process
    assert _expected(default, [jax, onednn], []) == [default, jax]  # which comes before the leader's next
    default.passes.append(100.0)
    assert _expected(default, [jax, onednn], []) == [jax]
    assert _expected(default, [onednn], []) == [default]  # nothing ahead of the script as written: the stage in it


@needs_tf
def test_the_first_trial_says_what_the_script_set_before_importing_keras(tmp_path, clean_env):
    from tune_helpers import script, trial

    from redline.tuning.trials import run_trial

    text = 'import os\nos.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"\nos.environ["KERAS_BACKEND"] = "tensorflow"\n' + SAYS
    res = run_trial(script(tmp_path, text), [], Candidate("x"), trial({"default": {"own": True}}), 120)
    assert res["status"] == "ok", res
    assert res["env_before_keras"] == ["KERAS_BACKEND", "TF_ENABLE_ONEDNN_OPTS"] and res["pinned_backend"] == "tensorflow"
    assert backend_for(res) is False
    assert (res["onednn_set_at"], res["onednn_set"]) == ("train.py:2", "1")


@needs_tf
def test_a_trial_that_measures_the_other_onednn_value_ignores_the_script_s_own_line(tmp_path, clean_env):
    from tune_helpers import script, trial

    from redline.tuning.trials import run_trial

    text = ('import os\nos.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"\nprint("ONEDNN", os.environ["TF_ENABLE_ONEDNN_OPTS"])\n'
            + SAYS)
    res = run_trial(script(tmp_path, text), [], Candidate("oneDNN on", {"TF_ENABLE_ONEDNN_OPTS": "1"},
                                                          trial={"force_onednn": True}),
                    trial({"default": {"own": True}}), 120)
    assert res["status"] == "ok", res
    assert "ONEDNN 1" in res["stdout"], res["stdout"]  # the trial's value, not the script's "0"


@needs_tf
def test_what_importing_tensorflow_itself_sets_before_keras_leaves_the_script_its_spares(tmp_path, clean_env):
    """Tutorials import tensorflow before keras; TensorFlow's own import sets TF2_BEHAVIOR, TPU_ML_PLATFORM, ... as a
    spare's early import of keras does: not the script's, so the script still gets spares."""
    from tune_helpers import script, trial

    from redline.tuning.trials import run_trial

    text = "import tensorflow as tf\n" + SAYS
    res = run_trial(script(tmp_path, text), [], Candidate("x"), trial({"default": {"own": True}}), 120)
    assert res["status"] == "ok", res
    assert res["env_before_keras"] == [] and backend_for(res) is None


@needs_tf
def test_a_spare_stopped_while_importing_then_resumed_runs_its_trial_as_a_fresh_process_would(tmp_path, clean_env):
    from tune_helpers import script, trial

    from redline.tuning.trials import TrialProcess, run_trial

    s = script(tmp_path, SAYS)  # a fresh process prints False: the next test
    cand = Candidate("1 intra-op thread", {"TF_NUM_INTRAOP_THREADS": "1"})
    running = TrialProcess.__new__(TrialProcess)  # a trial that starts measuring at once, while the spare imports
    running.phases, running.on_phase = set(), None
    with Spares(s, [], None) as spares:
        spares.beside(running, [cand])
        (_, spare), = spares.waiting
        running.on_phase("measuring")
        assert _until(lambda: _state(spare.proc.pid) == "T", 10), "a spare still importing is stopped while a trial measures"
        assert "ready" not in spare.phases
        running.on_phase("measured")  # a later fit timed in the rest of the script: the spare goes on
        assert _until(lambda: _state(spare.proc.pid) not in ("T", None), 10)
        running.on_phase("measuring")  # the next one: stopped again (milliseconds into its import of seconds)
        assert _until(lambda: _state(spare.proc.pid) == "T", 10) and "ready" not in spare.phases
        # a trial of another candidate: once it has its figures, the spare goes on while the rest of its script runs
        rest = script(tmp_path, SAYS + "import time\ntime.sleep(2)  # the rest of the script, after fit\n", "rest.py")
        seen = []
        other = run_trial(rest, [], Candidate("as written"), {**trial({"default": {"own": True}}), "follow": True}, 120,
                          spares=spares, on_result=lambda r: seen.append(_state(spare.proc.pid)))
        assert other["after_fit"]["status"] == "complete" and seen and seen[0] != "T", (seen, other.get("after_fit"))
        assert spares.take(Candidate("as written")) is None  # another candidate's environment: not this spare
        res = run_trial(s, [], cand, trial({"default": {"own": True}}), 120, spares=spares)
        assert spares.taken == 1 and spares.waiting == []
    assert res["status"] == "ok", res
    assert "KERAS BEFORE THE SCRIPT True" in res["stdout"]  # imported ahead, in the spare
    assert res["candidates"]["default"]["steps_per_s"] and res["env_before_keras"] == []
    assert _state(spare.proc.pid) is None
    # TensorFlow's import: timed in a fresh process, as a run pays it; not in the spare, which imported it beside
    # other processes and stopped meanwhile (tuning/steps.tf_paid)
    assert other["tf_s"] > 0 and other["after_fit"]["tf_s"] >= other["tf_s"] and res["tf_s"] is None, res["tf_s"]


@needs_tf
def test_a_spare_not_used_ends_with_the_tune_and_one_used_takes_no_cpu_time_while_a_trial_measures(tmp_path, clean_env):
    from tune_helpers import script, trial

    from redline.tuning.trials import run_trial

    s = script(tmp_path, SAYS)
    cand, other = Candidate("as written"), Candidate("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"})

    def cpu(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    with Spares(s, [], None) as spares:
        spares.beside(None, [other])
        (_, spare), = spares.waiting
        assert _until(lambda: "ready" in spare.phases, 60), "the spare imports keras and says so"
        before = cpu(spare.proc.pid)
        res = run_trial(s, [], cand, {**trial({"default": {"own": True}}), "rounds": 3}, 120, spares=spares)
        assert res["status"] == "ok", res
        assert spares.waiting[0][1] is spare  # not this candidate's: still waiting
        # ready, it only waits on its pipe: no CPU time of its own while the trial ran (clock ticks of 10 ms)
        assert cpu(spare.proc.pid) - before <= 0.05
        pid = spare.proc.pid
    assert _until(lambda: _state(pid) is None, 10), "a spare the tune did not use ends with it"
    assert "KERAS BEFORE THE SCRIPT False" in res["stdout"]


@needs_tf
def test_a_spare_stopped_while_importing_ends_when_its_parent_dies_without_ending_it(tmp_path, clean_env):
    import subprocess
    import sys

    from tune_helpers import script

    s = script(tmp_path, SAYS)
    parent = subprocess.Popen([sys.executable, "-c", f"""
import os, sys, time
from redline.tuning.result import Candidate
from redline.tuning.spares import Spares
spares = Spares({s!r}, [], None)
spares.beside(None, [Candidate("x")])
(_, spare), = spares.waiting
print(spare.proc.pid, flush=True)
sys.stdin.readline()  # the test: it is importing
spares.pause()
print("stopped", flush=True)
sys.stdin.readline()
os._exit(0)  # killed, as by SIGKILL: no clean-up, the spare left stopped
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())

    def importing() -> bool:  # past its start, where it asked to end with its parent: TensorFlow's libraries loading
        try:
            with open(f"/proc/{pid}/maps") as f:
                return "tensorflow" in f.read()
        except FileNotFoundError:
            return False

    assert _until(importing, 60)
    parent.stdin.write("\n")
    parent.stdin.flush()
    assert parent.stdout.readline().strip() == "stopped"
    assert _until(lambda: _state(pid) == "T", 10)
    parent.stdin.write("\n")
    parent.stdin.flush()
    parent.wait(timeout=30)
    assert _until(lambda: _state(pid) is None, 10), "a stopped spare ends with its parent"


@pytest.mark.parametrize("first, kept", [
    ({"env_before_keras": []}, True),  # the guess holds: its spare is the tune's
    ({"env_before_keras": ["KERAS_BACKEND"], "pinned_backend": "tensorflow", "pinned_at": "t.py:2"}, False),  # pinned
    ({"env_before_keras": ["TF_ENABLE_ONEDNN_OPTS"]}, False),  # set before keras: no spares at all
])
def test_the_first_rival_s_process_starts_beside_trial_1_and_ends_where_trial_1_shows_the_guess_wrong(monkeypatch, first,
                                                                                                     kept):
    import machines as m
    from redline.tuning import search

    made = []

    class Fake:  # Spares, without processes: what was started for whom, and what was ended
        def __init__(self, script, args, pinned):
            self.pinned, self.started, self.closed = pinned, [], False
            made.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

        def close(self):
            self.closed = True

        def beside(self, running, ahead):
            self.started += [c.name for c in ahead or ()]

        def take(self, cand):
            return None

    calls = []

    def fake(script, args, cand, trial, timeout, spares=None, ahead=None, on_result=None, **_):
        calls.append((cand.name, spares, [c.name for c in ahead or ()], made[0].closed))
        res = {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0, 101.0, 99.0]}}, "data": "ndarray",
               "backend": "tensorflow", **(first if trial.get("discover") else {})}
        if on_result is not None:
            on_result(res)
        return res

    monkeypatch.setattr(search, "Spares", Fake)
    monkeypatch.setattr(search, "run_trial", fake)
    search.tune("t.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    guessed = made[0]
    assert guessed.pinned is None and calls[0] == ("as written", guessed, ["backend jax"], False)  # beside trial 1
    assert all(c[3] is not kept for c in calls[1:])  # ended once trial 1 showed the guess wrong, else kept
    if kept:
        assert len(made) == 1 and all(c[1] is guessed for c in calls[1:])  # its spares serve the later trials
    else:
        assert all(c[1] is not guessed for c in calls[1:])
        assert [s.pinned for s in made[1:]] == (["tensorflow"] if first.get("pinned_backend") else [])


def test_a_variable_is_the_script_s_unless_a_package_keras_imports_set_it_or_imported_its_setter():
    """The frames above a set: a package keras imports (tensorflow, jax), or a module imported while one of them was
    being imported (protobuf under TensorFlow), is not the script's; the script's own line, or its own helper module,
    is."""
    from redline.tuning.backend_pin import _set_by_keras_imports

    def frames(*names):
        """A call chain through modules ``names`` (outermost first) ending in a set: what the watch asks about."""
        got = []

        def setter():  # stands for the watch's __setitem__: the question looks at its caller and up
            got.append(_set_by_keras_imports())

        call = setter
        for name in reversed(names):
            scope = {"__name__": name, "inner": call}
            exec("def call():\n    inner()\n", scope)
            call = scope["call"]
        call()
        return got[0]

    assert frames("__main__", "tensorflow") is True  # TensorFlow's own import code
    assert frames("__main__", "tensorflow", "importlib._bootstrap", "google.protobuf") is True  # imported by it
    assert frames("__main__", "tensorflow", "google.protobuf") is False  # called, not imported: not its import
    assert frames("__main__") is False  # the script's own line
    assert frames("__main__", "importlib._bootstrap", "myconfig") is False  # the script's own helper module


TWO_FITS = SAYS + """
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])  # a new model: traces anew
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=3, verbose=0)
"""


@needs_tf
def test_a_trial_says_when_it_times_a_later_fit_so_its_spares_pause_for_it(tmp_path, clean_env):
    """The rest of the script runs cut short once the trial has its figures, and a later fit that traces anew is timed
    there (what its start costs a run): the spares, importing on the same cores, pause for it (kfold's later folds on
    JAX read 0.82-0.86 s a fold with them importing, 0.59-0.66 s without, 0.64 s in runs)."""
    from tune_helpers import script, trial

    from redline.tuning.trials import run_trial

    said = []

    class Heard:  # stands in for Spares: what the running trial said, in order
        def take(self, cand):
            return None

        def beside(self, running, ahead):
            running.on_phase = said.append

        def resume(self):
            pass

    s = script(tmp_path, TWO_FITS)
    res = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "follow": True}, 120,
                    spares=Heard())
    assert res["status"] == "ok" and res["after_fit"]["status"] == "complete", res.get("after_fit")
    later = said[said.index("figures") + 1:]  # then the trial's last word (how the script ended): figures too
    assert later[:2] == ["measuring", "measured"] and "measuring" not in later[2:], said
    assert "measuring" in said[:said.index("figures")]

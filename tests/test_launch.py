"""redline launch: the layout with fake machines; real worker processes on localhost (JAX on CPU, gloo) for the
agreement with one process, a killed worker, a stopped launcher, a failing rank and a TensorFlow-only script."""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import machines as m
from scripts import TF_OPS
from redline.errors import UsageError
from redline.launching.layout import cluster_environment, parse_address, plan_launch

needs_jax = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("KERAS_", "TF_NUM", "XDG_CACHE_HOME", "SLURM_", "OMPI_"))}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"


# -- the layout, pure ------------------------------------------------------------------------------------------------

def test_one_process_on_one_numa_node_and_one_per_node_pinned_on_two():
    p = plan_launch(m.vm_2core(), port=1234, env={})
    assert p.world == 1 and p.procs[0].cpus == () and p.coordinator == "127.0.0.1:1234"
    assert "loopback" in p.reasons["coordinator"] and "20585" in p.reasons["backend"]
    big = plan_launch(m.server_2s_64t(), port=1234, env={})
    assert big.nproc_per_host == 2 and "NUMA" in big.reasons["processes per host"]
    assert [len(x.cpus) for x in big.procs] == [32, 32] and not set(big.procs[0].cpus) & set(big.procs[1].cpus)
    env = big.procs[1].env
    assert env["KERAS_BACKEND"] == "jax" and env["KERAS_DISTRIBUTION_PROCESS_ID"] == "1"
    assert env["KERAS_DISTRIBUTION_NUM_PROCESSES"] == "2" and env["TF_NUM_INTRAOP_THREADS"] == "32"


def test_several_hosts_rank_processes_host_by_host_and_need_a_coordinator():
    p = plan_launch(m.vm_2core(), nproc=2, hosts=3, host_rank=2, coordinator="10.0.0.1:29500", env={})
    assert p.world == 6 and [x.rank for x in p.procs] == [4, 5] and p.coordinator == "10.0.0.1:29500"
    assert "every interface" in p.reasons["coordinator"]
    with pytest.raises(UsageError, match="needs --coordinator"):
        plan_launch(m.vm_2core(), hosts=2, env={})


def test_a_quota_below_the_affinity_count_shares_only_the_quota():
    p = plan_launch(m.container_16_quota4(), nproc=2, port=1, env={})
    assert [len(x.cpus) for x in p.procs] == [2, 2]


def test_slurm_and_open_mpi_are_read_as_jax_distributed_reads_them():
    assert cluster_environment({"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "3"}) == (
        "SLURM", {"hosts": 4, "host_rank": 3, "nproc_per_host": 1})
    assert cluster_environment({"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "1"})[0] == "Open MPI"
    p = plan_launch(m.vm_2core(), port=1, env={"SLURM_JOB_ID": "7", "SLURM_NTASKS": "4", "SLURM_PROCID": "3"},
                    coordinator="10.0.0.1:29500")
    assert p.world == 4 and p.procs[0].rank == 3 and "SLURM" in p.reasons["cluster"]


@pytest.mark.parametrize("kwargs, words", [
    ({"nproc": "0"}, "--nproc-per-host '0' is not valid"),
    ({"nproc": "-1"}, "--nproc-per-host '-1' is not valid"),
    ({"nproc": "two"}, "'two' is not a whole number"),
    ({"hosts": "2", "host_rank": "2", "coordinator": "h:1"}, "--host-rank 2 is not valid with --hosts 2: give 0 to 1"),
    ({"hosts": "2", "host_rank": "-1", "coordinator": "h:1"}, "--host-rank '-1' is not valid"),
])
def test_layout_bad_input(kwargs, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(")):
        plan_launch(m.vm_2core(), port=1, env={}, **kwargs)


@pytest.mark.parametrize("text", ["host", "host:", ":80", "host:http", "host:0", "host:70000", "10.0.0.1:29500:1x"])
def test_a_malformed_coordinator_is_refused(text):
    with pytest.raises(UsageError, match="is not HOST:PORT"):
        parse_address(text)
    assert parse_address("[::1]:80") == ("::1", 80) and parse_address("node-1:29500") == ("node-1", 29500)


# -- the command's bad input -----------------------------------------------------------------------------------------

@pytest.fixture
def busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("argv, words", [
    (["--nproc-per-host", "0"], "--nproc-per-host '0' is not valid"),
    (["--nproc-per-host", "-1"], "--nproc-per-host '-1' is not valid"),
    (["--nproc-per-host", "two"], "is not a whole number"),
    (["--hosts", "2", "--host-rank", "5", "--coordinator", "127.0.0.1:1"], "--host-rank 5 is not valid"),
    (["--coordinator", "localhost"], "is not HOST:PORT"),
    (["--coordinator", "127.0.0.1:{busy}"], "cannot listen on 127.0.0.1:{busy}"),
    (["--max-restarts", "-1"], "--max-restarts '-1' is not valid"),
    (["--checkpoint-dir", "{script}"], "is a file, not a folder"),
    (["--checkpoint-dir", "/proc/redline-ck"], "cannot be created"),
])
def test_launch_bad_input(capsys, tmp_path, busy_port, argv, words):
    from clirun import cli

    s = tmp_path / "train.py"
    s.write_text("print('never runs')\n")
    fill = lambda a: a.replace("{script}", str(s)).replace("{busy}", str(busy_port))  # noqa: E731
    code, out, err = cli(capsys, "launch", *map(fill, argv), "--dry-run", str(s))
    assert code == 2 and fill(words) in err and len(err.strip().splitlines()) == 1 and "never runs" not in out, err


def test_launch_refuses_a_script_that_pins_another_backend(capsys, tmp_path):
    from clirun import cli

    s = tmp_path / "train.py"
    s.write_text('import os\nos.environ["KERAS_BACKEND"] = "tensorflow"\nprint("never runs")\n')
    code, out, err = cli(capsys, "launch", "--dry-run", str(s))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "never runs" not in out, err
    assert "train.py:2 sets KERAS_BACKEND='tensorflow', and redline launch runs Keras on JAX" in err


def test_launch_a_missing_script(capsys):
    from clirun import cli

    code, out, err = cli(capsys, "launch", "nope.py")
    assert code == 2 and "does not exist" in err


def test_an_unwritable_checkpoint_dir(capsys, tmp_path):
    from clirun import cli

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root writes anywhere a mode allows nothing; /proc/1 is a folder root cannot write
        ro = "/proc/1"
        if not os.path.isdir(ro) or os.access(ro, os.W_OK):
            pytest.skip("no folder here that this user cannot write to")
    code, out, err = cli(capsys, "launch", "--checkpoint-dir", str(ro), "--dry-run", __file__)
    assert code == 2 and "not writable" in err


def test_dry_run_shows_every_process_and_starts_nothing(capsys, tmp_path):
    from clirun import cli

    s = tmp_path / "train.py"
    s.write_text("open('RAN', 'w')\n")
    code, out, err = cli(capsys, "launch", "--nproc-per-host", "2", "--dry-run", "--json", str(s), "--epochs", "3")
    d = json.loads(out)
    assert code == 0 and d["world"] == 2 and [p["rank"] for p in d["procs"]] == [0, 1] and d["args"] == ["--epochs", "3"]
    assert d["coordinator"].startswith("127.0.0.1:") and not (tmp_path / "RAN").exists()


# -- real processes on localhost -------------------------------------------------------------------------------------

TRAIN = """
import json, os, sys, time
import numpy as np, keras
keras.utils.set_random_seed(1)
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile(keras.optimizers.Adam(0.01), "mse")
epochs = int(sys.argv[1]); pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
tick = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: print("EPOCH-END", e + 1, flush=True),
                                      on_train_batch_end=lambda b, logs: time.sleep(pause))  # simulated step time: a kill lands mid-epoch
h = model.fit(x, y, batch_size=32, epochs=epochs, shuffle=False, verbose=0, callbacks=[tick])
import jax
print("RESULT", json.dumps({"rank": os.environ.get("KERAS_DISTRIBUTION_PROCESS_ID"), "backend": keras.backend.backend(),
      "processes": jax.process_count(), "cpus": sorted(os.sched_getaffinity(0)),
      "threads": os.environ.get("TF_NUM_INTRAOP_THREADS"),
      "distribution": type(keras.distribution.distribution()).__name__, "epochs_run": len(h.history["loss"]),
      "accumulate": model.optimizer.gradient_accumulation_steps,
      "weights": [w.tolist() for w in model.get_weights()]}), flush=True)
"""


#: TRAIN as a script that seeds nothing itself writes it: where no weights are compared, nothing in the workers imports
#: TensorFlow (Keras' own seeding would, seconds of CPU per process)
UNSEEDED = TRAIN.replace("keras.utils.set_random_seed(1)\n", "")


def _script(tmp_path, text=TRAIN, name="train.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def _launch(*argv, timeout=240):
    return subprocess.run([sys.executable, "-m", "redline", "launch", *argv], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def _results(stdout):
    return {json.loads(line.split("RESULT ", 1)[1])["rank"]: json.loads(line.split("RESULT ", 1)[1])
            for line in stdout.splitlines() if "RESULT " in line}


def _workers(script, parent=None):
    """The worker processes of `redline launch` running `script`, read from the process table (children of `parent`
    where given)."""
    import psutil

    procs = psutil.Process(parent).children(recursive=True) if parent else psutil.process_iter()
    found = []
    for p in procs:
        try:
            cmd = p.cmdline()
            if "redline.launching.worker" in cmd and script in cmd and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p.pid)
        except psutil.Error:  # ended while being read
            continue
    return found


def _poll(condition, within=60.0):
    """Polls `condition` until it holds or the deadline passes; its last value."""
    deadline = time.monotonic() + within
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The 1-process baseline both weight-agreement tests compare with: TRAIN on numpy arrays, 3 epochs."""
    one = _launch("--nproc-per-host", "1", _script(tmp_path_factory.mktemp("one")), "3")
    assert one.returncode == 0, one.stderr[-3000:]
    return one


@pytest.mark.slow
@needs_jax
def test_two_processes_train_the_same_weights_as_one_and_each_reads_its_own_environment(tmp_path, one_process):
    s = _script(tmp_path)
    one = one_process
    two = _launch("--nproc-per-host", "2", "--all-ranks", s, "3")
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:] + two.stdout[-3000:]
    r1, r2 = _results(one.stdout), _results(two.stdout)
    import numpy as np

    w1 = [np.array(w) for w in r1["0"]["weights"]]
    for rank in ("0", "1"):
        w2 = [np.array(w) for w in r2[rank]["weights"]]
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(w1, w2))
        print(f"1 process vs rank {rank} of 2: largest weight difference {diff:.3g} after 3 epochs of 16 steps")
        assert diff < 1e-4
    assert "global batch 32 = 16 per process x 2 processes" in two.stderr
    layout = json.loads(_launch("--nproc-per-host", "2", "--dry-run", "--json", s).stdout)  # what the launcher decides here
    for p in layout["procs"]:  # the per-process environment, read back in each child
        r = r2[str(p["rank"])]
        assert r["backend"] == "jax" and r["processes"] == 2 and r["distribution"] == "DataParallel"
        assert r["cpus"] == (p["cpus"] or sorted(os.sched_getaffinity(0))) and r["threads"] == p["env"].get("TF_NUM_INTRAOP_THREADS")
    assert all(line.startswith("[rank ") for line in two.stdout.splitlines() if line.strip())


@pytest.mark.slow
@needs_jax
def test_a_tf_data_pipeline_is_sharded_by_data_parallel_and_trains_the_same_weights(tmp_path, one_process):
    """The same batches, in the same order, as the arrays of the 1-process baseline: the same weights on 2 processes."""
    s = _script(tmp_path, TRAIN.replace(
        "h = model.fit(x, y, batch_size=32,",
        "import tensorflow as tf\nds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)\nh = model.fit(ds,"))
    two = _launch("--nproc-per-host", "2", s, "3")
    assert two.returncode == 0, two.stderr[-3000:]
    import numpy as np

    w1, w2 = _results(one_process.stdout)["0"]["weights"], _results(two.stdout)["0"]["weights"]
    diff = max(float(np.max(np.abs(np.array(a) - np.array(b)))) for a, b in zip(w1, w2))
    print(f"tf.data on 2 processes vs arrays on 1: largest weight difference {diff:.3g}")
    assert diff < 1e-4


def _run_and_watch(argv, until, timeout=240):
    """Start `redline launch`; call until(line, proc, seen) on each output line (stdout and stderr, timestamped)."""
    proc = subprocess.Popen([sys.executable, "-m", "redline", "launch", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=ENV)
    seen = []
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        for line in proc.stdout:
            seen.append((time.monotonic(), line.rstrip("\n")))
            until(line, proc, seen)
        proc.wait()
    finally:
        timer.cancel()
    return proc.returncode, seen


@pytest.mark.slow
@needs_jax
def test_a_killed_worker_stops_the_group_and_the_run_resumes_from_the_last_backup(tmp_path):
    # its one callback given bare (Keras takes it as a list): the backup's callback joins it
    s = _script(tmp_path, UNSEEDED.replace("callbacks=[tick]", "callbacks=tick"))
    ck = tmp_path / "ck"
    state = {}

    def until(line, proc, seen):
        if "EPOCH-END 3" in line and "killed" not in state:
            # once the backup of epoch 3 is written (polled), one worker is killed: the run resumes from a backup
            _poll(lambda: os.path.exists(ck / "latest.json") and json.loads((ck / "latest.json").read_text())["epoch"] >= 3)
            victim = _poll(lambda: _workers(s, proc.pid))[-1]
            os.kill(victim, signal.SIGKILL)
            state["killed"] = time.monotonic()
        if "restart 1 of 3" in line:
            state["noticed"] = time.monotonic()
            pids = [int(x) for x in line.split("(pids ")[1].split(")")[0].split(", ")]
            state["left"] = [pid for pid in pids if os.path.exists(f"/proc/{pid}")]  # the old group, reaped

    code, seen = _run_and_watch(["--nproc-per-host", "2", "--checkpoint-dir", str(ck), s, "8", "0.03"], until)
    text = "\n".join(line for _, line in seen)
    assert code == 0, text[-3000:]
    print(f"the launcher noticed the dead worker after {state['noticed'] - state['killed']:.2f} s")
    assert state["left"] == []                                # the whole group was stopped before the restart
    assert "from the backup of epoch" in text and "after 1 restart(s)" in text
    result = _results(text)["0"]
    assert result["epochs_run"] + int(text.split("from the backup of epoch ")[1].split()[0]) == 8  # the epochs asked for
    assert not _workers(s) and not os.listdir(ck)             # nothing left running, the finished run's backup removed


def test_a_peer_s_error_after_a_worker_was_killed_restarts_the_group(monkeypatch):
    """Rank 1 killed, rank 0 then ends with its collective's "Connection reset by peer" (exit 1): both are seen in
    one poll. The death is the cause: the group restarts, not "rank 0 exited with code 1 (not retried)"."""
    from redline.launching import launcher

    runs = iter([[1, -signal.SIGKILL], [0, 0]])  # each start of the group: its ranks' exit codes

    class Fake:
        def __init__(self, code):
            self.code, self.pid = code, 10 ** 7
            r, w = os.pipe()
            os.close(w)
            self.stdout = os.fdopen(r, "rb")

        def poll(self):
            return self.code

        def wait(self, timeout=None):
            return self.code

    codes = []

    def popen(argv, **kw):
        if not codes:
            codes.extend(next(runs))
        return Fake(codes.pop(0))

    monkeypatch.setattr(launcher.subprocess, "Popen", popen)
    plan = plan_launch(m.vm_2core(), nproc=2, port=1234, env={})
    said = []
    outcome = launcher.launch(plan, "train.py", [], out=open(os.devnull, "w"), log=said.append)
    assert outcome.code == 0 and outcome.restarts == 1, outcome
    assert "rank 1 was killed by SIGKILL" in said[0]


@pytest.mark.slow
@needs_jax
def test_sigterm_to_the_launcher_stops_the_group_and_exits_non_zero(tmp_path):
    s = _script(tmp_path, UNSEEDED)

    def until(line, proc, seen):
        if "EPOCH-END 2" in line:
            proc.send_signal(signal.SIGTERM)

    code, seen = _run_and_watch(["--nproc-per-host", "2", s, "30", "0.03"], until)
    assert code == 128 + signal.SIGTERM and "stopped by SIGTERM" in seen[-1][1]
    assert not _workers(s)


@needs_jax
def test_a_script_that_fails_on_rank_1_gives_its_rank_and_exit_code_and_is_not_retried(tmp_path):
    s = _script(tmp_path, "import os, sys\nimport keras\nif os.environ['KERAS_DISTRIBUTION_PROCESS_ID'] == '1':\n"
                          "    print('bad shard', flush=True); sys.exit(5)\nimport time; time.sleep(60)\n")  # rank 0 runs on: the launcher stops it
    r = _launch("--nproc-per-host", "2", s, timeout=120)
    assert r.returncode == 5 and "rank 1 exited with code 5" in r.stderr and "not retried" in r.stderr
    assert "[rank 1] bad shard" in r.stderr and "restart" not in r.stderr and not _workers(s)


@pytest.mark.slow
@needs_jax
def test_a_tensorflow_only_script_is_explained_and_stops_with_exit_2(tmp_path):
    s = _script(tmp_path, TF_OPS)
    r = _launch("--nproc-per-host", "2", s, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    last = r.stderr.strip().splitlines()[-1]
    assert "cannot run on the JAX backend" in last and "keras-team/keras/issues/20585" in last and not _workers(s)


@pytest.mark.slow
@needs_jax
def test_a_global_batch_the_user_fixed_is_kept_by_gradient_accumulation(tmp_path):
    """A script that seeds nothing and imports TensorFlow only after fit: joining the group (which seeds every process
    alike) does not import it before, and seeds it alike in both processes once the script imports it."""
    s = _script(tmp_path, UNSEEDED.replace(
        "import jax\n", "import jax\ntf_before = 'tensorflow' in sys.modules\nimport tensorflow as tf\n").replace(
        '"weights":', '"tf_before": tf_before, "tf_draw": float(tf.random.uniform(())), "weights":'))
    r = _launch("--nproc-per-host", "2", "--all-ranks", "--global-batch", "64", s, "1")
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = _results(r.stdout)
    assert ranks["0"]["accumulate"] == 2
    assert ranks["0"]["tf_before"] is False and ranks["1"]["tf_before"] is False
    assert ranks["0"]["tf_draw"] == ranks["1"]["tf_draw"]
    assert "--global-batch 64: gradients accumulated over 2 step(s) of 32" in r.stderr
    r = _launch("--nproc-per-host", "2", "--global-batch", "48", s, "1")
    assert r.returncode == 2 and "--global-batch 48 is not a multiple of the script's batch of 32" in r.stderr.splitlines()[-1]


def test_a_backup_cut_short_leaves_the_last_whole_one_in_place(tmp_path, monkeypatch):
    """The writer dies inside save_weights: the pointer still names the previous, complete backup, and the partial
    file is never read and is removed on the next restore."""
    import keras
    import numpy as np

    from redline.launching.worker import Backup

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    model.fit(np.ones((8, 2)), np.ones((8, 1)), epochs=1, verbose=0)
    b = Backup(str(tmp_path), rank=0)
    b.save(model, 1)
    saved = [w.copy() for w in model.get_weights()]
    assert json.loads((tmp_path / "latest.json").read_text()) == {"epoch": 1, "weights": "epoch-1.weights.h5"}

    def dies(self, filepath, *a, **k):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF half")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(type(model), "save_weights", dies)
    model.set_weights([w + 1 for w in saved])
    with pytest.raises(KeyboardInterrupt):
        b.save(model, 2)
    monkeypatch.undo()
    assert json.loads((tmp_path / "latest.json").read_text())["epoch"] == 1
    b.restore(model)
    assert all(np.array_equal(a, c) for a, c in zip(model.get_weights(), saved)) and model._initial_epoch == 1
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".partial-")]
    Backup(str(tmp_path), rank=1).finished()
    assert (tmp_path / "latest.json").exists()        # only rank 0 removes the backup at the end
    b.finished()
    assert os.listdir(tmp_path) == []

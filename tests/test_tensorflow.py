"""configure() and `redline run` with real TensorFlow on the CPU, each in a fresh process."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

if importlib.util.find_spec("tensorflow") is None:  # checked without importing it into the test process
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}
for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_CONFIG"):
    ENV.pop(var, None)


def python(code, *args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=240)


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_configure_sets_the_planned_threads():
    r = python("""
        import json, sys, redline
        p = redline.configure(intra_threads=1)
        import tensorflow as tf
        t = tf.config.threading
        print(json.dumps({"planned": [p.intra_op_threads.value, p.inter_op_threads.value],
                          "got": [t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads()],
                          "omp": __import__("os").environ.get("OMP_NUM_THREADS"),
                          "statuses": {a.name: a.status for a in p.actions}}))
    """)
    assert r.returncode == 0, r.stderr
    d = last_json(r.stdout)
    assert d["planned"][0] == 1 and d["got"][0] == 1
    assert d["omp"] == "1"
    assert d["statuses"]["intra_op_threads"] == "applied"
    assert d["statuses"]["iterator_release"] == "applied"  # keras brought up here, its epoch loop patched
    assert d["statuses"]["build_ahead"] == "applied"  # and its trainer
    # the inter-op pool is applied only where TensorFlow's default would oversubscribe (a quota, hyperthreads)
    import redline

    snap = redline.detect()
    fix = snap.cpu.usable_physical < len(os.sched_getaffinity(0))
    assert d["statuses"]["inter_op_threads"] == ("applied" if fix else "kept")
    assert d["got"][1] == (d["planned"][1] if fix else 0)


@pytest.mark.slow
def test_configure_after_tensorflow_started_reports_what_it_could_not_apply():
    r = python("""
        import json, os, warnings, tensorflow as tf, redline
        tf.constant(1.0) + 1  # the runtime starts here
        try:
            redline.configure(intra_threads=1, inter_threads=1)
        except redline.LateConfigurationError as e:
            raised = {"names": sorted(a.name for a in e.failed), "message": str(e)}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            p = redline.configure(intra_threads=1, inter_threads=1, on_late="warn")
        print(json.dumps({"raised": raised, "warned": [str(x.message) for x in w],
                          "failed": sorted(a.name for a in p.failed()),
                          "applied": sorted(a.name for a in p.actions if a.status == "applied"),
                          "env": [os.environ.get("OMP_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS")],
                          "env_sources": sorted({s.source for s in p.thread_env.values()})}))
    """)
    assert r.returncode == 0, r.stderr
    d = last_json(r.stdout)
    assert d["raised"]["names"] == ["inter_op_threads", "intra_op_threads"]
    msg = d["raised"]["message"]
    assert "cannot be modified after initialization" in msg and "call redline.configure() before" in msg and "redline run" in msg
    assert d["failed"] == ["inter_op_threads", "intra_op_threads"] and len(d["warned"]) == 1
    # what could still be applied was: the thread variables for OpenMP/MKL (set by the first call, kept by the second)
    assert d["env"] == ["1", "1"] and d["env_sources"] == ["environment"] and "OMP_NUM_THREADS" not in d["failed"]
    assert not {"intra_op_threads", "inter_op_threads"} & set(d["applied"])


@pytest.mark.slow
def test_mirrored_strategy_over_two_logical_cpu_devices():
    r = python("""
        import json, numpy as np, redline
        p = redline.configure(strategy="mirrored", cpu_devices=2, batch_size=8)
        import keras, tensorflow as tf
        with p.scope():
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
            model.compile("sgd", "mse")
        x = np.ones((64, 4), "float32"); y = np.ones((64, 1), "float32")
        h = model.fit(x, y, batch_size=p.global_batch.value, epochs=2, verbose=0)
        print(json.dumps({"replicas": p.strategy_object.num_replicas_in_sync,
                          "kind": type(p.strategy_object).__name__,
                          "cpus": len(tf.config.list_logical_devices("CPU")),
                          "global": p.global_batch.value, "loss": h.history["loss"]}))
    """)
    assert r.returncode == 0, r.stderr
    d = last_json(r.stdout)
    assert d == {**d, "replicas": 2, "kind": "MirroredStrategy", "cpus": 2, "global": 16}
    assert d["loss"][1] < d["loss"][0]


SCRIPT = """
import json, sys, os
if "--fail" in sys.argv:
    raise KeyError("boom from the script")
if "--exit" in sys.argv:
    sys.exit(int(sys.argv[-1]))
import tensorflow as tf
t = tf.config.threading
print(json.dumps({"argv": sys.argv, "name": __name__,
                  "threads": [t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads()],
                  "omp": os.environ.get("OMP_NUM_THREADS")}))
sys.stdout.flush()
"""


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "redline", *args], capture_output=True, text=True, env=env or ENV, cwd=cwd,
                          timeout=240)


@pytest.mark.slow
def test_redline_run_keeps_argv_exit_code_and_exceptions(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    ok = run_cli("run", "--intra-threads", "1", str(script), "--epochs", "3", "-v")
    assert ok.returncode == 0, ok.stderr
    d = last_json(ok.stdout)
    assert d["argv"] == [str(script), "--epochs", "3", "-v"] and d["name"] == "__main__"
    assert d["threads"] == [1, 0] and d["omp"] == "1"  # inter-op: TensorFlow's default (0), which nothing here needs to fix
    assert "redline: chose" in ok.stderr
    # the tf.data settings only redline.data reads are said to be that, not listed as changes to this run
    only = next(line for line in ok.stderr.splitlines() if "for redline.data pipelines only" in line)
    assert "data_threadpool=" in only and not any(line.lstrip().startswith("data_") for line in ok.stderr.splitlines())
    assert "left as you set them: " in ok.stderr and "intra_op_threads=1 (user)" in ok.stderr

    # the exit code and the exception pass through whatever the backend: on JAX, where `redline run` sets up no
    # TensorFlow and the script exits before importing it (seconds sooner than on TensorFlow)
    quick = {**ENV, "KERAS_BACKEND": "jax"} if importlib.util.find_spec("jax") else ENV
    code = run_cli("run", str(script), "--exit", "7", env=quick)
    assert code.returncode == 7, code.stderr

    boom = run_cli("run", "--quiet", str(script), "--fail", env=quick)
    assert boom.returncode == 1
    assert "Traceback" in boom.stderr and "KeyError: 'boom from the script'" in boom.stderr
    assert "redline: chose" not in boom.stderr


def test_redline_run_dry_run_does_not_run_the_script(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("raise SystemExit(9)\n")
    r = run_cli("run", "--dry-run", str(script))
    assert r.returncode == 0 and "intra_op_threads" in r.stdout and "script not run" in r.stdout


@pytest.mark.slow
def test_redline_run_compile_defaults_are_visible_and_reversible(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import json, keras
        from redline.applying import compile_defaults
        a = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]); a.compile("sgd", "mse")
        b = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]); b.compile("sgd", "mse", steps_per_execution=3)
        removed = compile_defaults.uninstall()
        c = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]); c.compile("sgd", "mse")
        print(json.dumps([a.steps_per_execution, b.steps_per_execution, c.steps_per_execution, removed]))
    """))
    r = run_cli("run", "--steps-per-execution", "5", str(script))
    assert r.returncode == 0, r.stderr
    assert last_json(r.stdout) == [5, 3, 1, True]
    assert "Sequential.compile(steps_per_execution=5) set by redline" in r.stderr
    assert "Model.compile defaults patched in: steps_per_execution=5" in r.stderr

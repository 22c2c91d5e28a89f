"""What the README promises and no other test checked: each promise run for real, cheaply."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

import tensorflow as tf  # noqa: E402

import redline.data as rd  # noqa: E402
import run_records as rr  # noqa: E402
from machines import vm_2core  # noqa: E402
from redline import plan  # noqa: E402
from clirun import cli  # noqa: E402
from redline.diagnosis.bottleneck import THRESHOLDS  # noqa: E402
from redline.monitoring.system import procs_running  # noqa: E402

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "KERAS_BACKEND", "TF_CONFIG"))}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"



def redline_cli(*argv, timeout=240):
    return subprocess.run([sys.executable, "-m", "redline", *argv], capture_output=True, text=True, env=ENV, timeout=timeout)


# -- diagnose --workload, and its record through diagnose and report ---------------------------------------------------

@pytest.fixture(scope="module")
def measured_record(tmp_path_factory):
    path = tmp_path_factory.mktemp("diag") / "tiny.jsonl"
    r = redline_cli("diagnose", "--workload", "tiny", "--pipeline", "redline", "--save", str(path), "--json",
                    "--seconds", "0.5", "--repeats", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    return path, json.loads(r.stdout)


@pytest.mark.slow
def test_diagnose_workload_json_and_save(measured_record):
    path, d = measured_record
    assert d["record"] == str(path)
    assert d["probe"]["data_adapter"] == "TFDatasetAdapter"  # --pipeline redline: a redline.data pipeline, not arrays
    from redline.diagnosis.bottleneck import Breakdown, classify

    b = Breakdown(**{k: d["breakdown"][k] for k in ("step_s", "input_s", "overhead_s", "compute_s")})
    assert b.step_s > 0 and abs(b.input_s + b.overhead_s + b.compute_s - b.step_s) <= 1e-9 * b.step_s
    assert all(0.0 <= v <= 1.0 for v in b.shares().values())
    assert [d["kind"], d["input_grade"]] == list(classify(b))  # the verdict is the one its own figures give
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0]["type"] == "header" and [x["type"] for x in lines].count("probe") == 1


@pytest.mark.slow
def test_a_measured_record_through_diagnose_and_report(measured_record, capsys, tmp_path):
    path, d = measured_record
    code, out, _ = cli(capsys, "diagnose", str(path))
    assert code == 0 and d["kind"] in out and "model alone" in out
    code, out, _ = cli(capsys, "report", str(path), "-o", str(tmp_path / "r.html"))
    assert code == 0 and f"verdict: {d['kind']}" in out
    page = (tmp_path / "r.html").read_text()
    assert d["kind"] in page and "Step-time breakdown" in page


# -- bench's table and --json ------------------------------------------------------------------------------------------

def test_bench_prints_its_table_and_writes_json(capsys, monkeypatch, tmp_path):
    import redline.cli.bench as bench_cli

    with open(os.path.join(os.path.dirname(__file__), "..", "benchmarks", "results", "bench-vm.json")) as f:
        result = json.load(f)  # a real bench's results, as recorded in BENCHMARKS.md
    monkeypatch.setattr(bench_cli, "bench", lambda *a, **k: result)  # the CLI's own job: print and write what bench returns
    out_path = tmp_path / "b.json"
    code, out, err = cli(capsys, "bench", "--json", str(out_path))
    assert code == 0 and json.loads(out_path.read_text()) == result and f"results written to {out_path}" in out
    for row in result["workloads"]:
        assert row["workload"] in out and f"{row['ratio']:.2f}x" in out
    code, _, _ = cli(capsys, "bench", "--json", str(out_path))  # bench results may be written over by new ones
    assert code == 0


# -- redline run's Model.compile defaults ------------------------------------------------------------------------------

COMPILE_SCRIPT = """
import json, keras
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
m.compile("sgd", "mse")
own = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
own.compile("sgd", "mse", steps_per_execution=3, jit_compile=False)
print("RESULT", json.dumps({"spe": m.steps_per_execution, "jit": m.jit_compile, "own": [own.steps_per_execution, own.jit_compile]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("flags, spe, jit", [
    (["--steps-per-execution", "4", "--jit-compile", "true"], 4, True),
    (["--compile-defaults"], None, None),   # redline's recommendation for this machine, read from the plan
])
def test_run_patches_compile_defaults_and_the_script_wins(tmp_path, flags, spe, jit):
    script = tmp_path / "train.py"
    script.write_text(COMPILE_SCRIPT)
    r = redline_cli("run", *flags, str(script))
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][0][7:])
    if spe is None:
        p = plan(__import__("redline").detect(), compile_defaults=True)
        spe, jit = p.steps_per_execution.value, p.jit_compile.value
    assert d["spe"] == spe and d["jit"] == jit
    assert d["own"] == [3, False]  # arguments the script passes itself win
    assert "Sequential.compile(" in r.stderr and "set by redline" in r.stderr


# -- configure(precision=, onednn=, backend=) --------------------------------------------------------------------------

@pytest.mark.slow
def test_configure_precision_onednn_backend():
    code = textwrap.dedent("""
        import json, os, redline
        p = redline.configure(precision="mixed_bfloat16", onednn=False, backend="tensorflow", intra_threads=1)
        import keras
        print(json.dumps({"policy": keras.config.dtype_policy().name, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
                          "backend": keras.backend.backend(), "status": {a.name: a.status for a in p.actions}}))
    """)
    env = {k: v for k, v in ENV.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["policy"] == "mixed_bfloat16" and d["onednn"] == "0" and d["backend"] == "tensorflow"
    assert d["status"]["precision"] == "applied" and d["status"]["TF_ENABLE_ONEDNN_OPTS"] == "applied"


# -- redline.data: batch_map_fn, shuffle cap, options, image folders ---------------------------------------------------

X = np.arange(40, dtype="float32").reshape(20, 2)
Y = np.arange(20, dtype="int64")


def test_batch_map_fn_runs_on_whole_batches():
    seen = []

    def double(x, y):
        seen.append(x.shape[0])  # traced once: the static batch dimension
        return x * 2, y

    # deterministic=True: the default lets parallel batch maps finish out of order (seen in CI: [8, 4, 8])
    ds = rd.pipeline((X, Y), batch_size=8, batch_map_fn=double, shuffle=False, repeat=False, deterministic=True,
                     plan=plan(vm_2core()))
    batches = list(ds)
    assert [int(b[0].shape[0]) for b in batches] == [8, 8, 4]
    got = np.concatenate([b[0].numpy() for b in batches])
    assert np.array_equal(got, X * 2) and seen  # every row doubled, in order


def test_the_shuffle_buffer_is_capped_by_the_memory_budget_for_other_sources():
    source = tf.data.Dataset.from_tensor_slices((np.zeros((1000, 8), "float32"), np.zeros(1000, "int64")))
    # an element is 8 float32 + 1 int64 = 40 bytes; 10% of a 100,000-byte budget holds 250 of them (over 10 batches of 4)
    with pytest.warns(UserWarning, match="shuffle buffer of 250 elements, below the 1000"):
        ds = rd.pipeline(source, batch_size=4, memory_budget=100_000, plan=plan(vm_2core()))
    assert ds.redline.shuffle_buffer == 250
    ds = rd.pipeline(source, batch_size=4, memory_budget=10**9, plan=plan(vm_2core()))
    assert ds.redline.shuffle_buffer == 1000  # a full shuffle where it fits


def test_pipeline_sets_its_own_tf_data_options():
    p = plan(vm_2core())
    ds = rd.pipeline((X, Y), batch_size=4, plan=p, memory_budget=123_456_789, deterministic=True)
    o = ds.options()
    assert o.threading.private_threadpool_size == p.data_threadpool.value == 2
    assert o.threading.max_intra_op_parallelism == 1
    assert o.autotune.enabled is False and o.autotune.ram_budget == 123_456_789
    assert o.deterministic is True


def test_image_folder_labels_and_sizes(tmp_path):
    from PIL import Image

    for cls, colour, n in (("cat", (255, 0, 0), 2), ("ant", (0, 0, 255), 1)):
        (tmp_path / cls).mkdir()
        for i in range(n):
            Image.new("RGB", (20 + i, 10), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    src = rd.image_folder(str(tmp_path), image_size=(8, 6))
    assert src.class_names == ("ant", "cat") and src.labels == (0, 1, 1)  # sorted class names; the .txt is skipped
    ds = rd.pipeline(src, batch_size=3, shuffle=False, repeat=False, deterministic=True, plan=plan(vm_2core()))
    images, labels = next(iter(ds))
    assert images.shape == (3, 8, 6, 3) and images.dtype == tf.float32
    assert labels.numpy().tolist() == [0, 1, 1]
    assert float(images[0, 0, 0, 2]) > 0.9 and float(images[1, 0, 0, 0]) > 0.9  # blue ant, red cats, scaled to [0, 1]


# -- runnable threads from /proc/stat ----------------------------------------------------------------------------------

def test_runnable_threads_read_from_a_fake_proc_tree(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "stat").write_text("cpu  1 2 3 4\nctxt 99\nprocs_running 7\nprocs_blocked 1\n")
    assert procs_running(str(tmp_path)) == 7
    (tmp_path / "proc" / "stat").write_text("cpu  1 2 3 4\n")
    assert procs_running(str(tmp_path)) is None  # a kernel without the line: not available
    assert procs_running(str(tmp_path / "nowhere")) is None


# -- the thresholds every report prints --------------------------------------------------------------------------------

def test_every_report_prints_the_thresholds(capsys, tmp_path):
    path = rr.write(tmp_path / "r.jsonl", rr.run_lines())
    code, text, _ = cli(capsys, "diagnose", str(path))
    assert code == 0
    code, _, _ = cli(capsys, "report", str(path), "-o", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    code, js, _ = cli(capsys, "diagnose", str(path), "--json")
    shown = json.loads(js)["thresholds"]
    assert shown == THRESHOLDS
    for name, value in THRESHOLDS.items():
        assert f"{name} {value:g}" in page
        assert name in text and f"{value:g}" in text

"""redline.data's generator workers in ordinary scripts, run as `python script.py`: no `__main__` guard needed
when the generator is imported, a clear fallback where workers cannot start, and no worker outlives its pipeline."""

import json
import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

GENS = """
import numpy as np

def gen(shard=0, num_shards=1):
    for i in range(shard, 256, num_shards):
        yield np.full(4, i, "float32"), np.float32(i)
"""

HEAD = """
import gc, json, os, time, warnings
import psutil, numpy as np, tensorflow as tf
import redline.data as rd
spec = (tf.TensorSpec((4,), tf.float32), tf.TensorSpec((), tf.float32))
me = psutil.Process()

def workers():
    # the pipeline's worker processes (spawned: their command line runs multiprocessing's spawn_main)
    return sorted(c.pid for c in me.children(recursive=True)
                  if c.is_running() and c.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(c.cmdline()))

def read(ds):
    return sorted(int(v) for _, y in ds for v in y.numpy())

def build(fn):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = rd.pipeline(rd.generator(fn, output_signature=spec, size=256), batch_size=32, repeat=False, shuffle=False)
    return ds, [str(x.message) for x in w if "redline.data" in str(x.message)]
"""

# No __main__ guard, as most training scripts are written; the generator comes from a module of the user's.
UNGUARDED_IMPORTED = HEAD + """
from gens import gen
out = {"before": workers(), "rounds": []}
for k in range(3):
    ds, warned = build(gen)
    elements = read(ds)
    during = workers()
    del ds
    gc.collect(); time.sleep(0.5)
    out["rounds"].append({"elements": elements == list(range(256)), "warned": warned, "during": during, "after": workers()})
ds, _ = build(gen); read(ds)
out["before_close"] = workers(); ds.redline.close(); time.sleep(0.3); out["after_close"] = workers()
with build(gen)[0].redline as info:
    pass
ds, _ = build(gen)
with ds.redline:
    read(ds); out["in_with"] = workers()
time.sleep(0.3); out["after_with"] = workers()
ds, warned = build(lambda shard, num_shards: gen(shard, num_shards))
out["lambda"] = {"elements": read(ds) == list(range(256)), "warned": warned, "workers": ds.redline.workers}
ds, _ = build(gen); read(ds)
out["orphans"] = workers()
print("RESULT " + json.dumps(out), flush=True)
os._exit(0)  # no clean-up at all: the workers must notice on their own
"""

UNGUARDED_LOCAL = HEAD + """
def local_gen(shard=0, num_shards=1):
    for i in range(shard, 256, num_shards):
        yield np.full(4, i, "float32"), np.float32(i)

ds, warned = build(local_gen)
print("RESULT " + json.dumps({"elements": read(ds) == list(range(256)), "warned": warned, "workers": ds.redline.workers}))
"""

GUARDED_LOCAL = UNGUARDED_LOCAL.replace("ds, warned = build(local_gen)", "if __name__ == '__main__':\n    ds, warned = build(local_gen)") \
    .replace("\nprint(\"RESULT", "\n    print(\"RESULT")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scripts")
    (folder / "gens.py").write_text(GENS)
    procs = {}
    for name, text in (("imported", UNGUARDED_IMPORTED), ("local", UNGUARDED_LOCAL), ("guarded", GUARDED_LOCAL)):
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        procs[name] = subprocess.Popen([sys.executable, f"{name}.py"], cwd=folder, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=240)
        lines = [x for x in stdout.splitlines() if x.startswith("RESULT ")]
        assert lines, f"{name}.py printed no result (exit {p.returncode}):\n{stderr[-3000:]}"
        out[name] = json.loads(lines[0][7:])
        out[name + "_stderr"] = stderr
    return out


def test_unguarded_script_with_an_imported_generator_runs_it_in_workers(results):
    r = results["imported"]
    assert "GeneratorFailed" not in results["imported_stderr"]
    for round_ in r["rounds"]:
        assert round_["elements"] and round_["warned"] == [] and len(round_["during"]) == 2


def test_workers_end_when_the_pipeline_is_collected(results):
    r = results["imported"]
    assert r["before"] == []
    assert [len(x["after"]) for x in r["rounds"]] == [0, 0, 0]


def test_close_and_with_end_the_workers(results):
    r = results["imported"]
    assert len(r["before_close"]) == 2 and r["after_close"] == []
    assert len(r["in_with"]) == 2 and r["after_with"] == []


def test_workers_end_when_their_process_dies_without_clean_up(results):
    pids = results["imported"]["orphans"]
    assert len(pids) == 2
    deadline = time.time() + 10
    while time.time() < deadline and any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        time.sleep(0.2)
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


def test_a_lambda_falls_back_to_one_process_and_says_why(results):
    r = results["imported"]["lambda"]
    assert r["elements"] and r["workers"] == 0
    assert any("cannot be sent to worker processes" in w and "top level of a module" in w for w in r["warned"])


def test_a_generator_in_an_unguarded_script_falls_back_and_says_how_to_fix_it(results):
    r = results["local"]
    assert r["elements"] and r["workers"] == 0
    assert any("no `if __name__ == \"__main__\":` guard" in w and "module of its own" in w for w in r["warned"])
    assert "GeneratorFailed" not in results["local_stderr"]


def test_a_generator_in_a_guarded_script_runs_in_workers(results):
    r = results["guarded"]
    assert r["elements"] and r["workers"] == 2 and r["warned"] == []

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

pytestmark = pytest.mark.slow  # three real scripts with worker processes (about 17 s)

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

def settle(n=0, within=20.0):
    # polls until at most n workers are left, or the deadline passes: what is left then
    deadline = time.monotonic() + within
    while len(workers()) > n and time.monotonic() < deadline:
        time.sleep(0.05)
    return workers()

def build(fn, shards=2):
    # 2 worker processes asked for, whatever this machine's CPU count (None: as many as the plan decides)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = rd.pipeline(rd.generator(fn, output_signature=spec, size=256, num_shards=shards), batch_size=32,
                         repeat=False, shuffle=False)
    return ds, [str(x.message) for x in w if "redline.data" in str(x.message)]
"""

# No __main__ guard, as most training scripts are written; the generator comes from a module of the user's.
UNGUARDED_IMPORTED = HEAD + """
from gens import gen
out = {"before": workers(), "rounds": []}
for k in range(3):
    ds, warned = build(gen)
    elements = read(ds)
    during, planned = workers(), ds.redline.workers
    del ds
    gc.collect()
    out["rounds"].append({"elements": elements == list(range(256)), "warned": warned, "during": during,
                          "planned": planned, "after": settle()})
ds, _ = build(gen); read(ds)
out["before_close"], out["planned"] = workers(), ds.redline.workers
ds.redline.close(); out["after_close"] = settle()
with build(gen)[0].redline as info:
    pass
ds, _ = build(gen)
with ds.redline:
    read(ds); out["in_with"] = workers()
out["after_with"] = settle()
ds, warned = build(lambda shard, num_shards: gen(shard, num_shards))
out["lambda"] = {"elements": read(ds) == list(range(256)), "warned": warned, "workers": ds.redline.workers}
ds, _ = build(gen); read(ds)
out["orphans"] = workers(); out["orphans_planned"] = ds.redline.workers
print("RESULT " + json.dumps(out), flush=True)
os._exit(0)  # no clean-up at all: the workers must notice on their own
"""

LOCAL_GEN = """
import redline
def local_gen(shard=0, num_shards=1):
    for i in range(shard, 256, num_shards):
        yield np.full(4, i, "float32"), np.float32(i)

def main(shards):
    ds, warned = build(local_gen, shards=shards)
    print("RESULT " + json.dumps({"elements": read(ds) == list(range(256)), "warned": warned, "workers": ds.redline.workers,
                                  "planned": redline.plan(redline.detect()).data_threadpool.value}))
"""
UNGUARDED_LOCAL = HEAD + LOCAL_GEN + "main(2)\n"  # 2 workers asked for: the missing guard is what stops them
GUARDED_LOCAL = HEAD + LOCAL_GEN + "if __name__ == '__main__':\n    main(None)\n"  # as many as the plan decides


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
    for round_ in r["rounds"]:  # as many worker processes running as the pipeline says it started, at least one
        assert round_["elements"] and round_["warned"] == [] and len(round_["during"]) == round_["planned"] >= 1


def test_workers_end_when_the_pipeline_is_collected(results):
    r = results["imported"]
    assert r["before"] == []
    assert [len(x["after"]) for x in r["rounds"]] == [0, 0, 0]


def test_close_and_with_end_the_workers(results):
    r = results["imported"]
    assert len(r["before_close"]) == r["planned"] >= 1 and r["after_close"] == []
    assert len(r["in_with"]) == r["planned"] and r["after_with"] == []


def test_workers_end_when_their_process_dies_without_clean_up(results):
    pids = results["imported"]["orphans"]
    assert len(pids) == results["imported"]["orphans_planned"] >= 1
    deadline = time.time() + 60  # polled: the workers notice the dead parent on their own
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
    r = results["guarded"]  # as many workers as the plan's pool (one per usable CPU), none where that is one
    assert r["elements"] and r["workers"] == (r["planned"] if r["planned"] > 1 else 0) and r["warned"] == []

"""redline.diagnose on the built-in workloads with real TensorFlow on the CPU.

The verdicts are checked against margins the measurements clear by far on 2
cores (see the closing figures in BENCHMARKS.md), so machine noise does not
flip them.
"""

import importlib.util
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

import keras  # noqa: E402

import redline  # noqa: E402
from fake_nvml import FakeNVML  # noqa: E402
from redline import UsageError  # noqa: E402
from redline.benchmarking import pipelines  # noqa: E402
from redline.benchmarking.run_once import _loss  # noqa: E402
from redline.workloads import get  # noqa: E402

SECONDS = 1.0


def compiled(w):
    keras.utils.set_random_seed(0)
    m = w.build_model()
    m.compile(optimizer=w.optimizer, loss=_loss(w.loss))
    return m


def test_naive_input_pipeline_is_input_bound_and_the_fix_raises_throughput(tmp_path):
    w = get("input")
    x, y = w.make_data(0)
    naive = redline.diagnose(compiled(w), pipelines.naive(w, x, y, w.batch_size), seconds=SECONDS,
                             record=tmp_path / "naive.jsonl", nvml=FakeNVML())
    assert naive.kind == "input-bound" and naive.input_grade == "highly input-bound"
    finding = naive.findings[0]
    assert finding.code == "input_bound" and "redline.data.pipeline((x, y), batch_size=64, augment=fn)" in finding.fix
    # the fix, as the finding writes it, against the naive pipeline: interleaved (A B A B A B) in a fresh process,
    # as the bench measures, so neither a slow spell nor state left by earlier tests decides it
    r = subprocess.run([sys.executable, "-c", BEFORE_AFTER], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert r.returncode == 0, r.stderr[-2000:]
    rates = json.loads(r.stdout.strip().splitlines()[-1])
    before, after = statistics.median(rates["naive"]), statistics.median(rates["fixed"])
    print(f"naive {before:,.0f} -> fixed {after:,.0f} samples/s ({after / before:.2f}x)")
    assert after > 1.1 * before, rates


BEFORE_AFTER = """
import json, time
import keras, redline.data as rd
from redline.benchmarking import pipelines
from redline.benchmarking.run_once import _loss
from redline.workloads import get
w = get("input")
x, y = w.make_data(0)
keras.utils.set_random_seed(0)
model = w.build_model()
model.compile(optimizer=w.optimizer, loss=_loss(w.loss))
steps = x.shape[0] // 64
naive_ds = pipelines.naive(w, x, y, 64)
fixed_ds = rd.pipeline((x, y), batch_size=64, augment=w.augment)
arms = {"naive": lambda: model.fit(naive_ds, epochs=1, verbose=0, shuffle=False),
        "fixed": lambda: model.fit(fixed_ds, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)}
for run in arms.values():
    run()  # tracing, first iterators
rates = {"naive": [], "fixed": []}
for _ in range(3):
    for arm, run in arms.items():
        start = time.perf_counter()
        run()
        rates[arm].append(steps * 64 / (time.perf_counter() - start))
print(json.dumps(rates))
"""


def test_cnn_is_compute_bound():
    w = get("cnn")
    x, y = w.make_data(0)
    d = redline.diagnose(compiled(w), x, y, batch_size=w.batch_size, seconds=SECONDS, nvml=FakeNVML())
    assert d.kind == "compute-bound", d.to_dict()
    assert d.breakdown.shares()["overhead"] < 0.3


def test_tiny_is_overhead_bound_and_its_weights_are_left_as_they_were():
    w = get("tiny")
    x, y = w.make_data(0)
    m = compiled(w)
    history = m.fit(x[:64], y[:64], batch_size=16, epochs=1, verbose=0)
    before = [v.copy() for v in m.get_weights()]
    opt_before = [v.numpy().copy() for v in m.optimizer.variables]
    d = redline.diagnose(m, x, y, batch_size=w.batch_size, seconds=SECONDS, nvml=FakeNVML())
    assert d.kind == "overhead-bound", d.to_dict()
    assert d.findings[0].code == "dispatch_overhead" and "steps_per_execution=16" in d.findings[0].fix
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(opt_before, m.optimizer.variables))
    assert m.history is history


def test_diagnose_needs_a_compiled_model_and_sane_seconds():
    w = get("tiny")
    x, y = w.make_data(0)
    with pytest.raises(UsageError, match="compile the model first"):
        redline.diagnose(w.build_model(), x, y)
    with pytest.raises(UsageError, match="seconds=0 is not valid"):
        redline.diagnose(compiled(w), x, y, seconds=0)
    with pytest.raises(UsageError, match="repeats=0 is not valid"):
        redline.diagnose(compiled(w), x, y, repeats=0)
    with pytest.raises(UsageError, match="cannot read this data"):
        redline.diagnose(compiled(w), x, y[:10], batch_size=16)

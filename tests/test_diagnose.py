"""redline.diagnose on the built-in workloads with real TensorFlow on the CPU.

Real measurements are checked only for what holds on every machine (see
consistent()); which verdict a workload gets depends on the CPU, and the
verdict logic is tested on given throughputs in test_diagnosis.py.
"""

import importlib.util

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
from redline.diagnosis.bottleneck import breakdown, classify  # noqa: E402
from redline.workloads import get  # noqa: E402

SECONDS = 0.5


def compiled(w):
    keras.utils.set_random_seed(0)
    m = w.build_model()
    m.compile(optimizer=w.optimizer, loss=_loss(w.loss))
    return m


def consistent(d):
    """What holds for any real measurement, on any machine: the breakdown is the probe's three throughputs split as
    breakdown() splits them, its shares lie in [0, 1] and add up to 1, the verdict is classify() of that breakdown,
    and the verdict's finding, where there is one, comes first. Which verdict a workload gets on this CPU is the machine's business: the
    decision logic is tested on given throughputs (test_diagnosis.py)."""
    p = d.probe
    again = breakdown(p["batch_size"], p["model_samples_per_s"], p["model_2x_samples_per_s"], p["run_samples_per_s"])
    assert again == d.breakdown
    shares = d.breakdown.shares()
    assert all(0.0 <= v <= 1.0 for v in shares.values()) and abs(sum(shares.values()) - 1.0) < 1e-9, shares
    assert (d.kind, d.input_grade) == classify(d.breakdown)
    first = {"input-bound": "input_bound", "overhead-bound": "dispatch_overhead"}.get(d.kind)
    if first and any(f.code == first for f in d.findings):  # the verdict's own finding, where there is one, leads
        assert d.findings[0].code == first
    return shares


@pytest.mark.slow
def test_a_naive_input_pipeline_is_measured_and_its_record_written(tmp_path):
    w = get("input")
    x, y = w.make_data(0)
    naive = redline.diagnose(compiled(w), pipelines.naive(w, x, y, w.batch_size), seconds=SECONDS,
                             record=tmp_path / "naive.jsonl", nvml=FakeNVML())
    consistent(naive)
    assert naive.probe["data_adapter"] == "TFDatasetAdapter" and naive.probe["batch_size"] == w.batch_size
    assert (tmp_path / "naive.jsonl").exists()
    for f in naive.findings:  # where the input is found to bind, the fix names the pipeline that would replace it: this
        if f.code == "input_bound":  # one's own, unless the pipeline alone was measured keeping the usable CPUs busy
            saturated = "the input is parallel already" in f.fix  # (then the general form: a measurement decides which)
            assert "redline.data.pipeline(" in f.fix
            assert saturated or "redline.data.pipeline((x, y), batch_size=64, augment=fn)" in f.fix, f.fix


def test_diagnose_leaves_the_weights_as_they_were():
    w = get("tiny")
    x, y = w.make_data(0)
    m = compiled(w)
    history = m.fit(x[:64], y[:64], batch_size=16, epochs=1, verbose=0)
    before = [v.copy() for v in m.get_weights()]
    opt_before = [v.numpy().copy() for v in m.optimizer.variables]
    d = redline.diagnose(m, x, y, batch_size=w.batch_size, seconds=SECONDS, nvml=FakeNVML())
    consistent(d)
    for f in d.findings:  # where dispatch is found to bind, the fix says how many steps to run per call
        if f.code == "dispatch_overhead":
            assert "steps_per_execution=16" in f.fix
    assert all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(opt_before, m.optimizer.variables))
    assert m.history is history


def test_a_measurement_sized_for_more_steps_than_its_seconds_hold_stops_after_its_cap():
    """A step count sized at a quiet moment runs on a loaded machine for as long as the machine takes (this test's
    own diagnose above took 42-66 s of a suite, ~8 s alone): each measurement stops CAP x its seconds after its first
    step. 100,000 steps of the tiny model are over a minute of work (75 s on a 2-core Zen 4); 0.2 s x CAP holds far
    fewer."""
    from redline.diagnosis import probe

    w = get("tiny")
    x, y = w.make_data(0)
    m = compiled(w)
    rate, n = probe._model_alone(m, (x[:16], y[:16]), 0.2, 1, n=100_000)
    assert n == 100_000 and rate > 0
    assert 0 < int(keras.ops.convert_to_numpy(m.optimizer.iterations)) < 100_000


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


def test_the_python_ops_of_a_tf_data_pipeline_are_read_from_its_graph():
    import tensorflow as tf

    from redline.diagnosis.probe import _python_ops

    ds = tf.data.Dataset.from_tensor_slices(np.zeros((8, 4), np.float32))
    assert _python_ops(ds.map(lambda a: tf.numpy_function(np.negative, [a], tf.float32)).batch(2).prefetch(1)) == [
        "PyFunc"]
    assert _python_ops(ds.map(lambda a: tf.py_function(lambda t: t, [a], tf.float32)).batch(2)) == ["EagerPyFunc"]
    assert _python_ops(ds.map(lambda a: a * 2).batch(2)) == [] and _python_ops(np.zeros(3)) == []

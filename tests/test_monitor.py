"""redline.Monitor with real Keras/TensorFlow on the CPU: the record, the sampler, NVML failures, crashes, profiling."""

import importlib.util
import os
import warnings
import threading
import time

import numpy as np
import psutil
import pytest

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fake_nvml import A100, FakeNVML  # noqa: E402
from machines import vm_2core  # noqa: E402
from redline import UsageError, plan  # noqa: E402
from redline.reporting.html import render  # noqa: E402
from redline.diagnosis import diagnose_record  # noqa: E402
from redline.monitoring import monitor as monitor_mod  # noqa: E402
from redline.monitoring.monitor import Monitor  # noqa: E402
from redline.monitoring.record import load  # noqa: E402

N = 512


def model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss="mse")
    return m


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, 8), dtype=np.float32), rng.standard_normal((N, 1), dtype=np.float32)


class Slow(keras.callbacks.Callback):
    """Makes steps long enough for the sampler to tick a few times."""

    def __init__(self, seconds=0.004, fail_at=None):
        super().__init__()
        self.seconds, self.fail_at, self.steps = seconds, fail_at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.fail_at is not None and self.steps == self.fail_at:
            raise RuntimeError("boom at step %d" % self.steps)
        time.sleep(self.seconds)  # simulated step time (work, not a wait for something to happen)


def test_record_of_a_fit(tmp_path):
    x, y = data()
    path = tmp_path / "run.jsonl"
    m = model()
    the_plan = plan(vm_2core())
    m.fit(x, y, batch_size=16, epochs=3, verbose=0,
          callbacks=[Monitor(path, interval=0.05, plan=the_plan, nvml=FakeNVML(init_error="Driver Not Loaded")), Slow()])
    rec = load(path)
    assert rec.complete and rec.notes == []
    assert rec.header["batch_size"] == 16 and rec.header["batch_size_source"] == "inferred from the data"
    assert rec.header["data_adapter"] == "ArrayDataAdapter" and rec.header["runtime"]["backend"] == "tensorflow"
    assert [(e["epoch"], e["event"]) for e in rec.epochs] == [(0, "begin"), (0, "end"), (1, "begin"), (1, "end"), (2, "begin"), (2, "end")]
    assert len(rec.marks) == 3 * N // 16 and [m[1] for m in rec.marks[:3]] == [0, 1, 2]
    assert len(rec.samples) >= 5
    s = rec.samples[-1]
    assert len(s["cpu_per_core_pct"]) == psutil.cpu_count() and s["rss_bytes"] > 50 * 2**20 and s["threads"] >= 1
    assert "Driver Not Loaded" in s["gpu_note"] and "gpus" not in s
    rec, summary, diag = diagnose_record(path)
    assert summary.steps == 96 and summary.samples_per_s > 0 and summary.gpus == () and summary.usable_cpus >= 1
    assert {r["name"]: r["value"] for r in rec.header["plan"]}["intra_op_threads"] == the_plan.intra_op_threads.value
    page = render(rec.header, rec.samples, summary, diag, rec.notes)
    assert "GPU: not available (NVML: Driver Not Loaded)" in page and "intra_op_threads" in page


def test_batch_size_from_a_dataset_and_given(tmp_path):
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8, drop_remainder=True)
    model().fit(ds, epochs=1, verbose=0, shuffle=False, callbacks=[Monitor(tmp_path / "a.jsonl", nvml=FakeNVML())])
    assert load(tmp_path / "a.jsonl").header["batch_size"] == 8
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # last batch may be short: Keras cannot tell the size
    model().fit(ds, epochs=1, verbose=0, shuffle=False, callbacks=[Monitor(tmp_path / "b.jsonl", nvml=FakeNVML())])
    assert load(tmp_path / "b.jsonl").header["batch_size"] is None
    model().fit(ds, epochs=1, verbose=0, shuffle=False, callbacks=[Monitor(tmp_path / "c.jsonl", batch_size=8, nvml=FakeNVML())])
    assert load(tmp_path / "c.jsonl").header["batch_size_source"] == "given"


def test_gpus_sampled_through_nvml(tmp_path):
    x, y = data()
    nvml = FakeNVML([A100, A100], util=(80, 5), used_frac=0.95, no_power=True)
    model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[Monitor(tmp_path / "g.jsonl", interval=0.05, nvml=nvml), Slow()])
    rec, summary, diag = diagnose_record(tmp_path / "g.jsonl")
    assert [g["util_mean_pct"] for g in summary.gpus] == [80.0, 5.0]
    assert summary.gpus[0]["power_mean_w"] is None and summary.gpus[0]["mem_max_frac"] == pytest.approx(0.95, abs=0.01)
    codes = {f.code for f in diag.findings}
    assert {"gpu_idle", "gpu_memory_full"} <= codes
    assert nvml.shutdowns == 1


def test_nvml_failing_mid_run_stops_gpu_sampling_not_training(tmp_path):
    x, y = data()
    nvml = FakeNVML([A100], util=(50,), fail_after=2)
    model().fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[Monitor(tmp_path / "f.jsonl", interval=0.05, nvml=nvml), Slow()])
    rec, summary, _ = diagnose_record(tmp_path / "f.jsonl")
    assert rec.complete and len(rec.marks) == 2 * N // 16
    assert any("GPU is lost" in s.get("gpu_note", "") for s in rec.samples)
    assert any("GPU is lost" in n for n in summary.notes)


def test_a_crash_mid_training_leaves_a_readable_record(tmp_path):
    x, y = data()
    path = tmp_path / "crash.jsonl"
    with pytest.raises(RuntimeError, match="boom"):
        model().fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[Monitor(path, interval=0.05, nvml=FakeNVML()), Slow(fail_at=40)])
    deadline = time.monotonic() + 30  # polled: the sampler notices fit has gone and stops
    while [t for t in threading.enumerate() if t.name == "redline-monitor"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not [t for t in threading.enumerate() if t.name == "redline-monitor"]
    rec, summary, _ = diagnose_record(path)
    assert not rec.complete and 35 <= summary.steps <= 40
    assert any("did not finish" in n for n in rec.notes) and any("without on_train_end" in n for n in rec.notes)


def test_profile_steps_write_a_trace_and_say_what_tensorboard_needs(tmp_path):
    x, y = data()
    viewer_missing = [m for m in ("tensorboard", "tensorboard_plugin_profile") if importlib.util.find_spec(m) is None]
    mon = Monitor(tmp_path / "p.jsonl", profile_steps=(3, 6), nvml=FakeNVML())
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        model().fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[mon])
    said = [str(m.message) for m in w if "TensorBoard cannot show this trace" in str(m.message)]
    rec = load(tmp_path / "p.jsonl")
    assert rec.profile["first_step"] == 3 and rec.profile["problem"] is None
    if viewer_missing:  # what this machine lacks is named, with the install line
        assert len(said) == 1 and all(m in said[0] for m in viewer_missing) and "pip install 'redline[profile]'" in said[0]
        assert rec.profile["viewer"] and "redline[profile]" in rec.profile["viewer"]
    else:
        assert said == [] and rec.profile["viewer"] is None
    traces = [f for _, _, files in os.walk(tmp_path / "p-profile") for f in files if f.endswith(".xplane.pb")]
    assert traces


def test_profiler_plugin_note_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(monitor_mod.importlib.util, "find_spec", lambda name: None)
    assert "tensorboard and tensorboard_plugin_profile not installed" in monitor_mod.profiler_plugin_note()
    monkeypatch.setattr(monitor_mod.importlib.util, "find_spec", lambda name: object())
    assert monitor_mod.profiler_plugin_note() is None


@pytest.mark.parametrize("kwargs, says", [
    ({"interval": 0}, "interval=0 is not valid"),
    ({"interval": "fast"}, "interval='fast' is not valid"),
    ({"profile_steps": (5, 2)}, "profile_steps=(5, 2) is not valid"),
    ({"profile_steps": 10}, "profile_steps=10 is not valid"),
    ({"batch_size": 0}, "batch_size=0 is not valid"),
])
def test_bad_arguments(tmp_path, kwargs, says):
    with pytest.raises(UsageError, match=says.replace("(", r"\(").replace(")", r"\)")):
        Monitor(tmp_path / "x.jsonl", **kwargs)


def test_bad_path(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        Monitor(tmp_path / "no" / "x.jsonl")
    with pytest.raises(UsageError, match="is a directory"):
        Monitor(tmp_path)


def test_contention_is_the_share_of_the_machine_stolen_or_used_by_other_processes():
    from collections import namedtuple

    from redline.monitoring.contention import lost, share

    T = namedtuple("scputimes", "user nice system idle iowait irq softirq steal guest guest_nice")
    before = T(100, 0, 10, 500, 1, 0, 0, 5, 3, 0)
    # 20 s of machine CPU time: 9 user, 1 system, 8 idle, 2 stolen; this process used 6 of them (guest time is inside
    # user on Linux and not counted twice)
    after = T(109, 0, 11, 508, 1, 0, 0, 7, 9, 0)
    got = share(before, after, own_s=6.0)
    assert got == {"steal": 0.1, "others": 0.2}
    assert lost(got) == 0.3
    assert share(before, before, 0.0) == {"steal": None, "others": None}  # no time passed: not available
    NoSteal = namedtuple("scputimes", "user system idle")  # a platform without steal
    got = share(NoSteal(1, 1, 1), NoSteal(3, 1, 3), own_s=5.0)
    assert got == {"steal": None, "others": 0.0} and lost(got) == 0.0  # never below 0
    assert lost(None) is None and lost({"steal": None, "others": None}) is None
    # the kernel's interrupt time serves this process's own threads: not another process's
    later = T(109, 0, 11, 506, 1, 1, 1, 7, 9, 0)  # as `after`, 2 s of idle time spent in irq and softirq instead
    assert share(before, later, own_s=6.0) == {"steal": 0.1, "others": 0.2}


def test_contention_of_a_real_measurement_is_a_share_between_0_and_1():
    from redline.monitoring.contention import Contention

    c = Contention().start()
    sum(i * i for i in range(200_000))
    got = c.stop()
    for v in got.values():
        assert v is None or 0.0 <= v <= 1.0, got

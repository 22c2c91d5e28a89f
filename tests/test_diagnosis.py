"""Bottleneck arithmetic, thresholds and findings from run records: pure, no TensorFlow."""

import pytest

import run_records as rr
from redline.diagnosis import diagnose_measured, summarise
from redline.diagnosis.bottleneck import breakdown, classify
from redline.monitoring.record import load


def probe(batch=64, P=7000.0, M=24000.0, M2=18000.0, R=6800.0, adapter="TFDatasetAdapter", cores=1.05):
    return {"type": "probe", "batch_size": batch, "data_adapter": adapter, "steps_per_execution": 1, "jit_compile": False,
            "pipeline_samples_per_s": P, "pipeline_cores_busy": cores, "model_samples_per_s": M,
            "model_2x_samples_per_s": M2, "run_samples_per_s": R, "run_cores_busy": 1.4, "usable_cpus": 2}


def test_breakdown_splits_the_real_step():
    b = breakdown(64, model_rate=16000, model_2x_rate=16000, run_rate=8000)  # t(B)=4 ms, t(2B)=8 ms, T=8 ms
    assert b.step_s == pytest.approx(0.008) and b.input_s == pytest.approx(0.004)
    assert b.overhead_s == pytest.approx(0.0) and b.compute_s == pytest.approx(0.004)
    b = breakdown(16, model_rate=16000, model_2x_rate=24000, run_rate=16000)  # t(B)=1 ms, t(2B)=1.333 ms: F=0.667 ms
    assert b.overhead_s == pytest.approx(2 / 3 * 1e-3) and b.compute_s == pytest.approx(1 / 3 * 1e-3) and b.input_s == 0


@pytest.mark.parametrize("run, kind, grade", [
    (6800, "input-bound", "highly input-bound"),     # the naive `input` workload's figures
    (24000 * 0.799, "compute-bound", "highly input-bound"),   # input just over 20%: highly, yet compute is the larger share
    (24000 * 0.801, "compute-bound", "moderately input-bound"),
    (24000 * 0.949, "compute-bound", "moderately input-bound"),
    (24000 * 0.951, "compute-bound", "not input-bound"),
    (30000, "compute-bound", "not input-bound"),      # a real run faster than the model alone is noise: no input wait
])
def test_input_thresholds_are_xprof_grades(run, kind, grade):
    b = breakdown(64, 24000, 24000, run)
    assert classify(b) == (kind, grade)


def test_overhead_bound_when_a_double_batch_costs_no_more():
    b = breakdown(16, 18000, 36000, 17000)
    assert classify(b)[0] == "overhead-bound" and b.shares()["overhead"] > 0.9


@pytest.mark.parametrize("bad", [0, -1.0, None])
def test_breakdown_rejects_non_positive_rates(bad):
    with pytest.raises(ValueError, match="must be positive"):
        breakdown(64, 1000, 1000, bad)


def test_input_bound_finding_has_evidence_and_the_pipeline_fix_as_code():
    d = diagnose_measured(probe())
    f = d.findings[0]
    assert d.kind == "input-bound" and f.code == "input_bound" and f.severity == "error"
    assert "7,000" in f.evidence and "24,000" in f.evidence and "6,800" in f.evidence
    assert "num_parallel_calls=tf.data.AUTOTUNE" in f.fix and "redline.data.pipeline" in f.fix
    single = [f for f in d.findings if f.code == "input_single_thread"]
    assert single and "1.05 of 2" in single[0].message


def test_a_pipeline_that_calls_python_is_told_the_gil_limits_a_parallel_map():
    """A map of tf.numpy_function (scipy's rotate, as blog posts augment): "parallel map" alone was the fix, where
    tune measured a parallel map at 1.04x on such a script."""
    d = diagnose_measured({**probe(), "pipeline_python_ops": ["PyFunc"]})
    f = d.findings[0]
    assert f.code == "input_bound" and "calls Python (PyFunc ops)" in f.evidence, f.evidence
    assert "tf.numpy_function" in f.fix and "GIL" in f.fix and "redline tune" in f.fix, f.fix
    single = next(f for f in d.findings if f.code == "input_single_thread")
    assert "GIL" in single.fix
    assert "GIL" not in diagnose_measured(probe()).findings[0].fix  # a pipeline of TensorFlow ops: as before


def test_generator_input_gets_worker_processes_as_the_fix():
    d = diagnose_measured(probe(adapter="GeneratorDataAdapter"))
    assert "redline.data.generator" in d.findings[0].fix


def test_overhead_finding_suggests_steps_per_execution_batch_and_jit():
    d = diagnose_measured(probe(batch=16, P=40000, M=18000, M2=36000, R=17000, adapter="ArrayDataAdapter"))
    f = next(f for f in d.findings if f.code == "dispatch_overhead")
    assert d.kind == "overhead-bound" and d.findings[0] is f
    assert "steps_per_execution=16" in f.fix and "batch_size=32" in f.fix and "jit_compile=True" in f.fix


def test_summary_of_a_record(tmp_path):
    rec = load(rr.write(tmp_path / "r.jsonl", rr.run_lines(epochs=3, steps=20, step_s=0.05, stall_s=0.4)))
    s = summarise(rec.header, rec.samples, rec.marks, rec.epochs)
    assert s.steps == 60 and s.step_time_s == pytest.approx(0.05, rel=1e-3)
    assert s.samples_per_s == pytest.approx(32 / 0.05, rel=1e-3)
    assert s.epoch_stalls_s == pytest.approx((0.4, 0.4), abs=1e-3)
    assert s.usable_cpus == 2 and s.cpu_mean_pct == (90.0, 85.0) and s.gpus == () and "Driver Not Loaded" in s.gpu_note
    rates = [v for _, v in s.throughput_series]
    assert max(rates) == pytest.approx(640) and min(rates) < 640  # 10 steps of 32 per 0.5 s; the stalls show as dips


def test_summary_counts_steps_per_execution_marks(tmp_path):
    rec = load(rr.write(tmp_path / "r.jsonl", rr.run_lines(epochs=2, steps=32, step_s=0.01, spe=16)))
    s = summarise(rec.header, rec.samples, rec.marks, rec.epochs)
    assert s.steps == 64 and s.step_time_s == pytest.approx(0.01, rel=1e-3)


def findings_of(tmp_path, **kw):
    rec = load(rr.write(tmp_path / "r.jsonl", rr.run_lines(**kw)))
    s = summarise(rec.header, rec.samples, rec.marks, rec.epochs)
    return {f.code: f for f in diagnose_measured(None, s, rec.header).findings}


def test_healthy_record_has_no_findings(tmp_path):
    assert findings_of(tmp_path, step_s=0.05) == {}


def test_idle_gpu_is_an_error_low_gpu_a_warning(tmp_path):
    f = findings_of(tmp_path, gpus=("NVIDIA A100",), gpu_util=4.0)
    assert f["gpu_idle"].severity == "error" and "4%" in f["gpu_idle"].message
    f = findings_of(tmp_path, gpus=("NVIDIA A100",), gpu_util=35.0)
    assert f["gpu_low_util"].severity == "warning" and "gpu_idle" not in f


def test_gpu_memory_full_with_growth_off_says_so(tmp_path):
    f = findings_of(tmp_path, gpus=("NVIDIA A100",), gpu_util=95.0, used_frac=0.97, growth=[False])
    assert "memory growth is off" in f["gpu_memory_full"].message and 'gpu_memory="growth"' in f["gpu_memory_full"].fix
    f = findings_of(tmp_path, gpus=("NVIDIA A100",), gpu_util=95.0, used_frac=0.4, growth=[False])
    assert "gpu_memory_full" not in f and f["gpu_memory_growth_off"].severity == "info"


def test_oversubscription_from_runnable_threads(tmp_path):
    f = findings_of(tmp_path, runnable=9, usable=2)  # procs_running counts the sampler itself: 8 others
    assert "8 threads were runnable on 2" in f["oversubscribed"].message
    assert "oversubscribed" not in findings_of(tmp_path, runnable=5, usable=2)  # 4: input threads beside the model


def test_cores_idle_while_one_thread_works(tmp_path):
    f = findings_of(tmp_path, busy=1.0, cores=(97.0, 4.0, 3.0, 2.0), usable=4)
    assert "1.00 of 4" in f["cores_idle"].message and "97%" in f["cores_idle"].evidence
    f = findings_of(tmp_path, busy=1.0, usable=4, intra=1)
    assert "redline.configure()" in f["cores_idle"].fix


def test_epoch_stall_and_short_steps(tmp_path):
    f = findings_of(tmp_path, stall_s=0.6, step_s=0.01)
    assert "2 of 2 epochs started late" in f["epoch_start_stall"].message
    assert f["short_steps"].severity == "info" and "steps_per_execution=16" in f["short_steps"].fix


def test_input_bound_with_the_cpu_saturated_says_more_parallelism_will_not_help():
    d = diagnose_measured(probe(P=14700, M=25300, M2=31700, R=10000, cores=1.74))
    f = d.findings[0]
    assert f.code == "input_bound" and "1.74 of 2 usable CPUs busy" in f.message
    assert "tf.data service" in f.fix and "num_parallel_calls" not in f.fix
    assert not [f for f in d.findings if f.code == "input_single_thread"]


def test_a_redline_pipeline_that_keeps_up_is_not_told_to_parallelise():
    """Seen on a redline.data pipeline at 90% of the model-alone rate: the model, not the input, was the limit."""
    p = {**probe(P=26000.0, M=24000.0, M2=30000.0, R=15000.0, cores=1.2), "redline_pipeline": True}
    f = {x.code: x for x in diagnose_measured(p).findings}["input_bound"]
    assert "the model itself is the limit" in f.message and "ds.map(" not in f.fix and "AUTOTUNE" not in f.fix


def test_a_slow_redline_pipeline_is_told_to_make_its_work_cheaper():
    p = {**probe(P=7000.0, M=24000.0, R=6800.0, cores=1.2), "redline_pipeline": True}
    f = {x.code: x for x in diagnose_measured(p).findings}["input_bound"]
    assert "redline.data pipeline already" in f.fix and "batch_map_fn" in f.fix and "ds.map(" not in f.fix
    plain = {x.code: x for x in diagnose_measured(probe(P=7000.0, M=24000.0, R=6800.0, cores=1.2)).findings}["input_bound"]
    assert "num_parallel_calls" in plain.fix  # a tutorial's tf.data pipeline still gets the parallel map

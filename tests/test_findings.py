"""doctor's configuration findings on fake machines."""

import dataclasses

import machines as m
from redline import plan
from redline.diagnosis import ERROR, INFO, WARNING, config_findings


def findings(snapshot, **choices):
    return {f.code: f for f in config_findings(snapshot, plan(snapshot, **choices))}


def test_healthy_vm_has_no_findings():
    assert findings(m.vm_2core()) == {}


def test_gpu_with_cpu_build_of_tensorflow_is_an_error():
    s = dataclasses.replace(m.node_4xa100(), runtime=m.runtime(cuda_build=False, dist="tensorflow-cpu"))
    f = findings(s)["tensorflow_cpu_build"]
    assert f.severity == ERROR and "4 NVIDIA GPU(s)" in f.message and "tensorflow-cpu" in f.evidence
    assert "redline[gpu]" in f.fix


def test_cpu_build_matters_less_on_the_jax_backend():
    s = dataclasses.replace(m.node_4xa100(), runtime=m.runtime(cuda_build=False, backend="jax", source="environment"))
    assert findings(s)["tensorflow_cpu_build"].severity == INFO


def test_cuda_visible_devices_hiding_every_gpu():
    hidden = [m.gpu(i, cuda_index=None) for i in range(2)]
    typo = m.snapshot(m.cpu(16, 8), m.gpus(*hidden, cvd="7"), rt=m.runtime(cuda_build=True), env={"CUDA_VISIBLE_DEVICES": "7"})
    f = findings(typo)["cuda_visible_devices_hides_all"]
    assert f.severity == ERROR and "'7'" in f.evidence and "0, 1" in f.evidence
    deliberate = m.snapshot(m.cpu(16, 8), m.gpus(*hidden, cvd="-1"), rt=m.runtime(cuda_build=True))
    assert findings(deliberate)["cuda_visible_devices_hides_all"].severity == WARNING
    assert plan(deliberate).strategy.value == "cpu"


def test_cuda_visible_devices_partly_invalid():
    s = m.snapshot(m.cpu(16, 8), m.gpus(m.gpu(0), m.gpu(1, cuda_index=None), cvd="0,5,1"), rt=m.runtime(cuda_build=True))
    assert findings(s)["cuda_visible_devices_partial"].severity == WARNING


def test_thread_variables_above_usable_cores():
    f = findings(m.container_16_quota4(OMP_NUM_THREADS="16"))["threads_above_usable"]
    assert f.severity == WARNING and "OMP_NUM_THREADS=16" in f.message and "4 usable" in f.message
    assert f.fix.startswith("export OMP_NUM_THREADS=4")


def test_quota_below_visible_cpus():
    f = findings(m.container_16_quota4())["quota_oversubscription"]
    assert "4 CPUs" in f.message and "16 CPUs" in f.message and "TF_NUM_INTRAOP_THREADS=4" in f.fix
    # once the user pinned the pools, TensorFlow no longer oversubscribes
    assert "quota_oversubscription" not in findings(m.container_16_quota4(TF_NUM_INTRAOP_THREADS="4", TF_NUM_INTEROP_THREADS="2"))


def test_hyperthreads_counted_as_cores():
    f = findings(m.server_2s_64t(TF_NUM_INTRAOP_THREADS="64"))["hyperthreads_counted"]
    assert f.severity == WARNING and "64 hyperthreads" in f.message and f.fix == "export TF_NUM_INTRAOP_THREADS=32"
    assert findings(m.server_2s_64t())["hyperthreads_default"].severity == INFO


def test_driver_too_old_for_cuda_build():
    s = m.snapshot(m.cpu(8, 4), m.gpus(m.gpu(0), cuda="11.8"), rt=m.runtime(cuda_build=True, cuda="12.5.1"))
    f = findings(s)["driver_too_old"]
    assert f.severity == ERROR and "11.8" in f.message and "12.5.1" in f.message
    minor = m.snapshot(m.cpu(8, 4), m.gpus(m.gpu(0), cuda="12.2"), rt=m.runtime(cuda_build=True, cuda="12.5.1"))
    assert findings(minor)["driver_too_old"].severity == WARNING
    ok = m.snapshot(m.cpu(8, 4), m.gpus(m.gpu(0), cuda="12.8"), rt=m.runtime(cuda_build=True, cuda="12.5.1"))
    assert "driver_too_old" not in findings(ok)


def test_nvml_failure_on_one_gpu_is_reported():
    f = findings(m.nvml_fails_on_one_of_two())
    assert "GPU is lost" in f["gpu_probe_failed"].evidence
    assert not any(x.severity == ERROR for x in f.values())


def test_missing_backend_package():
    rt = dataclasses.replace(m.runtime(backend="jax", source="environment"), jax_version=m.NA("not installed"))
    assert findings(m.snapshot(m.cpu(2, 2), rt=rt))["backend_missing"].severity == ERROR


def test_errors_come_first():
    s = dataclasses.replace(m.container_16_quota4(OMP_NUM_THREADS="16"), gpus=m.gpus(m.gpu(0)))
    severities = [f.severity for f in config_findings(s, plan(s))]
    assert severities[0] == ERROR and severities == sorted(severities, key=[ERROR, WARNING, INFO].index)

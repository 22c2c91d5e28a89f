"""Planning on named fake machines: pure, fast, no TensorFlow."""

import json
import subprocess
import sys

import pytest

import machines as m
from redline import UsageError, plan
from redline.planning import AUTO, ENVIRONMENT, USER


def test_detect_and_plan_import_no_runtime():
    code = "import sys, redline; redline.plan(redline.detect()); print(sorted(set(sys.modules) & {'tensorflow', 'keras', 'jax', 'torch'}))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_this_2core_vm():
    p = plan(m.vm_2core())
    assert (p.intra_op_threads.value, p.inter_op_threads.value) == (2, 2)
    assert p.intra_op_threads.source == AUTO and "2 usable" in p.intra_op_threads.reason
    assert p.strategy.value == "cpu" and p.devices.value == ("/cpu:0",) and p.replicas.value == 1
    assert p.gpu_memory.value is None
    assert p.precision.value == "float32" and not p.precision.applied
    # TensorFlow's default already uses both cores: nothing to fix, nothing set (redline run never loses to python)
    assert not p.intra_op_threads.applied and not p.inter_op_threads.applied and "left alone" in p.intra_op_threads.reason
    assert p.env() == {}
    assert p.data_threadpool.value == 2 and p.data_parallel_calls.value == 2
    assert p.jit_compile.value is False and not p.jit_compile.applied
    assert not p.steps_per_execution.applied
    assert all(s.reason for _, s in p.settings())


def test_a_printed_plan_is_one_line_a_setting_with_its_value_source_and_reason():
    """`print(redline.configure())` gave a dataclass repr of some 3,000 characters on one line."""
    p = plan(m.server_2s_64t())
    lines = str(p).splitlines()
    names = [name for name, _ in p.settings()]
    assert [line.split()[0] for line in lines[:len(names)]] == names
    intra = lines[names.index("intra_op_threads")]
    assert intra.split()[1] == "32" and p.intra_op_threads.reason in intra
    advice = [line for line, (_, s) in zip(lines, p.settings()) if not s.applied]
    assert advice and all(", advice" in line for line in advice)
    assert "Setting(" not in str(p) and "Setting(" in repr(p)  # repr stays the fields'
    import dataclasses

    from redline.applying.actions import Action
    from redline.applying.configure import AppliedPlan

    applied = AppliedPlan(**{f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
                          actions=(Action("intra_op_threads", 32, "applied", "tf.config.threading"),))
    assert str(applied).splitlines()[-1] == "applied: intra_op_threads = 32 (tf.config.threading)"


def test_two_socket_server_counts_physical_cores_not_hyperthreads():
    p = plan(m.server_2s_64t())
    assert p.intra_op_threads.value == 32
    assert "32 physical cores" in p.intra_op_threads.reason
    assert p.inter_op_threads.value == 2  # one per socket
    assert p.thread_env["OMP_NUM_THREADS"].value == 32
    assert p.precision.value == "mixed_bfloat16"  # AMX / AVX512_BF16
    assert not p.precision.applied and "`redline tune --allow precision SCRIPT`" in p.precision.reason  # on your script
    assert p.data_threadpool.value == 64


def test_container_quota_bounds_threads():
    s = m.container_16_quota4()
    assert s.cpu.usable == 4
    p = plan(s)
    assert p.intra_op_threads.value == 4 and "quota 4 CPUs" in p.intra_op_threads.reason
    assert p.inter_op_threads.value == 2
    assert p.data_threadpool.value == 4 and p.data_parallel_calls.value == 4
    assert "8.0 GiB memory budget" in p.data_threadpool.reason  # the cgroup limit, below available RAM


def test_fractional_quota_rounds_down_but_keeps_one():
    s = m.snapshot(m.cpu(8, 8, quota=1.5))
    assert s.cpu.usable == 1 and plan(s).intra_op_threads.value == 1
    s = m.snapshot(m.cpu(8, 8, quota=0.5))
    assert s.cpu.usable == 1


def test_affinity_restricts_cores():
    s = m.snapshot(m.cpu(16, 8, affinity=(0, 1, 2)))
    assert s.cpu.usable == 3 and plan(s).intra_op_threads.value == 3


def test_4xa100_node_mirrors_over_all_gpus():
    p = plan(m.node_4xa100(), batch_size=64)
    assert p.strategy.value == "mirrored" and p.strategy.source == AUTO
    assert p.devices.value == ("/gpu:0", "/gpu:1", "/gpu:2", "/gpu:3")
    assert p.replicas.value == 4
    assert (p.per_replica_batch.value, p.global_batch.value) == (64, 256)
    assert p.gpu_memory.value == "growth" and p.env()["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert p.precision.value == "mixed_float16" and not p.precision.applied
    assert p.jit_compile.value is True


def test_cuda_visible_devices_subset_changes_the_layout():
    s = m.snapshot(m.cpu(64, 32), m.gpus(m.gpu(0, cuda_index=None), m.gpu(1, cuda_index=None), m.gpu(2, cuda_index=0), m.gpu(3, cuda_index=None), cvd="2"),
                   rt=m.runtime(cuda_build=True))
    p = plan(s)
    assert p.strategy.value == "one-gpu" and p.devices.value == ("/gpu:0",)


def test_old_gpu_61_gets_float32():
    p = plan(m.old_gpu_61())
    assert p.strategy.value == "one-gpu"
    assert p.precision.value == "float32" and "6.1" in p.precision.reason
    assert p.intra_op_threads.value == 4


def test_nvml_missing_plans_cpu():
    p = plan(m.nvml_missing())
    assert p.strategy.value == "cpu" and p.gpu_memory.value is None


def test_nvml_failing_on_one_gpu_uses_the_other():
    p = plan(m.nvml_fails_on_one_of_two())
    assert p.strategy.value == "one-gpu" and p.devices.value == ("/gpu:0",)
    assert p.precision.value == "mixed_float16"


def test_user_arguments_are_kept_and_marked_user():
    p = plan(m.vm_2core(), intra_threads=1, inter_threads=1, precision="mixed_bfloat16", steps_per_execution=8, jit_compile=True)
    assert p.intra_op_threads == p.intra_op_threads.__class__(1, USER, "intra_threads=1 given")
    assert p.inter_op_threads.source == USER
    assert p.thread_env["OMP_NUM_THREADS"].value == 1
    assert p.precision.value == "mixed_bfloat16" and p.precision.applied and "float32" in p.precision.reason
    assert p.steps_per_execution.value == 8 and p.steps_per_execution.applied
    assert p.jit_compile.value is True and p.jit_compile.applied


def test_environment_is_never_overridden():
    p = plan(m.server_2s_64t(TF_NUM_INTRAOP_THREADS="16", OMP_NUM_THREADS="8", TF_FORCE_GPU_ALLOW_GROWTH="false"))
    assert (p.intra_op_threads.value, p.intra_op_threads.source) == (16, ENVIRONMENT)
    assert (p.thread_env["OMP_NUM_THREADS"].value, p.thread_env["OMP_NUM_THREADS"].source) == ("8", ENVIRONMENT)
    env = p.env()
    assert "TF_NUM_INTRAOP_THREADS" not in env and "OMP_NUM_THREADS" not in env
    assert env["TF_NUM_INTEROP_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "16"


def test_gpu_growth_variable_is_kept():
    p = plan(m.node_4xa100(TF_FORCE_GPU_ALLOW_GROWTH="false"))
    assert (p.gpu_memory.value, p.gpu_memory.source) == ("full", ENVIRONMENT)
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in p.env()


def test_gpu_memory_limit():
    p = plan(m.node_4xa100(), gpu_memory=4096)
    assert (p.gpu_memory.value, p.gpu_memory.source) == (4096, USER)
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in p.env()
    with pytest.raises(UsageError, match="81920"):
        plan(m.node_4xa100(), gpu_memory=10**6)


def test_precision_auto_applies_the_recommendation():
    p = plan(m.node_4xa100(), precision="auto")
    assert p.precision.value == "mixed_float16" and p.precision.applied and p.precision.source == USER


def test_tf_config_means_multi_worker():
    cfg = json.dumps({"cluster": {"worker": ["h1:2222", "h2:2222", "h3:2222"]}, "task": {"type": "worker", "index": 1}})
    p = plan(m.node_4xa100(TF_CONFIG=cfg), batch_size=32)
    assert p.strategy.value == "multi-worker" and p.strategy.source == ENVIRONMENT
    assert p.cluster.num_workers == 3 and p.cluster.task_index == 1
    assert p.replicas.value == 12 and p.global_batch.value == 384
    p = plan(m.vm_2core(TF_CONFIG=cfg))
    assert p.replicas.value == 3 and p.devices.value == ("/cpu:0",)


@pytest.mark.parametrize("text, fragment", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"cluster": {"worker": ["h1:1"]}}', "needs both"),
    ('{"cluster": {"worker": ["h1"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
    ('{"cluster": {"worker": ["h1:1"]}, "task": {"type": "ps", "index": 0}}', "task.type 'ps'"),
    ('{"cluster": {"worker": ["h1:1"]}, "task": {"type": "worker", "index": 3}}', "valid is 0 to 0"),
])
def test_malformed_tf_config(text, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        plan(m.vm_2core(TF_CONFIG=text))
    assert "TF_CONFIG" in str(info.value) and "unset it" in str(info.value)


def test_mirrored_on_cpu_splits_logical_devices():
    p = plan(m.vm_2core(), strategy="mirrored", cpu_devices=2, batch_size=16)
    assert p.devices.value == ("/cpu:0", "/cpu:1") and p.cpu_devices.value == 2 and p.replicas.value == 2
    assert p.global_batch.value == 32
    assert plan(m.vm_2core(), strategy="mirrored").cpu_devices.value == 2


@pytest.mark.parametrize("kwargs, fragment", [
    ({"intra_threads": 0}, r"intra_threads=0 is not valid: it must be an integer from 1 to 8"),
    ({"intra_threads": -3}, "from 1 to 8"),
    ({"inter_threads": 100000}, "inter_threads=100000"),
    ({"intra_threads": 2.5}, "integer"),
    ({"precision": "fp8"}, "not a known policy: use one of float32, mixed_float16, mixed_bfloat16"),
    ({"strategy": "tpu"}, "strategy='tpu' is not valid"),
    ({"strategy": "one-gpu"}, "needs a visible GPU"),
    ({"strategy": "multi-worker"}, "needs TF_CONFIG"),
    ({"cpu_devices": 2}, "only applies with strategy='mirrored'"),
    ({"batch_size": 0}, "batch_size=0"),
    ({"gpu_memory": "half"}, "growth"),
    ({"steps_per_execution": 0}, "steps_per_execution=0"),
    ({"jit_compile": "yes"}, "True, False or 'auto'"),
    ({"backend": "theano"}, "tensorflow, jax, torch"),
])
def test_bad_choices_say_what_is_valid(kwargs, fragment):
    with pytest.raises(UsageError, match=fragment):
        plan(m.vm_2core(), **kwargs)


def test_bad_thread_variable():
    with pytest.raises(UsageError, match="TF_NUM_INTRAOP_THREADS='lots' is not an integer"):
        plan(m.vm_2core(TF_NUM_INTRAOP_THREADS="lots"))


def test_plan_serialises_to_json():
    d = json.loads(plan(m.node_4xa100(), batch_size=8).to_json())
    assert d["strategy"]["value"] == "mirrored" and d["strategy"]["source"] == "auto"
    assert d["thread_env"]["OMP_NUM_THREADS"]["value"] == 32
    assert d["devices"]["value"] == ["/gpu:0", "/gpu:1", "/gpu:2", "/gpu:3"]


MACHINES = [m.vm_2core, m.server_2s_64t, m.container_16_quota4, m.node_4xa100, m.old_gpu_61, m.nvml_missing,
            m.nvml_fails_on_one_of_two]


@pytest.mark.parametrize("machine", MACHINES, ids=lambda f: f.__name__)
def test_advice_says_when_it_is_a_general_rule(machine):
    """A recommendation nobody measured on this machine says so, and where it can be measured."""
    p = plan(machine())
    for name in ("steps_per_execution", "jit_compile"):
        reason = getattr(p, name).reason
        assert "not measured" in reason and "redline bench" in reason, (name, reason)
    if p.precision.value == "mixed_bfloat16":
        assert "not measured here" in p.precision.reason and "--allow precision" in p.precision.reason
    gpus = bool(machine().gpus.visible)
    # nothing said about CPUs on a GPU machine, or the other way round, as if measured here
    assert ("GPU" in p.jit_compile.reason) == gpus and "slowed" not in p.jit_compile.reason


def test_the_multi_worker_finding_gives_facts_not_a_canned_error():
    from redline.diagnosis import config_findings

    cfg = '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}'
    snap = m.vm_2core(TF_CONFIG=cfg)
    f = [x for x in config_findings(snap, plan(snap)) if x.code == "multi_worker_fit"][0]
    assert "2 member(s)" in f.evidence and "worker 1" in f.evidence and "PerReplica" not in f.evidence
    assert "keras-team/keras#20585" in f.message and "keras.distribution" in f.fix

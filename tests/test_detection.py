"""Detection against fake /proc, /sys and NVML, faked at the lowest level redline reads."""

import json
import sys
import types

import psutil
import pytest

from fake_nvml import FakeNVML
from redline import NotAvailable, detect
from redline.detection.cpu import probe_cpu
from redline.detection.gpu import probe_gpus
from redline.detection.memory import probe_memory

GiB = 2**30


def cpuinfo(n_sockets, cores_per_socket, threads_per_core, model="Intel(R) Xeon(R) Gold 6338", flags="fpu avx2 fma avx512f"):
    blocks, cpu = [], 0
    for t in range(threads_per_core):
        for s in range(n_sockets):
            for c in range(cores_per_socket):
                blocks.append(f"processor\t: {cpu}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\n"
                              f"physical id\t: {s}\ncore id\t\t: {c}\nflags\t\t: {flags}\n")
                cpu += 1
    return "\n".join(blocks) + "\n"


def tree(tmp_path, files):
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


@pytest.fixture
def fake_psutil(monkeypatch):
    """Fake psutil's counts, affinity and memory; returns a setter."""
    def setup(logical, physical, affinity=None, total=16 * GiB, available=12 * GiB):
        monkeypatch.setattr(psutil, "cpu_count", lambda logical_=True, logical=True: logical_counts[logical])
        logical_counts = {True: logical, False: physical}
        aff = list(range(logical)) if affinity is None else affinity

        class Proc:
            def cpu_affinity(self):
                if isinstance(aff, Exception):
                    raise aff
                return aff
        monkeypatch.setattr(psutil, "Process", Proc)
        monkeypatch.setattr(psutil, "virtual_memory", lambda: types.SimpleNamespace(total=total, available=available))
    return setup


V2_ROOT = {"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cgroup.controllers": "cpu memory\n"}


def test_cgroup_v2_container_with_quota(tmp_path, fake_psutil):
    fake_psutil(16, 8)
    root = tree(tmp_path, {**V2_ROOT, "proc/cpuinfo": cpuinfo(1, 8, 2),
                           "sys/fs/cgroup/cpu.max": "400000 100000\n", "sys/fs/cgroup/memory.max": str(8 * GiB) + "\n",
                           "sys/devices/system/node/node0/cpulist": "0-15\n"})
    c = probe_cpu(root)
    assert (c.logical, c.physical, c.quota, c.usable, c.usable_physical) == (16, 8, 4.0, 4, 4)
    assert (c.sockets, c.numa_nodes, c.physical_in_affinity) == (1, 1, 8)
    assert c.model == "Intel(R) Xeon(R) Gold 6338" and c.vendor == "GenuineIntel"
    assert c.features == {"avx2": True, "fma": True, "avx512f": True, "avx512_bf16": False, "amx": False}
    assert probe_memory(root).cgroup_limit_bytes == 8 * GiB
    assert probe_memory(root).budget_bytes == 8 * GiB


def test_cgroup_v2_unlimited_and_nested_path(tmp_path, fake_psutil):
    fake_psutil(4, 4)
    root = tree(tmp_path, {"proc/self/cgroup": "0::/user.slice/job\n", "sys/fs/cgroup/cgroup.controllers": "cpu\n",
                           "sys/fs/cgroup/cpu.max": "max 100000\n",
                           "sys/fs/cgroup/user.slice/cpu.max": "250000 100000\n",
                           "sys/fs/cgroup/user.slice/job/cpu.max": "max 100000\n",
                           "sys/fs/cgroup/user.slice/job/memory.max": "max\n"})
    assert probe_cpu(root).quota == 2.5  # the parent's limit binds
    assert probe_memory(root).cgroup_limit_bytes is None


def test_cgroup_v1_hybrid_like_this_machine(tmp_path, fake_psutil):
    fake_psutil(2, 2)
    root = tree(tmp_path, {
        "proc/self/cgroup": "4:memory:/process_api/abc\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n",
        "proc/cpuinfo": cpuinfo(1, 2, 1, model="AMD EPYC", flags="fpu avx avx2 fma"),
        "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        "sys/fs/cgroup/memory/process_api/abc/memory.limit_in_bytes": "9223372036854771712\n",
        "sys/fs/cgroup/unified/cgroup.controllers": "",
    })
    c = probe_cpu(root)
    assert c.quota is None and c.usable == 2 and c.features["avx512f"] is False
    assert probe_memory(root).cgroup_limit_bytes is None


def test_cgroup_v1_quota_and_memory_limit(tmp_path, fake_psutil):
    fake_psutil(32, 16)
    root = tree(tmp_path, {
        "proc/self/cgroup": "5:memory:/docker/x\n2:cpu,cpuacct:/docker/x\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_quota_us": "150000\n",
        "sys/fs/cgroup/cpu,cpuacct/docker/x/cpu.cfs_period_us": "100000\n",
        "sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes": str(2 * GiB),
    })
    c = probe_cpu(root)
    assert c.quota == 1.5 and c.usable == 1
    assert probe_memory(root).cgroup_limit_bytes == 2 * GiB


def test_container_without_cgroup_namespace_reads_the_mount_root(tmp_path, fake_psutil):
    fake_psutil(16, 8)
    # /proc/self/cgroup names the host's path, which does not exist inside the container's mount
    root = tree(tmp_path, {"proc/self/cgroup": "0::/kubepods/pod1/ctr\n", "sys/fs/cgroup/cgroup.controllers": "cpu\n",
                           "sys/fs/cgroup/cpu.max": "200000 100000\n"})
    assert probe_cpu(root).quota == 2.0


def test_affinity_and_hyperthreads(tmp_path, fake_psutil):
    # 2 sockets x 4 cores x 2 threads; CPUs 0-7 are first threads, 8-15 their siblings
    fake_psutil(16, 8, affinity=[0, 1, 8, 9])
    root = tree(tmp_path, {**V2_ROOT, "proc/cpuinfo": cpuinfo(2, 4, 2), "sys/fs/cgroup/cpu.max": "max 100000\n"})
    c = probe_cpu(root)
    assert c.affinity == (0, 1, 8, 9) and c.usable == 4
    assert c.physical_in_affinity == 2 and c.usable_physical == 2  # two cores, each with both hyperthreads
    assert c.sockets == 2


def test_missing_files_are_not_available_not_crashes(tmp_path, fake_psutil):
    fake_psutil(8, 8, affinity=psutil.AccessDenied())
    c = probe_cpu(tmp_path)  # an empty tree: no /proc, no /sys
    assert isinstance(c.model, NotAvailable) and "cpuinfo" in c.model.reason
    assert isinstance(c.quota, NotAvailable) and isinstance(c.numa_nodes, NotAvailable)
    assert isinstance(c.affinity, NotAvailable) and isinstance(c.features, NotAvailable)
    assert c.usable == 8
    assert isinstance(probe_memory(tmp_path).cgroup_limit_bytes, NotAvailable)


def test_arm_cpuinfo_without_flags_or_topology(tmp_path, fake_psutil):
    fake_psutil(4, 4)
    text = "".join(f"processor\t: {i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\n\n" for i in range(4))
    c = probe_cpu(tree(tmp_path, {**V2_ROOT, "proc/cpuinfo": text}))
    assert isinstance(c.features, NotAvailable) and isinstance(c.sockets, NotAvailable)
    assert c.physical_in_affinity == 4 and c.usable_physical == 4


def test_unreadable_quota(tmp_path, fake_psutil):
    fake_psutil(4, 4)
    root = tree(tmp_path, {**V2_ROOT, "sys/fs/cgroup/cpu.max": "lots 100000\n"})
    q = probe_cpu(root).quota
    assert isinstance(q, NotAvailable) and "unreadable" in q.reason


# ------------------------------------------------------------------ NVML

A100 = ("NVIDIA A100-SXM4-80GB", 80 * GiB, (8, 0))


def test_nvml_two_gpus():
    nvml = FakeNVML([A100, A100])
    g = probe_gpus({}, nvml=nvml)
    assert g.nvml == "ok" and g.driver_version == "550.54.15" and g.cuda_driver_version == "12.4"
    assert [d.name for d in g.devices] == ["NVIDIA A100-SXM4-80GB"] * 2
    assert g.devices[0].compute_capability == (8, 0) and g.devices[1].memory_total_bytes == 80 * GiB
    assert [d.cuda_index for d in g.visible] == [0, 1]
    assert nvml.shutdowns == 1


def test_nvml_library_not_found():
    g = probe_gpus({}, nvml=FakeNVML(init_error="NVML Shared Library Not Found"))
    assert isinstance(g.nvml, NotAvailable) and "no NVIDIA GPU visible" in g.nvml.reason and g.visible == ()


def test_nvml_driver_not_loaded():
    g = probe_gpus({}, nvml=FakeNVML(init_error="Driver Not Loaded"))
    assert "Driver Not Loaded" in g.nvml.reason


def test_nvml_module_absent(monkeypatch):
    import redline.detection.gpu as gpu_mod
    monkeypatch.setattr(gpu_mod, "_load_nvml", lambda: None)
    g = probe_gpus({})
    assert "not installed" in g.nvml.reason and g.devices == ()


def test_nvml_gpu_is_lost_on_one_of_two():
    g = probe_gpus({}, nvml=FakeNVML([A100, A100], lost={1}))
    assert g.devices[1].error and "GPU is lost" in g.devices[1].error and not g.devices[1].visible
    assert [d.index for d in g.visible] == [0]


def test_nvml_compute_capability_not_supported():
    g = probe_gpus({}, nvml=FakeNVML([A100], no_cc={0}))
    assert isinstance(g.devices[0].compute_capability, NotAvailable) and g.devices[0].visible


@pytest.mark.parametrize("cvd, visible", [
    (None, [(0, 0), (1, 1), (2, 2)]),
    ("", []),
    ("-1", []),
    ("2", [(2, 0)]),
    ("2,0", [(2, 0), (0, 1)]),
    ("0,7,1", [(0, 0)]),           # CUDA stops at the first entry that names no GPU
    ("GPU-0001", [(1, 0)]),          # UUID prefix
    ("GPU-", []),                    # ambiguous prefix
    ("1,1", [(1, 0)]),               # a repeat ends the list
])
def test_cuda_visible_devices(cvd, visible):
    env = {} if cvd is None else {"CUDA_VISIBLE_DEVICES": cvd}
    g = probe_gpus(env, nvml=FakeNVML([A100] * 3))
    assert [(d.index, d.cuda_index) for d in g.visible] == visible
    assert g.cuda_visible_devices == cvd


def test_detect_on_this_machine_is_json_and_fails_soft():
    s = detect(nvml=FakeNVML(init_error="NVML Shared Library Not Found"))
    d = json.loads(s.to_json())
    assert d["cpu"]["usable"] >= 1 and d["gpus"]["devices"] == []
    assert d["gpus"]["nvml"] == {"not_available": "NVML could not start (NVML Shared Library Not Found): no NVIDIA GPU visible"}
    assert d["runtime"]["tensorflow_initialized"] in (False, True)


def test_detect_reads_only_relevant_environment():
    s = detect(environ={"OMP_NUM_THREADS": "4", "HOME": "/root", "KMP_BLOCKTIME": "1", "KERAS_BACKEND": "jax"})
    assert s.env == {"KERAS_BACKEND": "jax", "KMP_BLOCKTIME": "1", "OMP_NUM_THREADS": "4"}


@pytest.mark.parametrize("env, keras_json, expected", [
    ({"KERAS_BACKEND": "jax"}, {"backend": "torch"}, ("jax", "environment")),   # the variable wins over keras.json
    ({}, {"backend": "torch"}, ("torch", "keras.json")),
    ({}, "{not json", ("tensorflow", "default")),                             # an unreadable keras.json is Keras' default
    ({}, None, ("tensorflow", "default")),
])
def test_keras_backend_is_resolved_as_keras_does(tmp_path, monkeypatch, env, keras_json, expected):
    from redline.detection.runtime import keras_backend

    monkeypatch.delitem(sys.modules, "keras", raising=False)  # not imported: the environment and keras.json decide
    if keras_json is not None:
        (tmp_path / "keras.json").write_text(keras_json if isinstance(keras_json, str) else json.dumps(keras_json))
    assert keras_backend({**env, "KERAS_HOME": str(tmp_path)}) == expected


def test_an_imported_keras_decides_the_backend(monkeypatch):
    from types import SimpleNamespace

    from redline.detection.runtime import keras_backend

    fake = SimpleNamespace(backend=SimpleNamespace(backend=lambda: "torch"))
    monkeypatch.setitem(sys.modules, "keras", fake)
    assert keras_backend({"KERAS_BACKEND": "jax"}) == ("torch", "imported")


def test_the_tensorflow_distribution_is_the_one_that_ships_the_package(monkeypatch):
    import importlib.metadata as real

    from redline.detection import runtime

    class Dist:
        def __init__(self, top):
            self.top = top

        def read_text(self, name):
            return self.top if name == "top_level.txt" else None

    def fake(installed, owners):
        class Md:
            PackageNotFoundError = real.PackageNotFoundError

            @staticmethod
            def distribution(name):
                if name not in installed:
                    raise real.PackageNotFoundError(name)
                return Dist(installed[name])

            @staticmethod
            def packages_distributions():
                assert owners is not None, "every distribution's files read where a lookup by name finds the package"
                return owners

        monkeypatch.setattr(runtime, "md", Md)

    # a meta-package named tensorflow that installs tensorflow-intel: the one with the files
    # (found by name: every installed distribution's files are not read, ~0.03 s of each `redline run`'s start)
    fake({"tensorflow": "", "tensorflow-intel": "tensorflow\n"}, None)
    assert runtime._tf_distribution() == "tensorflow-intel"
    # a name not in the list: every distribution's files are read, as before
    fake({}, {"tensorflow": ["tensorflow_custom_build"]})
    assert runtime._tf_distribution() == "tensorflow-custom-build"
    fake({}, {})
    assert isinstance(runtime._tf_distribution(), NotAvailable)


def test_the_tensorflow_distribution_found_by_name_is_the_one_its_files_name():
    import importlib.metadata as md

    from redline.detection import runtime

    owners = {name.replace("_", "-").lower() for name in md.packages_distributions().get("tensorflow", [])}
    got = runtime._tf_distribution()
    assert got in owners if owners else isinstance(got, NotAvailable)  # one of those that ship the package, if any

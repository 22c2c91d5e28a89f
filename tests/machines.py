"""Named fake machines: hand-built snapshots for the pure planning and findings tests."""

from __future__ import annotations

from redline.detection.snapshot import (
    CPUInfo, GPUInfo, GPUSnapshot, MemoryInfo, NotAvailable, RuntimeInfo, Snapshot,
)

GiB = 2**30
NA = NotAvailable


def cpu(logical, physical, *, quota=None, affinity=None, sockets=1, numa=1, model="AMD EPYC", vendor="AuthenticAMD", **features):
    affinity = tuple(range(logical)) if affinity is None else tuple(affinity)
    feats = {"avx2": True, "fma": True, "avx512f": False, "avx512_bf16": False, "amx": False}
    feats.update(features)
    return CPUInfo(logical=logical, physical=physical, affinity=affinity, quota=quota,
                   physical_in_affinity=min(physical, len(affinity)), sockets=sockets, numa_nodes=numa,
                   model=model, vendor=vendor, features=feats)


def runtime(*, cuda_build=False, dist=None, backend="tensorflow", source="default", cuda="12.5.1"):
    build = {"is_cuda_build": cuda_build, "is_rocm_build": False,
             "cuda_version": cuda if cuda_build else NA("not a CUDA build"),
             "cudnn_version": "9" if cuda_build else NA("not a CUDA build")}
    return RuntimeInfo(python="3.11.7", keras_version="3.15.1", keras_backend=backend, keras_backend_source=source,
                       tensorflow_version="2.21.0", tensorflow_distribution=dist or ("tensorflow" if cuda_build else "tensorflow-cpu"),
                       tensorflow_build=build, tensorflow_initialized=False)


def gpu(index, name="NVIDIA A100-SXM4-80GB", cc=(8, 0), mem=80 * GiB, cuda_index="same"):
    return GPUInfo(index=index, name=name, memory_total_bytes=mem, memory_free_bytes=mem - GiB,
                   compute_capability=cc, uuid=f"GPU-{index:08d}", cuda_index=index if cuda_index == "same" else cuda_index)


NO_NVML = GPUSnapshot(nvml=NA("NVML could not start (NVML Shared Library Not Found): no NVIDIA GPU visible"))


def gpus(*devices, cvd=None, cuda="12.4"):
    return GPUSnapshot(nvml="ok", driver_version="550.54", cuda_driver_version=cuda, devices=tuple(devices), cuda_visible_devices=cvd)


def memory(total=24 * GiB, limit=None):
    return MemoryInfo(total_bytes=total, available_bytes=total - GiB, cgroup_limit_bytes=limit)


def snapshot(cpu_info, gpu_snap=NO_NVML, rt=None, env=None, mem=None):
    return Snapshot(cpu=cpu_info, memory=mem or memory(), gpus=gpu_snap, runtime=rt or runtime(), env=dict(env or {}))


def vm_2core(**env):
    """This machine: a 2-core AMD EPYC VM, AVX2/FMA, no GPU, NVML absent."""
    return snapshot(cpu(2, 2), env=env)


def server_2s_64t(**env):
    """A 2-socket Xeon: 64 logical CPUs on 32 physical cores (hyperthreads), AMX."""
    return snapshot(cpu(64, 32, sockets=2, numa=2, model="Intel Xeon Platinum 8480", vendor="GenuineIntel",
                        avx512f=True, avx512_bf16=True, amx=True), mem=memory(512 * GiB), env=env)


def container_16_quota4(**env):
    """A container that sees 16 CPUs (8 cores) but has a 4-CPU quota and a 8 GiB limit."""
    return snapshot(cpu(16, 8, quota=4.0), mem=memory(64 * GiB, limit=8 * GiB), env=env)


def node_4xa100(**env):
    """A 4xA100 node with the CUDA build of TensorFlow."""
    return snapshot(cpu(64, 32, sockets=2, numa=2), gpus(*(gpu(i) for i in range(4)), cvd=env.get("CUDA_VISIBLE_DEVICES")),
                    rt=runtime(cuda_build=True), env=env)


def old_gpu_61(**env):
    """A workstation with one GTX 1080 (compute capability 6.1)."""
    return snapshot(cpu(8, 4), gpus(gpu(0, "NVIDIA GeForce GTX 1080", (6, 1), 8 * GiB)), rt=runtime(cuda_build=True), env=env)


def nvml_missing(**env):
    """A machine where NVML is missing (no driver library)."""
    return snapshot(cpu(8, 8), NO_NVML, env=env)


def nvml_fails_on_one_of_two(**env):
    """Two GPUs; NVML raises 'GPU is lost' on the second."""
    lost = GPUInfo(index=1, error="NVML failed on GPU 1: GPU is lost")
    return snapshot(cpu(16, 8), gpus(gpu(0, "NVIDIA L4", (8, 9), 24 * GiB), lost), rt=runtime(cuda_build=True), env=env)

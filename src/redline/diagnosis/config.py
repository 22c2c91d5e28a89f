"""Configuration findings: the misconfigurations people actually hit. Pure: snapshot + plan in."""

from __future__ import annotations

from dataclasses import dataclass

from ..detection.snapshot import Snapshot, available
from ..planning.model import Plan

ERROR, WARNING, INFO = "error", "warning", "info"
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


@dataclass(frozen=True)
class Finding:
    code: str
    #: "error" (hardware goes unused or the run cannot work as meant), "warning" or "info".
    severity: str
    message: str
    evidence: str
    fix: str


def _version_tuple(text) -> tuple | None:
    try:
        return tuple(int(x) for x in str(text).split(".")[:2])
    except ValueError:
        return None


def _gpu_findings(s: Snapshot) -> list[Finding]:
    out = []
    g = s.gpus
    working = [d for d in g.devices if d.error is None]
    for d in g.devices:
        if d.error:
            out.append(Finding("gpu_probe_failed", WARNING, f"NVML failed on GPU {d.index}; it is left out of the plan",
                               d.error, "check `nvidia-smi -q -i %d`; a GPU that NVML cannot read is often in a bad state (reset or reboot)" % d.index))
    if not working:
        return out
    rt = s.runtime
    build = rt.tensorflow_build
    cpu_build = rt.tensorflow_distribution == "tensorflow-cpu" or (available(build) and not build["is_cuda_build"])
    if available(rt.tensorflow_version) and cpu_build:
        sev = ERROR if rt.keras_backend == "tensorflow" else INFO
        out.append(Finding(
            "tensorflow_cpu_build", sev,
            f"{len(working)} NVIDIA GPU(s) present, but the installed TensorFlow is a CPU-only build: it will never use them",
            f"NVML sees {', '.join(str(d.name) for d in working)}; TensorFlow {rt.tensorflow_version} from {rt.tensorflow_distribution}, is_cuda_build="
            f"{build['is_cuda_build'] if available(build) else 'not available'}",
            "pip uninstall -y tensorflow-cpu && pip install 'redline[gpu]'   # the tensorflow[and-cuda] build",
        ))
    cvd = g.cuda_visible_devices
    if cvd is not None and not g.visible:
        deliberate = cvd.strip() in ("", "-1")
        out.append(Finding(
            "cuda_visible_devices_hides_all", WARNING if deliberate else ERROR,
            f"CUDA_VISIBLE_DEVICES hides every GPU: {len(working)} present, none visible to CUDA",
            f"CUDA_VISIBLE_DEVICES={cvd!r}; GPU indices present: {', '.join(str(d.index) for d in working)}",
            "unset CUDA_VISIBLE_DEVICES, or list GPUs that exist, e.g. CUDA_VISIBLE_DEVICES=0" + ("" if deliberate else " (CUDA stops at the first entry that names no GPU)"),
        ))
    elif cvd is not None and len(g.visible) < len([t for t in cvd.split(",") if t.strip()]):
        out.append(Finding(
            "cuda_visible_devices_partial", WARNING,
            f"CUDA_VISIBLE_DEVICES names {len(cvd.split(','))} GPUs but only {len(g.visible)} are visible: CUDA stops at the first entry that names no GPU",
            f"CUDA_VISIBLE_DEVICES={cvd!r}; GPU indices present: {', '.join(str(d.index) for d in working)}",
            "list only GPUs that exist, by index or UUID",
        ))
    if available(build) and build["is_cuda_build"] and available(build["cuda_version"]) and available(g.cuda_driver_version):
        need, have = _version_tuple(build["cuda_version"]), _version_tuple(g.cuda_driver_version)
        if need and have and have < need:
            major = have[0] < need[0]
            out.append(Finding(
                "driver_too_old", ERROR if major else WARNING,
                f"the NVIDIA driver supports CUDA {g.cuda_driver_version} but TensorFlow was built for CUDA {build['cuda_version']}"
                + ("; TensorFlow will not use the GPU" if major else "; minor-version compatibility may work, but PTX JIT compilation fails"),
                f"driver {g.driver_version} (CUDA {g.cuda_driver_version}); TensorFlow {rt.tensorflow_version} built with CUDA {build['cuda_version']}",
                "update the NVIDIA driver, or install a TensorFlow built for the driver's CUDA version",
            ))
    return out


def _cpu_findings(s: Snapshot, plan: Plan) -> list[Finding]:
    out = []
    c = s.cpu
    usable = c.usable
    for var in THREAD_VARS:
        text = s.env.get(var, "").strip()
        if text.isdigit() and int(text) > usable:
            out.append(Finding(
                "threads_above_usable", WARNING,
                f"{var}={text} asks for more threads than the {usable} usable CPUs: they time-slice and run slower",
                f"{var}={text}; usable CPUs {usable} (logical {c.logical}, affinity {len(c.affinity) if available(c.affinity) else 'n/a'}, quota {c.quota})",
                f"export {var}={plan.intra_op_threads.value if var != 'TF_NUM_INTEROP_THREADS' else plan.inter_op_threads.value}   # or unset it and let redline plan it",
            ))
    if available(c.quota) and c.quota is not None and available(c.logical):
        visible = len(c.affinity) if available(c.affinity) else c.logical
        if c.quota < visible and not any(v in s.env for v in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")):
            out.append(Finding(
                "quota_oversubscription", WARNING,
                f"the container's CPU quota ({c.quota:g} CPUs) is below the {visible} CPUs TensorFlow sees: its default pools start {visible} threads each and get throttled",
                f"cgroup quota {c.quota:g} CPUs; visible CPUs {visible}",
                f"run under `redline run` or call redline.configure() (it plans {plan.intra_op_threads.value} intra-op threads), "
                f"or export TF_NUM_INTRAOP_THREADS={plan.intra_op_threads.value} TF_NUM_INTEROP_THREADS={plan.inter_op_threads.value}",
            ))
    if available(c.logical) and available(c.physical) and c.logical > c.physical:
        counted = [v for v in THREAD_VARS if s.env.get(v, "").strip() == str(c.logical)]
        if counted:
            out.append(Finding(
                "hyperthreads_counted", WARNING,
                f"{', '.join(counted)} counts the {c.logical} hyperthreads as cores; math kernels run best on the {c.physical} physical cores",
                f"logical CPUs {c.logical}, physical cores {c.physical}; {', '.join(f'{v}={s.env[v]}' for v in counted)}",
                f"export {counted[0]}={c.usable_physical}",
            ))
        elif not any(v in s.env for v in THREAD_VARS):
            out.append(Finding(
                "hyperthreads_default", INFO,
                f"TensorFlow's default pools count all {c.logical} logical CPUs; redline plans {plan.intra_op_threads.value} threads, one per physical core",
                f"logical CPUs {c.logical}, physical cores {c.physical}",
                "use `redline run` or redline.configure(), and confirm with a measurement",
            ))
    return out


def _runtime_findings(s: Snapshot, plan: Plan) -> list[Finding]:
    out = []
    rt = s.runtime
    versions = {"tensorflow": rt.tensorflow_version, "jax": rt.jax_version, "torch": rt.torch_version}
    backend = plan.backend.value
    if backend in versions and not available(versions[backend]):
        out.append(Finding(
            "backend_missing", ERROR,
            f"Keras is set to the {backend} backend, which is not installed: importing keras will fail",
            f"Keras backend {backend} (from {rt.keras_backend_source}); {backend}: {versions[backend]}",
            f"pip install {backend}   # or set KERAS_BACKEND to an installed backend",
        ))
    if plan.strategy.value == "multi-worker" and backend == "tensorflow":
        out.append(Finding(
            "multi_worker_fit", INFO,
            "TF_CONFIG asks for MultiWorkerMirroredStrategy, and with Keras 3 model.fit does not run under it on the "
            "TensorFlow backend (a known upstream limit, keras-team/keras#20585, not a measurement of this machine)",
            f"TF_CONFIG: {len(plan.cluster.workers) if plan.cluster else '?'} member(s), this process is "
            f"{plan.cluster.task_type if plan.cluster else '?'} {plan.cluster.task_index if plan.cluster else '?'}; "
            f"Keras {rt.keras_version}, backend {backend} ({rt.keras_backend_source})",
            "train with the JAX backend and keras.distribution (DataParallel over jax.distributed), "
            "or write a custom strategy.run loop around the Keras model",
        ))
    return out


def config_findings(snapshot: Snapshot, plan: Plan) -> list[Finding]:
    """Every configuration finding, errors first."""
    findings = _gpu_findings(snapshot) + _cpu_findings(snapshot, plan) + _runtime_findings(snapshot, plan)
    order = {ERROR: 0, WARNING: 1, INFO: 2}
    return sorted(findings, key=lambda f: order[f.severity])

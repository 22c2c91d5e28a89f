"""plan(snapshot, **choices) -> Plan. Pure: no probing, no TensorFlow, no side effects."""

from __future__ import annotations

from ..detection.runtime import BACKENDS
from ..detection.script import SCRIPT_SOURCE
from ..detection.snapshot import Snapshot, available
from ..errors import UsageError
from .cluster import parse_tf_config
from .model import AUTO, ENVIRONMENT, USER, Plan, Setting

POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "cpu", "one-gpu", "mirrored", "multi-worker")
GPU_MEMORY_MODES = ("growth", "full")
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _int_arg(name: str, value, low: int, high: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{name}={value!r} is not valid: it must be an integer from {low} to {high}{hint}")
    return value


def _env_int(env: dict, name: str) -> int | None:
    text = env.get(name)
    if text is None or text.strip() == "":
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}={text!r} is not an integer; set it to a thread count such as 2, or unset it to let redline choose") from None
    if value < 0:
        raise UsageError(f"{name}={text!r} is negative; set it to a thread count of 1 or more (0 means the runtime's default), or unset it")
    return value


def _cpu_story(s: Snapshot) -> str:
    c = s.cpu
    parts = [f"{c.logical} logical CPUs" if available(c.logical) else "logical CPUs not available"]
    if available(c.affinity) and available(c.logical) and len(c.affinity) < c.logical:
        parts.append(f"affinity allows {len(c.affinity)}")
    if available(c.quota) and c.quota is not None:
        parts.append(f"container quota {c.quota:g} CPUs")
    if c.usable_physical < c.usable:
        parts.append(f"{c.usable_physical} physical cores among them (hyperthreads share a core's FPU)")
    return ", ".join(parts) + f": {c.usable_physical} usable"


def _threads(s: Snapshot, intra, inter):
    c = s.cpu
    logical = c.logical if available(c.logical) else c.usable
    high = max(4, 4 * logical)
    hint = f" (at most 4x the {logical} logical CPUs here); leave it unset to let redline choose ({c.usable_physical} here)"
    story = _cpu_story(s)
    # TensorFlow's own default: one thread per CPU the affinity mask allows (it ignores quotas and hyperthreads)
    tf_default = len(c.affinity) if available(c.affinity) else logical
    fix = c.usable_physical < tf_default  # a quota, or hyperthreads, that the default would oversubscribe
    out = []
    for arg, var, auto_value, why in (
        (intra, "TF_NUM_INTRAOP_THREADS", c.usable_physical,
         f"one thread per usable physical core: {story}"),
        (inter, "TF_NUM_INTEROP_THREADS", min(c.usable_physical, max(2, c.sockets if available(c.sockets) else 1)),
         "two (or one per socket) inter-op threads let independent ops such as a layer's two gradients run side by side; "
         "Keras graphs are mostly sequential, so more only compete with the intra-op pool"),
    ):
        name = "intra_threads" if var.endswith("INTRAOP_THREADS") else "inter_threads"
        if arg is not None:
            out.append(Setting(_int_arg(name, arg, 1, high, hint), USER, f"{name}={arg} given"))
            continue
        env_value = _env_int(s.env, var)
        if env_value:
            out.append(Setting(env_value, ENVIRONMENT, f"{var}={env_value} is set; left as it is"))
        elif fix:
            out.append(Setting(auto_value, AUTO, f"{why}; TensorFlow's default would start {tf_default}"))
        else:
            out.append(Setting(tf_default, AUTO, f"TensorFlow's default already uses the {tf_default} usable core(s) "
                               f"({story}): nothing to fix, so it is left alone", applied=False))
    return out


def _thread_env(s: Snapshot, intra: Setting) -> dict:
    env = {}
    for var in THREAD_ENV:
        if var in s.env:
            env[var] = Setting(s.env[var], ENVIRONMENT, f"{var}={s.env[var]} is set; left as it is")
        elif not intra.applied:
            env[var] = Setting(intra.value, AUTO, "left to the library's default, like the intra-op pool", applied=False)
        else:
            env[var] = Setting(intra.value, AUTO, "OpenMP/MKL pools sized like the intra-op pool so the two cannot oversubscribe the cores")
    return env


def _gpu_memory(s: Snapshot, choice, gpus) -> Setting:
    if choice is not None and not (choice in GPU_MEMORY_MODES or (isinstance(choice, int) and not isinstance(choice, bool))):
        raise UsageError(f"gpu_memory={choice!r} is not valid: use 'growth', 'full' or a per-GPU limit in MiB such as 4096")
    if not gpus:
        if choice is not None:
            return Setting(choice, USER, "given, but no GPU is visible: nothing to apply", applied=False)
        return Setting(None, AUTO, "no visible GPU")
    if isinstance(choice, int):
        smallest = min((g.memory_total_bytes for g in gpus if available(g.memory_total_bytes)), default=None)
        high = smallest // 2**20 if smallest else 1 << 30
        _int_arg("gpu_memory", choice, 256, high, " MiB (the smallest visible GPU's memory); or use 'growth'")
        return Setting(choice, USER, f"limit of {choice} MiB per GPU given")
    if choice is not None:
        return Setting(choice, USER, f"gpu_memory={choice!r} given")
    growth = s.env.get("TF_FORCE_GPU_ALLOW_GROWTH")
    if growth is not None:
        value = "growth" if growth.strip().lower() == "true" else "full"
        return Setting(value, ENVIRONMENT, f"TF_FORCE_GPU_ALLOW_GROWTH={growth} is set; left as it is")
    return Setting("growth", AUTO, "TensorFlow otherwise maps nearly all GPU memory at start; growth takes what the model needs and lets other processes share the GPU")


def _strategy(s: Snapshot, choice, cpu_devices, gpus, cluster):
    """(strategy, devices, cpu_devices, replicas) Settings."""
    if choice not in STRATEGIES:
        raise UsageError(f"strategy={choice!r} is not valid: use one of {', '.join(STRATEGIES)}")
    usable = s.cpu.usable
    if cpu_devices is not None:
        _int_arg("cpu_devices", cpu_devices, 1, max(2, usable * 4), " logical CPU devices")
        if choice != "mirrored" or gpus:
            raise UsageError(f"cpu_devices={cpu_devices} only applies with strategy='mirrored' on a machine without a visible GPU; drop it or ask for strategy='mirrored'")
    src = USER if choice != "auto" else AUTO
    gpu_names = tuple(f"/gpu:{g.cuda_index}" for g in gpus)

    if choice == "auto":
        choice = "multi-worker" if cluster else "mirrored" if len(gpus) > 1 else "one-gpu" if gpus else "cpu"
    if choice == "multi-worker" and cluster is None:
        raise UsageError("strategy='multi-worker' needs TF_CONFIG describing the cluster; set TF_CONFIG on every worker, or use strategy='auto'")
    if choice == "one-gpu" and not gpus:
        raise UsageError("strategy='one-gpu' needs a visible GPU and none is; check `redline doctor`, or use strategy='cpu'")

    one_cpu = Setting(1, AUTO, "the CPU stays one device; its threads already use every usable core")
    if choice == "cpu":
        why = "no visible GPU" if not gpus else "asked for the CPU although a GPU is visible"
        return (Setting("cpu", src, why), Setting(("/cpu:0",), AUTO, "one CPU device"), one_cpu,
                Setting(1, AUTO, "one replica"))
    if choice == "one-gpu":
        extra = f"; {len(gpus) - 1} more GPU(s) left unused as asked" if len(gpus) > 1 else ""
        return (Setting("one-gpu", src, f"one visible GPU ({gpus[0].name}){extra}; TensorFlow places the model on it"),
                Setting(gpu_names[:1], AUTO, "the first visible GPU"), one_cpu, Setting(1, AUTO, "one replica"))
    if choice == "mirrored":
        if gpus:
            return (Setting("mirrored", src, f"{len(gpus)} visible GPUs on this machine: MirroredStrategy keeps a replica on each and all-reduces gradients"),
                    Setting(gpu_names, AUTO, "every visible GPU"), one_cpu,
                    Setting(len(gpus), AUTO, "one replica per GPU"))
        n = cpu_devices or 2
        return (Setting("mirrored", src, "MirroredStrategy over logical CPU devices as asked: useful to test the distributed path; replicas on one CPU share its cores, so it is usually slower than one device (general rule)"),
                Setting(tuple(f"/cpu:{i}" for i in range(n)), AUTO, f"{n} logical CPU devices"),
                Setting(n, USER if cpu_devices else AUTO, f"the CPU split into {n} logical devices"),
                Setting(n, AUTO, "one replica per logical CPU device"))
    local = max(1, len(gpus))
    where = f"{len(gpus)} GPU(s)" if gpus else "the CPU"
    return (Setting("multi-worker", ENVIRONMENT if src == AUTO else src,
                    f"TF_CONFIG describes {cluster.num_workers} workers (this is {cluster.task_type} {cluster.task_index}); MultiWorkerMirroredStrategy, each worker on {where}. "
                    "Keras 3 model.fit fails under it with the TensorFlow backend; use a custom strategy.run loop"),
            Setting(gpu_names or ("/cpu:0",), AUTO, f"local devices: {where}"), one_cpu,
            Setting(cluster.num_workers * local, AUTO, f"{cluster.num_workers} workers x {local} local device(s)"))


def _precision(s: Snapshot, choice, gpus) -> Setting:
    if choice is not None and choice != "auto" and choice not in POLICIES:
        raise UsageError(f"precision={choice!r} is not a known policy: use one of {', '.join(POLICIES)}, or 'auto' for redline's recommendation")
    if gpus:
        ccs = [g.compute_capability for g in gpus if available(g.compute_capability)]
        if ccs and len(ccs) == len(gpus) and min(ccs) >= (7, 0):
            value, why = "mixed_float16", f"GPUs of compute capability {'.'.join(map(str, min(ccs)))}+ have float16 tensor cores"
        else:
            shown = ", ".join(".".join(map(str, c)) for c in ccs) or "not available"
            value, why = "float32", f"GPU compute capability {shown} is below 7.0: no tensor cores, so float16 gains little"
    elif s.cpu.has("avx512_bf16") or s.cpu.has("amx"):
        value, why = "mixed_bfloat16", ("this CPU has native bfloat16 instructions (AVX512_BF16/AMX); whether your model runs "
                                        "faster in it is not measured here: `redline tune --allow precision SCRIPT` "
                                        "measures it on your script, `redline bench --allow precision` on built-in "
                                        "models")
    else:
        value, why = "float32", ("this CPU has no native bfloat16 (no AVX512_BF16/AMX): emulated bfloat16 is many times "
                                 "slower (general rule)")
    if choice is None:
        return Setting(value, AUTO, f"{why}; not applied: it changes the numerics, opt in with precision='auto'", applied=False)
    if choice == "auto":
        return Setting(value, USER, f"{why}; applied as asked (precision='auto')")
    return Setting(choice, USER, f"precision={choice!r} given" + ("" if choice == value else f"; redline would choose {value}: {why}"))


def _onednn(s: Snapshot, choice) -> Setting:
    if choice is not None:
        if not isinstance(choice, bool):
            raise UsageError(f"onednn={choice!r} is not valid: use True or False, or leave it unset for TensorFlow's default")
        return Setting(choice, USER, f"onednn={choice} given; oneDNN changes floating-point round-off slightly")
    if "TF_ENABLE_ONEDNN_OPTS" in s.env:
        v = s.env["TF_ENABLE_ONEDNN_OPTS"]
        return Setting(v.strip() not in ("0", "false", "False", ""), ENVIRONMENT, f"TF_ENABLE_ONEDNN_OPTS={v} is set; left as it is")
    return Setting(None, AUTO, "TensorFlow's default is kept (it enables oneDNN on x86 CPUs with AVX-512 VNNI/BF16 or AMX); "
                   "elsewhere it can speed up convolutions (general rule, not measured here): `redline bench` measures it", applied=False)


def _compile_knob(name, choice, gpus, compile_defaults, validate):
    if choice is not None:
        return Setting(validate(choice), USER, f"{name}={choice!r} given; set in Model.compile where the script does not pass it")
    if name == "steps_per_execution":
        value, why = (16, "general rule, not measured on this machine: several steps per call amortise Python dispatch, "
                      "which dominates small models, and can slow others; `redline bench` measures it")
    elif gpus:
        value, why = (True, "general rule, not measured on this machine: XLA often speeds up GPU steps and can fail "
                      "or slow others; `redline bench` measures it")
    else:
        value, why = (False, "Keras' default ('auto') leaves XLA off for TensorFlow on CPU; whether it helps your model "
                      "on this CPU is not measured here: `redline bench` tries it")
    return Setting(value, AUTO, why, applied=compile_defaults)


def _validate_spe(v):
    return _int_arg("steps_per_execution", v, 1, 100000, " steps")


def _validate_jit(v):
    if v not in (True, False, "auto"):
        raise UsageError(f"jit_compile={v!r} is not valid: use True, False or 'auto'")
    return v


#: set to 0 (or false, no, off), each epoch's tf.data iterator is dropped where Keras drops it
#: (redline.applying.iterator_release)
RELEASE_OFF = "REDLINE_ITERATOR_RELEASE"
#: set to 0 (or false, no, off), Keras on TensorFlow builds a model's state in its first traced step, as without
#: redline (redline.applying.build_ahead)
BUILD_AHEAD_OFF = "REDLINE_BUILD_AHEAD"


def patch_off(backend: str | None, env, var: str) -> str | None:
    """Why a patch of Keras' TensorFlow trainer (the iterator release, the build ahead) is not in place, or None where
    it is: another backend, or ``var`` set to 0 (false, no, off) in ``env``. The plan and the patch's install() both
    ask it."""
    if backend != "tensorflow":
        return f"Keras runs on {backend}"
    if str(env.get(var, "")).strip().lower() in ("0", "false", "no", "off"):
        return f"{var}={env[var]} is set"
    return None


def _tensorflow_patch(backend: str, env: dict, var: str, elsewhere: str, off: str, on: str) -> Setting:
    why = patch_off(backend, env, var)
    if why is None:
        return Setting(True, AUTO, on)
    return Setting(None, AUTO, elsewhere) if backend != "tensorflow" else Setting(False, ENVIRONMENT, f"{why}: {off}")


def _iterator_release(backend: str, env: dict) -> Setting:
    return _tensorflow_patch(
        backend, env, RELEASE_OFF, f"{backend} makes no tf.data iterator per epoch",
        "each iterator is dropped where Keras drops it",
        "Keras drops each epoch's tf.data iterator at the next epoch's start, where its destructor waits for tf.data's "
        "autotune thread (0.3-2.5 s at some epoch starts measured): dropped on a thread of its own instead; the data, "
        "its order and the numerics are unchanged")


def _build_ahead(backend: str, env: dict) -> Setting:
    return _tensorflow_patch(
        backend, env, BUILD_AHEAD_OFF, f"Keras on {backend} builds a model's state before its first step itself",
        "Keras builds a model's state in its first traced step",
        "Keras on TensorFlow builds the optimizer's slots, the compiled metrics and an unbuilt model in its first "
        "traced step, so tf.function traces it twice (seconds on a large model, at each fit after a new compile): "
        "built before it from the input's shapes, as Keras does on JAX and under a strategy; the same variables and "
        "initial values, the numerics unchanged")


def plan(
    snapshot: Snapshot,
    *,
    intra_threads: int | None = None,
    inter_threads: int | None = None,
    gpu_memory: str | int | None = None,
    strategy: str = "auto",
    cpu_devices: int | None = None,
    batch_size: int | None = None,
    precision: str | None = None,
    onednn: bool | None = None,
    steps_per_execution: int | None = None,
    jit_compile: bool | str | None = None,
    compile_defaults: bool = False,
    backend: str | None = None,
    **unknown,
) -> Plan:
    """Decide every setting from the snapshot and the user's choices.

    A choice the user makes (argument) or already made (environment variable)
    is kept and reported as such; everything else gets redline's value and the
    reason for it. Raises UsageError for invalid choices.
    """
    if unknown:
        import inspect

        valid = [n for n in inspect.signature(plan).parameters if n not in ("snapshot", "unknown")]
        raise UsageError(f"unknown choice(s) {', '.join(f'{k}={v!r}' for k, v in unknown.items())} for configure()/plan(): "
                         f"the choices are {', '.join(valid)}")
    s = snapshot
    if backend is not None and backend not in BACKENDS:
        raise UsageError(f"backend={backend!r} is not valid: use one of {', '.join(BACKENDS)}")
    if backend is not None:
        backend_s = Setting(backend, USER, f"backend={backend!r} given")
    else:
        src = (ENVIRONMENT if s.runtime.keras_backend_source in ("environment", "keras.json")
               or s.runtime.keras_backend_source.startswith(SCRIPT_SOURCE) else AUTO)
        backend_s = Setting(s.runtime.keras_backend, src, f"Keras backend from {s.runtime.keras_backend_source}")

    intra, inter = _threads(s, intra_threads, inter_threads)
    gpus = s.gpus.visible
    cluster = parse_tf_config(s.env.get("TF_CONFIG"))
    strat, devices, cpu_devs, replicas = _strategy(s, strategy, cpu_devices, gpus, cluster)

    if batch_size is not None:
        _int_arg("batch_size", batch_size, 1, 1 << 24, " samples per replica")
        per = Setting(batch_size, USER, "batch_size given, per replica")
        glob = Setting(batch_size * replicas.value, AUTO, f"{batch_size} per replica x {replicas.value} replica(s)")
    else:
        per = Setting(None, AUTO, "no batch_size given: pass one to plan the global batch")
        glob = Setting(None, AUTO, "per-replica batch x replicas, once a batch_size is given")

    usable = s.cpu.usable
    budget = s.memory.budget_bytes
    budget_txt = f"{budget / 2**30:.1f} GiB memory budget" if available(budget) else "memory budget not available"
    notes = []
    if s.runtime.tensorflow_initialized is True:
        notes.append("TensorFlow is already initialised in this process: thread and device settings can no longer change here")
    return Plan(
        backend=backend_s,
        intra_op_threads=intra,
        inter_op_threads=inter,
        thread_env=_thread_env(s, intra),
        gpu_memory=_gpu_memory(s, gpu_memory, gpus),
        strategy=strat,
        devices=devices,
        cpu_devices=cpu_devs,
        replicas=replicas,
        per_replica_batch=per,
        global_batch=glob,
        precision=_precision(s, precision, gpus),
        onednn=_onednn(s, onednn),
        data_threadpool=Setting(usable, AUTO, f"a private tf.data pool of one thread per usable CPU ({usable}); {budget_txt}"),
        data_parallel_calls=Setting(usable, AUTO, f"a fixed parallelism of {usable} keeps every usable CPU busy without AUTOTUNE's extra optimisation thread"),
        data_prefetch=Setting(2, AUTO, "two batches ready ahead of the model hide input latency; more only holds memory"),
        steps_per_execution=_compile_knob("steps_per_execution", steps_per_execution, gpus, compile_defaults, _validate_spe),
        jit_compile=_compile_knob("jit_compile", jit_compile, gpus, compile_defaults, _validate_jit),
        iterator_release=_iterator_release(backend_s.value, s.env),
        build_ahead=_build_ahead(backend_s.value, s.env),
        cluster=cluster,
        notes=tuple(notes),
    )

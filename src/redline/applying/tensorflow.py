"""Apply a plan to TensorFlow through tf.config, and build its strategy."""

from __future__ import annotations

from ..planning.model import ENVIRONMENT, Plan
from .actions import KEPT, LATE_FIX, SKIPPED, Action, attempt


def apply(plan: Plan) -> list[Action]:
    import tensorflow as tf

    actions = []
    threading = tf.config.threading
    for name, setting, setter in (
        ("intra_op_threads", plan.intra_op_threads, threading.set_intra_op_parallelism_threads),
        ("inter_op_threads", plan.inter_op_threads, threading.set_inter_op_parallelism_threads),
    ):
        if setting.source == ENVIRONMENT:
            actions.append(Action(name, setting.value, KEPT, "from the environment; TensorFlow reads it when it starts"))
        elif not setting.applied:
            actions.append(Action(name, setting.value, KEPT, "TensorFlow's default, which the plan leaves alone"))
        else:
            actions.append(attempt(name, setting.value, lambda f=setter, v=setting.value: f(v), "tf.config.threading"))

    gpus = tf.config.list_physical_devices("GPU")
    mem = plan.gpu_memory
    if not gpus:
        if mem.value is not None:
            actions.append(Action("gpu_memory", mem.value, SKIPPED, "TensorFlow sees no GPU"))
    elif mem.source == ENVIRONMENT or mem.value == "full":
        actions.append(Action("gpu_memory", mem.value, KEPT, "TensorFlow's own setting left as it is"))
    elif mem.value == "growth":
        for gpu in gpus:
            actions.append(attempt("gpu_memory", "growth", lambda g=gpu: tf.config.experimental.set_memory_growth(g, True), f"memory growth on {gpu.name}"))
    else:
        cfg = [tf.config.LogicalDeviceConfiguration(memory_limit=int(mem.value))]
        for gpu in gpus:
            actions.append(attempt("gpu_memory", mem.value, lambda g=gpu: tf.config.set_logical_device_configuration(g, cfg), f"{mem.value} MiB limit on {gpu.name}"))

    n = plan.cpu_devices.value
    if n > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        cfg = [tf.config.LogicalDeviceConfiguration() for _ in range(n)]
        actions.append(attempt("cpu_devices", n, lambda: tf.config.set_logical_device_configuration(cpu, cfg), f"CPU split into {n} logical devices"))
    return actions


def strategy(plan: Plan):
    """The tf.distribute strategy the plan asks for (the default one on one device)."""
    import tensorflow as tf

    kind = plan.strategy.value
    if kind == "mirrored":
        logical = {f"/{d.device_type.lower()}:{d.name.rsplit(':', 1)[1]}" for d in tf.config.list_logical_devices()}
        missing = [d for d in plan.devices.value if d not in logical]
        if missing:
            raise RuntimeError(
                f"MirroredStrategy needs devices {', '.join(plan.devices.value)} but TensorFlow has no {', '.join(missing)}; "
                f"the logical devices were not created in time. Fix: {LATE_FIX}"
            )
        return tf.distribute.MirroredStrategy(devices=list(plan.devices.value))
    if kind == "multi-worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


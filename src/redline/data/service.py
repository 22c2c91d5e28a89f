"""The tf.data service: a pipeline's preprocessing moved to other processes or hosts, on TensorFlow's own servers.

``redline data-service dispatcher`` and ``redline data-service worker`` start
``tf.data.experimental.service`` servers (the dispatcher in fault-tolerant mode, its journal in a work folder);
``redline.data.pipeline(..., service="grpc://HOST:PORT")`` sends the pipeline's stages before the prefetch to them.
What cannot run there is refused before anything starts: a Python generator source and ``tf.py_function`` /
``tf.numpy_function`` stages run in the training process's Python, which the service's workers do not have.
"""

from __future__ import annotations

import socket
import time

from ..errors import UsageError

PYTHON_OPS = ("EagerPyFunc", "PyFunc", "PyFuncStateless")


def parse_service(address: str, what: str = "service=") -> tuple[str, str, int]:
    """'grpc://HOST:PORT' (or HOST:PORT) -> (protocol, host, port); a UsageError for anything else."""
    text = str(address)
    protocol, sep, rest = text.partition("://")
    if not sep:
        protocol, rest = "grpc", text
    host, sep, port = rest.rpartition(":")
    if protocol != "grpc" or not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"{what}{address!r} is not a tf.data service address: give grpc://HOST:PORT, the dispatcher "
                         f"started by `redline data-service dispatcher`, e.g. {what}'grpc://10.0.0.5:5050'")
    return protocol, host, int(port)


def check_reachable(address: str, timeout_s: float = 5.0, what: str = "service=") -> None:
    """A UsageError when nothing answers at the dispatcher's address within ``timeout_s`` (instead of waiting forever)."""
    _, host, port = parse_service(address, what)
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=max(0.1, deadline - time.monotonic())):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    raise UsageError(f"no tf.data service dispatcher answers at {address} within {timeout_s:.0f} s "
                     f"({getattr(last, 'strerror', None) or last}): start one with `redline data-service dispatcher --port "
                     f"{port}` and at least one `redline data-service worker --dispatcher {host}:{port}`")


def python_stages(ds) -> list[str]:
    """What in ``ds`` needs this process's Python: 'a Python generator source', 'tf.py_function / tf.numpy_function'.

    Read from the pipeline's graph (its nodes and those of its functions). redline's own element-error guard is a
    py_function too, but it runs only after a failure, to name the failing element: it does not count."""
    import tensorflow as tf

    from .errors import LOCATE

    graph = tf.compat.v1.GraphDef.FromString(ds._as_serialized_graph().numpy())  # noqa: SLF001  (tf.data's own graph)
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    names = {f.signature.name for f in graph.library.function}
    found = []
    if any(n.op == "GeneratorDataset" for n in nodes) or any("generator_py_func" in name or "from_generator" in name
                                                              for name in names):
        found.append("a Python generator source")
    elif any(n.op in PYTHON_OPS and LOCATE not in n.name for n in nodes):
        found.append("tf.py_function / tf.numpy_function stages")
    return found


def distribute(ds, address: str, *, job_name: str | None = None, timeout_s: float = 5.0):
    """``ds`` with its stages so far run on the tf.data service at ``address`` (after the checks above)."""
    import tensorflow as tf

    found = python_stages(ds)
    if found:
        raise UsageError(f"this pipeline has {' and '.join(found)}, which cannot run on the tf.data service (its workers have no access "
                         "to this process's Python): keep service=None, or build the pipeline from files or arrays with "
                         "TensorFlow ops only")
    check_reachable(address, timeout_s)
    return ds.apply(tf.data.experimental.service.distribute(processing_mode="parallel_epochs", service=address,
                                                            job_name=job_name))


def dispatcher(port: int, work_dir: str):
    import tensorflow as tf

    config = tf.data.experimental.service.DispatcherConfig(port=port, work_dir=work_dir, fault_tolerant_mode=True)
    return tf.data.experimental.service.DispatchServer(config)


def worker(dispatcher_address: str, port: int = 0):
    import tensorflow as tf

    _, host, dport = parse_service(dispatcher_address)
    config = tf.data.experimental.service.WorkerConfig(dispatcher_address=f"{host}:{dport}", port=port)
    return tf.data.experimental.service.WorkerServer(config)

"""Runtime probe: Python, Keras, TensorFlow, JAX and torch, without importing them.

Versions come from package metadata, the Keras backend from the environment or
keras.json, and TensorFlow's build info from its own build_info.py, so a
snapshot never pays for (or triggers) TensorFlow's start-up.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import platform
import runpy
import sys
from pathlib import Path
from typing import Mapping

from .snapshot import NotAvailable, RuntimeInfo

BACKENDS = ("tensorflow", "jax", "torch", "numpy", "openvino")
#: the packages each Keras backend imports.
BACKEND_PACKAGES = {"tensorflow": ("tensorflow",), "jax": ("jax", "jaxlib"), "torch": ("torch",), "numpy": ("numpy",),
                    "openvino": ("openvino",)}


def missing_packages(backend: str) -> list[str]:
    """The packages a Keras backend needs that cannot be imported here (found without importing them)."""
    missing = []
    for name in BACKEND_PACKAGES.get(backend, (backend,)):
        if name in sys.modules:
            continue
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or half-removed install counts as missing
            found = False
        if not found:
            missing.append(name)
    return missing


def _version(*dists: str):
    for dist in dists:
        try:
            return md.version(dist)
        except md.PackageNotFoundError:
            continue
    return NotAvailable("not installed")


def keras_backend(env: Mapping[str, str]) -> tuple[str, str]:
    """(backend, where it came from), the way Keras itself resolves it."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend") and hasattr(keras.backend, "backend"):
        return keras.backend.backend(), "imported"
    if env.get("KERAS_BACKEND"):
        return env["KERAS_BACKEND"], "environment"
    home = env.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        config = json.loads(Path(home, "keras.json").read_text())
        if isinstance(config, dict) and config.get("backend"):
            return str(config["backend"]), "keras.json"
    except (OSError, ValueError):
        pass  # no or unreadable keras.json: Keras falls back to its default as well
    return "tensorflow", "default"


#: the distributions that ship TensorFlow's `tensorflow` package, looked up by name first: reading every installed
#: distribution's file list (packages_distributions) took ~0.03 s of each `redline run`'s start, one lookup 0.5 ms
TF_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tensorflow-aarch64",
                    "tensorflow-rocm", "tensorflow-gpu", "intel-tensorflow", "tf-nightly", "tf-nightly-cpu")


def _tf_distribution():
    for name in TF_DISTRIBUTIONS:  # one that ships the package itself (not a meta-package naming another one)
        try:
            top = md.distribution(name).read_text("top_level.txt") or ""
        except md.PackageNotFoundError:
            continue
        if "tensorflow" in top.split():
            return name
    try:
        names = md.packages_distributions().get("tensorflow", [])
    except Exception as exc:  # metadata of unrelated packages can be broken in odd ways
        return NotAvailable(f"package metadata unreadable: {exc}")
    return names[0].replace("_", "-").lower() if names else NotAvailable("not installed")


def _tf_build_info():
    spec = importlib.util.find_spec("tensorflow") if "tensorflow" not in sys.modules else sys.modules["tensorflow"].__spec__
    if spec is None or not spec.submodule_search_locations:
        return NotAvailable("tensorflow is not installed")
    for loc in spec.submodule_search_locations:
        path = Path(loc, "python", "platform", "build_info.py")
        if path.is_file():
            try:
                info = dict(runpy.run_path(str(path)).get("build_info", {}))
            except Exception as exc:  # a damaged install: report it, keep the snapshot
                return NotAvailable(f"{path} could not be read: {exc}")
            return {
                "is_cuda_build": bool(info.get("is_cuda_build", False)),
                "is_rocm_build": bool(info.get("is_rocm_build", False)),
                "cuda_version": info.get("cuda_version") or NotAvailable("not a CUDA build"),
                "cudnn_version": info.get("cudnn_version") or NotAvailable("not a CUDA build"),
            }
    return NotAvailable("tensorflow's build_info.py not found")


def tensorflow_initialized():
    """True once TensorFlow's eager context exists: thread and device settings are then frozen."""
    if "tensorflow" not in sys.modules:
        return False
    try:
        from tensorflow.python.eager import context
    except ImportError as exc:
        return NotAvailable(f"cannot inspect TensorFlow's context: {exc}")
    ctx = context.context_safe()
    return ctx is not None and getattr(ctx, "_context_handle", None) is not None


def probe_runtime(env: Mapping[str, str]) -> RuntimeInfo:
    backend, source = keras_backend(env)
    return RuntimeInfo(
        python=platform.python_version(),
        keras_version=_version("keras", "keras-nightly"),
        keras_backend=backend,
        keras_backend_source=source,
        tensorflow_version=_version("tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tf-nightly"),
        tensorflow_distribution=_tf_distribution(),
        tensorflow_build=_tf_build_info(),
        tensorflow_initialized=tensorflow_initialized(),
        jax_version=_version("jax"),
        torch_version=_version("torch"),
    )

"""configure() on the JAX and torch Keras backends, each in a fresh process (skipped where not installed)."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest


def run_with_backend(backend, code):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "XLA_"))}
    env["KERAS_BACKEND"] = backend
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (optional backend)")
def test_torch_threads_are_applied():
    d = run_with_backend("torch", """
        import json, redline
        p = redline.configure(intra_threads=1, inter_threads=1, strategy="cpu")
        import torch
        print(json.dumps({"threads": [torch.get_num_threads(), torch.get_num_interop_threads()],
                          "status": {a.name: a.status for a in p.actions}}))
    """)
    assert d["threads"] == [1, 1]
    assert d["status"]["intra_op_threads"] == d["status"]["inter_op_threads"] == "applied"


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (optional backend)")
def test_jax_mirrored_over_cpu_devices_and_skipped_threads():
    d = run_with_backend("jax", """
        import json, os, redline
        p = redline.configure(strategy="mirrored", cpu_devices=2)
        import jax, keras
        print(json.dumps({"devices": len(jax.devices()), "xla": os.environ.get("XLA_FLAGS"),
                          "dist": type(keras.distribution.distribution()).__name__,
                          "status": {a.name: [a.status, a.detail] for a in p.actions}}))
    """)
    assert d["devices"] == 2 and "xla_force_host_platform_device_count=2" in d["xla"]
    assert d["dist"] == "DataParallel"
    assert d["status"]["intra_op_threads"][0] == "skipped" and "JAX has no supported thread-count" in d["status"]["intra_op_threads"][1]
    assert d["status"]["strategy"][0] == "applied"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_redline_data_feeds_other_backends(backend):
    if importlib.util.find_spec(backend) is None or importlib.util.find_spec("tensorflow") is None:
        pytest.skip(f"{backend} and tensorflow are both needed (optional backend)")
    d = run_with_backend(backend, """
        import json, numpy as np, keras, redline.data as rd
        x = np.random.default_rng(0).random((96, 4), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
        ds = rd.pipeline((x, y), batch_size=16)
        first = next(iter(ds.as_numpy_iterator()))
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
        model.compile("sgd", "mse")
        h = model.fit(ds, epochs=2, verbose=0, **ds.redline.fit_kwargs())
        print(json.dumps({"backend": keras.backend.backend(), "numpy": type(first[0]).__name__, "epochs": len(h.history["loss"])}))
    """)
    assert d == {"backend": backend, "numpy": "ndarray", "epochs": 2}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_monitor_and_diagnose_on_other_backends(backend, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (optional backend)")
    d = run_with_backend(backend, f"""
        import json, numpy as np, keras, redline
        from redline.diagnosis import diagnose_record
        x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[redline.Monitor({str(tmp_path / 'r.jsonl')!r}, interval=0.05)])
        rec, summary, _ = diagnose_record({str(tmp_path / 'r.jsonl')!r})
        diag = redline.diagnose(model, x, y, batch_size=16, seconds=0.5)
        print(json.dumps({{"complete": rec.complete, "steps": summary.steps, "batch": rec.header["batch_size"],
                          "samples": len(rec.samples), "kind": diag.kind, "shares": diag.breakdown.shares(),
                          "backend": diag.probe["backend"], "M": diag.probe["model_samples_per_s"],
                          "M2": diag.probe["model_2x_samples_per_s"]}}))
    """)
    assert d["complete"] and d["steps"] == 64 and d["batch"] == 16 and d["samples"] >= 2
    assert d["backend"] == backend
    # real throughputs on this backend: positive, split into shares in [0, 1] that add up to 1, and the verdict is the
    # largest share (which share is largest depends on the machine; the rule is tested on given figures)
    assert d["M"] > 0 and d["M2"] > 0, d
    assert all(0.0 <= v <= 1.0 for v in d["shares"].values()) and abs(sum(d["shares"].values()) - 1.0) < 1e-9, d
    assert d["kind"] == max(d["shares"], key=d["shares"].get) + "-bound", d

"""Peak dense-matmul FLOP/s of this machine, the yardstick for hardware efficiency.

Measured, not looked up: a square matmul chain in a tf.function, timed over a
few windows, best window kept. float32 always; bfloat16 on CPUs with native
bf16 (AVX512_BF16/AMX); float32, float16 and bfloat16 on each visible GPU.
"""

from __future__ import annotations

import time

from ..detection import detect

CHAIN = 8  # matmuls per call, so call overhead is amortised


def _rate(tf, device: str, dtype, n: int, seconds: float, windows: int = 3) -> float:
    with tf.device(device):
        a = tf.random.uniform((n, n), dtype=tf.float32)
        a = tf.cast(a / tf.cast(n, tf.float32), dtype)

        @tf.function
        def chain(x):
            for _ in range(CHAIN):
                x = tf.linalg.matmul(x, a)
            return x

        x = chain(a)  # trace and warm
        _ = x.numpy()
        flops_per_call = 2 * n**3 * CHAIN
        best = 0.0
        for _ in range(windows):
            calls, start = 0, time.perf_counter()
            while True:
                x = chain(a)
                calls += 1
                _ = x[0, 0].numpy()  # wait for the device
                took = time.perf_counter() - start
                if took >= seconds / windows:
                    break
            best = max(best, calls * flops_per_call / took)
    return best


def measure_peak(seconds: float = 1.0) -> dict:
    """{"cpu": {"float32": FLOP/s, ...}, "gpu:0": {...}, "notes": [...]} measured under redline's plan."""
    import redline

    redline.configure()
    import tensorflow as tf

    snapshot = detect()
    out = {"cpu": {}, "notes": []}
    out["cpu"]["float32"] = _rate(tf, "/cpu:0", tf.float32, 1024, seconds)
    if snapshot.cpu.has("avx512_bf16") or snapshot.cpu.has("amx"):
        out["cpu"]["bfloat16"] = _rate(tf, "/cpu:0", tf.bfloat16, 1024, seconds)
    else:
        out["notes"].append("no bfloat16/float16 CPU peak: this CPU has no native bf16 (AVX512_BF16/AMX)")
    for i, _ in enumerate(tf.config.list_logical_devices("GPU")):
        dev = f"/gpu:{i}"
        out[f"gpu:{i}"] = {name: _rate(tf, dev, dt, 4096, seconds) for name, dt in
                           (("float32", tf.float32), ("float16", tf.float16), ("bfloat16", tf.bfloat16))}
    if not tf.config.list_logical_devices("GPU"):
        out["notes"].append("no GPU peak: TensorFlow sees no GPU")
    return out

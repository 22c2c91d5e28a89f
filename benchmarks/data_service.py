"""An input-bound pipeline in the training process against the same pipeline on the tf.data service (one dispatcher
and one worker, each a separate process started by `redline data-service`), interleaved rounds, steps/s medians.

The map is heavy TensorFlow work per element (matrix products); the model is one Dense layer, so the input decides
the speed. On a machine whose cores are all busy with the pipeline already, the service can only add overhead (the
worker competes for the same cores and the batches cross a socket); it pays where the workers run on other hosts.

    python benchmarks/data_service.py [--repeats 3] [--json FILE]
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from tune_scripts import machine  # noqa: E402

TRAIN = r"""
import sys, time, numpy as np, tensorflow as tf, keras, redline

def heavy(x, y):
    m = tf.reshape(tf.tile(x, [256]), (64, 64))
    for _ in range(8):
        m = tf.linalg.matmul(m, m) / 64.0
    return tf.reduce_mean(m, axis=0)[:16], y

x = np.random.default_rng(0).random((4096, 16), dtype=np.float32); y = np.ones((4096, 1), "float32")
service = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] != "-" else None
ds = redline.data.pipeline((x, y), batch_size=32, map_fn=heavy, cache=False, service=service)
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
marks = []
cb = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, l: marks.append(time.perf_counter()),
                                    on_epoch_end=lambda e, l: print(f"EPOCH-SECONDS {time.perf_counter() - marks[-1]:.4f}", flush=True))
model.fit(ds, epochs=3, steps_per_epoch=64, verbose=0, callbacks=[cb])
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env, *argv):
    p = subprocess.Popen([sys.executable, "-m", "redline", "data-service", *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
    for line in p.stdout:
        if "stop with Ctrl-C" in line:
            return p
    raise SystemExit(f"data-service {argv[0]} did not start")


def steps_per_s(out):
    secs = [float(line.split("EPOCH-SECONDS ")[1]) for line in out.splitlines() if "EPOCH-SECONDS " in line][1:]
    return 64 * len(secs) / sum(secs) if secs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    port = free_port()
    import tempfile

    dispatcher = start(env, "dispatcher", "--port", str(port), "--work-dir", tempfile.mkdtemp(prefix="redline-ds-"))
    worker = start(env, "worker", "--dispatcher", f"127.0.0.1:{port}")
    runs = {"in-process": [], "service (1 worker)": []}
    try:
        for r in range(a.repeats):
            order = [("in-process", "-"), ("service (1 worker)", f"grpc://127.0.0.1:{port}")]
            if r % 2:
                order.reverse()
            for name, arg in order:
                p = subprocess.run([sys.executable, "-c", TRAIN, arg], capture_output=True, text=True, env=env, timeout=600)
                rate = steps_per_s(p.stdout) if p.returncode == 0 else None
                runs[name].append(rate)
                print(f"  round {r + 1} {name:20s} {rate and round(rate, 1)} steps/s" + ("" if rate else p.stderr[-400:]), flush=True)
    finally:
        for p in (worker, dispatcher):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)
    med = {k: statistics.median([v for v in vs if v]) for k, vs in runs.items()}
    ratio = med["service (1 worker)"] / med["in-process"]
    print(f"\nin-process {med['in-process']:.1f} steps/s, service {med['service (1 worker)']:.1f} steps/s: {ratio:.2f}x")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine(env), "runs": runs, "medians": med, "service_vs_in_process": ratio}, f, indent=1)


if __name__ == "__main__":
    main()

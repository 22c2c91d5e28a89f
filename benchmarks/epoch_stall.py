"""The epoch-start stall: Keras fit over a finite pipeline vs redline's repeat() + steps_per_epoch.

Runs each configuration in fresh processes, interleaved, for many short
epochs, and reports per-epoch stalls: the time to the first step of an epoch
minus a typical step. Usage: python benchmarks/epoch_stall.py [--repeats 3] [--epochs 12] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CONFIGS = {
    "numpy-fit": "fit(x, y) on numpy arrays (Keras builds a finite tf.data pipeline with AUTOTUNE each epoch)",
    "finite-autotune": "fit(ds) on a finite tf.data pipeline: shuffle, map(AUTOTUNE), batch, prefetch(AUTOTUNE)",
    "redline-repeat": "fit(ds, steps_per_epoch) on a redline.data pipeline: repeat(), fixed parallelism, autotune off",
}


def child(config: str, epochs: int, samples: int) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import redline
    import redline.data as rd
    from redline.benchmarking.run_once import _callback
    from redline.workloads import get

    plan = redline.configure() if config == "redline-repeat" else None
    import tensorflow as tf
    import keras

    w = get("input")
    x, y = w.make_data(0)
    x, y = x[:samples], y[:samples]
    batch = 64
    model = w.build_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if config == "numpy-fit":
        xa = tf.image.resize(tf.cast(x[:, :32, :32, :], tf.float32) / 255.0, (32, 32)).numpy()
        fit = lambda cb, e: model.fit(xa, y, batch_size=batch, epochs=e, verbose=0, callbacks=cb)  # noqa: E731
    elif config == "finite-autotune":
        ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).map(w.augment, num_parallel_calls=tf.data.AUTOTUNE)
              .batch(batch).prefetch(tf.data.AUTOTUNE))
        fit = lambda cb, e: model.fit(ds, epochs=e, verbose=0, callbacks=cb)  # noqa: E731
    else:
        ds = rd.pipeline((x, y), batch_size=batch, augment=w.augment, plan=plan)
        fit = lambda cb, e: model.fit(ds, epochs=e, verbose=0, callbacks=cb, **ds.redline.fit_kwargs())  # noqa: E731
    fit([], 1)  # warm-up
    timer = _callback()
    start = time.perf_counter()
    fit([timer], epochs)
    took = time.perf_counter() - start
    stalls = []
    for marks in timer.epochs:
        gaps = [b - a for a, b in zip(marks[1:], marks[2:])]
        stalls.append((marks[1] - marks[0]) - statistics.median(gaps))
    # samples/s is not comparable across configurations: numpy-fit trains on pre-made arrays without augmentation
    return {"config": config, "stalls_s": stalls, "seconds": took, "samples_per_s": epochs * len(x) / took}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--samples", type=int, default=4096, help="images per epoch (at most 4096)")
    ap.add_argument("--json")
    ap.add_argument("--child")
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.child, a.epochs, a.samples)), flush=True)
        return 0
    results = {c: [] for c in CONFIGS}
    for r in range(a.repeats):
        for c in CONFIGS:
            out = subprocess.run([sys.executable, __file__, "--child", c, "--epochs", str(a.epochs), "--samples", str(a.samples)], capture_output=True, text=True)
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            results[c].append(json.loads(line[0][7:]))
            print(f"  .. {c} run {r + 1}/{a.repeats}", file=sys.stderr, flush=True)
    print(f"{'configuration':17} {'stall median s':>14} {'stall p90 s':>11} {'stall max s':>11} {'epochs >0.25 s':>14}")
    summary = {}
    for c, runs in results.items():
        stalls = sorted(s for run in runs for s in run["stalls_s"])
        p90 = stalls[int(0.9 * (len(stalls) - 1))]
        big = sum(s > 0.25 for s in stalls)
        rate = statistics.median(run["samples_per_s"] for run in runs)
        summary[c] = {"description": CONFIGS[c], "stall_median_s": statistics.median(stalls), "stall_p90_s": p90,
                      "stall_max_s": stalls[-1], "epochs_over_0.25s": big, "epochs": len(stalls), "samples_per_s": rate, "runs": runs}
        print(f"{c:17} {statistics.median(stalls):14.3f} {p90:11.3f} {stalls[-1]:11.3f} {f'{big}/{len(stalls)}':>14}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

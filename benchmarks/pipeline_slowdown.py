"""Does a new redline.data pipeline run slower after many earlier pipelines in the same process, and why?

Each run is a fresh process that times the `input` workload's pipeline alone (samples/s over 40 batches, median of
3): `fresh` does only that; `churn` first builds and reads N other pipelines (arrays, arrays+map, datasets,
generators in workers, as tests/test_data.py does). Run the two alternately, several times (A B A B ...), and
compare medians: this machine's noise between single runs is larger than the effect looked for.

    for i in 1 2 3 4 5; do python benchmarks/pipeline_slowdown.py fresh; python benchmarks/pipeline_slowdown.py churn 50; done
"""

import functools
import json
import statistics
import sys
import threading
import time

import numpy as np
import psutil
import tensorflow as tf

import redline.data as rd
from redline.workloads import get

W = get("input")
X, Y = W.make_data(0)
X, Y = X[:4096], Y[:4096]
GEN = get("generator")  # a module-level generator: its workers import that module, not this script


def timed(batches=40, repeats=3):
    rates = []
    for _ in range(repeats):
        ds = rd.pipeline((X, Y), batch_size=64, augment=W.augment)
        it = iter(ds)
        next(it)
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        rates.append(batches * 64 / (time.perf_counter() - start))
        del it, ds
    p = psutil.Process()
    return {"samples_per_s": round(statistics.median(rates)), "runs": [round(r) for r in rates],
            "threads": p.num_threads(), "python_threads": threading.active_count(), "rss_mib": p.memory_info().rss >> 20}


def churn(n, keep=False):
    kept = []
    xs = np.random.default_rng(0).random((256, 8), dtype=np.float32)
    ys = np.arange(256)
    for k in range(n):
        kind = k % 4
        if kind == 0:
            ds = rd.pipeline((xs, ys), batch_size=32, repeat=False)
        elif kind == 1:
            ds = rd.pipeline((xs, ys), lambda a, b: (a * 2, b), batch_size=32, repeat=False)
        elif kind == 2:
            ds = rd.pipeline(tf.data.Dataset.from_tensor_slices((xs, ys)), batch_size=32, repeat=False)
        else:
            ds = rd.pipeline(rd.generator(functools.partial(GEN.generator, n=512), output_signature=GEN.output_signature(),
                                          size=512), batch_size=32, repeat=False)
        for _ in ds:
            pass
        if keep:
            kept.append(ds)
        else:
            ds.redline.close()
    return kept


def main():
    """One process, one figure: `fresh` times a pipeline in a new process; `churn` first builds and reads N others."""
    mode = sys.argv[1] if len(sys.argv) > 1 else "churn"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    if mode not in ("fresh", "churn"):
        raise SystemExit("usage: pipeline_slowdown.py fresh|churn [N]")
    if mode == "churn":
        churn(n, keep=False)
    print(json.dumps({"mode": mode, "n": n if mode == "churn" else 0, **timed()}))


if __name__ == "__main__":
    main()

"""What redline.Monitor costs: fit throughput with and without it, in the same process, interleaved.

Each repeat is a fresh process per (workload, configuration). Inside it, after a
warm-up, fit() runs blocks of one epoch (two for cnn: 1,024 samples) in the order off, on, on, off (repeated);
each "on" block is compared with the "off" block beside it, so slow drift on a
shared machine cancels. A block's throughput counts the whole fit() call, the
Monitor's start and stop included (a conservative figure: a real run pays
those once, not every epoch). The overhead of a process is
1 - median(on/off over the pairs); the result is the median over processes.
Each process also times the Monitor's own pieces directly: the batch-end
callback and one sampler reading.

Usage: python benchmarks/monitor_overhead.py [--repeats 3] [--rounds 3] [--workloads cnn,mlp] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

CONFIGS = {
    "baseline": "Keras defaults: fit on numpy arrays, steps_per_execution=1 (a batch-end call per step)",
    "redline": "configure(), redline.data pipeline, steps_per_execution=16 for mlp (its tuned choice), 1 for cnn",
}
EPOCHS_PER_BLOCK = {"cnn": 2, "mlp": 1}


def child(workload: str, config: str, rounds: int, interval: float) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import redline

    plan = redline.configure() if config == "redline" else None
    import keras

    import redline.data as rd
    from redline.monitoring.monitor import Monitor
    from redline.benchmarking.run_once import _loss
    from redline.workloads import get

    w = get(workload)
    keras.utils.set_random_seed(0)
    x, y = w.make_data(0)
    model = w.build_model()
    spe = 16 if (config == "redline" and workload == "mlp") else 1
    model.compile(optimizer=w.optimizer, loss=_loss(w.loss), steps_per_execution=spe)
    epochs = EPOCHS_PER_BLOCK[workload]
    if config == "redline":
        ds = rd.pipeline((x, y), batch_size=w.batch_size, plan=plan)
        steps = ds.redline.steps_per_epoch
        fit = lambda cb: model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=cb)  # noqa: E731
        samples = epochs * steps * w.batch_size
    else:
        fit = lambda cb: model.fit(x, y, batch_size=w.batch_size, epochs=epochs, verbose=0, callbacks=cb)  # noqa: E731
        samples = epochs * len(x)
    fit([])  # warm-up: tracing, first iterator
    rates = {"off": [], "on": []}
    ratios = []
    folder = tempfile.mkdtemp(prefix="redline-overhead-")
    for r in range(rounds):
        block = {}
        for i, arm in enumerate(("off", "on", "on", "off")):
            cb = [Monitor(os.path.join(folder, f"{r}-{i}.jsonl"), interval=interval)] if arm == "on" else []
            start = time.perf_counter()
            fit(cb)
            block[i] = samples / (time.perf_counter() - start)
            rates[arm].append(block[i])
        ratios += [block[1] / block[0], block[2] / block[3]]
    return {"workload": workload, "config": config, "rates": rates, "pair_ratios": ratios,
            "overhead": 1 - statistics.median(ratios), **_pieces(folder, interval)}


def _pieces(folder, interval) -> dict:
    """The Monitor's own costs, timed directly: a batch-end call, and one sampler reading per interval."""
    from redline.monitoring.monitor import Monitor
    from redline.monitoring.system import SystemSampler

    mon = Monitor(os.path.join(folder, "pieces.jsonl"))
    mon._t0, mon._epoch = time.perf_counter(), 0
    n = 20000
    start = time.perf_counter()
    for i in range(n):
        mon.on_train_batch_end(i)
    per_call = (time.perf_counter() - start) / n
    sampler = SystemSampler()
    start = time.perf_counter()
    for i in range(50):
        sampler.sample(float(i))
    per_sample = (time.perf_counter() - start) / 50
    return {"batch_end_call_us": round(1e6 * per_call, 3), "sample_ms": round(1e3 * per_sample, 3),
            "sampler_core_share": round(per_sample / interval, 5)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=8, help="off,on,on,off cycles per process")
    ap.add_argument("--workloads", default="cnn,mlp")
    ap.add_argument("--configs", default="baseline,redline")
    ap.add_argument("--interval", type=float, default=0.5)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "CONFIG"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.child[0], a.child[1], a.rounds, a.interval)), flush=True)
        return 0
    cells = [(w, c) for w in a.workloads.split(",") for c in a.configs.split(",")]
    runs = {cell: [] for cell in cells}
    for rep in range(a.repeats):
        for cell in (cells if rep % 2 == 0 else cells[::-1]):
            out = subprocess.run([sys.executable, __file__, "--child", *cell, "--rounds", str(a.rounds), "--interval", str(a.interval)],
                                 capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            line = next((ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                sys.stderr.write(out.stderr[-2000:])
                return 1
            res = json.loads(line[7:])
            runs[cell].append(res)
            print(f"  {cell[0]:4} {cell[1]:8} repeat {rep + 1}: off {statistics.median(res['rates']['off']):,.0f}  "
                  f"on {statistics.median(res['rates']['on']):,.0f} samples/s  overhead {100 * res['overhead']:+.2f}% "
                  f"(pairs {min(res['pair_ratios']):.3f}-{max(res['pair_ratios']):.3f})", file=sys.stderr, flush=True)
    print(f"Monitor overhead (interval {a.interval} s), {a.repeats} fresh processes per cell, {a.rounds} off,on,on,off cycles each; "
          f"machine: {platform.node()} {os.cpu_count()} CPUs")
    print(f"  {'workload':8} {'config':8} {'off samples/s':>14} {'on samples/s':>13} {'overhead (median)':>18}  per process (1 - median of paired on/off)")
    summary = []
    for (w, c), res in runs.items():
        off = statistics.median(statistics.median(r["rates"]["off"]) for r in res)
        on = statistics.median(statistics.median(r["rates"]["on"]) for r in res)
        ov = statistics.median(r["overhead"] for r in res)
        per = ", ".join(f"{100 * r['overhead']:+.2f}%" for r in res)
        print(f"  {w:8} {c:8} {off:14,.0f} {on:13,.0f} {100 * ov:+17.2f}%  {per}")
        print(f"  {'':17} batch-end call {statistics.median(r['batch_end_call_us'] for r in res):.2f} us; "
              f"sampler reading {statistics.median(r['sample_ms'] for r in res):.2f} ms per {a.interval} s "
              f"= {100 * statistics.median(r['sampler_core_share'] for r in res):.3f}% of one core")
        summary.append({"workload": w, "config": c, "off": off, "on": on, "overhead_median": ov, "runs": res})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": platform.node(), "cpus": os.cpu_count(), "interval": a.interval, "repeats": a.repeats,
                       "rounds": a.rounds, "configs": CONFIGS, "results": summary}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Epoch starts of an ordinary script: how long each epoch waits from its begin to its first batch, with the script's
numpy arrays as written, as written with each finished iterator dropped off the epoch loop
(redline.applying.iterator_release, what `redline run` does on TensorFlow), and through a redline.data pipeline
(repeat() + steps_per_epoch).

    python benchmarks/epoch_starts.py [--repeats 3] [--epochs 6] [--modes "as written,released,pipeline"] SCRIPT

Runs SCRIPT unchanged in fresh processes, the two inputs alternating; each of its fit calls gets a callback that
notes the epoch begins, first batches and ends, and runs at least --epochs epochs (the script's callbacks, such as
EarlyStopping, may stop it sooner). Prints per process: the wait at each epoch's start (the first epoch's, which
builds the input, is shown but not counted), each later epoch's seconds, and the waits' share of those seconds; then
per mode the median over the processes of their mean later epoch. With "released", also the seconds the release thread spent
in destructors (waits taken off the loop).
The script should pass its arrays as fit(x, y, ...); the pipeline input applies to numpy arrays only.
"""

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import time


MODES = ("as written", "released", "pipeline")


def child(script: str, mode: str, epochs: int) -> None:
    import keras

    pipeline = mode == "pipeline"
    if mode == "released":
        from redline.applying.iterator_release import install

        why_not = install(keras)
        if why_not:
            sys.exit(f"epoch_starts.py: cannot release iterators: {why_not}")

    events, original = [], keras.Model.fit

    class Starts(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            events.append((time.perf_counter(), "begin"))

        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                events.append((time.perf_counter(), "first"))

        def on_epoch_end(self, epoch, logs=None):
            events.append((time.perf_counter(), "end"))

    def fit(self, x=None, y=None, **kw):
        own = keras.tree.flatten(kw["callbacks"]) if kw.get("callbacks") else []  # one, a list or a tuple: as Keras
        kw["callbacks"], kw["epochs"] = [*own, Starts()], max(int(kw.get("epochs", 1)), epochs)
        if pipeline:
            from redline.data.rewrite import rewrite

            x, y, _, extra = rewrite({"input": "pipeline"}, x, y, kw.pop("batch_size", None), kw)
            kw.update(extra)
        events.clear()
        out = original(self, x, y, **kw)
        kinds = lambda k: [t for t, e in events if e == k]  # noqa: E731
        waits = [f - b for b, f in zip(kinds("begin"), kinds("first"))]
        ends = kinds("end")
        took = [b - a for a, b in zip(ends, ends[1:])]
        off = None
        if mode == "released":
            from redline.applying.iterator_release import stats

            off = stats()["off_thread_s"]
        print("EPOCH-STARTS " + json.dumps({"waits_s": [round(w, 4) for w in waits], "epochs_s": [round(t, 3) for t in took],
                                            "share": round(sum(waits[1:]) / sum(took), 4) if took else None,
                                            "off_thread_s": off}),
              file=sys.stderr)
        return out

    keras.Model.fit = fit
    sys.argv = [script]
    runpy.run_path(script, run_name="__main__")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("script")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--modes", default=",".join(MODES), help="which inputs, comma-separated (default: all three)")
    ap.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.script, a.child, a.epochs)
        return
    modes = [x.strip() for x in a.modes.split(",") if x.strip()]
    if not modes or set(modes) - set(MODES):
        print(f"epoch_starts.py: error: --modes {a.modes!r}: give some of {', '.join(MODES)}, comma-separated",
              file=sys.stderr)
        sys.exit(2)
    if not os.path.isfile(a.script):
        print(f"epoch_starts.py: error: {a.script!r} is not a file; give a Python script, e.g. "
              "benchmarks/scripts/pinned_text.py", file=sys.stderr)
        sys.exit(2)
    later = {how: [] for how in modes}
    for r in range(a.repeats):
        for how in modes[r % len(modes):] + modes[:r % len(modes)]:  # each mode first in turn
            t0 = time.perf_counter()
            p = subprocess.run([sys.executable, __file__, "--child", how, "--epochs", str(a.epochs), a.script],
                               capture_output=True, text=True)
            wall = time.perf_counter() - t0
            for line in p.stderr.splitlines():
                if line.startswith("EPOCH-STARTS "):
                    d = json.loads(line[len("EPOCH-STARTS "):])
                    if d["epochs_s"]:  # the mean later epoch: the script's callbacks may stop a process sooner
                        later[how].append(sum(d["epochs_s"]) / len(d["epochs_s"]))
                    off = "" if d.get("off_thread_s") is None else f"  off the loop {d['off_thread_s']:.2f} s"
                    print(f"round {r + 1}  {how:10s}  waits ms {[round(1000 * w) for w in d['waits_s']]}  "
                          f"later epochs s {d['epochs_s']}  waits' share "
                          f"{'not available' if d['share'] is None else format(d['share'], '.1%')}{off}  "
                          f"(process {wall:.0f} s)", flush=True)
            if p.returncode:
                print(f"round {r + 1}  {how}: exit {p.returncode}: {p.stderr.strip().splitlines()[-1:]}")
    base = statistics.median(later[modes[0]]) if later[modes[0]] else None
    for how in modes:
        if later[how]:
            mid = statistics.median(later[how])
            print(f"{how:10s}  a later epoch: median {mid:.3f} s of the processes' means, {len(later[how])} process(es)"
                  + (f", {base / mid:.2f}x {modes[0]}" if base and how != modes[0] else ""))


if __name__ == "__main__":
    main()

"""What the tune tests share: the environment for trial processes, a tiny script, and trial settings."""

import os
import textwrap

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "KERAS_BACKEND", "TF_CONFIG",
                                                                   "XDG_CACHE_HOME", "TF_ENABLE_ONEDNN"))}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"

TINY = """
import sys
import numpy as np
import keras
print("ARGV", sys.argv[1:], flush=True)
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
print("BEFORE FIT", flush=True)
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
print("AFTER FIT", keras.backend.backend(), model.steps_per_execution)
sys.exit(7)
"""


#: a trial's in-process measurement run directly on a small model (tuning.measure.measure_fit), its compile as the
#: script's own
DIRECT = """
import json, numpy as np, keras
from redline.tuning.measure import measure_fit
x = np.random.default_rng(0).random((1024, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
class Compiles:
    calls = {id(model): ((), {})}
    original = keras.Model.compile
"""


def script(tmp_path, text, name="train.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def trial(cands=None, rounds=1, seconds=0.2):
    return {"candidates": cands or {"default": {"own": True, "steps_per_execution": 1, "jit_compile": "auto"}},
            "rounds": rounds, "seconds": seconds}

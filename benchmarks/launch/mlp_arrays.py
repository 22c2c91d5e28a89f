# A tutorial-style MLP on numpy arrays, used by benchmarks/launch_scaling.py; prints each epoch's wall time.
import sys
import time

import numpy as np
import keras

rng = np.random.default_rng(0)
x = rng.random((32768, 784), dtype=np.float32)
y = rng.integers(0, 10, size=32768)
model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(512, activation="relu"),
                          keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
marks = []
timer = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, l: marks.append(time.perf_counter()),
                                       on_epoch_end=lambda e, l: print(f"EPOCH-SECONDS {time.perf_counter() - marks[-1]:.4f}",
                                                                       flush=True))
model.fit(x, y, batch_size=int(sys.argv[1]) if len(sys.argv) > 1 else 256, epochs=4, verbose=0, callbacks=[timer])

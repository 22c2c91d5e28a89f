"""Times a script's own Model.fit epochs, for benchmarks/tune_scripts.py, the same way under `python s.py` and
`redline run s.py`: put this folder on PYTHONPATH and name a file in REDLINE_EPOCH_TIMES.

It patches keras.Model.fit once keras has been imported (by whatever imports it; a watcher thread polls for it),
adding a callback that notes each epoch's start and end and the steps in it, and each fit's return; the figures are
written to the file when the process exits, by the last exit handler to run (registered first), which notes its own
time too ("exit": what the process did after the script's last line, the other handlers', redline's among them).
"""

import atexit
import json
import os
import sys
import threading
import time

OUT = os.environ.get("REDLINE_EPOCH_TIMES")
EPOCHS = []


def _patch(keras):
    epochs = EPOCHS

    def iterations(model):
        """The optimizer's step count, read at the epoch's edges only: the steps of an epoch whose input has no length
        (a from_generator dataset: params["steps"] is None)."""
        try:
            return int(keras.ops.convert_to_numpy(model.optimizer.iterations))
        except (AttributeError, TypeError, ValueError):  # no optimizer built: the epoch's planned steps instead
            return None

    class EpochTimes(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            epochs.append({"epoch": epoch, "begin": time.perf_counter(), "steps": (self.params or {}).get("steps"),
                           "iterations": iterations(self.model)})

        def on_epoch_end(self, epoch, logs=None):
            epochs[-1]["end"] = time.perf_counter()
            now, before = iterations(self.model), epochs[-1].pop("iterations")
            if epochs[-1]["steps"] is None and now is not None and before is not None and now > before:
                # data of unknown length: the optimizer's count (TensorFlow counts the call that finds the data's end
                # too: 97 for 96 batches, the same under every configuration, so ratios stand)
                epochs[-1]["steps"] = now - before

    original = keras.Model.fit

    def fit(self, *args, **kwargs):
        own = kwargs.get("callbacks")  # one callback, a list or a tuple, as Keras' CallbackList reads them
        kwargs["callbacks"] = (keras.tree.flatten(own) if own else []) + [EpochTimes()]
        first = len(epochs)
        history = original(self, *args, **kwargs)
        if len(epochs) > first and "end" in epochs[-1]:
            # the fit's return: Keras drops its last iterator after the last epoch's end, and on TensorFlow that drop
            # can wait seconds for tf.data's autotune thread (a script calling fit(epochs=1) in a loop waits so at
            # every fit): the user's time too, so the last epoch is counted up to here
            epochs[-1]["fit_end"] = time.perf_counter()
        return history

    keras.Model.fit = fit


def _write():
    keras = sys.modules.get("keras")
    backend = keras.backend.backend() if hasattr(keras, "backend") else None
    with open(OUT, "w") as f:
        json.dump({"backend": backend, "epochs": EPOCHS, "exit": time.perf_counter()}, f)


def _watch():
    """Patch as soon as keras is fully imported (TensorFlow imports it half-way through its own import, so an import
    hook can see a keras that is not complete yet): poll every 10 ms; scripts build a model before they call fit."""
    while True:
        keras = sys.modules.get("keras")
        if keras is not None and hasattr(keras, "Model") and hasattr(keras, "callbacks") and hasattr(keras, "backend"):
            try:
                _patch(keras)
                return
            except AttributeError:
                pass  # still importing
        time.sleep(0.01)


if OUT:
    atexit.register(_write)
    threading.Thread(target=_watch, daemon=True, name="redline-epoch-times").start()

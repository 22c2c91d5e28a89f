"""redline demo: a short training of a small built-in model under redline's plan."""

from __future__ import annotations

import sys
import time

from ..applying import configure
from ..reporting.text import plan_text
from .common import add_plan_options, plan_choices

HELP = "train a small built-in model for a few epochs under redline's plan"


def register(sub) -> None:
    p = sub.add_parser("demo", help=HELP, description=HELP)
    p.add_argument("--epochs", type=int, default=3, help="epochs to train (default 3)")
    p.add_argument("--samples", type=int, default=32768, help="synthetic training samples (default 32768)")
    add_plan_options(p)
    p.set_defaults(func=main)


def main(args) -> int:
    import os

    from ..errors import UsageError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")  # TensorFlow's start-up chatter, not the user's output

    if args.epochs < 1 or args.samples < 1:
        raise UsageError(f"--epochs {args.epochs} --samples {args.samples}: both must be 1 or more")
    choices = plan_choices(args)
    if choices["batch_size"] is None:
        choices["batch_size"] = 64
    applied = configure(**choices)
    print("redline demo: an MLP (784-128-10) on synthetic data, under this plan:")
    print(plan_text(applied, only_auto=True))
    sys.stdout.flush()

    import numpy as np
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((args.samples, 784), dtype=np.float32)
    y = (x[:, :10].argmax(axis=1)).astype("int32")  # learnable: the label is where the first 10 pixels peak
    with applied.scope():
        model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    batch = applied.global_batch.value
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        hist = model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
        took = time.perf_counter() - start
        print(f"  epoch {epoch}: {args.samples / took:9.0f} samples/s  loss {hist.history['loss'][-1]:.3f}  "
              f"accuracy {hist.history['accuracy'][-1]:.3f}" + ("  (includes tracing)" if epoch == 1 else ""))
    return 0

"""`redline diagnose --workload NAME`: diagnose a built-in workload as a tutorial feeds it, or as redline does."""

from __future__ import annotations

import functools

from ..applying import require_backend
from ..workloads import get as get_workload


def diagnose_workload(name: str, pipeline: str = "naive", seconds: float = 1.5, repeats: int = 2, record=None):
    """naive: default runtime settings and the tutorial's input (arrays, a sequential map, from_generator).
    redline: configure() first (before TensorFlow starts), then redline.data's pipeline."""
    w = get_workload(name)
    require_backend("tensorflow", "the built-in workloads are TensorFlow models", needed_by="redline diagnose --workload")
    plan = None
    if pipeline == "redline":
        from ..applying import configure

        plan = configure(strategy="auto")
    import keras

    from . import pipelines
    from ..diagnosis.probe import diagnose
    from .run_once import _loss

    keras.utils.set_random_seed(0)
    model = w.build_model()
    model.compile(optimizer=w.optimizer, loss=_loss(w.loss))
    if w.generator is not None:
        gen = functools.partial(w.generator, n=w.samples)
        if pipeline == "naive":
            x, y = pipelines.naive_generator(gen, w.output_signature(), w.batch_size), None
        else:
            import redline.data as rd

            x, y = rd.pipeline(rd.generator(gen, output_signature=w.output_signature(), size=w.samples),
                               batch_size=w.batch_size, shuffle=False, plan=plan), None
        batch = None
    else:
        xa, ya = w.make_data(0)
        if pipeline == "redline":
            import redline.data as rd

            x, y, batch = rd.pipeline((xa, ya), batch_size=w.batch_size, augment=w.augment, plan=plan), None, None
        elif w.augment is not None:
            x, y, batch = pipelines.naive(w, xa, ya, w.batch_size), None, None
        else:
            x, y, batch = xa, ya, w.batch_size
    return diagnose(model, x, y, batch_size=batch, record=record, seconds=seconds, repeats=repeats, plan=plan)


__all__ = ["diagnose_workload"]

"""redline.data: input pipelines that keep the model fed.

    ds = redline.data.pipeline((x, y), batch_size=64, augment=augment)
    model.fit(ds, epochs=10, **ds.redline.fit_kwargs())
"""

from .errors import ElementError
from .files import image_folder, tfrecord
from .pipeline import PipelineInfo, pipeline
from .sources import GeneratorSource, generator
from .workers import GeneratorFailed
from . import service  # noqa: E402  (redline.data.service: the tf.data service)


def optimize(ds, *, plan=None, deterministic=False, memory_budget=None):
    """An existing (batched or not) tf.data.Dataset with the plan's options and prefetch.

    tf.data's own rewrites parallelise its stateless maps and fuse map+batch;
    the private pool, RAM budget and prefetch come from the plan. A map that
    uses stateful random ops cannot be parallelised this way: rebuild it with
    pipeline(..., augment=fn).
    """
    import tensorflow as tf

    from .pipeline import _budget, _options, _resolve_plan

    plan = _resolve_plan(plan)
    budget = memory_budget if memory_budget is not None else _budget()
    with tf.device("/cpu:0"):
        return ds.prefetch(plan.data_prefetch.value).with_options(_options(plan, budget, deterministic))


__all__ = ["ElementError", "GeneratorFailed", "GeneratorSource", "PipelineInfo", "generator", "image_folder", "optimize",
           "pipeline", "tfrecord"]

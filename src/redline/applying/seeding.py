"""Seeding Keras' random streams without importing TensorFlow into a process that has not imported it.

``keras.utils.set_random_seed`` seeds TensorFlow as well wherever it is installed, and imports it to do so; so does
``keras.distribution.initialize`` on JAX, which seeds every process alike. In a JAX or torch process whose script never
uses TensorFlow, that import costs seconds of CPU and hundreds of MB (8.5 s of CPU on a 2-core AVX2 EPYC) before
anything runs. Here TensorFlow is seeded with the same seed the moment the script imports it, before it can draw a
number, and not imported otherwise: what the script draws is what it would draw under Keras' own call.
"""

from __future__ import annotations

import contextlib
import sys

from .after_import import when_imported


@contextlib.contextmanager
def _tensorflow_not_imported():
    """Inside: Keras' lazy handle on TensorFlow reads "not available", unless TensorFlow is imported already; put back
    on the way out. Yields whether it did: then TensorFlow is still to be seeded. Where this Keras has no such handle,
    nothing changes (Keras imports TensorFlow and seeds it, as it always did)."""
    lazy = None
    if "tensorflow" not in sys.modules:
        try:
            from keras.src.utils import module_utils

            lazy = module_utils.tensorflow
            saved = lazy._available
        except (ImportError, AttributeError):
            lazy = None
    if lazy is None:
        yield False
        return
    lazy._available = False
    try:
        yield True
    finally:
        lazy._available = saved


def _seeding(call) -> None:
    """Run ``call`` (a Keras call that seeds), TensorFlow kept from importing; then seed it with Keras' global seed
    when the script imports it."""
    from keras.src.utils.rng_utils import get_random_seed

    with _tensorflow_not_imported() as deferred:
        call()
    seed = get_random_seed()
    if deferred and seed is not None:
        when_imported("tensorflow", lambda tf: tf.random.set_seed(seed))


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``, with TensorFlow seeded when it is imported rather than imported now."""
    import keras

    _seeding(lambda: keras.utils.set_random_seed(seed))


def initialize_distribution() -> None:
    """``keras.distribution.initialize()`` (every process joins the group and takes the group's seed), with
    TensorFlow seeded with that seed when it is imported rather than imported now."""
    import keras

    _seeding(keras.distribution.initialize)


__all__ = ["initialize_distribution", "set_random_seed"]

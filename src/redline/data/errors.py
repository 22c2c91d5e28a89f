"""Element-level errors that name the element: a parallel map whose failures say where they happened.

tf.data reports a failing op, not the element it failed on. Where the number
of elements is known, guard_map() runs the map in parallel with errors set
aside, counts what came through at the end of each epoch, and if anything is
missing re-runs the map eagerly, in order, to find the first element that
fails; it then raises with that element's index (and file name) and the
original exception. Nothing is dropped silently, and the fast path stays in
the graph.
"""

from __future__ import annotations


#: the name of the py_function that names a failing element: it runs only after a failure, in this process
LOCATE = "redline_locate_failure"


class ElementError(RuntimeError):
    """map_fn failed on an element of the source."""


def _call(fn, elem):
    return fn(*elem) if isinstance(elem, tuple) else fn(elem)


def locate_failure(source, fn, names=None) -> ElementError:
    """Run fn over source eagerly, in order; the error for the first element it fails on."""
    for i, elem in enumerate(source):
        try:
            _call(fn, elem)
        except Exception as exc:  # any failure of the user's function is what we are looking for
            name = f" ({names[i]})" if names is not None else ""
            return ElementError(f"map_fn failed on element {i}{name}: {type(exc).__name__}: {exc}")
    return ElementError("map_fn failed on some element during the epoch, but none failed when re-run in order: "
                        "the failure depends on randomness or on state outside the element")


def guard_map(ds, fn, parallel, deterministic, n, names=None, in_order=None):
    """ds.map(fn), guarded. ``in_order`` is the same elements unshuffled, to name the failing one by its index."""
    import tensorflow as tf

    if n is None:
        return ds.map(fn, num_parallel_calls=parallel, deterministic=deterministic)
    source = in_order if in_order is not None else ds
    names = [x.decode() if isinstance(x, bytes) else str(x) for x in names] if names is not None else None
    mapped = ds.enumerate().map(lambda i, elem: (i, _call(fn, elem)), num_parallel_calls=parallel, deterministic=deterministic)
    mapped = mapped.ignore_errors()
    spec = mapped.element_spec[1]
    dummy = tf.nest.map_structure(  # a map whose output rank is unknown (tf.numpy_function) gets a scalar: it fits
        lambda s: tf.zeros([] if s.shape.rank is None else [d if d is not None else 0 for d in s.shape], s.dtype), spec)
    sentinel = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), dummy))

    def raise_located(count):
        raise locate_failure(source, fn, names)

    def step(count, element):
        i, out = element
        complete = tf.logical_or(i >= 0, tf.equal(count, n))
        checked = tf.cond(complete, lambda: tf.constant(0, tf.int64),
                          lambda: tf.py_function(raise_located, [count], tf.int64, name=LOCATE))
        with tf.control_dependencies([checked]):
            i = tf.identity(i)
        return count + 1, (i, out)

    plain = tf.autograph.experimental.do_not_convert  # plain graph code: nothing for AutoGraph to convert
    guarded = mapped.concatenate(sentinel).scan(tf.constant(0, tf.int64), plain(step))
    return guarded.filter(plain(lambda i, out: i >= 0)).map(plain(lambda i, out: out))

"""Memory decisions for input pipelines. Pure arithmetic: no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

#: share of the memory budget a cache may take; the rest is for the model, prefetch and shuffle buffers.
CACHE_SHARE = 0.5
#: shuffle buffers hold at most this share of the budget.
SHUFFLE_SHARE = 0.1
#: the most elements a shuffle buffer holds where the source's element count is unknown (TFRecord files): tf.data sets
#: up a buffer's slots in full when its iterator starts, and one sized from the memory budget alone (303 million 8-byte
#: elements on a 23 GiB machine) took 24.7 s to start, at every epoch of a pipeline without repeat()
UNKNOWN_SHUFFLE_MAX = 1 << 16


@dataclass(frozen=True)
class Decision:
    used: bool
    reason: str


def cache_decision(choice, elements: int | None, element_bytes: int | None, budget_bytes: int | None, has_map: bool) -> Decision:
    """Whether to cache after the deterministic map, and why. ``choice`` is "auto", True or False."""
    if choice is False:
        return Decision(False, "cache=False given")
    if not has_map and choice == "auto":
        return Decision(False, "nothing expensive to cache: the source is already in memory and map_fn is None")
    if elements is None:
        return Decision(False, "the number of elements is unknown, so the cache size cannot be bounded")
    if element_bytes is None:
        return Decision(False, "the element size is unknown, so the cache size cannot be bounded")
    need = elements * element_bytes
    if budget_bytes is None:
        return Decision(False, f"no memory budget could be read; a {need / 2**20:.1f} MiB cache is not taken blindly")
    allowed = int(budget_bytes * CACHE_SHARE)
    if need > allowed:
        return Decision(False, f"the cache would take {need / 2**20:.1f} MiB, over {CACHE_SHARE:.0%} of the "
                               f"{budget_bytes / 2**20:.1f} MiB memory budget ({allowed / 2**20:.1f} MiB)")
    return Decision(True, f"cache of {need / 2**20:.1f} MiB after map_fn fits {CACHE_SHARE:.0%} of the "
                          f"{budget_bytes / 2**20:.1f} MiB memory budget")


def shuffle_buffer(elements: int | None, element_bytes: int | None, budget_bytes: int | None, batch_size: int) -> int:
    """A full shuffle where it fits, else as many elements as SHUFFLE_SHARE of the budget holds (at least 10 batches);
    where the element count is unknown, at most UNKNOWN_SHUFFLE_MAX elements (or 10 batches, if more)."""
    floor = 10 * batch_size
    if element_bytes and budget_bytes:
        cap = max(floor, int(budget_bytes * SHUFFLE_SHARE) // max(1, element_bytes))
    else:
        cap = max(floor, 10000)
    return min(elements, cap) if elements else min(cap, max(floor, UNKNOWN_SHUFFLE_MAX))

"""Whether an input rewrite can matter to this fit, before it is measured: the input as written, read alone.

An input rewrite speeds training in two ways: it makes the input cheaper while the steps run, and it removes the stall
some finite inputs cause at an epoch's start. The in-process stage can see the second only where its runs cross an
epoch's end; where an epoch is longer than its runs, it measures the first alone. That one has a bound: were the input
made free, a step could not get faster than by the input's work per batch, at most the CPU-seconds the input alone
spends on a batch (its wall time per batch times the cores it kept busy: no overlap with the step at all). Where the
input as written, iterated alone as fit iterates it, delivers LEAD x the batches the training consumes per core-second
it uses, no rewrite can gain more than 1 / (1 - 1/LEAD) - 1 (4.2%), under
the smallest gain tune takes (compare.MIN_GAIN): the rewrites are not measured, and the result says so with the figures.
"""

from __future__ import annotations

#: the input alone must run this many times the training's samples/s for the rewrites to be skipped
LEAD = 25.0
#: seconds the input is read alone
ALONE_S = 0.4


def cannot_matter(alone_bps: float | None, train_sps: float | None, run_steps: int, epoch_steps: int | None,
                  no_stall: str | None = None) -> str | None:
    """Why no rewrite can gain beyond the noise (the reason, with the figures), or None. ``alone_bps``: batches per
    CPU-second of the input read alone (alone()); ``train_sps``: training steps/s on it (a step takes a batch); ``run_steps``: the steps of one
    of the stage's runs; ``epoch_steps``: the steps of an epoch (None: unknown). ``no_stall``: why the input as written
    has no epoch-start stall to remove (stall_free()), where it has none: then crossing epoch ends changes nothing."""
    if not (alone_bps and train_sps and epoch_steps) or (run_steps >= epoch_steps and not no_stall):
        return None  # the stage's runs cross epoch ends, where a stall may be what a rewrite removes: measure it
    lead = alone_bps / train_sps
    if lead < LEAD:
        return None
    where = (f"and {no_stall}" if run_steps >= epoch_steps else
             f"and the stage's runs ({run_steps} steps) end inside the {epoch_steps}-step epoch")
    return (f"the input as written, read alone, delivers {alone_bps:,.0f} batches per CPU-second, {lead:,.0f}x the "
            f"{train_sps:,.1f} training consumes, so a rewrite could gain at most {1 / (1 - 1 / lead) - 1:.1%} between "
            f"epoch ends, {where}: not measured")


def stall_free(kind: str, backend: str) -> str | None:
    """Why the input as written cannot stall an epoch's start, or None. The stall (tf.data's iterator waiting on its
    autotune thread as the next epoch replaces it) needs a tf.data iterator: Keras feeds numpy arrays to JAX and
    torch by slicing them, without tf.data."""
    if kind == "arrays" and backend in ("jax", "torch"):
        return (f"on {backend} Keras slices the arrays without tf.data, so an epoch's start has no tf.data iterator "
                "to wait on")
    return None


def stall_released(released: bool, alone_bps: float | None, epoch_steps: int | None) -> str | None:
    """Why crossing an epoch's end shows no stall a rewrite could remove, where the input is a tf.data iterator the
    release takes (``released``: applying.iterator_release installed, and the input not left to Keras): the stall, its
    destructor waiting on the autotune thread, is off the epoch loop in every trial and under `redline run`, and what
    is left at an epoch's start (the next iterator opened, its first batch) is in the figure read alone, where that
    reading re-opened the input at its epoch ends (read for ALONE_S s, at least ``alone_bps`` batches a second, more
    than an epoch of them). None elsewhere. fine_tune (epochs of 10 steps of 0.15 s, runs across their ends): the
    stage measured redline.data.optimize in every tune, at 0.85-0.94x, where its input alone ran 152x the training."""
    if not (released and alone_bps and epoch_steps) or alone_bps * ALONE_S < epoch_steps + 1:
        return None
    return (f"its epoch-start stall is off the loop (the iterator release, in the trials and under `redline run`), "
            f"and reading it alone re-opened it at its epoch ends ({epoch_steps} batches each)")


def alone(x, y, batch_size, kind: str, seconds: float = ALONE_S) -> float | None:
    """Batches per CPU-second of the input as written read alone, as fit reads it (Keras' own data adapter), for
    ``seconds``: its batches/s over the cores it kept busy (at least one); None for inputs a second reader would
    consume or change (generators, PyDatasets with workers, anything else)."""
    if kind not in ("arrays", "dataset"):
        return None
    from ..diagnosis.probe import _adapter, _leading, _pipeline_alone

    samples_per_s, busy, first = _pipeline_alone(_adapter(x, y, batch_size), seconds)
    return samples_per_s / _leading(first) / max(1.0, busy)


__all__ = ["ALONE_S", "LEAD", "alone", "cannot_matter", "stall_free", "stall_released"]

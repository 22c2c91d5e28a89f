"""Python generators sharded over worker processes, so they run beside the GIL rather than under it.

Workers are started once (spawn: safe after TensorFlow has started threads)
and kept for the pipeline's life; each epoch asks every worker to run its shard
again. Batches cross the process boundary, not single elements, to keep the
pickling cost per sample small. Every item carries its epoch number, so a
pipeline abandoned in mid-epoch (fit stops at steps_per_epoch) cannot leak
stale items into the next one.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
import weakref

import numpy as np

_DONE, _ERROR, _BATCH = "done", "error", "batch"


def _stack(items):
    first = items[0]
    if isinstance(first, dict):
        return {k: _stack([x[k] for x in items]) for k in first}
    if isinstance(first, (tuple, list)):
        return tuple(_stack([x[i] for x in items]) for i in range(len(first)))
    return np.stack([np.asarray(x) for x in items])


def _worker(fn, shard, num_shards, chunk, commands, results, current):
    while True:
        epoch = commands.get()
        if epoch is None:
            return
        index, items = 0, []
        try:
            for item in fn(shard=shard, num_shards=num_shards):
                items.append(item)
                index += 1
                if len(items) == chunk:
                    if not _put(results, current, epoch, (_BATCH, epoch, _stack(items))):
                        break
                    items = []
            else:
                if items:
                    _put(results, current, epoch, (_BATCH, epoch, _stack(items)))
                _put(results, current, epoch, (_DONE, epoch, shard))
        except Exception as exc:  # reported to the consumer with the shard and element, then re-raised there
            _put(results, current, epoch, (_ERROR, epoch, (shard, index, f"{type(exc).__name__}: {exc}", traceback.format_exc())))


def _put(results, current, epoch, item) -> bool:
    """Put unless the epoch was abandoned; False when it was."""
    while current.value == epoch:
        try:
            results.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


class GeneratorFailed(RuntimeError):
    pass


class ShardedGenerator:
    """A callable for tf.data.Dataset.from_generator that yields batches made by worker processes."""

    def __init__(self, fn, num_shards: int, chunk: int):
        self.fn, self.num_shards, self.chunk = fn, num_shards, chunk
        self._procs = None

    def _start(self):
        ctx = mp.get_context("spawn")
        self._current = ctx.Value("i", -1)
        self._results = ctx.Queue(maxsize=4 * self.num_shards)
        self._commands = [ctx.Queue() for _ in range(self.num_shards)]
        self._procs = [ctx.Process(target=_worker, daemon=True,
                                   args=(self.fn, i, self.num_shards, self.chunk, self._commands[i], self._results, self._current))
                       for i in range(self.num_shards)]
        for p in self._procs:
            p.start()
        self._epoch = -1
        weakref.finalize(self, _stop, self._procs, self._commands, self._current)

    def __call__(self):
        if self._procs is None:
            self._start()
        self._epoch += 1
        epoch = self._epoch
        self._current.value = epoch
        for c in self._commands:
            c.put(epoch)
        done = 0
        while done < self.num_shards:
            try:
                kind, item_epoch, payload = self._results.get(timeout=1.0)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise GeneratorFailed(f"{len(dead)} generator worker process(es) died (exit code {dead[0].exitcode}); "
                                          "check that the generator function can be imported by a fresh Python process") from None
                continue
            if item_epoch != epoch:
                continue  # left over from an abandoned epoch
            if kind == _DONE:
                done += 1
            elif kind == _ERROR:
                shard, index, message, trace = payload
                self._current.value = -1
                raise GeneratorFailed(f"the generator failed in shard {shard} of {self.num_shards} at its element {index}: "
                                      f"{message}\n{trace}")
            else:
                yield payload


def _stop(procs, commands, current):
    current.value = -1
    for c in commands:
        try:
            c.put(None)
        except (OSError, ValueError):
            pass  # the queue is already closed at interpreter exit
    for p in procs:
        p.join(timeout=2)
        if p.is_alive():
            p.terminate()

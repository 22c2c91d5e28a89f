"""Python generators sharded over worker processes, so they run beside the GIL rather than under it.

Workers are started once (spawn: safe after TensorFlow has started threads)
and kept for the pipeline's life; each epoch asks every worker to run its shard
again. Batches cross the process boundary, not single elements, to keep the
pickling cost per sample small. Every item carries its epoch number, so a
pipeline abandoned in mid-epoch (fit stops at steps_per_epoch) cannot leak
stale items into the next one.
"""

from __future__ import annotations

import ast
import contextlib
import multiprocessing as mp
import os
import pickle
import queue
import sys
import traceback
import types
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


def _worker(fn, shard, num_shards, chunk, commands, results, current, parent):
    while True:
        try:
            epoch = commands.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the pipeline's process is gone: so is the reason to live
                return
            continue
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


def _main_has_guard() -> bool | None:
    """Whether the running script guards its top level with ``if __name__ == "__main__":``; None if it has no file."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare):
            names = [n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)]
            texts = [n.value for n in ast.walk(node.test) if isinstance(n, ast.Constant)]
            if "__name__" in names and "__main__" in texts:
                return True
    return False


def start_mode(fn) -> tuple[str | None, str | None]:
    """(how worker processes can start for ``fn``, why they cannot).

    "plain": they import the function's module and nothing else (the running
    script is not run again); "with-main": the function lives in the running
    script, whose ``__main__`` guard keeps its training code from running again
    in each worker. (None, why) where neither works: the caller runs the
    generator in this process and says why."""
    name = getattr(fn, "__qualname__", None) or getattr(getattr(fn, "func", None), "__qualname__", None) or repr(fn)
    try:
        payload = pickle.dumps(fn)
    except Exception as exc:  # whatever stops pickling (a lambda, a local function, an open file) keeps it here
        return None, (f"the generator {name!r} cannot be sent to worker processes ({type(exc).__name__}: {exc}); it runs in "
                      "this process under the GIL: define it with def at the top level of a module to run it in parallel")
    if b"__main__" not in payload:
        return "plain", None
    guard = _main_has_guard()
    if guard:
        return "with-main", None
    where = ("the running script, which has no `if __name__ == \"__main__\":` guard, so each worker process would run "
             "the whole script again" if guard is False else "the interactive session, which worker processes cannot import")
    return None, (f"the generator {name!r} is defined in {where}; it runs in this process under the GIL instead. Fix: move "
                  "the generator into a module of its own and import it, or put the script's training code under "
                  "`if __name__ == \"__main__\":`")


@contextlib.contextmanager
def _main_hidden():
    """While workers start: no __main__ for spawn to re-run in them (they import only the function's module)."""
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = saved


class ShardedGenerator:
    """A callable for tf.data.Dataset.from_generator that yields batches made by worker processes."""

    def __init__(self, fn, num_shards: int, chunk: int, mode: str = "plain"):
        self.fn, self.num_shards, self.chunk, self.mode = fn, num_shards, chunk, mode
        self._procs = None
        self._finalizer = None
        self.closed = False

    def _start(self):
        ctx = mp.get_context("spawn")
        self._current = ctx.Value("i", -1)
        self._results = ctx.Queue(maxsize=4 * self.num_shards)
        self._commands = [ctx.Queue() for _ in range(self.num_shards)]
        self._procs = [ctx.Process(target=_worker, daemon=True, name=f"redline-data-worker-{i}",
                                   args=(self.fn, i, self.num_shards, self.chunk, self._commands[i], self._results, self._current,
                                         os.getpid()))
                       for i in range(self.num_shards)]
        with _main_hidden() if self.mode == "plain" else contextlib.nullcontext():
            for p in self._procs:
                p.start()
        self._epoch = -1
        self._finalizer = weakref.finalize(self, _stop, self._procs, self._commands, self._results, self._current)

    @property
    def alive(self) -> int:
        """Worker processes running now."""
        return sum(p.is_alive() for p in self._procs or ())

    def close(self) -> None:
        """Stop the worker processes now (they would start again if the pipeline were read again)."""
        self.closed = True
        if self._finalizer is not None:
            self._finalizer()
        self._procs = None

    def __call__(self):
        if self.closed:
            raise GeneratorFailed("this pipeline was closed (ds.redline.close()); build a new one to read it again")
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


def _stop(procs, commands, results, current):
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
            p.join(timeout=1)
    for q in (*commands, results):  # each queue's feeder thread in this process ends with it
        q.close()
        q.join_thread()

"""The epoch-start stall, taken off the training thread.

On TensorFlow, Keras makes a new tf.data iterator for each epoch of a finite input (numpy arrays, a finite
``tf.data.Dataset``, validation data) and drops the last one there. Dropping it runs the iterator's destructor, which
waits for tf.data's autotune thread to finish the optimisation it is in: 0.3-2.5 s at some epoch starts on a 2-core
Zen 4 VM (``benchmarks/epoch_starts.py``), during which nothing trains.

``install()`` hands each iterator a fit's own epoch loops make (its training's and its validation's) to a release
thread, which drops it once nothing else holds it (the destructor, and its wait, then run there while the next epoch
trains). A standalone ``evaluate`` or ``predict``, or one a callback calls, is left to Keras: it is no epoch start,
and a script that predicts in a loop (a text generator sampling one character a call) would hand the thread
iterators faster than it drops them; the thread never holds more than HELD_MOST at once either. Nothing else
changes: the same dataset, the same order, the same batches; only where and when the finished iterator's memory is
given back (within ~50 ms of its last use, or by the OS where the process ends first).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import os
import sys
import threading
import time

from ..planning.planner import RELEASE_OFF, patch_off

POLL_S = 0.05  # how often the release thread looks for iterators nothing else holds
HELD_MOST = 16  # iterators held at once; beyond, a new one is left to Keras
EXIT_WAIT_S = 60.0  # at exit, the longest wait for the release in progress
DROPS_KEPT = 200  # stats(): the last releases' (seconds lived, seconds waited, kind)
_MARK = "__redline_release__"  # on the patched _get_iterator
_HOLD = "__redline_release_hold__"  # on an epoch loop: whether its iterators go to the release thread


class _Releaser:
    """Iterators held until the epoch loop lets go of them, then dropped on this object's thread."""

    def __init__(self):
        self.live = []  # [iterator, when it was made, its kind (_kind)]
        self.took = []  # per release: (seconds the iterator lived, seconds its destructor ran here, its kind)
        self.cond = threading.Condition()
        self.thread, self.stopping = None, False

    def hold(self, it, kind: str = "epoch"):
        with self.cond:
            if len(self.live) >= HELD_MOST:  # the thread is behind: Keras drops this one itself, as under `python`
                return it
            self.live.append([it, time.perf_counter(), kind])
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="redline-iterator-release", daemon=True)
                self.thread.start()
            self.cond.notify()
        return it

    def _free(self):
        """The first iterator only this object holds (its slot and getrefcount's argument), taken out with when it was
        made and its kind."""
        for i in range(len(self.live)):
            if sys.getrefcount(self.live[i][0]) <= 2:
                return self.live.pop(i)
        return None

    def _loop(self):
        while True:
            with self.cond:
                while not self.live and not self.stopping:
                    self.cond.wait()
                if self.stopping:
                    return
                held = self._free()
            if held is None:
                time.sleep(POLL_S)
                continue
            born, kind, t0 = held[1], held[2], time.perf_counter()
            held.clear()  # the destructor, and tf.data's wait in it, run here
            self.took.append((t0 - born, time.perf_counter() - t0, kind))

    def leave(self, timeout: float = EXIT_WAIT_S) -> None:
        """At the process's exit: end the thread after the release in progress, and leave what it still holds to the
        OS, never dropped (each drop would wait for tf.data's autotune thread again, for memory the process gives back
        as it ends). The release in progress is waited for: a thread still in a destructor as the interpreter
        finalizes is ended where it next takes the GIL, and where TensorFlow's frames catch that unwinding the process
        aborts ("FATAL: exception not rethrown", exit -6, at the exit of a MirroredStrategy fit); under `python` the
        same wait falls at the last epoch's end."""
        with self.cond:
            self.stopping = True
            self.cond.notify()
            left, self.live = self.live, []
        if left:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(left))
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)


_releaser: _Releaser | None = None  # made by the first install()


def _at_fork_child() -> None:  # a forked child (a PyDataset worker) has no release thread and needs none
    global _releaser
    _releaser = _Releaser()
    _releaser.stopping = True


def _at_exit() -> None:
    if _releaser is not None:
        _releaser.leave()


class _Held:
    """The epoch loop's dataset, whose iterators go to the release thread."""

    def __init__(self, dataset, kind: str):
        self.dataset, self.kind = dataset, kind

    def __iter__(self):
        it = iter(self.dataset)
        if _python is not None:  # as_python(): Keras drops it itself, on the epoch loop, as under `python`
            _python.append(time.perf_counter())
            return it
        return it if _releaser is None or _releaser.stopping else _releaser.hold(it, self.kind)


_python: list | None = None  # within as_python(): when the epoch loop made each iterator


@contextlib.contextmanager
def as_python():
    """Within: the epoch loop's iterators are left to Keras, which drops each finished one on the training thread as
    `python script.py` does (waits included), and the time each was made is noted in the list this yields: what
    tuning.as_run.python_drops times `python`'s epoch-start waits from."""
    global _python
    before, _python = _python, []
    try:
        yield _python
    finally:
        _python = before


def fit_frame(frame):
    """The frame of the nearest Keras ``fit`` (the backend trainer's, with its ``epoch_iterator``) at or above
    ``frame``, or None. Told by its code alone (fit_local says why)."""
    while frame is not None:
        if frame.f_code.co_name == "fit" and "epoch_iterator" in frame.f_code.co_varnames:
            return frame
        frame = frame.f_back
    return None


def fit_local(frame, name: str):
    """The local ``name`` of ``frame`` (or None), read without keeping the frame's other locals alive. Before Python
    3.13, ``frame.f_locals`` copies every local into a dict kept on the frame until it returns: read so, a fit's
    locals held the first epoch's training iterator (its loop variable then) to the fit's end, and its destructor
    fell on the release thread as the process exited, with tf.data's wait for an iterator of the whole fit's age
    (14.8 s after a 30-s fit, in 2 of 3 runs of benchmarks/scripts/unet_segmentation.py)."""
    names = frame.f_locals
    try:
        return names.get(name)
    finally:
        if type(names) is dict:  # Python 3.13 on: a view of the frame itself, which holds no copy
            names.clear()


def _fits_own(loop) -> bool:
    """``loop`` (an epoch loop making its first iterator) is the nearest fit's own: its training loop or its validation
    loop, not a standalone evaluate or predict, nor one a callback calls during the fit."""
    frame = fit_frame(sys._getframe(1))
    if frame is None:
        return False
    return fit_local(frame, "epoch_iterator") is loop or getattr(fit_local(frame, "self"), "_eval_epoch_iterator",
                                                                   None) is loop


def _kind(loop) -> str:
    """What becomes of the iterator Keras' epoch loop ``loop`` makes now (keras.src.trainers.epoch_iterator):
    "carried" over epochs of the fit's steps_per_epoch and dropped where the fit ends, before its data's end; "spare":
    made at an epoch's end and dropped unused at the next epoch's start (Keras makes each epoch's anew where the fit has
    no steps_per_epoch); "epoch": the epoch's own, run to its data's end and dropped at the next epoch's start (or where
    the fit or evaluate ends)."""
    if getattr(loop, "steps_per_epoch", None):
        return "carried"
    batches = getattr(loop, "_num_batches", None)
    return "spare" if batches and getattr(loop, "_steps_seen", 0) >= batches else "epoch"


#: ops that run the script's Python: a generator, or a py_function / numpy_function inside a map
PYTHON_OPS = frozenset({"GeneratorDataset", "EagerPyFunc", "PyFunc", "PyFuncStateless"})


def _files_or_jobs(d) -> bool:
    """A dataset that writes files or joins a tf.data service job shared by its iterators."""
    name = type(d).__name__
    if "Snapshot" in name or "DataService" in name:
        return True
    if "Cache" in name:  # an in-memory cache (filename "") is per iterator until complete
        filename = getattr(d, "_filename", None)
        return not (hasattr(filename, "numpy") and filename.numpy() == b"")
    return False


def left_to_keras(dataset) -> bool:
    """True where two live iterators of ``dataset`` could get in each other's way, or where that cannot be told: it
    runs the script's Python (``Dataset.from_generator``, which Keras builds for a generator object, a PyDataset or a
    torch DataLoader; a ``py_function`` or ``numpy_function`` in a map), caches to a file, snapshots, or reads from the
    tf.data service. A finished iterator that did not reach its data's end (a fit cut short, ``steps_per_epoch``) may
    still be prefetching while the release thread holds it, beside the next one: a generator cannot be read by two at
    once (a trial's second fit over one generator failed so: "generator already executing"), the script's functions
    may keep state, a file cache is locked by its writer ("There appears to be a concurrent caching iterator
    running"), and a service job's consumers share its data. Such an iterator is left to Keras, dropped where Keras
    drops it."""
    seen, todo = set(), [getattr(dataset, "_original_dataset", dataset)]  # a tf.distribute dataset: the one inside
    while todo:
        d = todo.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        try:
            functions, inputs = d._functions(), d._inputs()
            graphs = [f.function.graph.as_graph_def() for f in functions]  # with the functions they call
            ops = {n.op for g in graphs for n in g.node} | {n.op for g in graphs for fn in g.library.function
                                                             for n in fn.node_def}
        except (AttributeError, TypeError):  # not a tf.data dataset this code knows how to read
            return True
        if ops & PYTHON_OPS or _files_or_jobs(d):
            return True
        todo.extend(inputs)
    return False


def install(keras=None) -> str | None:
    """Patch Keras' TensorFlow epoch loop so its finished iterators are dropped on the release thread. Returns None
    where it is in place (now or before), else why not (REDLINE_ITERATOR_RELEASE=0 in the environment; another
    backend; a Keras without that loop). The variable reaches tune's trial processes too, so a choice tuned with it
    set was measured without the release, and `redline run` under it runs without it."""
    keras = keras if keras is not None else sys.modules.get("keras")
    why = patch_off(keras.backend.backend() if keras is not None else None, os.environ, RELEASE_OFF)
    if why is not None:
        return why
    try:
        trainer = importlib.import_module("keras.src.backend.tensorflow.trainer")
        cls = trainer.TFEpochIterator
        original = cls._get_iterator
    except (ImportError, AttributeError) as exc:
        return f"this Keras has no TFEpochIterator._get_iterator to hook ({exc})"
    if getattr(original, _MARK, False):
        return None
    global _releaser
    if _releaser is None:
        _releaser = _Releaser()
        os.register_at_fork(after_in_child=_at_fork_child)
        atexit.register(_at_exit)

    def _get_iterator(self):
        dataset = original(self)
        hold = vars(self).get(_HOLD)
        if hold is None:  # decided once per epoch loop
            hold = vars(self)[_HOLD] = _fits_own(self) and not left_to_keras(dataset)
        return _Held(dataset, _kind(self)) if hold else dataset

    setattr(_get_iterator, _MARK, True)
    _get_iterator.__wrapped__ = original
    cls._get_iterator = _get_iterator
    return None


def installed() -> bool:
    """The imported Keras' TensorFlow epoch loop is patched (install())."""
    loop = getattr(sys.modules.get("keras.src.backend.tensorflow.trainer"), "TFEpochIterator", None)
    return bool(getattr(getattr(loop, "_get_iterator", None), _MARK, False))


def stats() -> dict:
    """What the release thread did in this process: iterators released, and the seconds their destructors ran there
    (each of them a wait the epoch loop would have had at that epoch's start); ``drops``: per release of an iterator
    that was used (the last DROPS_KEPT), the seconds from its making to its release, the seconds its destructor
    waited and its kind (_kind): what tuning.stall reads tf.data's autotune wait from."""
    took = list(_releaser.took) if _releaser is not None else []
    waits = [w for _, w, _ in took]
    return {"released": len(took), "off_thread_s": round(sum(waits), 3), "longest_s": round(max(waits, default=0.0), 3),
            "held": len(_releaser.live) if _releaser is not None else 0,
            "drops": [[round(life, 3), round(w, 4), kind] for life, w, kind in took if kind != "spare"][-DROPS_KEPT:]}


__all__ = ["as_python", "fit_frame", "fit_local", "install", "installed", "left_to_keras", "stats"]

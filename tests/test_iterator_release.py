"""Finished tf.data iterators dropped off the epoch loop (redline.applying.iterator_release)."""

import pathlib
import sys
import threading
import time
import types
import weakref

import numpy as np
import pytest

import machines as m
from redline.applying import iterator_release
from redline.planning import plan
from tune_helpers import script, trial


class Tracked:
    """Records the thread its destructor runs on."""

    ended_on: list = []

    def __del__(self):
        Tracked.ended_on.append(threading.current_thread().name)


def _until(cond, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def test_an_object_is_dropped_on_the_release_thread_only_once_nothing_else_holds_it():
    r = iterator_release._Releaser()
    try:
        obj, Tracked.ended_on = Tracked(), []
        gone = weakref.ref(obj)
        assert r.hold(obj) is obj
        # held by the caller: the thread looks several times (POLL_S) and leaves it
        assert not _until(lambda: gone() is None, deadline_s=6 * iterator_release.POLL_S)
        assert len(r.live) == 1
        del obj
        assert _until(lambda: gone() is None), "released within the deadline once only the releaser held it"
        assert Tracked.ended_on == ["redline-iterator-release"] and r.live == [] and len(r.took) == 1
    finally:
        r.leave()
    assert _until(lambda: not r.thread.is_alive())


class Blocking:
    """A destructor that waits (as tf.data's does for its autotune thread) until let go, or 20 s."""

    def __init__(self):
        self.go, self.done = threading.Event(), []

    def __del__(self):
        self.go.wait(20)
        self.done.append(True)


def test_at_exit_the_release_in_progress_is_waited_for_and_what_is_still_held_is_never_dropped(monkeypatch):
    """A destructor still running as the interpreter finalizes aborted a process (MirroredStrategy: "FATAL: exception
    not rethrown"): exit waits for it; what the thread holds beyond it is left to the OS."""
    r = iterator_release._Releaser()
    monkeypatch.setattr(iterator_release, "_releaser", r)
    busy = Blocking()
    go, done = busy.go, busy.done
    r.hold(busy)
    del busy  # the release thread drops it: its destructor waits for `go`
    assert _until(lambda: not r.live), "the thread never took it"
    kept, Tracked.ended_on = Tracked(), []
    r.hold(kept)  # still held elsewhere (by `kept`) as the process exits
    threading.Timer(0.2, go.set).start()
    iterator_release._at_exit()
    assert done == [True], "exit did not wait for the release in progress"
    assert r.stopping and r.live == [] and not r.thread.is_alive()
    del kept  # the last reference but the one left to the OS: never dropped
    assert Tracked.ended_on == []


def test_the_thread_holds_at_most_held_most_at_once_and_a_further_one_is_left_where_it_is_dropped():
    r = iterator_release._Releaser()
    gate = threading.Event()

    class Slow(Tracked):
        def __del__(self):  # a destructor that waits, as tf.data's does for its autotune thread
            gate.wait(10)
            super().__del__()

    try:
        Tracked.ended_on = []
        r.hold(Slow())  # the thread takes it and waits in its destructor
        assert _until(lambda: r.live == [])
        for _ in range(iterator_release.HELD_MOST):
            r.hold(Tracked())
        assert len(r.live) == iterator_release.HELD_MOST
        extra = Tracked()
        assert r.hold(extra) is extra and len(r.live) == iterator_release.HELD_MOST
        assert not any(e[0] is extra for e in r.live)
        del extra  # not held: dropped here, where the caller lets go of it
        assert Tracked.ended_on == [threading.current_thread().name]
        gate.set()
        assert _until(lambda: r.live == [] and len(r.took) == iterator_release.HELD_MOST + 1)
        assert Tracked.ended_on.count("redline-iterator-release") == iterator_release.HELD_MOST + 1
    finally:
        gate.set()
        r.leave()


def test_other_backends_are_left_alone():
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "jax"))
    assert "jax" in iterator_release.install(fake)


def test_redline_iterator_release_0_turns_it_off_in_the_plan_and_in_install(monkeypatch):
    off = plan(m.vm_2core(REDLINE_ITERATOR_RELEASE="0")).iterator_release
    assert off.value is False and off.source == "environment" and "REDLINE_ITERATOR_RELEASE=0" in off.reason
    assert plan(m.vm_2core(REDLINE_ITERATOR_RELEASE="Off")).iterator_release.value is False
    assert plan(m.vm_2core(REDLINE_ITERATOR_RELEASE="1")).iterator_release.value is True
    monkeypatch.setenv("REDLINE_ITERATOR_RELEASE", "false")
    fake = types.SimpleNamespace(backend=types.SimpleNamespace(backend=lambda: "tensorflow"))
    assert "REDLINE_ITERATOR_RELEASE=false" in iterator_release.install(fake)


def test_the_plan_releases_iterators_on_tensorflow_only():
    tf_plan = plan(m.vm_2core())
    assert tf_plan.backend.value == "tensorflow" and tf_plan.iterator_release.value is True
    assert "autotune" in tf_plan.iterator_release.reason and tf_plan.iterator_release.applied
    assert plan(m.vm_2core(), backend="jax").iterator_release.value is None


def test_telling_a_fit_s_own_loop_keeps_none_of_the_fit_s_locals_alive():
    """Before Python 3.13, reading a frame's f_locals left a copy of its locals on it until it returned: read so, a
    fit's locals held the first epoch's training iterator to the fit's end, and its destructor (with tf.data's wait)
    fell at the process's exit."""
    loop, other = types.SimpleNamespace(), types.SimpleNamespace()

    def fit(self):  # the shape of a backend trainer's fit: its epoch loop, and the iterator of an epoch before
        epoch_iterator = loop
        iterator = Tracked()
        ended = weakref.ref(iterator)
        told = (iterator_release._fits_own(epoch_iterator), iterator_release._fits_own(other))
        frame = iterator_release.fit_frame(sys._getframe())
        batch = iterator_release.fit_local(frame, "epoch_iterator")
        del iterator  # the epoch loop lets go of it: nothing else holds it now
        return told, batch, ended() is None

    told, batch, ended = fit(types.SimpleNamespace(_eval_epoch_iterator=None))
    assert told == (True, False) and batch is loop
    assert ended, "a copy of fit's locals still held the iterator"


@pytest.mark.slow
def test_fits_train_the_same_weights_with_their_iterators_released_off_the_loop():
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"the epoch loop patched is TensorFlow's; keras runs on {keras.backend.backend()} here")
    x = np.random.default_rng(0).random((600, 8), dtype=np.float32)
    y = (x.sum(axis=1) > 4).astype("float32")

    def weights():
        keras.utils.set_random_seed(3)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, batch_size=32, epochs=4, validation_split=0.25, verbose=0)  # shuffled each epoch
        return model.get_weights()

    trainer = __import__("keras.src.backend.tensorflow.trainer", fromlist=["TFEpochIterator"])
    original = trainer.TFEpochIterator._get_iterator
    plain = weights()
    try:
        assert iterator_release.install(keras) is None and iterator_release.installed()
        before, drops_before = iterator_release.stats()["released"], len(iterator_release.stats()["drops"])
        released = weights()
        # 4 epochs of training and 4 validations: at least the 7 iterators finished before the fit's end
        assert _until(lambda: iterator_release.stats()["released"] - before >= 7), iterator_release.stats()
        assert _until(lambda: iterator_release.stats()["held"] == 0), iterator_release.stats()
        # each drop of a used iterator with how long it lived and waited; the spares Keras makes at an epoch's end and
        # drops unused at the next one's start are released but not among them
        drops = iterator_release.stats()["drops"][drops_before:]
        assert len(drops) >= 7 and all(life > 0 and wait >= 0 and kind == "epoch" for life, wait, kind in drops), drops
        assert iterator_release.stats()["released"] - before > len(drops)
        cut = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        cut.compile("sgd", "mse")
        cut.fit(x, y, batch_size=32, epochs=2, steps_per_epoch=3, verbose=0)  # one iterator over both epochs
        assert _until(lambda: [d[2] for d in iterator_release.stats()["drops"][-1:]] == ["carried"]), iterator_release.stats()
        # a standalone predict and evaluate, and a predict a callback makes during a fit, are no fit's own loops:
        # Keras drops their iterators itself (a script sampling text one predict a call made a backlog the thread
        # could not drop and the process waited minutes at its exit)
        assert _until(lambda: iterator_release.stats()["held"] == 0), iterator_release.stats()
        before = iterator_release.stats()["released"]
        for _ in range(5):
            cut.predict(x[:1], verbose=0)
        cut.evaluate(x, y, verbose=0)
        assert iterator_release.stats()["held"] == 0 and iterator_release.stats()["released"] == before
        predicting = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: cut.predict(x[:1], verbose=0))
        cut.fit(x, y, batch_size=300, epochs=3, callbacks=[predicting], verbose=0)  # 2 batches an epoch
        # the fit's own: 3 epochs' iterators (the spares too) held and released, none of the 3 predicts'
        assert _until(lambda: iterator_release.stats()["held"] == 0), iterator_release.stats()
        kinds = [d[2] for d in iterator_release.stats()["drops"]]
        dropped = iterator_release.stats()["released"] - before
        assert 3 <= dropped <= 6 and kinds[-3:] == ["epoch"] * 3, iterator_release.stats()
    finally:
        trainer.TFEpochIterator._get_iterator = original
    for a, b in zip(plain, released):
        np.testing.assert_array_equal(a, b)  # the same batches in the same order


def test_a_dataset_that_runs_the_script_s_python_or_writes_files_is_left_to_keras(tmp_path):
    import tensorflow as tf

    def gen():
        yield np.zeros(2, "float32")

    spec = tf.TensorSpec((2,), tf.float32)
    arrays = tf.data.Dataset.from_tensor_slices(np.zeros((8, 2), "float32")).map(lambda a: a * 2).batch(4).prefetch(1)
    generator = tf.data.Dataset.from_generator(gen, output_signature=spec).map(lambda a: a * 2).batch(2)
    nested = tf.data.Dataset.range(2).interleave(lambda i: tf.data.Dataset.from_generator(gen, output_signature=spec))
    py = tf.data.Dataset.from_tensor_slices(np.zeros((8, 2), "float32")).map(
        lambda a: tf.numpy_function(lambda v: v * 2, [a], tf.float32))
    assert not iterator_release.left_to_keras(arrays)
    assert iterator_release.left_to_keras(py)
    assert iterator_release.left_to_keras(generator) and iterator_release.left_to_keras(nested)
    assert iterator_release.left_to_keras(object())  # not a dataset it can read: left alone too
    # a file cache is locked by the iterator writing it: a second beside it fails; an in-memory cache does not
    assert iterator_release.left_to_keras(arrays.cache(str(tmp_path / "cache")))
    assert not iterator_release.left_to_keras(arrays.cache())
    assert iterator_release.left_to_keras(arrays.snapshot(str(tmp_path / "snapshot")))


FILE_CACHE = """
import os, tempfile
import numpy as np, tensorflow as tf, keras
x = np.random.default_rng(0).random((4096, 16), dtype=np.float32); y = x.sum(1)
ds = tf.data.Dataset.from_tensor_slices((x, y)).cache(os.path.join(tempfile.mkdtemp(), "c")).shuffle(512).batch(32)
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds.prefetch(2), epochs=3, verbose=0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("source", ["numpy_generator", "file_cache"])
def test_a_trial_s_fits_one_after_another_over_a_generator_or_a_file_cache(tmp_path, source):
    """A trial's fits are cut short, so each leaves its iterator unfinished. Held for the release thread, it still
    prefetched beside the next fit's: from numpy_generator's generator object ("ValueError: generator already
    executing"), and into a file cache it had locked ("AlreadyExistsError: There appears to be a concurrent caching
    iterator running")."""
    from redline.tuning.search import Candidate, run_trial

    text = (FILE_CACHE if source == "file_cache" else
            (pathlib.Path(__file__).parents[1] / "benchmarks" / "scripts" / "numpy_generator.py").read_text())
    s = script(tmp_path, text)
    res = run_trial(s, [], Candidate("as written", {"KERAS_BACKEND": "tensorflow"}),
                    {**trial({"default": {"own": True}}, rounds=2, seconds=0.8), "as_run": True, "check": True, "discover": True},
                    180)  # tune's first trial
    got = res.get("candidates", {}).get("default", {})
    assert res["status"] == "ok" and "error" not in got and got.get("steps_per_s"), res.get("error") or got

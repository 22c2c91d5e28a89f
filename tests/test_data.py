"""redline.data: correctness (every element once per epoch), determinism, budget, and bad input."""

import importlib.util
import warnings

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

import tensorflow as tf  # noqa: E402

import gen_fixtures  # noqa: E402
import pydataset_fixtures  # noqa: E402
import redline.data as rd  # noqa: E402
from machines import vm_2core  # noqa: E402
from redline import UsageError, plan  # noqa: E402
from redline.data.budget import UNKNOWN_SHUFFLE_MAX  # noqa: E402

PLAN = plan(vm_2core())  # the plan of this 2-core machine kind: the tests do not depend on the host
N, B = 10, 4


def epochs(ds, count, key=lambda b: b[0]):
    """Element ids per epoch, reading steps_per_epoch batches per epoch."""
    it = iter(ds)
    out = []
    for _ in range(count):
        ids = []
        for _ in range(ds.redline.steps_per_epoch):
            ids += list(np.asarray(key(next(it))).ravel())
        out.append(ids)
    return out


def arrays():
    x = np.arange(N, dtype=np.int64)
    return x, x.astype(np.float32) * 10


@pytest.mark.filterwarnings("ignore:redline.data. drop_remainder")
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("variant", ["arrays", "arrays+map", "arrays+augment", "dataset", "dataset+map", "cached"])
def test_every_element_once_per_epoch(shuffle, drop, variant):
    x, y = arrays()
    kwargs = dict(batch_size=B, shuffle=shuffle, drop_remainder=drop, plan=PLAN)
    if variant == "arrays":
        ds = rd.pipeline((x, y), **kwargs)
    elif variant == "arrays+map":
        ds = rd.pipeline((x, y), lambda a, b: (a, b + 1), cache=False, **kwargs)
    elif variant == "arrays+augment":
        ds = rd.pipeline((x, y), augment=lambda a, b: (a, b + tf.random.uniform(())), **kwargs)
    elif variant == "dataset":
        ds = rd.pipeline(tf.data.Dataset.from_tensor_slices((x, y)), **kwargs)
    elif variant == "dataset+map":
        ds = rd.pipeline(tf.data.Dataset.from_tensor_slices((x, y)), lambda a, b: (a, b * 2), cache=False, **kwargs)
    else:
        ds = rd.pipeline((x, y), lambda a, b: (a, b * 2), cache=True, **kwargs)
        assert ds.redline.cache.used
    assert ds.redline.steps_per_epoch == (N // B if drop else 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        seen = epochs(ds, 3)
    for ids in seen:
        if drop:
            assert len(ids) == N - N % B and len(set(ids)) == len(ids) and set(ids) <= set(range(N))
        else:
            assert sorted(ids) == list(range(N))


@pytest.mark.parametrize("variant", ["arrays", "arrays+map", "dataset"])
def test_unshuffled_deterministic_pipelines_keep_the_order(variant):
    x, y = arrays()
    kwargs = dict(batch_size=B, shuffle=False, deterministic=True, plan=PLAN)
    source = tf.data.Dataset.from_tensor_slices((x, y)) if variant == "dataset" else (x, y)
    ds = rd.pipeline(source, (lambda a, b: (a, b)) if variant.endswith("map") else None, **kwargs)
    assert epochs(ds, 2) == [list(range(N))] * 2


def test_drop_remainder_says_what_it_drops():
    with pytest.warns(UserWarning, match="drops 2 of 10 elements each epoch"):
        rd.pipeline(arrays(), batch_size=B, drop_remainder=True, plan=PLAN)


def test_values_stay_with_their_elements():
    x, y = arrays()
    ds = rd.pipeline((x, y), batch_size=B, plan=PLAN)
    for a, b in ds.take(6):
        assert np.allclose(b.numpy(), a.numpy() * 10)


def test_dict_sources():
    ds = rd.pipeline({"a": np.arange(N), "b": np.arange(N) * 2}, batch_size=B, plan=PLAN)
    batch = next(iter(ds))
    assert np.array_equal(batch["b"].numpy(), batch["a"].numpy() * 2)


def test_deterministic_order_when_asked():
    x, y = np.arange(100), np.arange(100)
    kwargs = dict(batch_size=8, deterministic=True, seed=7, plan=PLAN, augment=lambda a, b: (a, b))
    first = epochs(rd.pipeline((x, y), **kwargs), 2)
    again = epochs(rd.pipeline((x, y), **kwargs), 2)
    assert first == again
    assert first[0] != first[1]  # reshuffled each epoch, reproducibly
    assert first[0] != sorted(first[0])


def test_deterministic_map_matches_the_naive_pipeline():
    x = np.arange(50, dtype=np.float32)
    fn = lambda v: tf.sqrt(v) * 3.0 + 1.0  # noqa: E731
    naive = np.concatenate([b.numpy() for b in tf.data.Dataset.from_tensor_slices(x).map(fn).batch(8)])
    ds = rd.pipeline(x, fn, batch_size=8, shuffle=False, deterministic=True, repeat=False, plan=PLAN)
    ours = np.concatenate([b.numpy() for b in ds])
    assert np.array_equal(ours, naive)


def test_small_budget_skips_the_cache_with_a_reason_and_still_runs():
    x = np.zeros((64, 32, 32, 3), np.uint8)
    fn = lambda v: tf.cast(v, tf.float32) / 255.0  # noqa: E731  (64 x 12 KiB = 768 KiB once mapped)
    small = rd.pipeline(x, fn, batch_size=16, memory_budget=1 << 20, plan=PLAN)
    assert not small.redline.cache.used
    assert "over 50% of the 1.0 MiB memory budget" in small.redline.cache.reason
    assert small.redline.ram_budget_bytes == 1 << 20
    assert sum(1 for _ in small.take(small.redline.steps_per_epoch * 2)) == 8  # two full epochs, nothing killed
    big = rd.pipeline(x, fn, batch_size=16, memory_budget=1 << 30, plan=PLAN)
    assert big.redline.cache.used and "fits" in big.redline.cache.reason


def test_generator_shards_run_in_worker_processes():
    src = rd.generator(gen_fixtures.numbers, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.float32)))
    ds = rd.pipeline(src, batch_size=5, shuffle=False, repeat=False, plan=PLAN)
    assert ds.redline.workers == 2
    for _ in range(2):  # two epochs: the workers are reused
        got = [(int(a), float(b)) for xa, xb in ds for a, b in zip(xa.numpy(), xb.numpy())]
        assert sorted(got) == [(i, 2.0 * i) for i in range(23)]


@pytest.mark.slow
def test_generator_that_cannot_be_sharded_warns():
    src = rd.generator(gen_fixtures.unsharded, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.float32)))
    with pytest.warns(UserWarning, match="runs in one process under the GIL; add them"):
        ds = rd.pipeline(src, batch_size=3, repeat=False, plan=PLAN)
    assert sorted(int(v) for a, _ in ds for v in a.numpy()) == list(range(7))


@pytest.mark.slow
def test_generator_failure_names_shard_and_element():
    src = rd.generator(gen_fixtures.failing, output_signature=(tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.float32)))
    ds = rd.pipeline(src, batch_size=4, repeat=False, plan=PLAN)
    with pytest.raises(Exception, match=r"shard 1 of 2 at its element 6: ValueError: cannot decode record 13"):
        for _ in ds:
            pass


def test_map_fn_failure_names_the_element_and_the_original_error():
    x = np.arange(12, dtype=np.float32)

    def fn(v):
        tf.debugging.assert_less(v, 7.0, message="value too large")
        return v * 2

    ds = rd.pipeline(x, fn, batch_size=4, plan=PLAN, cache=False)
    with pytest.raises(tf.errors.OpError, match=r"map_fn failed on element 7: InvalidArgumentError: .*value too large"):
        for _ in ds.take(ds.redline.steps_per_epoch):
            pass


def test_mismatched_array_lengths():
    with pytest.raises(UsageError, match=r"mismatched array lengths: source\[0\] has 10, source\[1\] has 9 rows"):
        rd.pipeline((np.zeros(10), np.zeros(9)), batch_size=2, plan=PLAN)


@pytest.mark.parametrize("bad", [0, -4, None, 2.5, True])
def test_batch_size_must_be_positive(bad):
    with pytest.raises(UsageError, match=r"batch_size=.* is not valid: give a whole number of samples of 1 or more"):
        rd.pipeline(np.zeros(4), batch_size=bad, plan=PLAN)


def test_unreadable_and_corrupt_files(tmp_path):
    with pytest.raises(UsageError, match="no TFRecord files match"):
        rd.tfrecord(str(tmp_path / "*.tfrecord"))
    with pytest.raises(UsageError, match="does not exist or is not a folder"):
        rd.image_folder(str(tmp_path / "nope"))
    for cls in ("cat", "dog"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            png = tf.io.encode_png(tf.zeros((8, 8, 3), tf.uint8)).numpy()
            (tmp_path / cls / f"{i}.png").write_bytes(png)
    (tmp_path / "dog" / "1.png").write_bytes(b"not a png at all")
    src = rd.image_folder(str(tmp_path), image_size=(8, 8))
    assert src.class_names == ("cat", "dog") and len(src.files) == 6
    ds = rd.pipeline(src, batch_size=2, shuffle=False, plan=PLAN)
    with pytest.raises(tf.errors.OpError, match=r"map_fn failed on element 4 \(.*dog/1\.png\)"):
        for _ in ds.take(ds.redline.steps_per_epoch):
            pass


@pytest.mark.slow
def test_tfrecord_files_read_in_parallel(tmp_path):
    for f in range(3):
        with tf.io.TFRecordWriter(str(tmp_path / f"part-{f}.tfrecord")) as w:
            for i in range(5):
                w.write(tf.train.Example(features=tf.train.Features(feature={
                    "v": tf.train.Feature(int64_list=tf.train.Int64List(value=[f * 5 + i]))})).SerializeToString())
    parse = lambda s: tf.io.parse_single_example(s, {"v": tf.io.FixedLenFeature([], tf.int64)})["v"]  # noqa: E731
    ds = rd.pipeline(rd.tfrecord(str(tmp_path / "*.tfrecord"), parse), batch_size=4, repeat=False, plan=PLAN,
                     memory_budget=8 << 30)
    assert sorted(int(v) for b in ds for v in b.numpy()) == list(range(15))
    # the record count is unknown: a buffer sized from the budget alone (107 million 8-byte elements here) would take
    # seconds to set up at every iterator, so it is bounded
    assert 40 <= ds.redline.shuffle_buffer <= UNKNOWN_SHUFFLE_MAX


def test_infinite_dataset_and_paths_are_refused():
    with pytest.raises(UsageError, match="infinite"):
        rd.pipeline(tf.data.Dataset.range(3).repeat(), batch_size=2, plan=PLAN)
    with pytest.raises(UsageError, match="is a path"):
        rd.pipeline("data/", batch_size=2, plan=PLAN)


def test_optimize_keeps_the_elements_and_sets_the_plan_options():
    ds = rd.optimize(tf.data.Dataset.range(10).map(lambda v: v * 2).batch(3), plan=PLAN, memory_budget=1 << 28)
    assert sorted(int(v) for b in ds for v in b.numpy()) == list(range(0, 20, 2))
    opts = ds.options()
    assert opts.threading.private_threadpool_size == 2 and opts.autotune.ram_budget == 1 << 28


def test_fit_with_the_pipeline():
    import keras

    x = np.random.default_rng(0).random((64, 4), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    ds = rd.pipeline((x, y), batch_size=16, plan=PLAN)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    hist = model.fit(ds, epochs=2, verbose=0, **ds.redline.fit_kwargs())
    assert len(hist.history["loss"]) == 2


@pytest.mark.slow
def test_py_dataset_batches_run_in_worker_processes():
    ds = rd.pipeline(pydataset_fixtures.Squares(), batch_size=4, shuffle=False, repeat=False, plan=PLAN)
    assert ds.redline.workers == 2 and ds.redline.elements == 22 and ds.redline.steps_per_epoch == 6
    got = sorted((int(a), float(b)) for xa, xb in ds for a, b in zip(xa.numpy(), xb.numpy()))
    assert got == [(i, float(i * i)) for i in range(22)]


@pytest.mark.slow
def test_unpicklable_py_dataset_warns_and_still_works():
    import keras

    class Local(keras.utils.PyDataset):  # a local class cannot be pickled for a worker process
        def __len__(self):
            return 2

        def __getitem__(self, idx):
            return np.arange(3) + 3 * idx, np.zeros(3, np.float32)

    with pytest.warns(UserWarning, match="cannot be sent to worker processes"):
        ds = rd.pipeline(Local(), batch_size=4, repeat=False, plan=PLAN)
    assert sorted(int(v) for a, _ in ds for v in a.numpy()) == list(range(6))


def test_the_sequential_maps_the_parallel_rewrite_would_change_are_counted_and_run_as_written(monkeypatch):
    from redline.data.rewrite import count_sequential_maps

    monkeypatch.setattr(tf.data.Dataset, "map", tf.data.Dataset.map)  # put back after the test
    counts = {}
    count_sequential_maps(counts)
    ds = (tf.data.Dataset.range(4).map(lambda v: v + 1).map(lambda v: v * 2, num_parallel_calls=2)
          .map(lambda v: v, tf.data.AUTOTUNE).map(lambda v: v - 1, None))
    assert counts == {"sequential_maps": 2} and list(ds.as_numpy_iterator()) == [1, 3, 5, 7]

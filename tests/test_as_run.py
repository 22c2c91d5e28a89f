"""The run as it runs: whole epochs with the script's validation, callbacks and verbose (tuning/as_run.py). The
arithmetic on given event times; one real trial per backend for what the trial process does with them."""

import importlib.util

import numpy as np
import pytest

from tune_helpers import script, trial
from redline.tuning import as_run
from redline.tuning.result import Candidate, TuneResult


def events(epochs, train_s, val_s=0.0, val_every=1, first=5.0):
    """Times as the Steps callback records them: ``epochs`` epochs of ``train_s`` training (the first ``first``),
    validation of ``val_s`` every ``val_every`` epochs."""
    t, out = 0.0, []
    for e in range(epochs):
        out.append((t, "epoch_begin"))
        t += first if e == 0 else train_s
        if val_s and e % val_every == 0:
            out += [(t, "test_begin"), (t + val_s, "test_end")]
            t += val_s
        out.append((t, "epoch_end"))
    return out


def test_whole_epochs_count_validation_and_leave_out_the_first_epoch():
    ev = events(4, train_s=1.0, val_s=0.25)
    assert as_run.epoch_rates(ev, steps=100) == pytest.approx([80.0, 80.0, 80.0])  # 100 steps in 1.25 s
    assert as_run.validation_seconds(ev) == pytest.approx([0.25, 0.25, 0.25])  # the first validation traces: left out
    assert as_run.overhead(80.0, 100.0, 100) == pytest.approx(0.25)
    assert as_run.overhead(120.0, 100.0, 100) == 0.0  # never below 0


def test_a_validation_every_second_epoch_is_counted_once_per_cycle():
    ev = events(7, train_s=1.0, val_s=1.0, val_every=2)  # validations after epochs 1, 3, 5, 7 (index 0, 2, 4, 6)
    rates = as_run.epoch_rates(ev, steps=100, per=2)
    assert rates == pytest.approx([200 / 3] * 3)  # each cycle: 2 epochs of training and one validation
    assert as_run.cycle({"validation_freq": 2}) == 2 and as_run.cycle({}) == 1 and as_run.cycle({"validation_freq": [1, 5]}) == 1


def test_the_first_epoch_s_extra_is_what_it_took_beyond_a_later_one():
    """The first epoch traces the test function and meets the shapes a run compiles for: its seconds beyond a later
    epoch's are a compile's cost, never below 0."""
    ev = events(4, train_s=1.0, val_s=0.25, first=3.0)
    assert as_run.first_extra(ev, 100 / as_run.epoch_rates(ev, steps=100)[0]) == pytest.approx(2.0)  # 3.25 - 1.25
    assert as_run.first_extra(events(4, train_s=1.0, first=0.9), 1.0) == 0.0
    assert as_run.first_extra([], 1.0) == 0.0 and as_run.epoch_seconds(ev) == pytest.approx([3.25, 1.25, 1.25, 1.25])


def test_a_tensorflow_import_inside_the_first_epoch_is_not_its_compile(monkeypatch):
    """Keras on JAX imports TensorFlow at its first model save (a ModelCheckpoint at the first epoch's end): 2.4 s a
    run pays at its start on TensorFlow instead, never timed there. The first epoch's extra leaves it out, only the
    part inside that epoch, and never goes below 0."""
    ev = events(4, train_s=1.0, val_s=0.25, first=3.0)  # the first epoch: 0.0 to 3.25
    spans = []
    monkeypatch.setattr(as_run, "untimed", lambda a, b: sum(max(0.0, min(b, t1) - max(a, t0)) for t0, t1 in spans))
    spans.append((1.0, 3.0))  # 2 s of it inside the first epoch
    assert as_run.first_extra(ev, 1.25) == pytest.approx(0.0)
    spans[0] = (3.0, 4.0)  # 0.25 s of it at the first epoch's end, the rest in the next
    assert as_run.first_extra(ev, 1.25) == pytest.approx(1.75)
    spans[0] = (5.0, 6.0)  # after the first epoch: its extra as before
    assert as_run.first_extra(ev, 1.25) == pytest.approx(2.0)


def test_the_training_steps_inside_whole_epochs_are_timed_from_the_epoch_s_begin_to_its_validation():
    """Each epoch after the first: its steps over the seconds up to its validation (or its end), whatever the
    validation costs; the first epoch (the trace) is left out."""
    ev = events(4, train_s=1.0, val_s=0.5)
    assert as_run.train_rates(ev, steps=100) == pytest.approx([100.0, 100.0, 100.0])
    assert as_run.train_rates(events(4, train_s=2.0), steps=100) == pytest.approx([50.0, 50.0, 50.0])  # no validation
    assert as_run.train_rates(events(1, train_s=1.0), steps=100) == []


def test_whole_epochs_are_run_where_the_warm_epoch_and_three_cycles_fit_the_span():
    assert as_run.whole_epochs({}, steps=100, train=1000.0, seconds=0.8)  # 0.1 s an epoch
    assert not as_run.whole_epochs({}, steps=10_000, train=1000.0, seconds=0.8)  # 10 s an epoch: steps mode
    assert as_run.whole_epochs({}, steps=1_000, train=1000.0, seconds=0.8)  # 1 s: 4 s whole, under the span
    assert not as_run.whole_epochs({}, steps=1_500, train=1000.0, seconds=0.8)  # 1.5 s: 6 s whole, over the span
    assert not as_run.whole_epochs({}, steps=None, train=1000.0, seconds=0.8)


def test_a_gain_in_training_steps_counts_only_for_the_training_part_of_an_epoch():
    assert as_run.with_overhead(100.0, 100, 1.0) == pytest.approx(50.0)
    assert as_run.gain_whole(100.0, 100, 1.0, 2.0) == pytest.approx(2.0 / 1.5)  # 2 s an epoch -> 1.5 s
    assert as_run.gain_whole(100.0, 100, 0.0, 2.0) == pytest.approx(2.0)
    c = Candidate("p", runs=[50.0] * 3, train_runs=[100.0] * 3, overhead_s=[1.0], detail={"steps_in_epoch": 100})
    assert c.whole(2.0) == pytest.approx(4 / 3)
    assert Candidate("q", runs=[50.0] * 3).whole(2.0) == 2.0  # nothing beyond training measured: the gain as it is


def test_the_predicted_ratio_scales_only_the_training_part():
    default = Candidate("as written", runs=[40.0] * 3)
    best = Candidate("backend jax", runs=[50.0] * 3, train_runs=[100.0] * 3, overhead_s=[1.0],
                     detail={"steps_in_epoch": 100})
    inner = [Candidate("default", runs=[100.0] * 3), Candidate("spe 4", runs=[200.0] * 3)]
    r = TuneResult("s.py", [], 60, 1, default, [default, best], inner, best, inner[1], [], [])
    assert r.ratio() == pytest.approx(50 / 40 * (4 / 3))  # not 50/40 * 2


def test_the_script_s_extras_are_kept_and_its_callbacks_copied():
    cbs = [object()]
    got = as_run.extras({"callbacks": cbs, "validation_split": 0.2, "verbose": 2, "epochs": 3})
    assert got == {"callbacks": cbs, "validation_split": 0.2, "verbose": 2} and got["callbacks"] is not cbs
    assert as_run.extras({})["verbose"] == "auto"
    import keras

    one = keras.callbacks.EarlyStopping()  # one callback bare, a tuple, nested lists: a list, as Keras reads them
    assert as_run.extras({"callbacks": one})["callbacks"] == [one]
    assert as_run.extras({"callbacks": (one, [cbs[0]])})["callbacks"] == [one, cbs[0]]
    assert as_run.validates({"validation_split": 0.2}) and not as_run.validates({"validation_split": 0.0})


def test_epochs_measured_in_steps_over_arrays_train_the_batch_a_run_trains():
    """An epoch too long to run whole is measured in a few steps (steps_per_epoch): over arrays the script gives no
    batch size, Keras would then split them into that many batches (2,048 samples in 2 steps: batches of 1,024)."""
    calls = []

    class Marks:
        events = events(2, train_s=1.0, val_s=0.25)

    x = np.zeros((2048, 3), "float32")
    got = as_run.measure(object(), lambda model, **kw: calls.append(kw), {"x": x, "y": x, "validation_data": (x, x)},
                         64, [1.0] * 3, 1.0, 1, lambda *a: Marks())
    assert got["mode"] == "steps" and calls and all(c["batch_size"] == 32 for c in calls), calls
    assert calls[0]["steps_per_epoch"] < 64


def test_the_training_part_of_a_validation_split_is_cut_as_keras_cuts_it():
    from redline.data.rewrite import training_part

    x, y = np.arange(100).reshape(50, 2), np.arange(50)
    tx, ty, sw = training_part((x, y, None), 0.25)
    assert len(tx) == len(ty) == 37 and sw is None and (tx == x[:37]).all()


def test_an_epoch_s_smaller_last_batch_is_cut_for_its_warm_up_and_only_arrays_have_one():
    """imbalanced_mlp: 48,000 training samples in batches of 2,048 end with one of 896; JAX compiled its step for it
    in 1.85 s the first time it came, inside a timed run. The calibration compiles it first (StageRuns.calibrate)."""
    from redline.tuning.feeds import Feed, last_batch

    x, y, w = np.arange(20).reshape(10, 2), np.arange(10), np.arange(10) / 10
    tx, ty, kw = last_batch(Feed({"a": x}, y, 4, {"sample_weight": w, "class_weight": {0: 1.0}}, 3, 1.0, False))
    assert (tx["a"] == x[8:]).all() and (ty == y[8:]).all() and (kw["sample_weight"] == w[8:]).all()
    assert kw["class_weight"] == {0: 1.0}
    assert last_batch(Feed(x, y, 5, {}, 2, 1.0, False)) is None  # the batch size divides it: every batch alike
    assert last_batch(Feed(x, y, 16, {}, 1, 1.0, False)) is None  # one batch: the warm-up already ran it
    assert last_batch(Feed(x, y, 4, {}, 3, 1.0, True)) is None  # endless: no last batch
    assert last_batch(Feed((b for b in [x[:4], x[4:8], x[8:]]), None, 4, {}, 3, 1.0, False)) is None  # not arrays


SPLIT = """
import numpy as np
import keras
x = np.random.default_rng(0).random((640, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")

class Seen(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("SEEN", sorted(logs), flush=True)

model.fit(x, y, batch_size=16, epochs=5, verbose=2, validation_split=0.25, callbacks=[Seen()])
"""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_trial_times_whole_epochs_with_the_script_s_validation_and_callbacks(tmp_path, backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    from redline.tuning.search import Candidate as C, run_trial
    from redline.tuning.absorb import absorb as _absorb

    # one callback given bare on JAX, as the simple-audio tutorial passes its EarlyStopping: Keras takes it as a list;
    # on TensorFlow, a checkpoint each epoch (Keras on JAX would import TensorFlow at its first save: below)
    text = (SPLIT.replace("callbacks=[Seen()]", 'callbacks=[Seen(), keras.callbacks.ModelCheckpoint("m.keras")]')
            if backend == "tensorflow" else SPLIT.replace("callbacks=[Seen()]", "callbacks=Seen()"))
    res = run_trial(script(tmp_path, text), [], C("x", {"KERAS_BACKEND": backend}),
                    {**trial({"default": {"own": True}}, rounds=2), "as_run": True, "python_drops": True}, 180)
    assert res["status"] == "ok", res
    assert res["steps_in_epoch"] == 30  # 480 training samples of 640 under validation_split=0.25, batch 16
    whole = res["as_run"]
    assert whole["mode"] in ("epochs", "steps"), whole
    assert len(whole["steps_per_s"]) >= 2 and min(whole["steps_per_s"]) > 0 and whole["overhead_s"] >= 0
    assert whole["validation_s"] and min(whole["validation_s"]) > 0  # the script's validation ran, after the first
    assert whole["first_extra_s"] >= 0 and res["compile_s"] >= res["trace_s"] >= 0  # what compiling costs a run once
    seen = [line for line in res["stdout"].splitlines() if line.startswith("SEEN")]
    assert any("val_loss" in line for line in seen), res["stdout"][-1500:]  # its callback saw its validation
    c = C("x")
    _absorb(c, res)  # the figures of whole epochs are what the choice rests on; the training figures kept beside
    assert c.runs == whole["steps_per_s"] and c.train_runs == res["candidates"]["default"]["steps_per_s"]
    # on TensorFlow the epochs ran as `redline run` runs them: each finished tf.data iterator dropped off the loop,
    # and what that took is kept per process; JAX slices the arrays without tf.data
    if backend == "tensorflow":
        got = res.get("released") or {}
        assert got.get("released", 0) + got.get("held", 0) >= 2 and c.detail["released"] == [got], got
        # and where its whole epochs ran, a few more as `python` runs them, their drops timed on the loop
        if whole["mode"] == "epochs":
            timed = res["python_drops"]
            assert timed["epochs"] >= as_run.PY_EPOCHS and min(timed["waits_s"]) >= 0, timed
            assert c.detail["python_drops"] == [timed]
    else:
        assert "released" not in res and "released" not in c.detail
        assert not res.get("python_drops") and "python_drops" not in c.detail  # JAX: no tf.data iterator to time
    # TensorFlow imported inside the measurement is clocked apart from the compile figures: none where the run's
    # backend imported it at its start
    assert res["tf_import_s"] == 0.0 and c.detail["tf_import_s"] == 0.0, res["tf_import_s"]
    # what the process paid for TensorFlow's import in all: at its start on TensorFlow; nothing on JAX over arrays,
    # where neither the script nor the harness imports it (a JAX run starts that much sooner: tuning/payoff.py)
    assert (res["tf_s"] > 0) == (backend == "tensorflow") and c.detail["tf_s"] == [res["tf_s"]], res["tf_s"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="JAX and TensorFlow are needed")
def test_a_jax_trial_clocks_the_tensorflow_import_its_first_checkpoint_makes(tmp_path):
    """imbalanced_mlp on JAX: its ModelCheckpoint's first save imports TensorFlow (2.4 s here), inside the calibration
    in one trial process and not in another: JAX's start cost read 0.7 to 3.5 s over tunes, and the choice flipped
    between JAX and the script as written. The trial clocks that import and reports it apart."""
    from redline.tuning.search import Candidate as C, run_trial

    text = SPLIT.replace("callbacks=[Seen()]", 'callbacks=[keras.callbacks.ModelCheckpoint("m.keras")]')
    res = run_trial(script(tmp_path, text), [], C("x", {"KERAS_BACKEND": "jax"}),
                    {**trial({"default": {"own": True}}, rounds=2), "as_run": True}, 180)
    assert res["status"] == "ok" and res["backend"] == "jax", res.get("error")
    assert 0 < res["tf_import_s"] <= res["measure_s"], res["tf_import_s"]
    # the process paid it there, and a run of it pays it too: its CPU time (tuning/steps.tf_paid), which one thread
    # cannot spend faster than the wall clock runs (the import fell inside the measurement: its wall time is all there)
    assert 0 < res["tf_s"] <= res["tf_import_s"] + 0.02, (res["tf_s"], res["tf_import_s"])


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
@pytest.mark.parametrize("share_s", [None, 600.0, 1e-4])
def test_where_epochs_are_too_long_to_measure_whole_the_first_trial_times_a_few_of_python_s_epoch_starts(tmp_path,
                                                                                                        share_s):
    """vit_classifier's ~6-s epochs: measured in steps, so `python`'s epoch starts were not timed, and the wait was
    modelled from drops of fits cut short that never waited (1.10x predicted, 1.41x delivered). Where PY_LONG epochs
    fit the first trial's share of the budget, it times that many epoch starts, the last epoch cut after its first
    batch; where they do not, none."""
    from redline.tuning.search import Candidate as C, run_trial

    settings = {**trial({"default": {"own": True}}, rounds=2, seconds=0.002), "as_run": True, "python_drops": True,
                **({"python_drops_s": share_s} if share_s else {})}
    res = run_trial(script(tmp_path, SPLIT), [], C("x", {"KERAS_BACKEND": "tensorflow"}), settings, 180)
    assert res["status"] == "ok", res
    # epochs too long for the trial's seconds: whole epochs need 30 steps in 3 ms (10,000 a second) for "epochs"
    assert res["as_run"]["mode"] == "steps", res["as_run"]
    if share_s == 600.0:
        timed = res["python_drops"]
        assert timed["epochs"] == as_run.PY_LONG and len(timed["waits_s"]) >= as_run.PY_LONG, timed  # (validation too)
        assert min(timed["waits_s"]) >= 0 and timed["wait_s"] >= 0
    else:
        assert not res.get("python_drops"), res.get("python_drops")


def test_a_trial_without_whole_epochs_is_compared_on_the_reference_s_footing():
    from redline.tuning.absorb import absorb as _absorb

    ref = Candidate("as written")
    _absorb(ref, {"status": "ok", "steps_in_epoch": 100, "candidates": {"default": {"steps_per_s": [100.0] * 3}},
                  "as_run": {"mode": "epochs", "steps_per_s": [50.0] * 3, "overhead_s": 1.0}})
    late = Candidate("oneDNN off")  # its deadline came before its whole epochs: training figures only
    _absorb(late, {"status": "ok", "steps_in_epoch": 100, "candidates": {"default": {"steps_per_s": [200.0] * 3}}}, ref)
    assert late.train_runs == [200.0] * 3 and late.runs == [pytest.approx(100 / 1.5, abs=1e-3)] * 3
    assert "estimated" in late.detail["whole_epochs"] and ref.runs == [50.0] * 3


@pytest.mark.parametrize("reference, again, jit", [([149.0, 336.0, 263.0], True, False),
                                                   ([290.0, 310.0, 300.0], False, False),
                                                   ([149.0, 336.0, 263.0], True, True),
                                                   ([290.0, 310.0, 300.0], False, True)])
def test_whole_epochs_that_spread_wide_are_measured_once_more_each_the_other_way_round(monkeypatch, reference, again,
                                                                                      jit):
    """thread_lines at spe 1 on a 2-core VM: its script's own compile read 149, 336 and 263 steps/s in three cycles
    (its epochs run in two modes), and the prediction rested on their harmonic mean. Where either side spreads past
    AGAIN_SPREAD, each is measured once more, in the other order, and the figures pooled; where both are tight, not."""
    from redline.tuning import inprocess
    from redline.tuning.feeds import Feed

    monkeypatch.setattr(inprocess, "pick", lambda out, cands: "spe 8")
    monkeypatch.setattr(inprocess, "twin", lambda out, cands, name: None)  # no twin without jit in the rounds here
    figures = {"reference": iter([reference, [300.0, 305.0, 295.0]]), "pick": iter([[600.0, 610.0, 590.0]] * 2)}
    calls = []

    def whole(cand, args, train, once):
        role = "reference" if cand.get("own") else "pick"
        calls.append(role)
        # under jit, each side's first measurement makes its functions anew (its first epoch compiles as a run's)
        assert once == (jit and calls.count(role) == 1) and (recompile.model.train_function is None) == once
        return {"mode": "epochs", "steps_per_s": next(figures[role]), "first_extra_s": 0.5 if once else 0.01}

    class Keep:
        def restore(self):
            pass

    class Recompile:  # the model's functions as a recompile puts them back: those it ran before
        model = type("Model", (), {})()

        def __call__(self, cand):
            for name in ("train_function", "test_function", "predict_function"):
                setattr(self.model, name, "traced before")

    recompile = Recompile()

    into = {"default": {"steps_per_s": [300.0] * 3}, "spe 8": {"steps_per_s": [600.0] * 3,
                                                              "knobs": {"steps_per_execution": 8,
                                                                        **({"jit_compile": True} if jit else {})}}}
    feeds = {"as written": Feed(None, None, 32, {}, 100, 1.0, False)}
    found = as_run.whole_pick({"inputs": {}}, {"candidates": {}}, {}, into, feeds, "as written", whole,
                              recompile, Keep(), lambda msg: None)
    assert calls == (["reference", "pick", "pick", "reference"] if again else ["reference", "pick"])
    # the first epoch's extra kept is the first measurement's (made anew where it was), and marked so
    assert found["reference"]["first_extra_s"] == (0.5 if jit else 0.01)
    assert found["reference"].get("fresh", False) == jit == found["pick"].get("fresh", False)
    assert len(found["reference"]["steps_per_s"]) == (6 if again else 3)
    assert found["knobs"] == "spe 8" and len(found["pick"]["steps_per_s"]) == (6 if again else 3)


def test_python_s_drop_waits_run_from_an_iterator_made_to_the_next_batch_where_keras_drops_the_last():
    # epoch 1 (0-1 s, not counted), epoch 2's iterator made at 1.30, its first batch at 1.45: 0.15 s of drops; its
    # validation's iterator made at 1.91, its first batch 0.001 s later; the spare Keras makes at an epoch's end (1.90)
    # is followed by the validation's start, not a batch: nothing is dropped there
    made = [0.01, 1.30, 1.90, 1.91]
    begins = [0.02, 0.5, 1.45, 1.6, 1.911]
    others = [0.0, 0.95, 1.0, 1.29, 1.905, 1.95, 1.96]
    assert as_run.drop_waits(made, begins, others, after=1.0) == pytest.approx([0.15, 0.001])
    assert as_run.drop_waits(made, begins, others, after=2.0) == []
    assert as_run.drop_waits([1.30], [], others, after=1.0) == []  # no batch after it: nothing to time


def test_python_s_epochs_run_as_it_runs_them_leave_the_iterators_to_keras_and_time_their_drops():
    """The probe itself on TensorFlow: its epochs' iterators are not the release thread's (its count stays), and the
    waits it reads are seconds between a drop and the next batch, at least 0, one epoch start's each counted epoch."""
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"the epoch loop patched is TensorFlow's; keras runs on {keras.backend.backend()} here")
    from redline.applying import iterator_release

    trainer = __import__("keras.src.backend.tensorflow.trainer", fromlist=["TFEpochIterator"])
    original = trainer.TFEpochIterator._get_iterator
    x = np.random.default_rng(0).random((256, 8), dtype=np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    try:
        assert iterator_release.install(keras) is None
        before = iterator_release.stats()["released"] + iterator_release.stats()["held"]
        got = as_run.python_drops(model, keras.Model.fit, {"x": x, "y": y, "batch_size": 32, "validation_split": 0.25,
                                                           "verbose": 0}, epochs=3)
        assert iterator_release.stats()["released"] + iterator_release.stats()["held"] == before
        model.fit(x, y, batch_size=32, epochs=2, verbose=0)  # outside the probe: released again
        assert iterator_release.stats()["released"] + iterator_release.stats()["held"] > before
    finally:
        trainer.TFEpochIterator._get_iterator = original
    assert got["epochs"] == 3, got
    # each counted epoch drops its training and its validation iterators where the next one's first batch begins
    assert len(got["waits_s"]) == 6 and all(w >= 0 for w in got["waits_s"]), got
    assert got["wait_s"] == pytest.approx(sum(got["waits_s"]) / 3, abs=1e-3)


def test_a_jit_pick_is_measured_whole_beside_its_twin_without_jit():
    """tf_ops_layer: spe 32 + jit's compile did not pay over the script's 471 steps, and nothing of the stage was
    applied; its twin, spe 32, measured whole after it (its functions those its rounds traced), can stand in its place
    (tuning.weigh.judge_whole)."""
    from redline.tuning import inprocess
    from redline.tuning.feeds import Feed

    seen = []

    def whole(cand, args, train, once):
        seen.append((dict(cand), once))
        return {"mode": "epochs", "steps_per_s": [300.0 if cand.get("own") else 600.0] * 3, "first_extra_s": 0.1}

    class Recompile:
        model = type("Model", (), {})()

        def __call__(self, cand):
            pass

    class Keep:
        def restore(self):
            pass

    jit, plain = {"steps_per_execution": 8, "jit_compile": True}, {"steps_per_execution": 8}
    into = {"default": {"steps_per_s": [300.0] * 3, "knobs": {}}, "spe 8": {"steps_per_s": [590.0] * 3, "knobs": plain},
            "spe 8 + jit": {"steps_per_s": [650.0, 655.0, 645.0], "knobs": jit}}
    out = {"inputs": {}, "candidates": into}
    found = as_run.whole_pick(out, {"candidates": {"default": {"own": True}}}, {}, into,
                              {"as written": Feed(None, None, 32, {}, 100, 1.0, False)}, "as written", whole,
                              Recompile(), Keep(), lambda msg: None)
    assert inprocess.twin(out, {"default": {"own": True}}, "spe 8 + jit") == "spe 8"
    assert found["knobs"] == "spe 8 + jit" and found["twin"]["knobs"] == "spe 8", found
    assert [once for _, once in seen] == [True, True, False] and seen[-1][0] == {**plain, "input": "as written"}
    # a pick without jit: no twin measured
    seen.clear()
    into["spe 8 + jit"]["steps_per_s"] = [500.0] * 3
    found = as_run.whole_pick(out, {"candidates": {"default": {"own": True}}}, {}, into,
                              {"as written": Feed(None, None, 32, {}, 100, 1.0, False)}, "as written", whole,
                              Recompile(), Keep(), lambda msg: None)
    assert found["knobs"] == "spe 8" and "twin" not in found and len(seen) == 2


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_on_jax_an_epoch_s_validation_begins_after_its_training_steps_end():
    """Keras on JAX calls the validation's begin while the epoch's last steps still run (async dispatch): a trial
    read 2 steps of training as validation. The boundary the measurements read waits for the steps: here 4 steps of
    large matmuls: at the validation's begin, the model's variables (the last step's results) are ready."""
    import json
    import subprocess
    import sys

    from tune_helpers import ENV

    code = """
import json, time, numpy as np, keras
from redline.tuning.steps import Steps
model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(2048), keras.layers.Dense(2048), keras.layers.Dense(1)])
model.compile("sgd", "mse")
x = np.ones((1024, 512), "float32")
marks = Steps(None, 1)
ready = []
class Probe(keras.callbacks.Callback):  # after the trial's callback: whether the steps' results are in at that point
    async_safe = True  # as the trial's callbacks are: Keras runs batch ends on its thread pool, and dispatch runs ahead
    def on_test_begin(self, logs=None):
        ready.append(all(v.value.is_ready() for v in self.model.variables))
model.fit(x, x[:, :1], batch_size=256, epochs=2, verbose=0, validation_data=(x[:16], x[:16, :1]), callbacks=[marks, Probe()])
print(json.dumps({"ready": ready, "test_begins": sum(k == "test_begin" for _, k in marks.events)}))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                       env={**ENV, "KERAS_BACKEND": "jax"})
    assert r.returncode == 0, r.stderr[-2000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d == {"ready": [True, True], "test_begins": 2}, d

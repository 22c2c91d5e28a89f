"""redline tune's trial process on real TensorFlow and JAX: the first fit intercepted, scripts that fail or never fit,
the input path, calibration and the rounds a trial reports; the notebook API; diagnose on an unchanged script. The
measurements' counting and the ladder: test_tune_measure.py."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from scripts import TF_OPS
from tune_helpers import DIRECT, ENV, TINY, script, trial
from redline.tuning.search import Candidate, better, run_trial

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)


# -- the harness -----------------------------------------------------------------------------------------------------

def test_the_first_fit_is_intercepted_and_the_script_s_output_and_argv_kept(tmp_path, monkeypatch):
    """On JAX, which starts in half TensorFlow's time: the interception does not depend on the backend, and the
    trials on TensorFlow below (the input path, the ladder) go through it too."""
    backend = "jax"
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    for k in [k for k in os.environ if k not in ENV]:
        monkeypatch.delenv(k, raising=False)
    s = script(tmp_path, TINY)
    cands = {"default": {"own": True, "steps_per_execution": 1, "jit_compile": "auto"},
             "spe 4": {"steps_per_execution": 4, "jit_compile": "auto"}}
    res = run_trial(s, ["a", "--b"], Candidate("x", {"KERAS_BACKEND": backend}), trial(cands, rounds=2), 120)
    assert res["status"] == "ok", res
    assert "ARGV ['a', '--b']" in res["stdout"] and "BEFORE FIT" in res["stdout"] and "AFTER FIT" not in res["stdout"]
    assert res["backend"] == backend and res["batch_size"] == 16 and res["steps_in_epoch"] == 32
    out = all(res["candidates"][n].get("dropped") for n in cands if n != "default")
    for name in cands:  # every round, or one where a clear loser after round 1 was not measured again (the reference
        rec = res["candidates"][name]  # too, where every contender was: nothing left to compare it with)
        rounds = 1 if (rec.get("dropped") or out) else 2
        assert len(rec["steps_per_s"]) == rounds and min(rec["steps_per_s"]) > 0, rec


def test_a_result_and_a_phase_stand_on_lines_of_their_own_after_output_without_a_newline(capfd):
    """TensorFlow's overfit-and-underfit tutorial prints a dot an epoch without a newline (EpochDots); the result
    written after it went on the dot's line, the parent found no result, and the trial read "failed"."""
    from redline.tuning import trials, wire

    print(".", end="", flush=True)
    wire.phase("measuring")
    print("..", end="", flush=True)
    wire.emit({"status": "ok", "candidates": {}})
    out = capfd.readouterr().out
    assert trials._result_line(out) == {"status": "ok", "candidates": {}}, out
    assert wire.PHASE + "measuring" in out.splitlines()


MIRRORED = """
import numpy as np
import tensorflow as tf
import keras
strategy = tf.distribute.MirroredStrategy()
with strategy.scope():
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
x = np.random.default_rng(0).random((512, 8)).astype("float32")
model.fit(x, x[:, :1], batch_size=16, epochs=2, verbose=0)
"""


def test_a_model_built_under_a_distribution_strategy_is_measured_in_its_scope(tmp_path, monkeypatch):
    """The distributed-training guide's pattern: model and compile under ``MirroredStrategy().scope()``. The trial
    builds the optimizer and recompiles for each candidate: outside the scope, TensorFlow refuses to make the
    optimizer's variables ("Need to be inside with strategy.scope()"), and tune failed on the script as written."""
    for k in [k for k in os.environ if k not in ENV]:
        monkeypatch.delenv(k, raising=False)
    cands = {"default": {"own": True, "steps_per_execution": 1, "jit_compile": "auto"}}  # recompiled too
    res = run_trial(script(tmp_path, MIRRORED), [], Candidate("x", {"KERAS_BACKEND": "tensorflow"}), trial(cands), 120)
    assert res["status"] == "ok", res.get("error")
    assert min(res["candidates"]["default"]["steps_per_s"]) > 0, res["candidates"]


@pytest.mark.slow
def test_a_script_that_cannot_run_on_a_backend_is_dropped_with_the_reason(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    res = run_trial(script(tmp_path, TF_OPS), [], Candidate("jax", {"KERAS_BACKEND": "jax"}), trial(), 120)
    assert res["status"] in ("failed", "script-error") and res["error"], res  # it fails where it meets tf ops
    c = Candidate("jax")
    from redline.tuning.absorb import absorb as _absorb

    _absorb(c, res)
    assert c.error and not c.runs
    c.runs = [10.0, 10.0, 10.0]  # a failed candidate is never chosen, whatever figures it carries
    assert not better(c, Candidate("as written", runs=[1.0, 1.0, 1.0]))


@pytest.mark.slow
@pytest.mark.parametrize("text, status, words", [
    ("import sys\nprint('hello')\nraise KeyError('no data file')\n", "script-error", "KeyError: 'no data file'"),
    ("print('I only print')\n", "no-fit", "without calling Model.fit"),
    ("import sys\nsys.exit(3)\n", "no-fit", "exited with code 3"),
])
def test_scripts_that_never_reach_fit(tmp_path, text, status, words):
    res = run_trial(script(tmp_path, text), [], Candidate("x"), trial(), 60)
    assert res["status"] == status and words in res["error"]


PIPELINE = """
import numpy as np, tensorflow as tf, keras
x = np.random.default_rng(0).random((1024, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
ds = tf.data.Dataset.from_tensor_slices((x, y)).map(lambda a, b: (tf.math.sqrt(a + 1.0), b)).batch(16)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(ds, epochs=1, verbose=0)
"""


@pytest.mark.slow
@pytest.mark.parametrize("text, allow, expected", [  # without --allow: test_input_candidates_by_kind_and_what_is_not_measured
    (PIPELINE, ["order"], {"as written", "input: redline.data.optimize", "input: optimize, any order"}),
    (TINY, ["batch"], {"as written", "input: redline.data pipeline", "input: batch x2", "input: batch x4"}),
])
def test_the_input_path_is_measured_in_the_process_and_the_math_changing_ones_only_when_allowed(tmp_path, text, allow,
                                                                                                  expected):
    res = run_trial(script(tmp_path, text), [], Candidate("x"), {**trial(rounds=2, seconds=0.08),
                                                                 "inputs": {"allow": allow, "usable": 2}},
                    120)
    assert res["status"] == "ok", res
    assert set(res["inputs"]) == expected, res["inputs"]
    alone = all(res["inputs"][n].get("dropped") for n in expected - {"as written"})  # every rewrite out at calibration
    for name in expected:
        runs, dropped = res["inputs"][name].get("steps_per_s"), res["inputs"][name].get("dropped")  # (a loser: 1 round)
        if runs is None:  # not measured: only where the input alone bounds what a rewrite could gain (input_bound)
            import re

            from redline.tuning.input_bound import LEAD

            lead = re.search(r"([\d,]+)x the", dropped or "")
            assert lead and float(lead.group(1).replace(",", "")) >= LEAD, res["inputs"]
            continue
        assert len(runs) == (1 if dropped or alone else 2) and min(runs) > 0, res["inputs"]
        if not (dropped or alone):  # the input path's rounds time the epoch starts they cross
            assert res["inputs"][name]["epoch_starts_timed"] is True, res["inputs"]
    from redline.tuning.compare import beats, median

    base = res["inputs"]["as written"]["steps_per_s"]
    winners = [n for n in expected - {"as written"} if beats(res["inputs"][n].get("steps_per_s"), base)]
    fastest = max(winners, key=lambda n: median(res["inputs"][n]["steps_per_s"]), default=None)
    if res.get("input_note"):  # a repeated rewrite won, but the input as written with its best knobs ran faster
        assert res["input_chosen"] is None and fastest is not None and fastest in res["input_note"], res
    else:
        assert res["input_chosen"] == fastest, res["inputs"]  # the rule, applied to the figures the trial reports
    assert len(res["candidates"]["default"]["steps_per_s"]) == 2  # stage 2 ran on the chosen input


def test_input_candidates_by_kind_and_what_is_not_measured():
    from redline.data.rewrite import candidates

    assert set(candidates("dataset")[0]) == {"input: redline.data.optimize"}
    assert candidates("dataset", ("order",))[0]["input: optimize, any order"]["deterministic"] is False
    assert "batch x2" not in " ".join(candidates("arrays")[0]) and "input: batch x2" in candidates("arrays", ("batch",))[0]
    found, skipped = candidates("generator", ("batch", "order"))
    assert not found and any("generator object" in s for s in skipped) and any("larger batches" in s for s in skipped)
    assert candidates("pydataset", usable=4)[0] == {"input: PyDataset, 4 threads": {"input": "workers", "workers": 4}}
    assert not candidates("pydataset", usable=1)[0]


def test_rewrites_keep_the_data_and_refuse_what_they_cannot_carry():
    import numpy as np
    import tensorflow as tf

    from redline.data.rewrite import Unsupported, input_kind, rewrite

    x = np.arange(40, dtype="float32").reshape(20, 2); y = np.arange(20, dtype="float32")
    ds, y2, bs, extra = rewrite({"input": "pipeline"}, x, y, 8, {"shuffle": False})
    assert input_kind(ds) == "dataset" and y2 is None and bs is None and extra == {"steps_per_epoch": 3}
    got = np.concatenate([b[1].numpy() for b in ds.take(3)])
    assert np.array_equal(got, y)                                       # every row once an epoch, in order when unshuffled
    assert rewrite({"input": "batch", "factor": 2}, x, y, 8, {})[2] == 16
    assert rewrite({"input": "batch", "factor": 2}, x, y, None, {})[2] == 64   # Keras' default 32, doubled
    for kwargs in ({"sample_weight": y}, {"steps_per_epoch": 2}):
        with pytest.raises(Unsupported, match=next(iter(kwargs))):
            rewrite({"input": "pipeline"}, x, y, 8, kwargs)
    with pytest.raises(Unsupported, match="validation_split"):
        rewrite({"input": "batch", "factor": 2}, x, y, 8, {"validation_split": 0.2})
    with pytest.raises(Unsupported, match="not a tf.data.Dataset"):
        rewrite({"input": "optimize"}, x, y, 8, {})
    opt = rewrite({"input": "optimize", "deterministic": True}, tf.data.Dataset.from_tensor_slices(x).batch(4), None, None, {})[0]
    assert opt.options().deterministic is True and opt.options().autotune.enabled is False


def test_the_arrays_pipeline_gives_a_two_input_model_its_list_of_arrays_as_two_inputs():
    """A Siamese network fit on [x1, x2]: tf.data stacked the list into one array, and the model said it "received 1
    input tensors" (the rewrite was dropped with that error, never measured)."""
    import keras
    import numpy as np

    from redline.data.rewrite import rewrite

    a = keras.Input((3,)); b = keras.Input((3,))
    model = keras.Model([a, b], keras.layers.Dense(1)(keras.layers.concatenate([a, b])))
    model.compile("sgd", "mse")
    x1, x2, y = (np.random.default_rng(i).random((12, 3), dtype=np.float32) for i in range(3))
    ds, _, _, extra = rewrite({"input": "pipeline"}, [x1, x2], y[:, :1], 4, {"shuffle": False, "validation_split": 0.25})
    (bx1, bx2), by = next(iter(ds))
    assert np.array_equal(bx1.numpy(), x1[:4]) and np.array_equal(bx2.numpy(), x2[:4]), (bx1, bx2)
    model.fit(ds, **extra, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == extra["steps_per_epoch"] == 3


def test_the_arrays_pipeline_carries_validation_split_as_keras_cuts_it():
    """The training part goes through the pipeline, the last part is validated on at the script's batch; where the
    script also passes validation_data, Keras ignores validation_split, and so does the rewrite."""
    import numpy as np

    from redline.data.rewrite import rewrite

    x = np.arange(40, dtype="float32").reshape(20, 2); y = np.arange(20, dtype="float32")
    ds, _, _, extra = rewrite({"input": "pipeline"}, x, y, 4, {"shuffle": False, "validation_split": 0.25})
    assert extra["steps_per_epoch"] == 4 and extra["validation_split"] == 0.0 and extra["validation_batch_size"] == 4
    vx, vy = extra["validation_data"]
    assert np.array_equal(vy, y[15:]) and np.array_equal(vx, x[15:])
    assert np.array_equal(np.concatenate([b[1].numpy() for b in ds.take(4)]), y[:15])  # the training part, once
    own = rewrite({"input": "pipeline"}, x, y, 4, {"validation_split": 0.25, "validation_batch_size": 2})[3]
    assert own["validation_batch_size"] == 2  # the script's own validation batch stays
    given = rewrite({"input": "pipeline"}, x, y, 4, {"validation_split": 0.25, "validation_data": (x, y)})[3]
    assert given == {"steps_per_epoch": 5, "validation_split": 0.0}  # trains on all of it; its validation_data stays


def test_a_fit_under_the_pipeline_rewrite_validates_on_what_keras_would():
    """A real fit (this process's backend, unshuffled, the same initial weights, class weights): the rewritten call
    trains on the same batches and validates on the same samples as Keras' own validation_split, so its losses match."""
    import keras
    import numpy as np

    from redline.data.rewrite import rewrite

    rng = np.random.default_rng(0)
    x = rng.normal(size=(90, 3)).astype("float32"); y = (x[:, 0] > 0).astype("float32")

    def model():
        keras.utils.set_random_seed(1)
        m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        return m

    kw = {"batch_size": 16, "epochs": 2, "shuffle": False, "validation_split": 0.3, "class_weight": {0: 1.0, 1: 3.0},
          "verbose": 0}
    own = model().fit(x, y, **kw).history
    ds, _, _, extra = rewrite({"input": "pipeline"}, x, y, 16, kw)
    new = model().fit(ds, **{**kw, "batch_size": None, **extra}).history
    for key in ("loss", "val_loss"):
        assert new[key] == pytest.approx(own[key], rel=1e-4), (key, own, new)


# -- choosing --------------------------------------------------------------------------------------------------------

def test_a_gain_within_the_spread_is_not_taken():
    default = Candidate("d", runs=[100.0, 130.0, 115.0])      # 26% spread
    assert not better(Candidate("c", runs=[125.0, 128.0, 126.0]), default)   # +10%: inside the noise
    assert better(Candidate("c", runs=[160.0, 162.0, 158.0]), default)       # +39%: beyond it
    assert not better(Candidate("c", runs=[104.0, 104.0, 104.0]), Candidate("d", runs=[100.0, 100.0, 100.0]))  # < 5%
    assert not better(Candidate("c", runs=[200.0, 201.0]), default)  # two measurements: their spread says too little


def test_process_medians_that_agree_by_chance_do_not_hide_the_spread_of_their_rounds():
    """cnn_augment's tune: two processes' medians 0.7% apart, their rounds 94-126 steps/s."""
    default = Candidate("as written", runs=[93.6, 120.6, 125.8, 112.6, 119.7, 122.9], passes=[120.6, 119.7])
    assert default.spread > 0.08  # the rounds (one slowed round left out), not the 0.7% between the medians
    assert not better(Candidate("c", runs=[130.0, 131.0, 129.0, 131.5, 130.5, 129.5], passes=[130.0, 130.5]), default)
    assert better(Candidate("c", runs=[160.0, 161.0, 159.0, 162.0, 160.5, 159.5], passes=[160.0, 160.5]), default)


INPUT_BOUND = """
import numpy as np, tensorflow as tf, keras

def heavy(x, y):
    m = tf.reshape(tf.tile(x, [256]), (64, 64))
    for _ in range(6):
        m = tf.linalg.matmul(m, m) / 64.0
    return tf.reduce_mean(m, axis=0)[:8], y

x = np.random.default_rng(0).random((2048, 16), dtype=np.float32); y = np.ones((2048, 1), "float32")
ds = tf.data.Dataset.from_tensor_slices((x, y)).map(heavy).batch(32)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(ds, epochs=2)
"""


@pytest.mark.slow
def test_diagnose_an_unchanged_script_and_report_its_record(tmp_path):
    s = script(tmp_path, 'open("touched.txt", "w").write("x")\n' + INPUT_BOUND)  # the script writes in its folder
    rec = tmp_path / "run.jsonl"
    r = subprocess.run([sys.executable, "-m", "redline", "diagnose", s, "--seconds", "0.5", "--repeats", "1", "--json",
                        "--save", str(rec)], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout)
    from redline.diagnosis.bottleneck import Breakdown, classify

    b = Breakdown(**{k: d["breakdown"][k] for k in ("step_s", "input_s", "overhead_s", "compute_s")})
    assert [d["kind"], d["input_grade"]] == list(classify(b)), d["breakdown"]  # its verdict, from its own figures
    assert d["record"] == str(rec) and rec.exists()
    assert not (tmp_path / "touched.txt").exists()  # the trial ran in a sandbox: the user's folder has only the record
    r = subprocess.run([sys.executable, "-m", "redline", "report", str(rec), "-o", str(tmp_path / "r.html")],
                       capture_output=True, text=True, env=ENV, timeout=120)
    assert r.returncode == 0 and f"verdict: {d['kind']}" in r.stdout


@pytest.mark.slow
def test_the_notebook_api_measures_here_and_restores_the_model():
    """redline.tune(model, x, y): in-process knobs measured, the weights, optimizer state and compilation put back."""
    code = textwrap.dedent("""
        import json, numpy as np, keras, redline
        x = np.random.default_rng(0).random((1024, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
        model.compile("adam", "mse", steps_per_execution=1)
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        before = [v.numpy().copy() for v in model.weights + model.optimizer.variables]
        r = redline.tune(model, x, y, batch_size=16, budget_s=45, seconds=0.1, allow=("batch",))
        after = [v.numpy() for v in model.weights + model.optimizer.variables]
        same = all(np.array_equal(a, b) for a, b in zip(before, after))
        fk = r.fit_kwargs()
        model.fit(**({"x": x, "y": y, "batch_size": 16} | fk), epochs=1, verbose=0)  # what it says to pass, fit takes
        print(json.dumps({"same": same, "n": len(before),
                          "spe": model.steps_per_execution, "kwargs": r.compile_kwargs(), "text": str(r),
                          "names": [c.name for c in r.candidates], "default_runs": len(r.default.runs),
                          "inputs": [c.name for c in r.inputs], "input": r.input.name if r.input else None,
                          "fit_kwargs": sorted(fk)}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert "Epoch 1/" not in r.stdout and "/step" not in r.stdout, r.stdout[:2000]  # no progress bars of its fits
    assert d["same"] and d["n"] > 4 and d["spe"] == 1        # the model as it was, compiled as it was
    assert d["default_runs"] == 3 and "jit" in d["names"] and "default" in d["text"]
    assert set(d["kwargs"]) <= {"steps_per_execution", "jit_compile"}
    assert d["inputs"] == ["as written", "input: redline.data pipeline", "input: batch x2", "input: batch x4"]
    assert (d["input"] is None) == (d["fit_kwargs"] == []), d      # fit_kwargs carry the chosen input, and only then


@pytest.mark.slow
def test_the_measurements_report_what_they_have_after_each_round_so_a_trial_stopped_mid_run_keeps_it():
    code = DIRECT + textwrap.dedent("""
        import redline.tuning.measure as measure
        import redline.tuning.rounds as stage_rounds
        stage_rounds.first_round_cuts = stage_rounds.cannot_win = lambda *a: {}  # both through every round, on any CPU
        parts = []
        trial = {"candidates": {"default": {"own": True}, "spe 4": {"steps_per_execution": 4}}, "rounds": 3,
                 "seconds": 0.05}
        final = measure_fit(model, keras.Model.fit, {"x": x, "y": y, "batch_size": 16}, trial, Compiles, lambda m: None,
                            emit=lambda p: parts.append(json.loads(json.dumps(p, default=str))))  # as sent
        print(json.dumps({"parts": [{n: len(r.get("steps_per_s", [])) for n, r in p["candidates"].items()} for p in parts],
                          "partial": [p.get("partial") for p in parts], "final": "partial" in final,
                          "runs": {n: len(r.get("steps_per_s", [])) for n, r in final["candidates"].items()}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert all(d["partial"]) and not d["final"], d  # partial results are marked; the final one is not
    counts = [p.get("default", 0) for p in d["parts"]]
    assert counts == sorted(counts) and counts[-1] == d["runs"]["default"] == 3, d  # each round adds to the last
    assert d["parts"][0].get("default", 0) == 0, d  # the first is sent after the calibrations, before any round


def test_a_lone_candidate_s_calibration_run_is_its_first_round_and_the_script_s_own_input_is_calibrated_once():
    """A per-process trial measures one candidate: nothing to interleave, so its calibration's last run, sized to a
    whole round, is its first round (one fit fewer). In the in-process stage, stage 2 reuses stage 1's calibration of
    the script's own compile on the input as written."""
    code = DIRECT + textwrap.dedent("""
        import redline.tuning.compare as compare
        import redline.tuning.rounds as rounds
        compare.beats = lambda runs, base, noise=(): False  # the input as written stays, whatever this CPU measures
        rounds.first_round_cuts = lambda *a: {}  # and spe 4 runs its second round, whichever read faster in its first
        events = []
        def fit(*a, **k):
            events.append("fit")
            return keras.Model.fit(*a, **k)
        out = {}
        # a calibration run that came out shorter than 3/4 of a round (its size is read from a few warm steps) is not
        # a round: up to 5 tries for one that is (3 fell short each in one fresh-clone run under the suite's load)
        for name, trial in [*[("alone", {"candidates": {"default": {"own": True}}, "rounds": 3, "seconds": 0.3})] * 5,
                            ("stage", {"candidates": {"default": {"own": True}, "spe 4": {"steps_per_execution": 4}},
                                       "rounds": 2, "seconds": 0.1, "inputs": {"allow": [], "usable": 2}}),
                            # its one rival dropped in its calibration (more steps an execution than an epoch has)
                            ("nothing left", {"candidates": {"default": {"own": True},
                                                             "spe huge": {"steps_per_execution": 10**6}},
                                              "rounds": 3, "seconds": 0.1}),
                            # the input rewrites bounded without a run (the input read alone, here said by the test)
                            ("bounded", {"candidates": {"default": {"own": True}, "spe 4": {"steps_per_execution": 4}},
                                         "rounds": 2, "seconds": 0.1, "inputs": {"allow": [], "usable": 2}}),
                            # the ladder bounded by the host's share of a call (here said by the test)
                            ("ladder bounded", {"candidates": {"default": {"own": True},
                                                               "spe 4": {"steps_per_execution": 4}},
                                                "ladder": {"flattens": 0.05}, "rounds": 2, "seconds": 0.1})]:
            if name in out and any("is round 1" in e for e in out[name]["events"]):
                continue
            if name == "bounded":
                import redline.tuning.measure as measure
                measure.input_cannot_matter = lambda *a: "bounded by the test"
            if name == "ladder bounded":
                import redline.tuning.spe_bound as spe_bound
                spe_bound.cannot_matter = lambda *a: "the ladder bounded by the test"
            events.clear()
            parts = []
            res = measure_fit(model, fit, {"x": x, "y": y, "batch_size": 16}, trial, Compiles, events.append,
                              emit=lambda p: parts.append({**json.loads(json.dumps(p, default=str)),
                                                           "after": [e.split("] ")[-1] for e in events
                                                                     if "calibrating " in e]}))
            out[name] = {"events": list(events), "runs": len(res["candidates"]["default"]["steps_per_s"]),
                         "first_part": parts[0] if parts else None,
                         "skip_part": next((p for p in parts if p.get("ladder_skip")), None),
                         "seconds": res["candidates"]["default"].get("seconds"),
                         "dropped": "error" in res["candidates"].get("spe huge", {})}
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    alone = d["alone"]
    assert alone["runs"] == 3, d
    said = [i for i, e in enumerate(alone["events"]) if "is round 1" in e]
    assert len(said) == 1 and alone["events"][said[0] + 1:].count("fit") == 2, alone  # 2 more rounds, not 3
    assert alone["seconds"][0] >= 0.75 * 0.3, alone  # a whole round's length, not a short sizing run
    stage = d["stage"]["events"]
    two = next(i for i, e in enumerate(stage) if "inputs measured" in e)
    calibrated = lambda events: [e.split("] ")[-1] for e in events if "calibrating " in e]  # noqa: E731 (after its time)
    assert "calibrating as written" in calibrated(stage[:two]), stage  # stage 1: the script's own compile, input as written
    assert "calibrating spe 4" in calibrated(stage[two:]) and "calibrating default" not in calibrated(stage[two:]), stage
    assert d["stage"]["runs"] == 2, d
    # its first partial result comes once the input path is decided, before the knobs' calibrations: a stage stopped
    # in them still reports it
    first = d["stage"]["first_part"]
    assert first["inputs"].get("as written", {}).get("steps_per_s") and first["candidates"] == {}, first
    assert "calibrating as written" in first["after"] and "calibrating spe 4" not in first["after"], first  # before
    # the knobs' calibrations, also where the input path ran no rounds (the rewrites bounded)
    first = d["bounded"]["first_part"]
    assert first["inputs"]["input: redline.data pipeline"]["dropped"] == "bounded by the test", first
    assert first["after"] == ["calibrating as written"] and first["candidates"] == {}, first
    # a ladder bounded by the script's own calibration is decided and reported before any rival's calibration (jit's,
    # a new XLA compile and 2 slow steps, was 36 s of a 50-s stage on xception_scratch at 64x64)
    skip = d["ladder bounded"]["skip_part"]
    assert skip and skip["ladder_skip"] == "the ladder bounded by the test", d["ladder bounded"]
    assert skip["after"] == ["calibrating default"], skip
    # a stage whose every rival was dropped in its calibration: the script's own calibration is its figure, and no
    # round is run with nothing to compare it with (xception_scratch at 64x64: 3 rounds of 2 steps of 2.3 s)
    left = d["nothing left"]
    assert left["dropped"] and left["runs"] == 1, left
    gone = next(i for i, e in enumerate(left["events"]) if "dropped spe huge" in e)
    assert "fit" not in left["events"][gone:] and "nothing left to compare" in " ".join(left["events"][gone:]), left


def test_a_rival_whose_bar_is_slow_steps_warms_in_two_executions_not_three():
    """A rival's bar is half the fastest rate measured so far: where one execution at that rate takes a third of a
    run or more, the warm-up's second execution is timed and the third is not run (xception_scratch: JAX's third
    warm execution took 50 s more to read 0.02 steps/s against a bar of 0.09). Fast steps still warm in 3."""
    code = DIRECT + textwrap.dedent("""
        first = []
        def fit(m, x=None, y=None, **k):
            if not first:
                first.append(k.get("steps_per_epoch"))
            return keras.Model.fit(m, x, y, **k)
        out = {}
        for name, bar in (("slow", 0.001), ("none", None)):
            first.clear()
            trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.3,
                     **({"behind_below": bar} if bar else {})}
            measure_fit(model, fit, {"x": x, "y": y, "batch_size": 16}, trial, Compiles, lambda m: None)
            out[name] = first[0]
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d == {"slow": 2, "none": 3}, d


def test_a_rival_on_jax_whose_first_execution_says_it_is_far_behind_runs_no_second():
    """JAX says how long it compiled: a rival with slow steps whose first execution, its compile left out, reads far
    under its bar stops there (the verdict is given by the test; the fit, the stop and the report are real)."""
    code = DIRECT + textwrap.dedent("""
        import redline.tuning.first_look as first_look
        seen = []
        def verdict(took, compile_s, spe, bar, start_s):
            seen.append((took, compile_s, start_s))
            return 0.001
        first_look.verdict = verdict
        batches = []
        class Count(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                batches.append(batch)
        def fit(m, x=None, y=None, callbacks=(), **k):
            return keras.Model.fit(m, x, y, callbacks=[*callbacks, Count()], **k)
        got = {}
        # plain, then where the trial's loss check of 2 steps is the warm-up (numerics.as_warm_up)
        for name, more in (("plain", {}), ("check", {"check": True, "check_steps": 2})):
            batches.clear(), seen.clear()
            trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.3, "behind_below": 0.001,
                     "epoch_overhead_s": 0.25, **more}
            said = []
            res = measure_fit(model, fit, {"x": x, "y": y, "batch_size": 16}, trial, Compiles, said.append)
            got[name] = {"default": res["candidates"]["default"], "batches": list(batches), "seen": list(seen),
                         "check": "check" in res, "folded": any("is the warm-up" in m for m in said)}
        print(json.dumps(got))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                       env={**ENV, "KERAS_BACKEND": "jax"})
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    for d in got.values():
        assert d["default"]["behind"] == 0.001 and d["default"]["first_execution"], d
        assert d["batches"] == [0] and len(d["seen"]) == 1, d  # one execution, not the warm-up's two
        assert not d["check"], d  # a loss check cut short after one of its 2 steps is not reported
    assert got["check"]["folded"] and not got["plain"]["folded"], got  # the second ran as the check
    took, compile_s, start_s = got["plain"]["seen"][0]
    assert 0 < compile_s < took, got  # JAX reported its compile, inside the first execution
    assert start_s == 0.25, got  # the script as written's epoch overhead, as the trial was given it


def test_a_rival_on_jax_far_behind_while_its_first_execution_still_runs_ends_the_trial_there():
    """Once JAX has said the step is compiled, a first execution still running when even its ending now would put
    the rival under MARGIN x its bar is judged there: the trial ends from the watch with the rival behind, its figure
    an upper bound (JAX at 22 s a step on xception_scratch at 64x64, against a cut at about 9 s). The step here waits
    60 s on the host; the fit, the compile events, the watch and the trial's end are real."""
    code = DIRECT + textwrap.dedent("""
        import os, time, jax
        class Slow(keras.layers.Layer):
            def call(self, v):
                jax.debug.callback(lambda first: time.sleep(60), v[0, 0])
                return v
        model = keras.Sequential([keras.Input((8,)), Slow(), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        Compiles.calls = {id(model): ((), {})}
        said = []
        def finish(result):
            print(json.dumps({"default": result["candidates"]["default"], "backend": result["backend"],
                              "said": [m for m in said if "still running" in m]}), flush=True)
            os._exit(0)
        fit = lambda m, *a, **k: keras.Model.fit(m, *a, **k)
        trial = {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 0.3, "behind_below": 10.0}
        measure_fit(model, fit, {"x": x, "y": y, "batch_size": 16}, trial, Compiles, said.append, finish=finish)
        print(json.dumps({"ended": "with the fit, not from the watch"}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=400,
                       env={**ENV, "KERAS_BACKEND": "jax"})
    assert r.returncode == 0, r.stderr[-3000:]
    from redline.tuning.first_look import MARGIN, MIN_STEP_S

    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d.get("backend") == "jax", d
    behind = d["default"]
    assert behind["unfinished"] and behind["first_execution"] and behind["bar"] == 10.0, d
    assert 0 < behind["behind"] < MARGIN * 10.0 and behind["took_s"] >= MIN_STEP_S, d  # the most it could still be
    assert len(d["said"]) == 1, d


def test_the_watch_judges_a_running_execution_only_after_its_backend_compile_and_only_once():
    """tuning/first_look.Watch on a fake clock and fake compile events: nothing before JAX has said a backend compile
    ended (a trace or a lowering after it: another compile under way), then the verdict as soon as the seconds since
    it put the rival under MARGIN x the bar; an execution that ended first is never judged by the watch."""
    import time as _time

    from redline.tuning.first_look import MARGIN, MIN_STEP_S, Compiled, Watch

    now = [100.0]
    clock = lambda: now[0]  # noqa: E731
    heard = []

    def watched(bar=1.0, start_s=0.0):
        compiled = Compiled(clock)
        watch = Watch(compiled, 1, bar, start_s, lambda rate, step_s: heard.append((rate, step_s)), clock)
        watch.begin()
        return compiled, watch

    def settle(watch):  # the watch's thread has looked at least twice since
        for _ in range(2):
            with watch.lock:
                pass
            _time.sleep(0.3)

    compiled, watch = watched()
    now[0] += 50.0
    settle(watch)
    assert heard == [], heard  # no compile heard since it began
    compiled.heard("/jax/core/compile/jaxpr_trace_duration", 3.0)
    now[0] += 50.0
    settle(watch)
    assert heard == [], heard  # traced, not yet compiled: a compile may be under way
    compiled.heard("/jax/core/compile/backend_compile_duration", 4.0)
    cut = max(MIN_STEP_S, 1 / (MARGIN * 1.0))
    now[0] += cut * 0.9
    settle(watch)
    assert heard == [], heard  # under the cut since its compile
    now[0] += cut * 0.2
    deadline = _time.monotonic() + 30
    while not heard and _time.monotonic() < deadline:
        _time.sleep(0.05)
    assert len(heard) == 1 and heard[0][0] < MARGIN * 1.0 and heard[0][1] >= cut, heard
    now[0] += 100.0
    settle(watch)
    assert len(heard) == 1, heard  # once
    heard.clear()
    compiled, watch = watched(start_s=5.0)  # an epoch's start taken off: 5 s more before the cut
    compiled.heard("/jax/core/compile/backend_compile_duration", 1.0)
    now[0] += cut + 1.0
    settle(watch)
    assert heard == [], heard
    watch.end()  # the execution ended: the callback judges it, not the watch
    now[0] += 100.0
    settle(watch)
    assert heard == [] and not watch.judged, heard
    # what the tune says of it: the figure is the most the rival could still be
    from redline.tuning.absorb import absorb
    from redline.tuning.result import Candidate

    jax = Candidate("backend jax")
    absorb(jax, {"status": "ok", "candidates": {"default": {"behind": 0.111, "bar": 0.225, "took_s": 9.0,
                                                             "first_execution": True, "unfinished": True}}})
    assert jax.dropped.startswith("decisively behind: at most 0.11 training steps/s: its first execution had not "
                                  "ended 9 s after its compile, under 50%") and not jax.runs, jax.dropped


def test_a_first_execution_s_verdict_leaves_its_compile_out_and_needs_a_long_step_far_under_the_bar():
    from redline.tuning.first_look import MARGIN, MIN_STEP_S, verdict

    # xception_scratch at 64x64 on JAX: 26 s of which 3.6 compile, against a bar of 0.2 steps/s
    assert verdict(25.6, 3.6, 1, 0.2) == 1 / 22.0
    assert verdict(25.6, 0.0, 1, 0.2) == 1 / 25.6  # nothing reported: the whole execution is the step
    assert verdict(25.6, 3.6, 1, 1 / 22.0 / MARGIN * 0.99) is None  # under the bar, not under MARGIN x the bar
    assert verdict(MIN_STEP_S * 0.9 + 30.0, 30.0, 1, 100.0) is None  # a short step: one-time costs may be most of it
    assert verdict(6.0, 1.0, 4, 100.0) is None  # spe 4: 5 s is 1.25 s a step, under MIN_STEP_S
    assert verdict(25.6, 3.6, 1, None) is None
    # an epoch's start (the script as written's epoch overhead: a shuffle buffer filled, validation) taken off too
    assert verdict(25.6, 3.6, 1, 0.2, 2.0) == 1 / 20.0
    assert verdict(25.6, 3.6, 1, 0.2, 20.5) is None  # what is left is too short a step to judge


def test_where_the_loss_check_runs_as_many_steps_as_the_warm_up_it_is_the_warm_up_one_fit_fewer(tmp_path):
    """xception_scratch: its check ran 3 steps of 5 s after the measurements (21 s of an 87-s first trial), the same 3
    steps of the script's own compile its calibration had just warmed up with. Where the counts agree, the check is the
    warm-up: no fit of its own, and the same loss a check of its own gives from the same weights. A later trial, told
    the count (fast steps check 20), warms up with that many steps instead of 3, so its check is the warm-up too
    (fine_tune: a check's own fit took 6.4 s for its epoch's 10 steps of 0.17 s), a whole epoch's count included; a
    rival with a bar warms up short (its verdict first) and checks after the measurements, as before."""
    code = DIRECT + textwrap.dedent(f"""
        from redline.tuning import numerics
        calls = []
        def fit(*a, **k):
            calls.append([k.get("steps_per_epoch"), k.get("shuffle") is False])  # a check's fit: arrays in order
            return keras.Model.fit(*a, **k)
        out = {{}}
        for name, extra in (("none", {{}}), ("three", {{"check": True, "check_steps": 3}}),
                            ("twenty", {{"check": True, "check_steps": 20}}),
                            ("rival", {{"check": True, "check_steps": 20, "behind_below": 0.001}}),
                            ("epoch", {{"check": True, "check_steps": 64}})):
            calls.clear()
            trial = {{"candidates": {{"default": {{"own": True}}}}, "rounds": 2, "seconds": 0.1,
                     "weights": {str(tmp_path / "w.npz")!r}, **extra}}
            res = measure_fit(model, fit, {{"x": x, "y": y, "batch_size": 16}}, trial, Compiles, lambda m: None)
            out[name] = {{"fits": list(calls), "check": res.get("check")}}
        feed = type("F", (), {{"x": x, "y": y, "batch_size": 16, "cap": 64, "kwargs": {{}}, "endless": False}})
        out["alone"] = numerics.check(model, keras.Model.fit, feed, 1, {str(tmp_path / "w.npz")!r}, open, 3)
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    checks = lambda fits: [i for i, (_, ordered) in enumerate(fits) if ordered]  # noqa: E731  (the fits in order)
    assert d["none"]["check"] is None and checks(d["none"]["fits"]) == [], d
    assert checks(d["three"]["fits"]) == [0] and d["three"]["fits"][0][0] == 3, d  # the warm-up, no fit of its own
    assert d["three"]["check"]["steps"] == 3 and d["three"]["check"]["warm_up"], d
    assert checks(d["twenty"]["fits"]) == [0] and d["twenty"]["fits"][0][0] == 20, d  # the warm-up, 20 steps
    assert d["twenty"]["check"]["steps"] == 20 and d["twenty"]["check"]["warm_up"], d
    # a count of the epoch's whole 64 batches: one pass, the warm-up too
    assert checks(d["epoch"]["fits"]) == [0] and d["epoch"]["check"]["steps"] == 64, d
    assert d["epoch"]["check"]["warm_up"], d
    fits = d["rival"]["fits"]
    assert fits[0][0] < 20 and checks(fits) == [len(fits) - 1] and fits[-1][0] == 20, d  # after the measurements
    assert d["rival"]["check"]["steps"] == 20 and "warm_up" not in d["rival"]["check"], d
    # from the same saved weights, seed and order: the loss a check of its own reaches
    assert d["alone"]["weights"] == "shared" and d["alone"]["loss"] == pytest.approx(d["three"]["check"]["loss"],
                                                                                    rel=1e-3), d


def test_the_calibration_compiles_an_epoch_s_smaller_last_batch_before_any_timed_run():
    """1,000 rows in batches of 16 end with a batch of 8: its step is compiled by a fit of exactly those 8 rows right
    after the warm-up, where short epochs will take the timed runs to it. 1,024 rows have no such batch. A model built
    at its construction (an Input first) needs no step of its own to build its optimizer (xception_scratch: a step of
    5 s and an input iterator's end, in every trial process); one built at its first call does. The last batch is
    compiled ahead where an epoch takes under 2.5 x the runs' seconds: at 2 s, 63 steps in 5 s (at 0.5 s, a loaded CI
    run read the warm-up too slow for that and compiled none)."""
    code = DIRECT + textwrap.dedent("""
        calls = []
        def fit(m, x=None, y=None, **k):
            calls.append(len(x))
            return keras.Model.fit(m, x, y, **k)
        out = {}
        lazy = keras.Sequential([keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
        lazy.compile("adam", "mse")
        Compiles.calls[id(lazy)] = ((), {})
        for name, m, rows in (("1000", model, 1000), ("1024", model, 1024), ("lazy", lazy, 1000)):
            calls.clear()
            fresh = not m.built or not m.optimizer.built
            measure_fit(m, fit, {"x": x[:rows], "y": y[:rows], "batch_size": 16},
                        {"candidates": {"default": {"own": True}}, "rounds": 1, "seconds": 2.0}, Compiles, lambda m: None)
            out[name] = {"calls": list(calls), "fresh": fresh, "iterations": int(m.optimizer.iterations.numpy())}
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, "KERAS_BACKEND": "jax"},
                       timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    # the warm-up (the optimizer built without a step), then the last batch alone, before the timed runs
    assert d["1000"]["fresh"] and d["1000"]["calls"][:2] == [1000, 8] and d["1000"]["calls"].count(8) == 1, d
    assert len(d["1000"]["calls"]) > 2, d
    assert 8 not in d["1024"]["calls"] and set(d["1024"]["calls"]) == {1024}, d
    # a model not built before its first call: one step builds it, then the warm-up and the last batch
    assert d["lazy"]["fresh"] and d["lazy"]["calls"][:3] == [1000, 1000, 8], d
    assert d["1000"]["iterations"] == 0, d  # no step before the state the measurements put back


def test_a_trial_killed_at_its_deadline_returns_the_last_partial_result_and_says_what_is_missing(monkeypatch):
    import io
    import subprocess as sp

    from redline.tuning import trials
    from redline.tuning.wire import MARK

    part = {"status": "ok", "partial": True, "candidates": {"default": {"steps_per_s": [10.0]}}, "not_measured": []}

    class Stuck:  # a harness that wrote a partial result, then ran past its deadline
        pid = 2**22 + 12345  # no such process group: the kill finds nothing

        def __init__(self, *a, **k):
            # the partial result, then a result line the kill cut off
            self.stdout = io.StringIO(MARK + json.dumps(part) + "\n" + MARK + '{"status": "ok", "cand')
            self.stderr = io.StringIO("")
            self.returncode = -9

        def wait(self, timeout=None):  # running until killed: every wait with a timeout runs out
            if timeout is not None:
                raise sp.TimeoutExpired("harness", timeout)
            return -9

    monkeypatch.setattr(trials.subprocess, "Popen", Stuck)
    res = trials.run_trial("train.py", [], Candidate("x"), {"candidates": {}}, 1)
    assert res["status"] == "ok" and res["candidates"]["default"]["steps_per_s"] == [10.0], res
    assert res["after_fit"]["status"] == "timeout"
    assert any("stopped at the budget (1 s), in the middle of a run" in n for n in res["not_measured"]), res


@pytest.mark.slow
def test_the_first_trial_counts_the_sequential_maps_of_the_script_s_pipeline(tmp_path):
    """What decides whether "parallel maps" is a candidate (search: none where the count is 0): the sequential maps up
    to the measured fit's figures; at fit 2, those of its pipeline, built after fit 1, too."""
    s = script(tmp_path, """
        import numpy as np, tensorflow as tf, keras
        x = np.random.default_rng(0).random((256, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)])
        model.compile("adam", "mse")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a * 2, b)).batch(16)
        ds = ds.map(lambda a, b: (a, b), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)
        model.fit(ds, epochs=4, verbose=0)
    """)
    first = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "discover": True}, 180)
    assert first["status"] == "ok" and first["sequential_maps"] == 0, first  # fit 1's figures: arrays, no map yet
    # on TensorFlow every trial drops its finished tf.data iterators off the epoch loop, as `redline run` does
    assert first["released"]["released"] + first["released"]["held"] >= 1, first
    again = run_trial(s, [], Candidate("as written"), {**trial({"default": {"own": True}}), "fit_index": 2}, 180)
    assert again["status"] == "ok" and "Dataset" in again["data"] and again["sequential_maps"] == 1, again


def test_a_rewrite_that_cannot_apply_is_a_reason_not_a_line_left_unmeasured():
    """numpy_generator: the input path of a Python generator object stood in "not measured", as if the budget had
    run out before it; no rewrite applies to it, which is decided without measuring."""
    from redline.tuning.feeds import feeds_for
    from redline.tuning.inprocess import _read

    out = {"not_measured": []}
    gen = ((i, i) for i in range(3))
    feeds, specs = feeds_for({"allow": [], "usable": 2}, "generator", gen, None, None, {}, {}, None, False, out)
    assert list(feeds) == ["as written"] and specs == {}
    stage = _read({**out, "status": "ok", "inputs": {}, "candidates": {}}, {})
    assert stage.not_measured == [], stage.not_measured
    assert any(r.startswith("not a candidate here: the input path: fit got a Python generator object")
               for r in stage.reasons), stage.reasons

"""redline tune: the trial harness on real TensorFlow and JAX, the choice and its cache, `redline run` applying it."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

import machines as m
from envs import python_without
from scripts import TF_OPS
from redline.tuning import cache
from redline.tuning.search import Candidate, better, process_candidates, run_trial

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

ENV = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "KERAS_BACKEND", "TF_CONFIG",
                                                                   "XDG_CACHE_HOME", "TF_ENABLE_ONEDNN"))}
ENV["TF_CPP_MIN_LOG_LEVEL"] = "2"

TINY = """
import sys
import numpy as np
import keras
print("ARGV", sys.argv[1:], flush=True)
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
print("BEFORE FIT", flush=True)
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
print("AFTER FIT", keras.backend.backend(), model.steps_per_execution)
sys.exit(7)
"""



def script(tmp_path, text, name="train.py"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def trial(cands=None, rounds=1, seconds=0.2):
    return {"candidates": cands or {"default": {"own": True, "steps_per_execution": 1, "jit_compile": "auto"}},
            "rounds": rounds, "seconds": seconds}


# -- the harness -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_the_first_fit_is_intercepted_and_the_script_s_output_and_argv_kept(tmp_path, monkeypatch, backend):
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
    for name in cands:
        assert len(res["candidates"][name]["steps_per_s"]) == 2 and min(res["candidates"][name]["steps_per_s"]) > 0


@pytest.mark.slow
def test_a_script_that_cannot_run_on_a_backend_is_dropped_with_the_reason(tmp_path):
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    res = run_trial(script(tmp_path, TF_OPS), [], Candidate("jax", {"KERAS_BACKEND": "jax"}), trial(), 120)
    assert res["status"] in ("failed", "script-error") and res["error"], res  # it fails where it meets tf ops
    c = Candidate("jax")
    from redline.tuning.search import _absorb

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
    for name in expected:
        runs, dropped = res["inputs"][name]["steps_per_s"], res["inputs"][name].get("dropped")  # (a clear loser: 1 round)
        assert len(runs) == (1 if dropped else 2) and min(runs) > 0, res["inputs"]
    from redline.tuning.compare import beats, median

    base = res["inputs"]["as written"]["steps_per_s"]
    winners = [n for n in expected - {"as written"} if beats(res["inputs"][n].get("steps_per_s"), base)]
    fastest = max(winners, key=lambda n: median(res["inputs"][n]["steps_per_s"]), default=None)
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
    for kwargs in ({"sample_weight": y}, {"validation_split": 0.2}, {"steps_per_epoch": 2}):
        with pytest.raises(Unsupported, match=next(iter(kwargs))):
            rewrite({"input": "pipeline"}, x, y, 8, kwargs)
    with pytest.raises(Unsupported, match="not a tf.data.Dataset"):
        rewrite({"input": "optimize"}, x, y, 8, {})
    opt = rewrite({"input": "optimize", "deterministic": True}, tf.data.Dataset.from_tensor_slices(x).batch(4), None, None, {})[0]
    assert opt.options().deterministic is True and opt.options().autotune.enabled is False


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
    assert default.spread > 0.25
    assert not better(Candidate("c", runs=[130.0, 131.0, 129.0, 131.5, 130.5, 129.5], passes=[130.0, 130.5]), default)
    assert better(Candidate("c", runs=[160.0, 161.0, 159.0, 162.0, 160.5, 159.5], passes=[160.0, 160.5]), default)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_steps_are_counted_as_run_when_an_execution_stops_at_the_end_of_the_data(backend):
    """47 batches an epoch: the harness's runs (_fit_shape) with steps_per_execution 1, 8 or 32 count exactly the steps
    Keras ran (the optimizer's iterations), where an epoch's last execution stops at the end of the data; on JAX too,
    where batch-end callbacks run on a thread pool after the next batch-begin."""
    code = textwrap.dedent("""
        import numpy as np, keras
        from redline.tuning.steps import Steps, fit_shape
        x = np.ones((47 * 4, 3), "float32")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
        for spe in (1, 8, 32):
            for steps in (16, 40, 80, 141):
                model.compile("sgd", "mse", steps_per_execution=spe)
                epochs, per = fit_shape(steps, spe, 47, False)
                marks = Steps(47, spe)
                model.fit(x, x[:, :1], batch_size=4, epochs=epochs, steps_per_epoch=per, verbose=0, callbacks=[marks])
                print("COUNTED", spe, steps, marks.done, int(keras.ops.convert_to_numpy(model.optimizer.iterations)),
                      len(marks.marks))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**ENV, "KERAS_BACKEND": backend},
                       timeout=300)
    counted = [[int(v) for v in line.split()[1:]] for line in r.stdout.splitlines() if line.startswith("COUNTED")]
    assert len(counted) == 12, r.stderr[-2000:]
    for spe, steps, done, its, executions in counted:  # a new optimizer each compile ("sgd"): its iterations are this fit's
        assert done == its and executions >= 2, (spe, steps, done, its, executions)
        assert its <= max(steps, 3 * spe) or its % 47 == 0  # within an epoch, or whole passes


PRIME = """
import numpy as np
import keras
x = np.random.default_rng(0).random((31 * 16, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile("adam", "mse")
model.fit(x, y, batch_size=16, epochs=2, verbose=0)
"""


@pytest.mark.slow
def test_a_repeated_input_rewrite_that_locks_out_steps_per_execution_loses_to_the_input_as_written(tmp_path):
    """31 batches an epoch (a prime): the redline.data pipeline (repeat + steps_per_epoch=31) admits no
    steps_per_execution but 1, while the arrays as written take 2..16. Both comparisons are decided by the test, not by
    this CPU: the pipeline is made to win stage 1 and the input as written the knob search (the rule itself is
    test_which_input_keeps_its_knobs_is_decided_on_medians_measured_every_round); what is real is the search running
    on both inputs and what the trial reports."""
    code = textwrap.dedent(f"""
        import sys
        import redline.tuning.compare as compare
        import redline.tuning.harness as harness
        import redline.tuning.measure as measure
        compare.beats = lambda runs, base, noise=(): bool(runs) and bool(base)  # any measured rewrite "wins" stage 1
        measure.prefer_as_written = lambda on_rewrite, on_written, rounds: True
        measure.PRUNE = 0.0  # every candidate through every round, whatever this CPU measures
        sys.exit(harness.main([{script(tmp_path, PRIME)!r}]))
    """)
    ladder = {"jit_compile": "auto", "try_jit": False, "flattens": 0.05}
    t = {**trial(rounds=3, seconds=0.05), "ladder": ladder, "inputs": {"allow": [], "usable": 2}}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                       env={**ENV, "REDLINE_TRIAL": json.dumps(t)})
    line = next((l for l in r.stdout.splitlines() if l.startswith("REDLINE-TRIAL ")), None)
    assert line, r.stderr[-3000:]
    res = json.loads(line[len("REDLINE-TRIAL "):])
    assert res["input_chosen"] is None and "as written with its best steps_per_execution" in res["input_note"], res
    spes = {int(n.split()[1]) for n, v in res["candidates"].items() if n.startswith("spe ") and len(v.get("steps_per_s", [])) == 3}
    assert spes and not spes <= {1, 31}, res  # steps_per_execution that 31 steps do not divide: the arrays as written


def test_which_input_keeps_its_knobs_is_decided_on_medians_measured_every_round():
    from redline.tuning.measure import best_median, prefer_as_written

    pipeline = {"default": {"steps_per_s": [100.0, 101.0, 99.0]}}
    written = {"default": {"steps_per_s": [90.0, 91.0, 89.0]}, "spe 8": {"steps_per_s": [150.0, 140.0, 160.0]},
               "spe 16": {"steps_per_s": [400.0]}}  # pruned after one round: not a contender
    assert best_median(written, 3) == 150.0 and best_median({}, 3) == 0.0
    assert prefer_as_written(pipeline, written, 3)
    assert not prefer_as_written(pipeline, {"default": {"steps_per_s": [90.0, 91.0, 89.0]}}, 3)
    assert not prefer_as_written(pipeline, {"spe 8": {"steps_per_s": [150.0, 160.0]}}, 3)  # two rounds of three


GENERATOR = """
import numpy as np
import keras
x = np.random.default_rng(0).random((8, 4), dtype=np.float32)
def batches():
    while True:
        yield x, x[:, :1]
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(batches(), steps_per_epoch=10, epochs=2, verbose=0)
"""


@pytest.mark.slow
def test_with_endless_data_and_the_script_s_steps_per_epoch_only_divisors_of_it_are_measured(tmp_path):
    """steps_per_epoch=10 over a generator: steps_per_execution 4 or 8 would run 12 or 16 steps an epoch."""
    ladder = {"jit_compile": "auto", "try_jit": False, "flattens": 0.05}
    res = run_trial(script(tmp_path, GENERATOR), [], Candidate("x"), {**trial(rounds=1, seconds=0.1), "ladder": ladder}, 120)
    assert res["status"] == "ok", res
    assert res["steps_in_epoch"] == 10 and [s for s, _ in res["ladder"]] == [2, 5], res["ladder"]
    assert {n for n in res["candidates"] if n.startswith("spe")} <= {"spe 2", "spe 5"}


@pytest.mark.slow
def test_the_script_s_own_steps_per_execution_is_measured_even_where_it_does_not_divide_its_epoch(tmp_path):
    """The script compiles with steps_per_execution=4 over endless data, 10 steps an epoch: that is how it runs (12 steps
    an epoch), so the reference is measured as it is, not dropped."""
    text = GENERATOR.replace('model.compile("sgd", "mse")', 'model.compile("sgd", "mse", steps_per_execution=4)')
    res = run_trial(script(tmp_path, text), [], Candidate("x"), trial(rounds=2, seconds=0.1), 120)
    assert res["status"] == "ok", res
    assert len(res["candidates"]["default"].get("steps_per_s", [])) == 2, res["candidates"]


def test_precision_is_a_candidate_only_behind_allow_and_only_where_native():
    bf16 = m.snapshot(m.cpu(2, 2, avx512_bf16=True, avx2=True))
    plain = m.snapshot(m.cpu(2, 2, avx2=True))
    names = lambda cands: {c.name: c.error for c in cands}  # noqa: E731
    assert "mixed_bfloat16" not in names(process_candidates(bf16, "tensorflow", allow=()))
    assert names(process_candidates(bf16, "tensorflow", allow=("precision",)))["mixed_bfloat16"] is None
    assert "no native bfloat16" in names(process_candidates(plain, "tensorflow", allow=("precision",)))["mixed_bfloat16"]


# -- the cache -------------------------------------------------------------------------------------------------------

RESULT = {"chosen": {"settings": {"env": {"KERAS_BACKEND": "jax"}, "compile": {"steps_per_execution": 8}}, "ratio": 2.0}}


def test_cache_key_staleness_and_corruption(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    s = script(tmp_path, TINY)
    vm = m.vm_2core()
    path = cache.save(s, ["--epochs", "3"], vm, RESULT, env)
    assert path.startswith(str(tmp_path / "cache" / "redline" / "tuned"))
    entry, why = cache.lookup(s, ["--epochs", "3"], vm, env)
    assert why is None and entry["result"] == RESULT
    assert cache.lookup(s, ["--epochs", "4"], vm, env)[0] is None                     # other arguments: another key
    assert "another machine" in cache.lookup(s, ["--epochs", "3"], m.server_2s_64t(), env)[1]
    with open(s, "a") as f:
        f.write("# edited\n")
    assert "the script changed" in cache.lookup(s, ["--epochs", "3"], vm, env)[1]
    cache.save(s, [], vm, RESULT, env)
    with open(cache.entry_path(s, [], env), "w") as f:
        f.write("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        entry, why = cache.lookup(s, [], vm, env)
    assert entry is None and not os.path.exists(cache.entry_path(s, [], env))
    assert cache.clear(None, environ=env) >= 1


def test_new_versions_make_a_choice_stale(tmp_path, monkeypatch):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    s = script(tmp_path, TINY)
    vm = m.vm_2core()
    cache.save(s, [], vm, RESULT, env)
    real = cache.machine_facts
    monkeypatch.setattr(cache, "machine_facts", lambda snap: {**real(snap), "versions": {**real(snap)["versions"], "keras": "9.9"}})
    assert "keras was" in cache.lookup(s, [], vm, env)[1]


# -- redline run applies it ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_redline_run_applies_a_tuned_input_path(tmp_path):
    """A saved choice of a 2x batch: the child's fit runs half the steps (read in the script, by a callback)."""
    import redline

    text = TINY.replace('model.fit(x, y, batch_size=16, epochs=2, verbose=0)',
                        'cb = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: print("STEPS", cb.params["steps"]))\n'
                        'model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])')
    s = script(tmp_path, text)
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = {"chosen": {"settings": {"env": {}, "compile": {}, "input": {"input": "batch", "factor": 2}}, "ratio": 1.5}}
    cache.save(s, [], redline.detect(), result, env)
    r = subprocess.run([sys.executable, "-m", "redline", "run", s], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 7, r.stderr[-2000:]
    assert "STEPS 16" in r.stdout and "2x larger batch" in r.stderr    # 512 rows at 32 a step, not 16
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--no-tuned", s], capture_output=True, text=True, env=env,
                       timeout=180)
    assert "STEPS 32" in r.stdout


# -- the command, end to end, and its bad input ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One real `redline tune --budget 40` with a writable cache, then `redline run` and `redline tune --show` on the
    same script: the round trip a user makes. The script writes, appends and deletes files in its folder (its working
    directory) before and after fit: the folder is hashed before and after the tune."""
    import hashlib

    folder, aside = tmp_path_factory.mktemp("tuned"), tmp_path_factory.mktemp("aside")
    (folder / "log.txt").write_text("first run\n")
    (folder / "old.txt").write_text("old")
    s = script(folder, WRITES + TINY.replace('print("AFTER FIT"', 'open("after.txt", "w").write("x")\nprint("AFTER FIT"'))
    hashes = lambda: {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}  # noqa: E731
    env = {**ENV, "XDG_CACHE_HOME": str(aside / "cache")}
    cli = lambda *argv: subprocess.run([sys.executable, "-m", "redline", *argv], capture_output=True, text=True,  # noqa: E731
                                       env=env, timeout=300, cwd=folder)
    before = hashes()
    out = {"tune": cli("tune", "--budget", "40", "--json", str(aside / "t.json"), s)}
    out["folder_unchanged"] = hashes() == before
    out["json"] = json.loads((aside / "t.json").read_text()) if (aside / "t.json").exists() else None
    out["run"], out["show"] = cli("run", s), cli("tune", "--show", s)
    out["no_tuned"] = cli("run", "--no-tuned", s)
    return out


WRITES = """
import os
with open("log.txt", "a") as f:
    f.write("another run\\n")
if os.path.exists("old.txt"):
    os.remove("old.txt")
"""


@pytest.mark.slow
def test_tune_leaves_the_user_s_folder_byte_identical(tuned):
    assert tuned["tune"].returncode == 0, tuned["tune"].stderr[-2000:]
    assert tuned["folder_unchanged"] and "WARNING" not in tuned["tune"].stdout


@pytest.mark.slow
def test_tune_measures_saves_and_prints_its_choice(tuned):
    r, d = tuned["tune"], tuned["json"]
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "as written" in r.stdout and "Choice:" in r.stdout and "saved for `redline run" in r.stdout
    assert d["processes"][0]["name"] == "as written" and d["processes"][0]["steps_per_s"]
    assert all(v > 0 for v in d["processes"][0]["steps_per_s"])
    assert d["status"] == "ok" and "settings" in d["chosen"]


@pytest.mark.slow
def test_run_applies_exactly_the_saved_choice_and_show_prints_it(tuned):
    """The effective backend and steps_per_execution, read in the script under `redline run`, are the saved choice's."""
    settings = tuned["json"]["chosen"]["settings"]
    backend = settings["env"].get("KERAS_BACKEND", "tensorflow")
    spe = settings["compile"].get("steps_per_execution", 1)
    r = tuned["run"]
    assert r.returncode == 7, r.stderr[-2000:]                           # the script's own exit code
    assert f"AFTER FIT {backend} {spe}" in r.stdout, (settings, r.stdout[-500:])
    assert "applied the choice tuned" in r.stderr and "--no-tuned ignores it" in r.stderr
    assert "AFTER FIT tensorflow 1" in tuned["no_tuned"].stdout
    show = tuned["show"]
    assert show.returncode == 0 and "tuned " in show.stdout and str(settings["env"]) in show.stdout, show.stdout


def test_tune_prints_its_result_even_when_the_cache_cannot_be_written(capsys, tmp_path, monkeypatch):
    """The search faked (its result is what matters here): an unwritable cache is one line, exit 2, after the table."""
    from clirun import cli

    from redline.tuning import search

    default = Candidate("as written", runs=[100.0, 101.0, 99.0])
    fake = search.TuneResult(script="s", args=[], budget_s=40, elapsed_s=12.0, default=default, processes=[default],
                             inprocess=[], chosen_process=default, chosen_knobs=None, reasons=["faked"], not_measured=[])
    monkeypatch.setattr(search, "tune", lambda *a, **k: fake)
    monkeypatch.setenv("XDG_CACHE_HOME", "/proc/redline-no-cache")
    code, out, err = cli(capsys, "tune", "--budget", "40", "--json", str(tmp_path / "t.json"), script(tmp_path, TINY))
    assert code == 2 and "Traceback" not in err
    assert "could not be saved" in err.strip().splitlines()[-1] and "XDG_CACHE_HOME" in err
    assert "as written" in out and "Choice:" in out  # the result is printed all the same
    assert json.loads((tmp_path / "t.json").read_text())["processes"][0]["name"] == "as written"


@pytest.mark.parametrize("argv, words", [
    (["tune", "nope.py"], "does not exist"),
    (["tune", "."], "is a directory"),
    (["tune"], "give the script to tune"),
    (["tune", "--budget", "0", "x.py"], "'0' is not valid"),
    (["tune", "--budget", "-5", "x.py"], "'-5' is not valid"),
    (["tune", "--budget", "soon", "x.py"], "not a number"),
    (["tune", "--allow", "speed", "{script}"], "--allow speed is not valid"),
    (["tune", "--json", "{script}", "{script}"], "refuses to write over"),      # the script itself is not tune results
    (["tune", "--json", "/proc/t.json", "{script}"], "not writable"),
])
def test_tune_bad_input(capsys, tmp_path, argv, words):
    from clirun import cli

    s = script(tmp_path, TINY)
    code, out, err = cli(capsys, *[a.replace("{script}", s) for a in argv])
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
@pytest.mark.parametrize("text, words", [
    ("raise KeyError('no data file')\n", "KeyError: 'no data file'"),
    ("print('I only print')\n", "without calling Model.fit"),
])
def test_tune_on_a_script_that_fails_or_never_fits(tmp_path, text, words):
    s = script(tmp_path, text)
    r = subprocess.run([sys.executable, "-m", "redline", "tune", "--budget", "30", s], capture_output=True, text=True,
                       env={**ENV, "XDG_CACHE_HOME": str(tmp_path)}, timeout=120)
    assert r.returncode == 2 and words in r.stderr.strip().splitlines()[-1] and "cannot be tuned" in r.stderr


@pytest.mark.slow
def test_tune_with_the_backend_not_installed(tmp_path):
    s = script(tmp_path, TINY)
    r = python_without(("torch",), ["-m", "redline", "tune", s], env={"KERAS_BACKEND": "torch"}, timeout=60)
    assert r.returncode == 2 and "torch" in r.stderr and "not installed" in r.stderr and "Traceback" not in r.stderr


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
    s = script(tmp_path, INPUT_BOUND)
    rec = tmp_path / "run.jsonl"
    r = subprocess.run([sys.executable, "-m", "redline", "diagnose", s, "--seconds", "0.5", "--repeats", "1", "--json",
                        "--save", str(rec)], capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout)
    from redline.diagnosis.bottleneck import Breakdown, classify

    b = Breakdown(**{k: d["breakdown"][k] for k in ("step_s", "input_s", "overhead_s", "compute_s")})
    assert [d["kind"], d["input_grade"]] == list(classify(b)), d["breakdown"]  # its verdict, from its own figures
    assert d["record"] == str(rec) and rec.exists()
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
    assert d["same"] and d["n"] > 4 and d["spe"] == 1        # the model as it was, compiled as it was
    assert d["default_runs"] == 3 and "jit" in d["names"] and "default" in d["text"]
    assert set(d["kwargs"]) <= {"steps_per_execution", "jit_compile"}
    assert d["inputs"] == ["as written", "input: redline.data pipeline", "input: batch x2", "input: batch x4"]
    assert (d["input"] is None) == (d["fit_kwargs"] == []), d      # fit_kwargs carry the chosen input, and only then


def test_the_notebook_api_bad_input():
    import keras

    import redline

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(redline.UsageError, match="compile the model first"):
        redline.tune(model, [[1.0, 2.0]])
    model.compile("sgd", "mse")
    with pytest.raises(redline.UsageError, match="budget_s=0"):
        redline.tune(model, [[1.0, 2.0]], budget_s=0)
    with pytest.raises(redline.UsageError, match="precision needs a fresh process"):
        redline.tune(model, [[1.0, 2.0]], allow=("precision",))


def test_the_search_measures_each_process_three_times_interleaved_and_stops_measuring_a_clear_loser(monkeypatch):
    """run_trial faked: the order of trial processes, the passes and the pruning are the search's own."""
    from redline.tuning import search

    rates = {"as written": 100.0, "backend jax": 300.0, "backend torch": 300.0, "oneDNN off": 40.0, "oneDNN on": 40.0,
             "1 intra-op thread": 280.0}
    calls = []

    def fake(script, args, cand, trial, timeout):
        if trial.get("mode") == "complete":  # the completion check (test_tune_choices.py): every candidate finishes
            return {"status": "complete", "exit_code": 0}
        if "ladder" in trial:
            calls.append("in-process")
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [300.0] * 3}, "spe 2": {"steps_per_s": [450.0] * 3}},
                    "inputs": {"as written": {"steps_per_s": [300.0] * 3},
                               "input: redline.data pipeline": {"steps_per_s": [200.0] * 3, "spec": {"input": "pipeline"}}},
                    "input_chosen": None, "ladder": [[2, 450.0]], "not_measured": []}
        calls.append(cand.name)
        r = rates[cand.name]
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "backend": "tensorflow",
                "data": "ndarray"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("s.py", budget_s=600, snapshot=m.vm_2core())
    live = [c.name for c in result.processes[1:] if not c.error]
    survivors = [n for n in live if not n.startswith("oneDNN")]
    assert calls[0] == "as written" and calls[-1] == "in-process"
    assert calls[1: 1 + len(live)] == live
    rest = calls[1 + len(live): -1]
    assert rest == [*reversed(survivors), "as written", *survivors, "as written"]  # backwards, then forwards again
    loser = next(c for c in result.processes if c.name.startswith("oneDNN"))
    assert loser.dropped and "not measured again" in loser.dropped and len(loser.runs) == 3
    assert all(len(c.passes) == 3 for c in result.processes if c.name in survivors)
    assert result.chosen_process.name == "backend jax" and result.chosen_knobs.name == "spe 2"
    assert result.chosen_input is None and result.choice()["input"] is None
    assert abs(result.ratio() - 4.5) < 1e-6


def test_the_search_keeps_to_its_budget_and_says_what_it_did_not_measure(monkeypatch):
    """Each faked trial costs 0.4 s of a fake clock: the search's own accounting, not this machine's speed, is tested."""
    import types

    from redline.tuning import search

    clock = {"now": 1000.0}

    def slow(script, args, cand, trial, timeout):
        assert timeout > 0  # no trial is started without time left for it
        clock["now"] += 0.4
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0, 101.0, 99.0]}}, "backend": "tensorflow", "data": "x"}

    monkeypatch.setattr(search, "run_trial", slow)
    monkeypatch.setattr(search, "RESERVE", 0.0)
    monkeypatch.setattr(search, "time", types.SimpleNamespace(perf_counter=lambda: clock["now"], time=lambda: clock["now"]))
    result = search.tune("s.py", budget_s=3.5, snapshot=m.vm_2core(), seconds=0.01)
    assert result.elapsed_s <= 3.5 and clock["now"] - 1000.0 <= 3.5
    assert any("the budget ran out" in n for n in result.not_measured)


def test_an_input_rewrite_that_does_not_apply_is_reported_not_compared(monkeypatch):
    """fit got arrays with validation_split: the pipeline rewrite does not apply, and nothing was compared."""
    from redline.tuning import search

    def fake(script, args, cand, trial, timeout):
        if "ladder" in trial:
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0] * 3}},
                    "inputs": {"input: redline.data pipeline": {"error": "not applicable: fit was given validation_split",
                                                                "spec": {"input": "pipeline"}}},
                    "input_chosen": None, "not_measured": []}
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [100.0, 100.0, 100.0]}}, "backend": "tensorflow", "data": "x"}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("s.py", budget_s=600, snapshot=m.vm_2core())
    assert result.chosen_input is None and result.ratio() == 1.0
    assert any("validation_split" in r for r in result.reasons)
    from redline.cli.tune import text

    assert "not applicable" in text(result)

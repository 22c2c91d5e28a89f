"""redline tune: the choice and its cache, the search (on faked trials), `redline run` applying it, the command end to
end and its bad input. The trial process itself: test_tune_trials.py."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import machines as m
from envs import python_without
from redline.tuning import cache
from redline.tuning.search import Candidate, process_candidates
from tune_helpers import ENV, TINY, script

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

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
    entry, why = cache.lookup(s, ["--data", "b.csv"], vm, env)                      # other arguments: another key,
    assert entry is None and "not tuned with these arguments (--data b.csv)" in why and "with --epochs 3" in why  # said
    for longer in (["--epochs", "50"], ["--epochs=50"]):  # tuned short, run long: only the epochs differ, it stands
        entry, why = cache.lookup(s, longer, vm, env)
        assert why is None and entry["result"] == RESULT and "tuned with --epochs 3" in entry["note"], longer
    assert cache.lookup(s, ["--epochs", "3", "--batch", "64"], vm, env)[0] is None  # another argument: not this one
    assert cache.neutral_args(["--learning-rate", "1e-3", "--verbose", "data.csv", "--num_epochs=7", "--epochs", "x"]) \
        == ["--learning-rate", "*", "--verbose", "data.csv", "--num_epochs", "*", "--epochs", "x"]
    assert cache.lookup(script(tmp_path, TINY, "other.py"), ["--epochs", "3"], vm, env)[1].startswith("not tuned yet")
    assert "another machine" in cache.lookup(s, ["--epochs", "3"], m.server_2s_64t(), env)[1]
    source = open(s).read()
    for keeps in ("# edited\n", "print('more output')\n", '"""a note"""\n'):  # the same workload: the choice stands
        with open(s, "a") as f:
            f.write(keeps)
        entry, why = cache.lookup(s, ["--epochs", "3"], vm, env)
        assert why is None and "the choice stands" in entry["note"], keeps
    for same, edit in (("epochs=2", "epochs=40"),
                       ('model.compile("adam", "mse")', 'model.compile(keras.optimizers.SGD(), "mse")')):
        with open(s, "w") as f:
            f.write(source.replace(same, edit))
        stands = cache.lookup(s, ["--epochs", "3"], vm, env)[1] is None
        assert stands == (same == "epochs=2"), edit  # epochs keep the choice; another optimizer is another workload
    for changed in ("batch_size=16", "Dense(16", '"mse"'):  # a batch, a model, a loss: stale
        with open(s, "w") as f:
            f.write(source.replace(changed, changed.replace("16", "64").replace("mse", "mae")))
        assert "the script changed" in cache.lookup(s, ["--epochs", "3"], vm, env)[1], changed
    cache.save(s, [], vm, RESULT, env)
    with open(cache.entry_path(s, [], env), "w") as f:
        f.write("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        entry, why = cache.lookup(s, [], vm, env)
    assert entry is None and not os.path.exists(cache.entry_path(s, [], env))
    for bad in ({"env": {}, "per_fit": "frozen"}, {"env": {}, "per_fit": {"ab12": 8}}, {"compile": [1]}, None):
        cache.save(s, [], vm, {"chosen": {"settings": bad}}, env)  # a damaged or hand-edited choice: the same
        with pytest.warns(RuntimeWarning, match="unreadable"):
            entry, why = cache.lookup(s, [], vm, env)
        assert entry is None and not os.path.exists(cache.entry_path(s, [], env)), bad
    cache.save(s, [], vm, RESULT, env)
    assert cache.clear(None, environ=env) >= 1


def test_tune_s_own_output_redirected_into_the_folder_is_not_a_change_the_script_made(tmp_path):
    """`redline tune train.py > tune.log` in the script's folder: tune writes that file itself; a file the script
    writes (natively, past the sandbox) is still named."""
    from redline.tuning.sandbox import changes, fingerprint, own_outputs

    (tmp_path / "data.csv").write_text("1,2\n")
    with open(tmp_path / "tune.log", "w") as log:
        mine = own_outputs((log.fileno(),))
        assert len(mine) == 1
        before = fingerprint([str(tmp_path)], skip=mine)
        log.write("trial 1: the script as written\n" * 100)
        log.flush()
        (tmp_path / "data.csv").write_text("1,2\n3,4\n")
        assert changes(before, fingerprint([str(tmp_path)], skip=mine)) == [str(tmp_path / "data.csv")]
    r, w = os.pipe()  # a pipe (`| tee`) is no file in a folder
    try:
        assert own_outputs((w,)) == set()
    finally:
        os.close(r)
        os.close(w)


WALK = """
import json, os, sys
from redline.tuning.sandbox import install
user, scratch = sys.argv[1:]
install(scratch, [user])
os.chdir(user)
os.remove("data/a/1.txt")                       # a corrupted image the script drops
os.makedirs("data/c")                           # a folder the script makes and fills
open("data/c/4.txt", "w").write("new")
open("data/a/5.txt", "w").write("new")
open("data/a/2.txt", "w").write("changed")      # an original the script rewrites
out = {}
for topdown in (True, False):
    listed = [os.path.join(root, f) for root, _, files in os.walk("data", topdown=topdown) for f in files]
    out[str(topdown)] = sorted((os.path.basename(p), os.path.realpath(p).startswith(os.path.realpath(scratch)),
                                os.lstat(p).st_size) for p in listed)  # lstat: not the sandbox's, as native code reads
print(json.dumps(out))
"""


def test_a_walk_in_the_sandbox_lists_what_the_script_wrote_where_native_readers_find_it(tmp_path):
    """Keras' directory loaders (image_dataset_from_directory) list files with os.walk and read them with
    tf.io.read_file, past the sandbox: the files the script wrote are listed at their shadow (where they are), its
    deleted ones not at all, and the user's folder is left as it was."""
    user, scratch = tmp_path / "user", tmp_path / "scratch"
    for rel, text in (("data/a/1.txt", "bad"), ("data/a/2.txt", "old"), ("data/b/3.txt", "keep")):
        (user / rel).parent.mkdir(parents=True, exist_ok=True)
        (user / rel).write_text(text)
    scratch.mkdir()
    r = subprocess.run([sys.executable, "-c", WALK, str(user), str(scratch)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    want = [["2.txt", True, 7], ["3.txt", False, 4], ["4.txt", True, 3], ["5.txt", True, 3]]
    assert got["True"] == want and got["False"] == want
    assert sorted(str(p.relative_to(user)) for p in user.rglob("*") if p.is_file()) == \
        ["data/a/1.txt", "data/a/2.txt", "data/b/3.txt"]
    assert (user / "data/a/2.txt").read_text() == "old"


MISSING = """
import json, os, sys
from redline.tuning.sandbox import install
user, scratch = sys.argv[1:]
install(scratch, [user, "/nonexistent-redline-test"])
os.chdir(user)
out = []
for path in ("results/x.txt", "/nonexistent-redline-test/x.txt", "made/x.txt"):
    if path.startswith("made"):
        os.makedirs("made")
    try:
        open(path, "w").write("r")
        out.append(open(path).read())
    except OSError as e:
        out.append(type(e).__name__)
print(json.dumps(out))
"""


def test_a_write_into_a_folder_that_is_not_there_fails_in_the_sandbox_as_it_does_under_python(tmp_path):
    """A script that writes its results into a missing folder after fit fails under `python`: in the sandbox the write
    went to the shadow, and the completion trial said the whole script finished under every candidate."""
    user, scratch = tmp_path / "user", tmp_path / "scratch"
    user.mkdir()
    scratch.mkdir()
    r = subprocess.run([sys.executable, "-c", MISSING, str(user), str(scratch)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == ["FileNotFoundError", "FileNotFoundError", "r"]  # one the script made: its own
    assert not os.listdir(user) and not os.path.exists("/nonexistent-redline-test")


GLOB_COPY = """
import glob, json, os, pathlib, shutil, sys
from redline.tuning.sandbox import install
user, scratch = sys.argv[1:]
install(scratch, [user])
os.chdir(user)
pathlib.Path("shards").mkdir()
for i in range(2):
    open(f"shards/part{i}.txt", "w").write(str(i))
os.remove("old.txt")
shutil.copy2("notes.txt", "notes_copy.txt")     # copystat: the copy's times and extended attributes
shutil.copytree("shards", "shards_copy")
print(json.dumps({"glob": sorted(glob.glob("*")), "shards": sorted(glob.glob("shards/*.txt")),
                  "path_glob": sorted(p.name for p in pathlib.Path("shards_copy").glob("*.txt")),
                  "scandir": sorted(e.name for e in os.scandir("."))}))
"""


def test_glob_scandir_and_shutil_copies_in_the_sandbox_see_what_the_script_wrote(tmp_path):
    """glob.glob and pathlib's glob scan with os.scandir, past the sandbox: a script that saved shards and globbed
    them found none in a trial, Path.glob failed on the folder it had made, and shutil.copy2 / copytree failed
    setting the copy's times on a path that exists only in the shadow."""
    user, scratch = tmp_path / "user", tmp_path / "scratch"
    user.mkdir()
    scratch.mkdir()
    (user / "notes.txt").write_text("notes")
    (user / "old.txt").write_text("old")
    r = subprocess.run([sys.executable, "-c", GLOB_COPY, str(user), str(scratch)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    names = ["notes.txt", "notes_copy.txt", "shards", "shards_copy"]
    assert got["glob"] == names and got["scandir"] == names, got
    assert got["shards"] == ["shards/part0.txt", "shards/part1.txt"] and got["path_glob"] == ["part0.txt", "part1.txt"]
    assert sorted(p.name for p in user.iterdir()) == ["notes.txt", "old.txt"]


NUMPY_TEXT = """
import json, os, sys, tarfile
import numpy as np
from redline.tuning.sandbox import install
user, scratch = sys.argv[1:]
install(scratch, [user])
os.chdir(user)
np.savetxt("predictions.csv", np.arange(3.0), delimiter=",")   # rewrites the user's file of the run before
np.savetxt("new.csv", np.ones(2))
with tarfile.open("run.tar", "w") as tar:                      # an archive of what the run wrote (tar.add: os.lstat)
    tar.add("predictions.csv")
    tar.add("new.csv")
with tarfile.open("run.tar") as tar:
    names = tar.getnames()
print(json.dumps({"read": np.loadtxt("predictions.csv").tolist(), "new": np.loadtxt("new.csv").tolist(),
                  "tar": names}))
"""


def test_numpy_text_files_and_tar_archives_are_written_in_the_sandbox_and_read_back_from_it(tmp_path):
    """np.savetxt / loadtxt and tarfile.open open plain files with their own reference to io.open, taken when numpy
    and tarfile were imported: a script's predictions.csv was rewritten in the user's folder by every trial. tar.add
    reads a file with os.lstat, which must find one the script wrote."""
    user, scratch = tmp_path / "user", tmp_path / "scratch"
    user.mkdir()
    scratch.mkdir()
    (user / "predictions.csv").write_text("9\n")
    r = subprocess.run([sys.executable, "-c", NUMPY_TEXT, str(user), str(scratch)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == {"read": [0.0, 1.0, 2.0], "new": [1.0, 1.0], "tar": ["predictions.csv", "new.csv"]}
    assert sorted(p.name for p in user.iterdir()) == ["predictions.csv"]
    assert (user / "predictions.csv").read_text() == "9\n"


SQLITE = """
import json, os, sqlite3, sys
from sqlite3 import dbapi2
from redline.tuning.sandbox import install
user, scratch = sys.argv[1:]
install(scratch, [user])
os.chdir(user)
db = sqlite3.connect("runs.db")                                # a row a run, as the script's own runs left them
db.execute("INSERT INTO runs VALUES (2)"); db.commit()
rows = [r[0] for r in db.execute("SELECT n FROM runs")]
db.close()
ro = sqlite3.connect("file:runs.db?mode=ro", uri=True)        # read back through a URI: the trial's copy
again = [r[0] for r in ro.execute("SELECT n FROM runs")]
new = dbapi2.connect(os.path.join(user, "new.db"))             # SQLAlchemy's way in (Optuna's and MLflow's storage)
new.execute("CREATE TABLE t (n)"); new.commit(); new.close()
mem = sqlite3.connect(":memory:"); mem.execute("CREATE TABLE t (n)")
print(json.dumps({"rows": rows, "again": again}))
"""


def test_a_sqlite_database_is_written_in_the_sandbox_and_read_back_from_it(tmp_path):
    """SQLite opens and writes its files natively: a script that kept each run's result in runs.db beside it got a
    row from every trial that ran its code after fit."""
    import sqlite3

    user, scratch = tmp_path / "user", tmp_path / "scratch"
    user.mkdir()
    scratch.mkdir()
    db = sqlite3.connect(user / "runs.db")
    db.execute("CREATE TABLE runs (n)")
    db.execute("INSERT INTO runs VALUES (1)")
    db.commit()
    db.close()
    before = (user / "runs.db").read_bytes()
    r = subprocess.run([sys.executable, "-c", SQLITE, str(user), str(scratch)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout) == {"rows": [1, 2], "again": [1, 2]}
    assert sorted(p.name for p in user.iterdir()) == ["runs.db"] and (user / "runs.db").read_bytes() == before


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

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")

    text = TINY.replace('model.fit(x, y, batch_size=16, epochs=2, verbose=0)',
                        'cb = keras.callbacks.LambdaCallback(on_train_begin=lambda logs: print("STEPS", cb.params["steps"]))\n'
                        'model.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[cb])')
    s = script(tmp_path, text)
    # the user's JAX: the rewrite does not depend on the backend, and JAX starts in half TensorFlow's time
    env = {**ENV, "XDG_CACHE_HOME": str(tmp_path / "cache"), "KERAS_BACKEND": "jax"}
    result = {"chosen": {"settings": {"env": {}, "compile": {}, "input": {"input": "batch", "factor": 2}}, "ratio": 1.5}}
    cache.save(s, [], redline.detect(), result, env)
    with open(s, "a") as f:  # an edit that does not change the workload: the choice still applies, and run says why
        f.write("# tried a longer run\nprint('done')\n")
    r = subprocess.run([sys.executable, "-m", "redline", "run", s], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 7, r.stderr[-2000:]
    assert "STEPS 16" in r.stdout and "2x larger batch" in r.stderr    # 512 rows at 32 a step, not 16
    assert "the choice stands" in r.stderr, r.stderr[-2000:]
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--no-tuned", s], capture_output=True, text=True, env=env,
                       timeout=180)
    assert "STEPS 32" in r.stdout


# -- the command, end to end, and its bad input ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One real `redline run --tune --budget 60`, the command a user starts with: no choice is saved yet, so it tunes
    the script, saves the choice and runs the script with it; then `redline tune --show`. The script writes, appends
    and deletes files in its folder (its working directory) before and after fit, and prints a digest of that folder
    when it starts: in the run after the tune, the digest must be the folder's before the command, so no trial left
    anything there. Its fit asks for a million epochs (the tune predicts hours of training, so it tunes) and stops
    itself after one."""
    import glob

    folder, aside = tmp_path_factory.mktemp("tuned"), tmp_path_factory.mktemp("aside")
    (folder / "log.txt").write_text("first run\n")
    (folder / "old.txt").write_text("old")
    # and leaves a temporary folder behind, as a script may: one, the real run's, is left afterwards, none of a trial's
    text = DIGEST + 'print("FOLDER", folder_digest(), flush=True)\n' + WRITES + LEAVES_TEMP + TINY.replace(
        'print("AFTER FIT"', 'open("after.txt", "w").write("x")\nprint("AFTER FIT"').replace(
        "model.fit(x, y, batch_size=16, epochs=2, verbose=0)",
        'stop = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: setattr(model, "stop_training", True))\n'
        "model.fit(x, y, batch_size=16, epochs=1_000_000, verbose=0, callbacks=[stop])")
    s = script(folder, text)
    namespace = {}
    exec(DIGEST, namespace)
    # a temporary folder of its own, short as the machine's (a trial's under it must fit a socket's path)
    env = {**ENV, "XDG_CACHE_HOME": str(aside / "cache"), "TMPDIR": tempfile.mkdtemp(prefix="rl-")}
    cli = lambda *argv: subprocess.run([sys.executable, "-m", "redline", *argv], capture_output=True, text=True,  # noqa: E731
                                       env=env, timeout=300, cwd=folder)
    out = {"before": namespace["folder_digest"](str(folder))}
    # 60 s, not 30: the tiny script is decided in ~26 s either way, but on a loaded CI machine its first trial took 14 s
    # of 30, and `run --tune` then rightly declines (no room for a second trial process: cli.run.not_worth)
    out["run"] = cli("run", "--tune", "--budget", "60", s)
    out["show"] = cli("tune", "--show", s)
    out["folder"], out["temporary"] = folder, sorted(os.listdir(env["TMPDIR"]))
    shutil.rmtree(env["TMPDIR"])
    saved = glob.glob(str(aside / "cache" / "redline" / "tuned" / "*.json"))
    out["json"] = json.loads(open(saved[0]).read())["result"] if len(saved) == 1 else None
    return out


#: the script's own digest of its folder: every file's path and bytes, and every folder's path
DIGEST = """
def folder_digest(root="."):
    import hashlib, os
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(root)):
        h.update(os.path.relpath(d, root).encode())
        for f in sorted(files):
            p = os.path.join(d, f)
            h.update(os.path.relpath(p, root).encode())
            with open(p, "rb") as b:
                h.update(b.read())
    return h.hexdigest()
"""

LEAVES_TEMP = """
import tempfile
tempfile.mkdtemp(prefix="script-left-")
"""

WRITES = """
import os
with open("log.txt", "a") as f:
    f.write("another run\\n")
if os.path.exists("old.txt"):
    os.remove("old.txt")
"""


@pytest.mark.slow
def test_tune_leaves_the_user_s_folder_byte_identical(tuned):
    r = tuned["run"]
    assert r.returncode == 7, r.stderr[-2000:]                           # the script's own exit code
    folder_lines = [line.split() for line in r.stdout.splitlines() if line.startswith("FOLDER ")]
    assert folder_lines == [["FOLDER", tuned["before"]]], r.stdout[-2000:]  # one run; the folder as it was before
    assert (tuned["folder"] / "log.txt").read_text() == "first run\nanother run\n"   # that run's own writes, once
    assert not (tuned["folder"] / "old.txt").exists() and (tuned["folder"] / "after.txt").read_text() == "x"
    assert tuned["json"] is not None and tuned["json"]["touched"] == []
    # the temporary folder: the real run's own leftover, nothing of the trials (theirs were in their scratch folders)
    assert [n.split("-")[:2] for n in tuned["temporary"]] == [["script", "left"]], tuned["temporary"]


@pytest.mark.slow
def test_run_tune_tunes_saves_and_says_so(tuned):
    r, d = tuned["run"], tuned["json"]
    assert "Traceback" not in r.stderr, r.stderr[-3000:]
    assert "redline: tuning within 60 s first" in r.stderr and "redline: tuned in" in r.stderr, r.stderr[-3000:]
    assert "(no choice saved for it yet)" in r.stderr, r.stderr[-3000:]  # not "`redline tune SCRIPT` measures ..."
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
    assert f"AFTER FIT {backend} {spe}" in r.stdout, (settings, r.stdout[-500:])
    assert "applied the choice tuned" in r.stderr and "--no-tuned ignores it" in r.stderr
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


def test_tune_prints_its_table_saves_the_choice_and_writes_its_json(capsys, tmp_path, monkeypatch):
    """The search faked (real tunes run through `redline run --tune` above): the table, the choice, where it is saved,
    the --json file, and a saved choice that `redline run` finds."""
    import redline
    from clirun import cli

    from redline.tuning import search

    default = Candidate("as written", runs=[100.0, 101.0, 99.0])
    rival = Candidate("backend jax", {"KERAS_BACKEND": "jax"}, runs=[200.0, 199.0, 201.0])
    fake = search.TuneResult(script="s", args=[], budget_s=40, elapsed_s=12.0, default=default,
                             processes=[default, rival], inprocess=[], chosen_process=rival, chosen_knobs=None,
                             reasons=["faked"], not_measured=[])
    monkeypatch.setattr(search, "tune", lambda *a, **k: fake)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    s = script(tmp_path, TINY)
    code, out, err = cli(capsys, "tune", "--budget", "40", "--json", str(tmp_path / "t.json"), s)
    assert code == 0 and "Traceback" not in err, err
    assert "as written" in out and "backend jax" in out and "Choice:" in out and "saved for `redline run" in out, out
    assert json.loads((tmp_path / "t.json").read_text())["chosen"]["settings"]["env"] == {"KERAS_BACKEND": "jax"}
    entry, why = cache.lookup(s, [], redline.detect())
    assert entry is not None and entry["result"]["chosen"]["settings"]["env"] == {"KERAS_BACKEND": "jax"}, why
    # --json -: the JSON alone on stdout, for a pipe (a file named "-" was written before); the table on stderr
    code, out, err = cli(capsys, "tune", "--budget", "40", "--json", "-", s)
    assert code == 0 and json.loads(out)["chosen"]["settings"]["env"] == {"KERAS_BACKEND": "jax"}, out[:500]
    assert "Choice:" in err and "saved for `redline run" in err and not (tmp_path / "-").exists()
    # the script's own arguments key the choice: the `redline run` that finds it names them
    code, out, err = cli(capsys, "tune", "--budget", "40", s, "--data", "my data")
    assert code == 0 and f"saved for `redline run {s} --data 'my data'`" in out, out


@pytest.mark.parametrize("argv, words", [
    (["tune", "nope.py"], "does not exist"),
    (["tune", "."], "is a directory"),
    (["tune"], "give the script to tune"),
    (["tune", "--show", "--json", "{script}"], "--json takes the file to write the result to, and took"),
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
    ("print('I only print')\n", "without calling Model.fit (last output: I only print)"),
    ("import sys\nsys.exit('no data folder: give --data DIR')\n", "code 1 before calling fit (last output: no data "
                                                                   "folder: give --data DIR)"),
])
def test_tune_on_a_script_that_fails_or_never_fits(tmp_path, text, words):
    s = script(tmp_path, text)
    r = subprocess.run([sys.executable, "-m", "redline", "tune", "--budget", "30", s], capture_output=True, text=True,
                       env={**ENV, "XDG_CACHE_HOME": str(tmp_path)}, timeout=120)
    assert r.returncode == 2 and words in r.stderr.strip().splitlines()[-1] and "cannot be tuned" in r.stderr


def test_the_last_output_quoted_is_the_script_s_not_the_runtime_s_log_lines():
    from redline.tuning.trials import last_output

    res = {"stdout": "epoch 0 0.115\nepoch 1 0.114\n",
           "stderr": "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                     "I0000 00:00:1796330844.776124   22472 port.cc:153] oneDNN custom operations are on.\n"
                     "W0000 00:00:1796330845.1 22472 cpu_feature_guard.cc:210] This TensorFlow binary is optimized\n"
                     "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow "
                     "with the appropriate compiler flags.\n"}
    assert last_output(res) == "epoch 0 0.115 | epoch 1 0.114"
    tb = {"stdout": "", "stderr": "Traceback (most recent call last):\n  File \"train.py\", line 3\nKeyError: 'x'\n"}
    assert last_output(tb, lines=1) == "KeyError: 'x'" and last_output({}) == ""
    assert len(last_output({"stdout": "y" * 1000})) == 300
    frames = "".join(f"  File \"<frozen runpy>\", line {n}, in _run_code\n" for n in (291, 98, 88))
    long = {"stderr": "Traceback (most recent call last):\n" + frames + "  File \"train.py\", line 5, in <module>\n"
                      "    from .data import load_data\n" + "x" * 250 + "\nImportError: attempted relative import\n"}
    assert last_output(long) == "x" * 250 + " | ImportError: attempted relative import"  # whole lines, no runpy frames
    # a file the script could not open fails inside the sandbox's wrapper around open: its frame is redline's, not the
    # script's, and was quoted as the script's last output
    import redline

    own = os.path.join(os.path.dirname(redline.__file__), "tuning", "sandbox.py")
    missing = {"stderr": "Traceback (most recent call last):\n"
                         "  File \"/work/train.py\", line 8, in <module>\n    d = np.load(a.data)\n        ^^^^^^^^^^^^\n"
                         "  File \"/venv/numpy/lib/_npyio_impl.py\", line 454, in load\n"
                         "    fid = stack.enter_context(open(os.fspath(file), \"rb\"))\n"
                         "                              ^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
                         f"  File \"{own}\", line 123, in wrapper\n"
                         "    return fn(sb.path(path, w, w and keep_of(*args, **kwargs)), *args, **kwargs)\n"
                         "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
                         "FileNotFoundError: [Errno 2] No such file or directory: 'data/xy.npz'\n"}
    got = last_output(missing)
    assert "sb.path" not in got and "^^^" not in got and got.endswith(
        "in load |     fid = stack.enter_context(open(os.fspath(file), \"rb\")) | FileNotFoundError: [Errno 2] No such "
        "file or directory: 'data/xy.npz'"), got
    assert 'File "/work/train.py", line 8, in <module> |     d = np.load(a.data)' in got


@pytest.mark.slow
def test_tune_with_the_backend_not_installed(tmp_path):
    s = script(tmp_path, TINY)
    r = python_without(("torch",), ["-m", "redline", "tune", s], env={"KERAS_BACKEND": "torch"}, timeout=60)
    assert r.returncode == 2 and "torch" in r.stderr and "not installed" in r.stderr and "Traceback" not in r.stderr


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

    def fake(script, args, cand, trial, timeout, **_):
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

    def slow(script, args, cand, trial, timeout, **_):
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

    def fake(script, args, cand, trial, timeout, **_):
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


def test_the_table_says_how_much_of_the_machine_each_candidate_s_processes_lost():
    from redline.cli.tune import text
    from redline.tuning.result import Candidate, TuneResult

    default = Candidate("as written", runs=[100.0, 101.0, 99.0, 98.0, 97.0, 100.0], passes=[100.0, 98.0],
                        detail={"contention": [0.012, 0.153]})
    jax = Candidate("backend jax", {"KERAS_BACKEND": "jax"}, runs=[150.0, 151.0, 149.0], detail={"contention": [None]})
    own = Candidate("default", runs=[95.0])  # the stage's script's own compile: its calibration alone
    r = TuneResult(script="s.py", args=[], budget_s=60, elapsed_s=50, default=default, processes=[default, jax],
                   inprocess=[own], chosen_process=default, chosen_knobs=None, reasons=[], not_measured=[])
    out = text(r)
    assert "6 rounds in 2 processes (machine lost 1%-15%)" in out, out
    assert "3 rounds (machine" not in out  # not available: nothing said
    assert "95.0 (95.0-95.0) 1 round " in out and "1 rounds" not in out, out


def test_a_candidate_with_no_figures_shows_the_not_measured_line_that_names_it_and_claims_no_budget_it_was_not_told():
    from redline.cli.tune import _rows
    from redline.tuning.result import Candidate, TuneResult

    default = Candidate("as written", runs=[100.0, 101.0, 99.0], passes=[100.0])
    jax = Candidate("backend jax", {"KERAS_BACKEND": "jax"})
    ondnn = Candidate("oneDNN off", {"TF_ENABLE_ONEDNN_OPTS": "0"})
    own, jit = Candidate("default", runs=[95.0, 96.0, 94.0]), Candidate("jit", trial={"knobs": {"jit_compile": True}})
    r = TuneResult(script="s.py", args=[], budget_s=60, elapsed_s=50, default=default,
                   processes=[default, jax, ondnn], inprocess=[own, jit], chosen_process=default, chosen_knobs=None,
                   reasons=[], not_measured=["backend jax (no trial process): the budget ran out"])
    notes = lambda: {row[1]: row[-1] for row in _rows(r)}  # noqa: E731  (candidate: the table's last column)
    assert notes()["backend jax"] == "not measured: the budget ran out"
    assert notes()["oneDNN off"] == "not measured" and notes()["jit"] == "not measured"
    r.not_measured.append("steps_per_execution / jit_compile: the budget ran out before the stage's rounds")
    assert notes()["jit"] == "not measured: the budget ran out before the stage's rounds"

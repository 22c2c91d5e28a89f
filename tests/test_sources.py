"""The user's files a tuned choice rests on beside the script (tuning/sources.py): which the trial reports, how they are
fingerprinted, and the saved choice going stale when one of them changes, as the script itself would."""

import importlib.util
import json
import os
import types

import pytest

import machines as m
from redline.tuning import cache
from redline.tuning.sources import changed, fingerprint, fingerprints, project_root, seen
from tune_helpers import script, trial

MODEL = """
import keras


def build(n):
    return keras.Sequential([keras.Input((n,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
"""

PROJECT = """
import json
import numpy as np
from model import build
with open("config.json") as f:
    cfg = json.load(f)
x = np.random.default_rng(0).random((512, 8), dtype=np.float32); y = x.sum(axis=1, keepdims=True)
model = build(8)
model.compile("adam", "mse")
model.fit(x, y, batch_size=cfg["batch_size"], epochs=cfg["epochs"], verbose=0)
"""


def _project(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "config.json").write_text(json.dumps({"batch_size": 16, "epochs": 2, "learning_rate": 0.001}))
    return script(tmp_path, PROJECT)


def test_seen_keeps_the_user_s_modules_and_settings_files_and_leaves_installed_code_out(tmp_path):
    s = _project(tmp_path)
    files = {"pkg/util.py": "X = 1\n", "venv/lib/python3.11/site-packages/lib.py": "", ".hidden/mod.py": "",
             "data.csv": "1,2\n", "big.json": "[" + "0," * (1 << 20) + "0]"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.py"
    outside.write_text("")
    modules = {n: types.SimpleNamespace(__file__=str(tmp_path / f)) for n, f in
               (("model", "model.py"), ("pkg.util", "pkg/util.py"), ("lib", "venv/lib/python3.11/site-packages/lib.py"),
                ("mod", ".hidden/mod.py"), ("__main__", "train.py"))}
    modules.update(elsewhere=types.SimpleNamespace(__file__=str(outside)), builtin=types.SimpleNamespace())
    reads = [tmp_path / "config.json", tmp_path / "data.csv", tmp_path / "big.json"]
    got = seen(s, [str(tmp_path)], reads, modules)
    assert got == sorted(os.path.realpath(tmp_path / f) for f in ("config.json", "model.py", "pkg/util.py")), got


def test_settings_and_modules_are_fingerprinted_as_the_script_is(tmp_path):
    cfg, mod, other = tmp_path / "config.json", tmp_path / "model.py", tmp_path / "settings.ini"
    cfg.write_text(json.dumps({"batch_size": 16, "train": {"epochs": 2, "lr": 0.1}}))
    mod.write_text(MODEL)
    other.write_text("[train]\nbatch = 16\n")
    before = fingerprints([str(cfg), str(mod), str(other)])
    cfg.write_text(json.dumps({"train": {"lr": 0.3, "epochs": 20}, "batch_size": 16}, indent=2))  # neutral values
    mod.write_text(MODEL.replace("import keras", "import keras  # the model") + "\nprint('built')\n")
    assert changed(before, str(tmp_path / "train.py")) is None
    other.write_text("[train]\nbatch = 16\n\n")  # neither JSON nor TOML: byte for byte
    assert changed(before, str(tmp_path / "train.py")) == "settings.ini (read by the script) changed since it was tuned"
    other.write_text("[train]\nbatch = 16\n")
    cfg.write_text(json.dumps({"batch_size": 64, "train": {"epochs": 2, "lr": 0.1}}))
    said = changed(before, str(tmp_path / "train.py"))
    assert said.startswith("config.json (read by the script) changed") and "epochs, learning rate" in said, said
    cfg.write_text("{not json")  # what does not parse is compared byte for byte, not an error
    assert fingerprint(str(cfg)) and changed(before, str(tmp_path / "train.py")).startswith("config.json")
    cfg.write_text(json.dumps({"batch_size": 16, "train": {"epochs": 2, "lr": 0.1}}))
    mod.write_text(MODEL.replace("Dense(16", "Dense(64"))
    assert changed(before, str(tmp_path / "train.py")).startswith("model.py (imported by the script) changed")
    mod.unlink()
    assert changed(before, str(tmp_path / "train.py")) == "model.py (imported by the script) is gone or unreadable " \
                                                          "since it was tuned"


def test_a_saved_choice_goes_stale_when_the_script_s_own_module_changes(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    s, vm = _project(tmp_path), m.vm_2core()
    sources = [str(tmp_path / "model.py"), str(tmp_path / "config.json")]
    result = {"chosen": {"settings": {"env": {"KERAS_BACKEND": "jax"}}}, "sources": sources}
    cache.save(s, [], vm, result, env)
    assert cache.lookup(s, [], vm, env)[1] is None
    (tmp_path / "model.py").write_text(MODEL + "\n# tried a wider layer\n")
    assert cache.lookup(s, [], vm, env)[1] is None
    (tmp_path / "model.py").write_text(MODEL.replace('activation="relu"', 'activation="gelu"'))
    entry, why = cache.lookup(s, [], vm, env)
    assert entry is None and why.startswith("stale: model.py (imported by the script) changed") and \
        "run `redline tune` again" in why, why


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_the_first_trial_reports_the_modules_the_script_imports_and_the_settings_it_reads(tmp_path, monkeypatch):
    from redline.tuning.search import Candidate, run_trial
    from redline.tuning.trials import sandbox_for

    s = _project(tmp_path)
    monkeypatch.chdir(tmp_path)  # the script reads its settings as `python train.py` run in its folder does
    sandbox = sandbox_for(s, str(tmp_path.parent))
    res = run_trial(s, [], Candidate("as written"), {**trial(), "discover": True, "sandbox": sandbox}, 120)
    assert res["status"] == "ok", res
    assert res["sources"] == sorted(os.path.realpath(tmp_path / f) for f in ("config.json", "model.py")), res["sources"]
    later = run_trial(s, [], Candidate("as written"), {**trial(), "sandbox": sandbox_for(s, str(tmp_path.parent))}, 120)
    assert later["status"] == "ok" and "sources" not in later  # the first trial's alone: the others run the same code


def test_the_project_s_own_package_counts_wherever_the_script_is_run_from(tmp_path):
    """scripts/train.py importing src/mypkg/model.py (installed in development mode), run from scripts/."""
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'mypkg'\n")
    for name in ("scripts/train.py", "src/mypkg/__init__.py", "src/mypkg/model.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    modules = {"mypkg.model": types.SimpleNamespace(__file__=str(tmp_path / "src/mypkg/model.py"))}
    assert seen(str(tmp_path / "scripts/train.py"), [str(tmp_path / "scripts")], (), modules) == \
        [os.path.realpath(tmp_path / "src/mypkg/model.py")]
    (tmp_path / "pyproject.toml").unlink()  # no project around it: its own folders only
    if project_root(str(tmp_path / "scripts/train.py")) is None:  # (unless the temporary folder is in a project)
        assert seen(str(tmp_path / "scripts/train.py"), [str(tmp_path / "scripts")], (), modules) == []


def test_run_tune_s_finding_that_tuning_would_not_pay_is_decided_again_when_a_file_beside_the_script_changes(tmp_path):
    """The finding rests on the training the first trial predicted: epochs count there, in config.json too."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    s, vm = _project(tmp_path), m.vm_2core()
    sources = [str(tmp_path / "model.py"), str(tmp_path / "config.json")]
    cache.save_skip(s, [], vm, "its training is predicted to take about 5 s", None, env, sources=sources)
    assert cache.skip_found(s, [], vm, None, env)["why"].startswith("its training")
    assert cache.skip_found(s, [], vm, 60.0, env) is None  # another --budget
    (tmp_path / "config.json").write_text(json.dumps({"batch_size": 16, "epochs": 200, "learning_rate": 0.001}))
    assert cache.skip_found(s, [], vm, None, env) is None


@pytest.mark.parametrize("untunable, said", [(False, "the finding that tuning would not pay"),
                                             (True, "the finding that the script cannot be tuned")])
def test_a_finding_that_cannot_be_kept_is_named_as_what_it_is(tmp_path, untunable, said):
    from redline.errors import UsageError

    (tmp_path / "cache").write_text("a file, not a folder")
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    s = _project(tmp_path)
    with pytest.raises(UsageError) as err:
        cache.save_skip(s, [], m.vm_2core(), "the script ended without calling Model.fit", None, env,
                        untunable=untunable)
    assert str(err.value).startswith(said + " could not be saved") and "XDG_CACHE_HOME" in str(err.value)

"""How the script runs (applying/entry.py): its `__file__` and argv as Python sets them; `redline run -m pkg.train` and
`redline tune -m pkg.train`: a module of a package, run as `python -m` runs it
(applying/entry.py), in `run` and in the trial processes; the file form's relative-import failure says how."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from redline.applying.entry import MODULE_ENV, module_for, package_hint, resolve
from redline.errors import UsageError

RUN_ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "OMP_NUM_THREADS", MODULE_ENV)}

TRAIN = """
import json, os, sys
from .helpers import VALUE
print("SEEN", json.dumps({"name": __name__, "package": __package__, "argv": sys.argv, "value": VALUE,
                          "path0": sys.path[0], "env": os.environ.get("REDLINE_RUN_MODULE")}))
"""


def _package(tmp_path, init="", train=TRAIN):
    pkg = tmp_path / "trainer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(init)
    (pkg / "helpers.py").write_text("VALUE = 42\n")
    (pkg / "train.py").write_text(train)
    return pkg


def test_resolve_finds_the_file_without_importing_the_package(tmp_path, monkeypatch):
    pkg = _package(tmp_path, init="raise RuntimeError('imported')\n")  # as a package importing TensorFlow would
    (pkg / "tool").mkdir()
    (pkg / "tool" / "__main__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    assert resolve("trainer.train") == str(pkg / "train.py")
    assert resolve("trainer.tool") == str(pkg / "tool" / "__main__.py")
    assert "trainer" not in sys.modules
    with pytest.raises(UsageError, match=r"-m 'trainer.nope': no module of that name under .* trainer/nope.py"):
        resolve("trainer.nope")
    for bad in ("", "trainer..train", "2fast", "my-train"):
        with pytest.raises(UsageError, match="is not a module name"):
            resolve(bad)
    with pytest.raises(UsageError, match=r"-m 'trainer/train.py' names a file, not a module: give -m trainer.train,"):
        resolve("trainer/train.py")


def test_a_trial_takes_the_module_name_only_where_it_names_its_script(tmp_path, monkeypatch):
    pkg = _package(tmp_path)
    monkeypatch.chdir(tmp_path)
    env = {MODULE_ENV: "trainer.train"}
    assert module_for(str(pkg / "train.py"), env) == "trainer.train" and MODULE_ENV not in env  # taken out
    assert module_for(str(pkg / "helpers.py"), {MODULE_ENV: "trainer.train"}) is None  # another script's
    assert module_for(str(pkg / "train.py"), {}) is None


def test_run_m_runs_the_module_as_python_m_does(tmp_path):
    _package(tmp_path)
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", "-m", "trainer.train",
                        "--epochs", "3", "-m", "x"], capture_output=True, text=True, env=RUN_ENV, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    seen = json.loads([x for x in r.stdout.splitlines() if x.startswith("SEEN ")][0][5:])
    assert seen == {"name": "__main__", "package": "trainer", "argv": [str(tmp_path / "trainer" / "train.py"), "--epochs",
                    "3", "-m", "x"], "value": 42, "path0": str(tmp_path), "env": None}, seen
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", "-m", "trainer.nope"],
                       capture_output=True, text=True, env=RUN_ENV, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "no module of that name" in r.stderr, r.stderr


def test_the_file_form_of_a_package_s_module_says_how_to_run_it(tmp_path):
    pkg = _package(tmp_path)
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", "train.py"],
                       capture_output=True, text=True, env=RUN_ENV, cwd=pkg, timeout=120)
    assert r.returncode == 1 and "ImportError: attempted relative import" in r.stderr  # the script's own error
    assert r.stderr.strip().splitlines()[-1] == (f"redline: train.py is part of the package trainer: run it as a "
                                                 f"module, from {tmp_path}: redline run -m trainer.train"), r.stderr
    assert package_hint(str(tmp_path / "alone.py"), ImportError("attempted relative import with no known parent "
                                                                "package")) is None  # not in a package: no -m to give
    assert package_hint(str(pkg / "train.py"), ImportError("No module named 'x'")) is None


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_trial_runs_the_module_with_its_relative_imports(tmp_path, monkeypatch):
    from redline.tuning.search import Candidate, run_trial
    from tune_helpers import TINY, trial

    pkg = _package(tmp_path, train="from .helpers import VALUE\n" + TINY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(MODULE_ENV, "trainer.train")  # as `redline tune -m trainer.train` sets it for its trials
    res = run_trial(str(pkg / "train.py"), ["a"], Candidate("as written"), trial(), 120)
    assert res["status"] == "ok", res
    monkeypatch.delenv(MODULE_ENV)
    res = run_trial(str(pkg / "train.py"), [], Candidate("as written"), trial(), 120)
    assert res["status"] == "script-error" and "redline tune -m trainer.train" in res["error"], res


def _python_and_run(folder) -> dict:
    """`python train.py` and `redline run train.py` in ``folder``, each as a finished process."""
    cmds = {"python": [sys.executable, "train.py"],
            "redline": [sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", "train.py"]}
    return {how: subprocess.run(cmd, capture_output=True, text=True, env=RUN_ENV, cwd=folder, timeout=120)
            for how, cmd in cmds.items()}


def test_a_script_s_file_is_absolute_and_its_argv_as_given_as_python_sets_them(tmp_path):
    """`os.chdir(os.path.dirname(__file__))` with `redline run train.py` in the script's folder: __file__ was
    "train.py", and os.chdir("") failed where `python train.py` runs."""
    (tmp_path / "train.py").write_text("import json, os, sys\nos.chdir(os.path.dirname(__file__))\n"
                                       "print('SEEN', json.dumps([__file__, sys.argv[0]]))\n")
    seen = {}
    for how, r in _python_and_run(tmp_path).items():
        assert r.returncode == 0, (how, r.stderr)
        seen[how] = json.loads([x for x in r.stdout.splitlines() if x.startswith("SEEN ")][0][5:])
    assert seen["redline"] == seen["python"] == [str(tmp_path / "train.py"), "train.py"], seen


def test_an_error_the_script_leaves_uncaught_is_shown_from_its_own_frame_as_python_shows_it(tmp_path):
    """The traceback under `redline run` began with five frames of redline's (the console script, main, execute):
    a user read it as redline's failure."""
    _package(tmp_path, train="def build():\n    raise ValueError('bad shape')\nbuild()\n")
    shown = {}
    for how, cmd in (("python", [sys.executable, "-m", "trainer.train"]),
                     ("redline", [sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", "-m",
                                  "trainer.train"]),
                     ("file", [sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy",
                               "trainer/train.py"])):
        r = subprocess.run(cmd, capture_output=True, text=True, env=RUN_ENV, cwd=tmp_path, timeout=120)
        assert r.returncode == 1, (how, r.stderr)
        shown[how] = [line for line in r.stderr.splitlines() if line.startswith(("Traceback", "  File", "ValueError"))]
    train = str(tmp_path / "trainer" / "train.py")
    assert shown["redline"] == shown["file"] == ["Traceback (most recent call last):",
                                                 f'  File "{train}", line 3, in <module>',
                                                 f'  File "{train}", line 2, in build',
                                                 "ValueError: bad shape"], shown
    assert shown["python"][-3:] == shown["redline"][-3:]  # python -m shows runpy's two frames before them


def test_a_script_s_syntax_error_under_run_is_shown_as_python_shows_it(tmp_path):
    """Its compile is redline's: the traceback showed redline's five frames (console script, main, execute) above
    the file, the line and the caret."""
    (tmp_path / "train.py").write_text("import os\nx = [1, 2\nprint(x)\n")
    shown = {}
    for how, r in _python_and_run(tmp_path).items():
        assert r.returncode == 1, (how, r.stderr)
        shown[how] = r.stderr.strip().splitlines()
    assert shown["redline"] == shown["python"] and shown["python"][-1] == "SyntaxError: '[' was never closed", shown


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_diagnose_m_measures_the_module_from_a_folder_that_holds_the_temporary_one(tmp_path):
    """The record is written in redline's temporary folder; run from a folder above it (from /tmp), the trial's
    sandbox kept it off that folder and diagnose found no record."""
    from tune_helpers import TINY

    _package(tmp_path, train="from .helpers import VALUE\n" + TINY)
    (tmp_path / "tmp").mkdir()
    r = subprocess.run([sys.executable, "-m", "redline", "diagnose", "--json", "--seconds", "0.3", "--repeats", "1",
                        "-m", "trainer.train"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env={**RUN_ENV, "TMPDIR": str(tmp_path / "tmp")})
    assert r.returncode == 0, r.stderr[-1500:]
    assert json.loads(r.stdout)["kind"], r.stdout[-500:]
    assert sorted(os.listdir(tmp_path)) == ["tmp", "trainer"] and os.listdir(tmp_path / "tmp") == []


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
def test_launch_m_runs_the_module_in_each_worker(tmp_path):
    _package(tmp_path)
    r = subprocess.run([sys.executable, "-m", "redline", "launch", "--nproc-per-host", "1", "-m", "trainer.train",
                        "--x"], capture_output=True, text=True, cwd=tmp_path, timeout=180, env=RUN_ENV)
    assert r.returncode == 0, r.stderr[-1500:]
    line = next(x for x in (r.stdout + r.stderr).splitlines() if "SEEN " in x)
    seen = json.loads(line.split("SEEN ", 1)[1])
    assert (seen["name"], seen["package"], seen["value"], seen["argv"][1:], seen["env"]) == \
        ("__main__", "trainer", 42, ["--x"], None), seen

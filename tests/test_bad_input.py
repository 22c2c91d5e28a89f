"""Bad input, everywhere: one clear line naming what was given and how to fix it, exit code 2 from the
command line, no traceback, and no file overwritten or lost.

Three groups: the command line in this process (fast), the command line in a fresh process where what is
missing must really be missing (a site-packages without tensorflow, jax or torch), and the Python API.
"""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import run_records
from envs import python_without
from clirun import cli
from redline.errors import RedlineError

HERE = os.path.dirname(__file__)



def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest() if os.path.isfile(path) else None


def record(tmp_path, name="run.jsonl", lines=None, extra=()):
    lines = lines if lines is not None else run_records.run_lines()
    return str(run_records.write(tmp_path / name, list(lines) + list(extra)))


def bad_record(tmp_path, line):
    """A record whose JSON is valid but whose content is not what the writer writes."""
    return record(tmp_path, extra=[line])


def notes_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("my own notes, not a report\n")
    return str(p)


# Each case: (setup(tmp_path) -> (argv, files that must not change), key words of the message)
CLI_CASES = {
    # report must never write over its input, or over a file it did not write
    "report -o onto its own record": (lambda t: (lambda r: (["report", r, "-o", r], [r]))(record(t)),
                                      ["refuses to write over", "run record", "-o"]),
    "report -o onto a non-HTML file": (lambda t: (lambda r, n: (["report", r, "-o", n], [r, n]))(record(t), notes_file(t)),
                                       ["refuses to write over", "not an HTML report redline wrote"]),
    "report default output is the record (.html record)": (
        lambda t: (lambda r: (["report", r], [r]))(record(t, name="run.html")), ["refuses to write over"]),
    "report on a missing record": (lambda t: (["report", str(t / "nope.jsonl")], []), ["does not exist"]),
    "report on a directory": (lambda t: (["report", str(t)], []), ["is a directory"]),
    "report -o in a missing folder": (lambda t: (lambda r: (["report", r, "-o", str(t / "no" / "r.html")], [r]))(record(t)),
                                      ["does not exist"]),
    "report -o a directory": (lambda t: (lambda r: (["report", r, "-o", str(t)], [r]))(record(t)), ["is a directory"]),
    "report -o unwritable": (lambda t: (lambda r: (["report", r, "-o", "/proc/redline-report.html"], [r]))(record(t)),
                             ["not writable"]),
    "diagnose: a mark of 2 fields": (lambda t: (lambda r: (["diagnose", r], [r]))(bad_record(t, {"type": "steps", "marks": [[0, 1]]})),
                                     ["line", "mark", "[epoch, step, t]"]),
    "diagnose: a sample without t": (lambda t: (lambda r: (["diagnose", r], [r]))(bad_record(t, {"type": "sample", "cpu_per_core_pct": [1]})),
                                     ["line", "sample", "'t'"]),
    "diagnose: marks null": (lambda t: (lambda r: (["diagnose", r], [r]))(bad_record(t, {"type": "steps", "marks": None})),
                             ["line", "marks"]),
    "report: an epoch line without its number": (
        lambda t: (lambda r: (["report", r], [r]))(bad_record(t, {"type": "epoch", "event": "begin", "t": 1.0})), ["line", "epoch"]),
    "diagnose: a header with a text batch size": (
        lambda t: (lambda r: (["diagnose", r], [r]))(record(t, lines=[{**run_records.header(), "batch_size": "64"}])),
        ["batch_size", "header"]),
    "diagnose: record and --workload": (lambda t: (lambda r: (["diagnose", r, "--workload", "tiny"], [r]))(record(t)),
                                        ["not both"]),
    "diagnose: --save with a record": (lambda t: (lambda r: (["diagnose", r, "--save", str(t / "x.jsonl")], [r]))(record(t)),
                                       ["--save goes with --workload"]),
    "diagnose: script arguments given to a record": (lambda t: (lambda r: (["diagnose", r, "--", "--epochs", "3"], [r]))(record(t)),
                                                     ["go with a training script"]),
    "diagnose: a script that does not exist": (lambda t: (["diagnose", str(t / "train.py")], []), ["does not exist"]),
    "diagnose --workload: unknown": (lambda t: (["diagnose", "--workload", "resnet"], []), ["resnet", "mlp"]),
    "diagnose --save: a directory": (lambda t: (["diagnose", "--workload", "tiny", "--save", str(t)], []), ["is a directory"]),
    "diagnose --save: missing folder": (lambda t: (["diagnose", "--workload", "tiny", "--save", str(t / "no" / "r.jsonl")], []),
                                        ["does not exist"]),
    "diagnose --save: unwritable": (lambda t: (["diagnose", "--workload", "tiny", "--save", "/proc/redline.jsonl"], []),
                                    ["not writable"]),
    "diagnose --save: over an existing file that is not a record": (
        lambda t: (lambda n: (["diagnose", "--workload", "tiny", "--save", n], [n]))(notes_file(t)),
        ["refuses to write over", "not a redline run record"]),
    "diagnose --seconds 0": (lambda t: (["diagnose", "--workload", "tiny", "--seconds", "0"], []), ["seconds=0"]),
    "diagnose --repeats 0": (lambda t: (["diagnose", "--workload", "tiny", "--repeats", "0"], []), ["repeats=0"]),
    "bench: unknown workload": (lambda t: (["bench", "resnet"], []), ["resnet", "mlp"]),
    "bench --repeats 0": (lambda t: (["bench", "--repeats", "0", "tiny"], []), ["--repeats 0"]),
    "bench --allow dropout": (lambda t: (["bench", "--allow", "dropout", "tiny"], []), ["dropout", "batch, precision"]),
    "bench --json a directory": (lambda t: (["bench", "--json", str(t), "tiny"], []), ["is a directory"]),
    "bench --json unwritable": (lambda t: (["bench", "--json", "/proc/x.json", "tiny"], []), ["not writable"]),
    "bench --json over a file that is not bench results": (
        lambda t: (lambda n: (["bench", "--json", n, "tiny"], [n]))(notes_file(t)), ["refuses to write over"]),
    "doctor --intra-threads 0": (lambda t: (["doctor", "--intra-threads", "0"], []), ["intra_threads=0 is not valid"]),
    "doctor --inter-threads -2": (lambda t: (["doctor", "--inter-threads", "-2"], []), ["inter_threads=-2 is not valid"]),
    "doctor --intra-threads two": (lambda t: (["doctor", "--intra-threads", "two"], []), ["invalid int value: 'two'"]),
    "doctor --precision fp8": (lambda t: (["doctor", "--precision", "fp8"], []), ["precision='fp8'", "mixed_bfloat16"]),
    "doctor --gpu-memory lots": (lambda t: (["doctor", "--gpu-memory", "lots"], []), ["growth, full or a per-GPU limit"]),
    "doctor --strategy tpu": (lambda t: (["doctor", "--strategy", "tpu"], []), ["invalid choice: 'tpu'"]),
    "doctor --bogus": (lambda t: (["doctor", "--bogus"], []), ["unrecognized arguments: --bogus"]),
    "unknown command": (lambda t: (["nosuch"], []), ["invalid choice: 'nosuch'"]),
    "run: missing script": (lambda t: (["run", str(t / "train.py")], []), ["does not exist", "path of a Python file"]),
    "run: a directory as script": (lambda t: (["run", str(t)], []), ["is a directory"]),
    "run: no script": (lambda t: (["run"], []), ["required: script"]),
    **{f"{cmd}: a notebook": (lambda t, cmd=cmd: (lambda nb: ([cmd, nb], [nb]))(notebook(t)),
                              ["is a Jupyter notebook", "jupyter nbconvert --to script", f"redline {cmd} the .py"])
       for cmd in ("run", "tune", "diagnose", "launch")},
    # a script Python cannot compile: one line before any trial (tune said it from a trial's output, with its frames)
    **{f"{' '.join(cmd)}: a syntax error": (lambda t, cmd=cmd: (lambda s: ([*cmd, s], [s]))(broken(t)),
                                            ["train.py:2: SyntaxError: '[' was never closed", "`python "])
       for cmd in (("tune",), ("diagnose",), ("launch",), ("run", "--tune"))},
    "tune: a null byte in the script": (lambda t: (lambda p: (p.write_bytes(b"x = 1\x00\n"), (["tune", str(p)], [str(p)]))[1])(
        t / "train.py"), ["train.py: ", "source code string cannot contain null bytes"]),
    "run -m: a file's name": (lambda t: (["run", "-m", "train.py"], []), ["-m 'train.py' names a file", "-m train,"]),
    "run -m: not a module name": (lambda t: (["run", "-m", "my-train"], []), ["-m 'my-train' is not a module name"]),
    **{f"{cmd} -m: an empty name": (lambda t, cmd=cmd: ([cmd, "-m", ""], []), ["-m '' is not a module name"])
       for cmd in ("run", "tune", "diagnose", "launch")},
    "tune -m: no such module": (lambda t: (["tune", "-m", "nosuch_module_here"], []), ["no module of that name"]),
    "run --precision half": (lambda t: (["run", "--precision", "half", __file__], []), ["precision='half'"]),
    "run --backend mxnet": (lambda t: (["run", "--dry-run", "--backend", "mxnet", __file__], []), ["mxnet", "tensorflow, jax, torch"]),
}


def test_a_script_that_cannot_be_read_is_said_in_one_line(tmp_path, monkeypatch):
    """Its syntax is checked before any trial: a file without read permission (not testable as root) is said as such."""
    from redline.cli import common

    s = tmp_path / "train.py"
    s.write_text("print(1)\n")

    def denied(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(common.io, "open_code", denied)
    with pytest.raises(common.UsageError, match=r"cannot be read \(Permission denied\).*check its permissions"):
        common.check_script(str(s), "tune")


def broken(folder) -> str:
    path = folder / "train.py"
    path.write_text("import keras\nx = [1, 2\nprint(x)\n")
    return str(path)


def notebook(folder) -> str:
    """A notebook's JSON, which Python reads as one dict and runs as nothing."""
    path = folder / "train.ipynb"
    path.write_text('{"cells": [{"cell_type": "code", "source": ["model.fit(x, y)"]}], "metadata": {}, "nbformat": 4}')
    return str(path)


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input(capsys, tmp_path, name):
    setup, words = CLI_CASES[name]
    argv, files = setup(tmp_path)
    before = {f: digest(f) for f in files}
    code, out, err = cli(capsys, *argv)
    assert code == 2, (code, err)
    for word in words:
        assert word in err, f"{word!r} not in {err!r}"
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert {f: digest(f) for f in files} == before  # nothing overwritten or lost


@pytest.mark.parametrize("tf_config, fragment", [
    ("{bad", "is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 5}}', "task.index 5 is out of range"),
])
def test_malformed_tf_config(capsys, monkeypatch, tf_config, fragment):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    for argv in (["doctor"], ["run", "--dry-run", __file__]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and fragment in err and "TF_CONFIG=" in err and len(err.strip().splitlines()) == 1


def test_a_failed_bench_run_is_one_line(capsys, monkeypatch):
    """A child that fails raises RunFailed, a RedlineError: the CLI reports it, not a traceback."""
    from redline.benchmarking import bench as bench_mod

    def failing(spec, env_extra=None, timeout=300):
        raise bench_mod.RunFailed("bench run {'mode': 'peak'} failed with exit code 1: Illegal instruction")

    monkeypatch.setattr(bench_mod, "run_child", failing)
    code, out, err = cli(capsys, "bench", "--quick", "tiny")
    assert code == 2 and "failed with exit code 1" in err and "Traceback" not in err


# -- the command line where a package is really missing -------------------------------------------------------------

SCRIPT = "import sys\nprint('script ran', sys.argv[1:])\n"

MISSING_CASES = {
    "run: tensorflow backend, tensorflow not installed": (("tensorflow",), {}, ["run", "{script}"],
                                                           ["tensorflow", "not installed", "KERAS_BACKEND"]),
    "bench: tensorflow not installed": (("tensorflow",), {}, ["bench", "--quick", "tiny"], ["tensorflow", "not installed"]),
    "diagnose --workload: tensorflow not installed": (("tensorflow",), {}, ["diagnose", "--workload", "tiny"],
                                                      ["tensorflow", "not installed"]),
    "run --backend torch without torch": (("torch",), {}, ["run", "--backend", "torch", "{script}"], ["torch", "not installed"]),
    "run: KERAS_BACKEND=torch without torch": (("torch",), {"KERAS_BACKEND": "torch"}, ["run", "{script}"],
                                               ["torch", "not installed", "KERAS_BACKEND"]),
    "run --backend jax --strategy mirrored without jax": (("jax", "jaxlib"), {}, ["run", "--backend", "jax", "--strategy", "mirrored",
                                                                                  "{script}"], ["jax", "not installed"]),
}


@pytest.mark.parametrize("name", list(MISSING_CASES))
def test_cli_with_a_package_missing(tmp_path, name):
    missing, env, argv, words = MISSING_CASES[name]
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    argv = [a.replace("{script}", str(script)) for a in argv]
    r = python_without(missing, ["-m", "redline", *argv], env=env, timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and "script ran" not in r.stdout, r.stderr[-2000:]
    line = [x for x in r.stderr.strip().splitlines() if x.startswith("redline")][-1]
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"


def test_doctor_reports_a_missing_backend_as_an_error_finding(tmp_path):
    """A real error finding: KERAS_BACKEND names a backend that is not installed (not a patched one)."""
    r = python_without(("torch",), ["-m", "redline", "doctor"], env={"KERAS_BACKEND": "torch"}, timeout=60)
    assert r.returncode == 1 and "NOT healthy" in r.stdout, r.stdout + r.stderr
    assert "[error] Keras is set to the torch backend, which is not installed" in r.stdout


# -- the Python API ----------------------------------------------------------------------------------------------------

def _model(compiled=True):
    import keras

    m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    if compiled:
        m.compile("sgd", "mse")
    return m


XY = (np.ones((32, 4), "float32"), np.ones((32, 1), "float32"))


def _configure(**kw):
    import redline

    return redline.configure(environ={}, **kw)


def _plan(**kw):
    import redline
    from machines import vm_2core

    return redline.plan(vm_2core(), **kw)


def _rd():
    import redline.data as rd

    return rd


def _diagnose(*args, **kw):
    import redline

    return redline.diagnose(*args, **kw)


def _monitor(*args, **kw):
    import redline

    return redline.Monitor(*args, **kw)


def _gen():
    yield from zip(XY[0], XY[1])


def _load(tmp_path, line):
    from redline.monitoring.record import load

    return load(bad_record(tmp_path, line))


def _report(tmp_path, out):
    from redline.diagnosis import diagnose_record

    return diagnose_record(out)


API_CASES = {
    "configure(foo=1)": (lambda t: _configure(foo=1), ["foo", "intra_threads", "configure"]),
    "plan(foo=1)": (lambda t: _plan(foo=1), ["foo", "intra_threads"]),
    "configure(on_late='ignore')": (lambda t: _configure(on_late="ignore"), ["on_late='ignore'", "'raise' or 'warn'"]),
    "configure(intra_threads=0)": (lambda t: _configure(intra_threads=0), ["intra_threads=0"]),
    "configure(precision='half')": (lambda t: _configure(precision="half"), ["precision='half'"]),
    "configure(backend='mxnet')": (lambda t: _configure(backend="mxnet"), ["mxnet", "tensorflow, jax, torch"]),
    "plan(strategy='tpu')": (lambda t: _plan(strategy="tpu"), ["strategy='tpu'"]),
    "pipeline(None)": (lambda t: _rd().pipeline(None, batch_size=4), ["source=None", "numpy arrays"]),
    "pipeline(scalar)": (lambda t: _rd().pipeline(3.0, batch_size=4), ["a scalar", "rows"]),
    "pipeline(python list)": (lambda t: _rd().pipeline([1, 2, 3], batch_size=4), ["Python list", "np.asarray"]),
    "pipeline(0 rows)": (lambda t: _rd().pipeline(np.zeros((0, 3)), batch_size=4), ["no rows"]),
    "pipeline(0 rows in a tuple)": (lambda t: _rd().pipeline((np.zeros((0, 3)), np.zeros(0)), batch_size=4), ["no rows"]),
    "pipeline(empty dict)": (lambda t: _rd().pipeline({}, batch_size=4), ["holds no arrays"]),
    "pipeline(batch_size=0)": (lambda t: _rd().pipeline(XY, batch_size=0), ["batch_size=0"]),
    "pipeline(batch_size='64')": (lambda t: _rd().pipeline(XY, batch_size="64"), ["batch_size='64'"]),
    "pipeline(mismatched arrays)": (lambda t: _rd().pipeline((XY[0], XY[1][:5]), batch_size=4), ["mismatched array lengths"]),
    "pipeline(a path)": (lambda t: _rd().pipeline("data/train.tfrecord", batch_size=4), ["is a path", "tfrecord"]),
    "pipeline(cache='yes')": (lambda t: _rd().pipeline(XY, batch_size=4, cache="yes"), ["cache='yes'"]),
    "generator(not callable)": (lambda t: _rd().generator(5, output_signature=None), ["needs a generator function"]),
    "generator(size=-1)": (lambda t: _rd().generator(_gen, output_signature=None, size=-1), ["size=-1"]),
    "tfrecord(no match)": (lambda t: _rd().tfrecord(str(t / "*.tfrecord")), ["no TFRecord files match"]),
    "image_folder(missing)": (lambda t: _rd().image_folder(str(t / "photos")), ["does not exist"]),
    "Monitor(read-only folder)": (lambda t: _monitor("/proc/redline-run.jsonl"), ["not writable"]),
    "Monitor(a directory)": (lambda t: _monitor(str(t)), ["is a directory"]),
    "Monitor(interval=0)": (lambda t: _monitor(str(t / "r.jsonl"), interval=0), ["interval=0"]),
    "Monitor(profile_steps=(5, 2))": (lambda t: _monitor(str(t / "r.jsonl"), profile_steps=(5, 2)), ["profile_steps=(5, 2)"]),
    "Monitor(over a file that is not a record)": (lambda t: _monitor(notes_file(t)), ["refuses to write over"]),
    "diagnose(uncompiled model)": (lambda t: _diagnose(_model(False), *XY, batch_size=8), ["compile the model first"]),
    "diagnose(not a model)": (lambda t: _diagnose("model", *XY), ["needs a keras.Model"]),
    "diagnose(batch_size='64')": (lambda t: _diagnose(_model(), *XY, batch_size="64"), ["batch_size='64'"]),
    "diagnose(batch_size=-8)": (lambda t: _diagnose(_model(), *XY, batch_size=-8), ["batch_size=-8"]),
    "diagnose(batch_size=0)": (lambda t: _diagnose(_model(), *XY, batch_size=0), ["batch_size=0"]),
    "diagnose(seconds=0)": (lambda t: _diagnose(_model(), *XY, batch_size=8, seconds=0), ["seconds=0"]),
    "diagnose(a Python generator)": (lambda t: _diagnose(_model(), _gen()), ["Python generator", "PyDataset"]),
    "diagnose(record=a directory)": (lambda t: _diagnose(_model(), *XY, batch_size=8, record=str(t)), ["is a directory"]),
    "diagnose(record=unwritable)": (lambda t: _diagnose(_model(), *XY, batch_size=8, record="/proc/r.jsonl"), ["not writable"]),
    "load(a mark of 2 fields)": (lambda t: _load(t, {"type": "steps", "marks": [[0, 1]]}), ["mark"]),
    "load(a sample without t)": (lambda t: _load(t, {"type": "sample"}), ["sample", "'t'"]),
    "load(marks null)": (lambda t: _load(t, {"type": "steps", "marks": None}), ["marks"]),
    "diagnose_record(a directory)": (lambda t: _report(t, str(t)), ["is a directory"]),
    "bench(unknown workload)": (lambda t: __import__("redline.benchmarking.bench", fromlist=["bench"]).bench(["resnet"]), ["resnet"]),
    "bench(repeats=0)": (lambda t: __import__("redline.benchmarking.bench", fromlist=["bench"]).bench(["tiny"], repeats=0),
                         ["--repeats 0"]),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_bad_input(tmp_path, name):
    call, words = API_CASES[name]
    with pytest.raises(RedlineError) as info:
        call(tmp_path)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert "\n" not in message
    # nothing half-written left behind: only the inputs a case made itself
    assert set(os.listdir(tmp_path)) <= {"notes.txt", "run.jsonl"}


def test_diagnose_checks_the_record_path_before_measuring(tmp_path):
    model = _model()
    with pytest.raises(RedlineError):
        _diagnose(model, *XY, batch_size=8, record=str(tmp_path))
    assert int(model.optimizer.iterations.numpy()) == 0  # not one training step was spent


def test_monitor_refuses_before_fit_starts_not_inside_it(tmp_path):
    model = _model()
    with pytest.raises(RedlineError, match="not writable"):
        model.fit(*XY, epochs=1, verbose=0, callbacks=[_monitor("/proc/redline-run.jsonl")])
    assert int(model.optimizer.iterations.numpy()) == 0


def test_report_may_rewrite_its_own_html(capsys, tmp_path):
    """What report wrote itself it may write again: refusing is only for files that are not its own."""
    r = record(tmp_path)
    out = str(tmp_path / "page.html")
    assert cli(capsys, "report", r, "-o", out)[0] == 0
    assert cli(capsys, "report", r, "-o", out)[0] == 0
    assert json.loads(open(r).readline())["type"] == "header"


# -- NVML that is missing or broken ------------------------------------------------------------------------------------

class _BrokenLibrary:
    """A pynvml whose shared library fails while loading with OSError, as a damaged libnvidia-ml.so can."""

    class NVMLError(Exception):
        pass

    def nvmlInit(self):
        raise OSError("libnvidia-ml.so.1: invalid ELF header")


def test_the_sampler_survives_a_broken_nvml_library():
    from redline.monitoring.system import SystemSampler

    s = SystemSampler(nvml=_BrokenLibrary())
    reading = s.sample(0.0)
    assert "invalid ELF header" in s.gpu_note and reading["gpu_note"] == s.gpu_note and "gpus" not in reading
    assert reading["cpu_per_core_pct"]  # the rest of the reading stands


def test_real_nvml_on_a_machine_whose_library_is_not_a_library(tmp_path):
    """The real pynvml, pointed at a file that is no shared library: detection and sampling say so and go on."""
    (tmp_path / "libnvidia-ml.so.1").write_bytes(b"this is not an ELF file")
    code = ("import json; from redline.monitoring.system import SystemSampler; from redline.detection import detect; "
            "s = SystemSampler(); r = s.sample(0.0); d = detect().to_dict()['gpus']; "
            "print(json.dumps({'note': s.gpu_note, 'reading': r.get('gpu_note'), 'detect': d['nvml'], 'devices': d['devices']}))")
    env = {**os.environ, "LD_LIBRARY_PATH": str(tmp_path)}
    import subprocess

    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["devices"] == [] and "not_available" in d["detect"]
    assert d["note"].startswith("NVML") and d["reading"] == d["note"]


@pytest.mark.parametrize("missing, call", [
    (("torch",), "redline.configure(backend='torch')"),
    (("jax", "jaxlib"), "redline.configure(backend='jax', strategy='mirrored', cpu_devices=2)"),
])
def test_configure_names_a_backend_that_is_not_installed(missing, call):
    code = f"import redline\ntry:\n    {call}\nexcept redline.UsageError as e:\n    print('USAGE', e)\n"
    r = python_without(missing, ["-c", code], timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert f"{missing[0]}" in r.stdout and "not installed" in r.stdout and r.stdout.startswith("USAGE")


@pytest.mark.parametrize("argv, words", [(["--budget", "-3", "x.py"], "give 30 to 86400 seconds"),
                                         (["--budget", "abc", "x.py"], "not a number of seconds"),
                                         (["nothere.py"], "'nothere.py' is not a file")])
def test_the_tune_trace_benchmark_refuses_bad_input_in_one_line(argv, words):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, os.path.join(here, "benchmarks", "tune_trace.py"), *argv], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert [line for line in r.stderr.splitlines() if "error" in line] == [r.stderr.splitlines()[-1]]


def test_a_module_the_script_imports_and_redline_s_python_lacks_names_that_python():
    """tune said "ModuleNotFoundError: No module named 'pandas'" alone, where redline (installed with pipx, or in a venv
    of its own) runs the trials with another Python than the user's packages are in."""
    import sys

    from redline.tuning.trials import missing_module

    said = missing_module("ModuleNotFoundError: No module named 'sklearn.model_selection'")
    assert sys.executable in said and "install 'sklearn' into it" in said and "environment that has it" in said
    assert missing_module("ValueError: bad shape") == "" and missing_module(None) == ""

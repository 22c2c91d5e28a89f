"""The command line: bad input gets one clear line and exit code 2; doctor reports this machine."""

import json
import os
import subprocess
import sys

import pytest

from clirun import cli

RUN_ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}



def test_bad_input_from_a_real_process_has_no_traceback():
    r = subprocess.run([sys.executable, "-m", "redline", "doctor", "--intra-threads", "0"], capture_output=True, text=True, env=RUN_ENV)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith("redline doctor: error: intra_threads=0 is not valid")


def test_a_subcommand_imports_its_own_module_only_and_help_lists_them_all():
    # `redline run`'s start is a script's start: the tuner's, the benchmark's and the reports' modules stay unimported
    probe = ("import sys\nfrom redline.cli import main\ntry:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.startswith('redline.cli.')))")
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=RUN_ENV)
    assert r.returncode == 0, r.stderr[-2000:]
    loaded = r.stdout.strip().splitlines()[-1]
    assert "redline.cli.run" in loaded and "redline.cli.tune" not in loaded and "redline.cli.bench" not in loaded, loaded
    r = subprocess.run([sys.executable, "-m", "redline", "--help"], capture_output=True, text=True, env=RUN_ENV)
    assert r.returncode == 0 and all(c in r.stdout for c in ("doctor", "run", "tune", "launch", "data-service", "bench",
                                                              "diagnose", "report")), r.stdout
    r = subprocess.run([sys.executable, "-m", "redline", "bogus"], capture_output=True, text=True, env=RUN_ENV)
    assert r.returncode == 2 and "invalid choice: 'bogus'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_doctor_on_this_machine(capsys):
    code, out, _ = cli(capsys, "doctor")
    assert code in (0, 1)
    assert "usable" in out and "Plan" in out and "Findings" in out


def _cgroup_quota():
    """The CPU quota in CPUs, read here straight from the cgroup files (v2 then v1), or None."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
        period = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def test_doctor_json_reports_the_usable_cores():
    r = subprocess.run([sys.executable, "-m", "redline", "doctor", "--json"], capture_output=True, text=True, env=RUN_ENV)
    d = json.loads(r.stdout)
    expected = len(os.sched_getaffinity(0))
    quota = _cgroup_quota()
    if quota is not None:
        expected = min(expected, max(1, int(quota)))
    assert d["snapshot"]["cpu"]["usable"] == expected
    assert d["plan"]["intra_op_threads"]["value"] <= expected
    assert r.returncode == (0 if d["healthy"] else 1)
    assert "tensorflow" not in r.stderr.lower()  # doctor never starts TensorFlow


@pytest.mark.parametrize("script_args", [["a", "--b"], ["--e", "3"], ["--dry"], ["--dry-run", "-h", "--backend", "x"]])
def test_everything_after_the_script_is_the_script_s(tmp_path, script_args):
    """No abbreviation of redline's own options is matched among the script's arguments."""
    script = tmp_path / "train.py"
    script.write_text("import json, sys\nprint('ARGV', json.dumps(sys.argv[1:]))\n")
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", str(script), *script_args],
                       capture_output=True, text=True, env=RUN_ENV, timeout=120)
    assert r.returncode == 0, r.stderr
    line = [x for x in r.stdout.splitlines() if x.startswith("ARGV ")][0]
    assert json.loads(line[5:]) == script_args


def test_one_of_tune_s_own_options_after_the_script_gets_a_note_and_still_goes_to_the_script(capsys, tmp_path, monkeypatch):
    from redline.cli.common import options_after_script

    note = options_after_script(["--budget", "--json"], "tune", "train.py", ["--epochs", "3", "--json=out.json"])
    assert note.startswith("note: --json after the script goes to train.py, not to redline tune")
    assert "redline tune --json ... train.py" in note
    assert options_after_script(["--budget", "--json"], "tune", "train.py", ["--epochs", "3"]) is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    s = tmp_path / "train.py"
    s.write_text("print('hi')\n")
    code, out, err = cli(capsys, "tune", "--show", str(s), "--json", "x.json")
    assert code == 0 and "--json after the script" in err and "no choice applies" in out, (out, err)


def test_a_dropped_candidate_s_exception_is_shown_on_one_line_with_its_point_not_its_first_70_characters():
    from redline.cli.tune import short_error

    shape = ("ValueError: Input 0 with name 'input_layer' of layer 'functional' is incompatible with the layer: "
             "expected shape=(None, 20, 4), found shape=(256, 120, 4)")
    assert short_error(shape) == shape  # the shapes are the point: kept
    keras_style = ("AttributeError: Exception encountered when calling LogScale.call().\n\n\x1b[1m'str' object has no "
                   "attribute '_error_repr'\x1b[0m\n\nArguments received by LogScale.call():\n  • args=('<KerasTensor "
                   "shape=(None, 32)>',)\n")
    said = short_error(keras_style)
    assert said == ("AttributeError: Exception encountered when calling LogScale.call(). 'str' object has no attribute "
                    "'_error_repr'"), said
    long = short_error("RuntimeError: " + "x" * 500)
    assert len(long) == 200 and long.endswith("...")


def test_ctrl_c_during_tune_stops_its_trials_in_one_line_and_saves_nothing(tmp_path):
    import signal
    import time

    elsewhere = tmp_path / "out"
    elsewhere.mkdir()
    script = tmp_path / "project" / "train.py"
    script.parent.mkdir()
    script.write_text("import os, sys, time\nopen(os.path.join(sys.argv[1], 'pid'), 'w').write(str(os.getpid()))\n"
                      "time.sleep(120)\n")
    env = {**RUN_ENV, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    p = subprocess.Popen([sys.executable, "-m", "redline", "tune", str(script), str(elsewhere)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal's Ctrl-C
    deadline = time.monotonic() + 90
    while not (elsewhere / "pid").exists() or not (elsewhere / "pid").read_text():
        assert time.monotonic() < deadline and p.poll() is None, "the trial never started"
        time.sleep(0.1)
    trial = int((elsewhere / "pid").read_text())
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("redline tune: interrupted (Ctrl-C); no choice was saved"), err
    assert not (tmp_path / "cache" / "redline" / "tuned").exists() or not os.listdir(tmp_path / "cache" / "redline" / "tuned")
    deadline = time.monotonic() + 30
    while True:  # the trial process is gone
        try:
            os.kill(trial, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the trial process outlived the tune"
        time.sleep(0.1)


def test_the_script_s_own_keyboard_interrupt_is_the_script_s(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("raise KeyboardInterrupt\n")
    r = subprocess.run([sys.executable, "-m", "redline", "run", "--quiet", "--backend", "numpy", str(script)],
                       capture_output=True, text=True, env=RUN_ENV, timeout=120)
    assert r.returncode != 130 and "Traceback" in r.stderr and "interrupted (Ctrl-C)" not in r.stderr, r.stderr

"""The command line: bad input gets one clear line and exit code 2; doctor reports this machine."""

import json
import os
import subprocess
import sys

import pytest

from redline.cli import main

RUN_ENV = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}


def cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, fragment", [
    (["doctor", "--bogus"], "unrecognized arguments: --bogus"),
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["doctor", "--intra-threads", "0"], "intra_threads=0 is not valid: it must be an integer from 1 to"),
    (["doctor", "--inter-threads", "-2"], "inter_threads=-2 is not valid"),
    (["doctor", "--intra-threads", "100000"], "intra_threads=100000 is not valid"),
    (["doctor", "--intra-threads", "two"], "invalid int value: 'two'"),
    (["doctor", "--precision", "fp8"], "precision='fp8' is not a known policy: use one of float32, mixed_float16, mixed_bfloat16"),
    (["run", "--precision", "half", __file__], "precision='half' is not a known policy"),
    (["doctor", "--gpu-memory", "lots"], "use growth, full or a per-GPU limit in MiB"),
    (["doctor", "--strategy", "tpu"], "invalid choice: 'tpu'"),
    (["run", "does-not-exist.py"], "script 'does-not-exist.py' does not exist; give the path of a Python file"),
    (["run"], "the following arguments are required: script"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert out == ""


def test_run_given_a_directory(capsys, tmp_path):
    code, _, err = cli(capsys, "run", str(tmp_path))
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("tf_config, fragment", [
    ("{bad", "is not valid JSON"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 5}}', "task.index 5 is out of range"),
])
def test_malformed_tf_config(capsys, monkeypatch, tf_config, fragment):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    for argv in (["doctor"], ["run", "--dry-run", __file__]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and fragment in err and "TF_CONFIG=" in err and len(err.strip().splitlines()) == 1


def test_bad_input_from_a_real_process_has_no_traceback():
    r = subprocess.run([sys.executable, "-m", "redline", "doctor", "--intra-threads", "0"], capture_output=True, text=True, env=RUN_ENV)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    assert r.stderr.startswith("redline doctor: error: intra_threads=0 is not valid")


def test_doctor_on_this_machine(capsys):
    code, out, _ = cli(capsys, "doctor")
    assert code in (0, 1)
    assert "usable" in out and "Plan" in out and "Findings" in out


def test_doctor_json_reports_the_usable_cores():
    r = subprocess.run([sys.executable, "-m", "redline", "doctor", "--json"], capture_output=True, text=True, env=RUN_ENV)
    d = json.loads(r.stdout)
    expected = len(os.sched_getaffinity(0))
    quota = d["snapshot"]["cpu"]["quota"]
    if isinstance(quota, (int, float)):
        expected = min(expected, max(1, int(quota)))
    assert d["snapshot"]["cpu"]["usable"] == expected
    assert d["plan"]["intra_op_threads"]["value"] <= expected
    assert r.returncode == (0 if d["healthy"] else 1)
    assert "tensorflow" not in r.stderr.lower()  # doctor never starts TensorFlow


def test_doctor_exit_1_on_error_findings(capsys, monkeypatch):
    import redline.cli.doctor as doctor
    from redline.diagnosis import ERROR, Finding
    monkeypatch.setattr(doctor, "config_findings", lambda s, p: [Finding("x", ERROR, "broken", "evidence", "fix it")])
    code, out, _ = cli(capsys, "doctor")
    assert code == 1 and "NOT healthy" in out and "[error] broken" in out

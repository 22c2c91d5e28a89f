"""The tf.data service: servers started and stopped by `redline data-service`, a pipeline run on them, and what is
refused before anything starts."""

import importlib.util
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None:
    pytest.skip("TensorFlow is not installed", allow_module_level=True)

import redline
from redline.errors import UsageError

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(*argv):
    p = subprocess.Popen([sys.executable, "-m", "redline", "data-service", *argv], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=ENV)
    for line in p.stdout:
        if "stop with Ctrl-C" in line:
            return p, line
    raise AssertionError(f"the server did not start: exit {p.wait()}")


@pytest.mark.slow
def test_a_pipeline_runs_on_a_dispatcher_and_worker_started_and_stopped_by_the_command(tmp_path):
    port = _free_port()
    dispatcher, line = _start("dispatcher", "--port", str(port), "--work-dir", str(tmp_path / "journal"))
    assert "fault-tolerant" in line
    worker, _ = _start("worker", "--dispatcher", f"127.0.0.1:{port}")
    try:
        x = np.arange(64, dtype="float32").reshape(32, 2)
        y = np.arange(32, dtype="float32")
        here = redline.data.pipeline((x, y), batch_size=8, shuffle=False, deterministic=True, map_fn=lambda a, b: (a * 2.0, b))
        there = redline.data.pipeline((x, y), batch_size=8, shuffle=False, deterministic=True, map_fn=lambda a, b: (a * 2.0, b),
                                      service=f"grpc://127.0.0.1:{port}")
        got = [b[1].numpy() for b in there.take(4)]
        want = [b[1].numpy() for b in here.take(4)]
        assert np.array_equal(np.concatenate(got), np.concatenate(want))  # every row once, in order (one worker)
    finally:
        for p in (worker, dispatcher):
            p.send_signal(signal.SIGTERM)
    for p in (worker, dispatcher):
        out, _ = p.communicate(timeout=30)
        assert p.returncode == 0 and "stopped" in out


@pytest.mark.slow
def test_an_address_that_does_not_answer_times_out_with_a_message():
    with pytest.raises(UsageError, match="no tf.data service dispatcher answers"):  # it returns: the wait has a limit
        redline.data.pipeline(np.ones((8, 2), "float32"), batch_size=4, service=f"grpc://127.0.0.1:{_free_port()}")


@pytest.mark.parametrize("build, words", [
    (lambda: redline.data.pipeline(np.ones((8, 2), "float32"), batch_size=4, service="grpc://127.0.0.1:1",
                                   map_fn=lambda a: __import__("tensorflow").numpy_function(lambda v: v, [a], "float32")),
     "tf.py_function / tf.numpy_function"),
    (lambda: redline.data.pipeline(np.ones((8, 2), "float32"), batch_size=4, service="localhost"), "not a tf.data service"),
    (lambda: redline.data.pipeline(np.ones((8, 2), "float32"), batch_size=4, service="http://h:1"), "not a tf.data service"),
])
def test_what_cannot_run_on_the_service_is_refused_before_anything_starts(build, words):
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(".", r"\.")):
        build()


def test_a_generator_source_is_refused():
    from redline.data.service import python_stages

    import tensorflow as tf

    def gen():
        yield np.ones(2, "float32")

    ds = tf.data.Dataset.from_generator(gen, output_signature=tf.TensorSpec((2,), tf.float32))
    assert python_stages(ds) == ["a Python generator source"]
    with pytest.raises(UsageError, match="Python generator source"):
        redline.data.service.distribute(ds, "grpc://127.0.0.1:1")


@pytest.mark.slow
def test_a_worker_whose_dispatcher_does_not_answer_exits_2(capsys):
    from clirun import cli

    code, out, err = cli(capsys, "data-service", "worker", "--dispatcher", f"127.0.0.1:{_free_port()}")
    assert code == 2 and "no tf.data service dispatcher answers" in err and len(err.strip().splitlines()) == 1


def test_a_malformed_dispatcher_address_is_named_as_given(capsys):
    from clirun import cli

    code, out, err = cli(capsys, "data-service", "worker", "--dispatcher", "nope")
    assert code == 2 and "--dispatcher 'nope' is not a tf.data service address" in err and len(err.strip().splitlines()) == 1

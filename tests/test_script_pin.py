"""The backend a script pins itself, read from its source (detection/script.py), and `redline run` honouring it."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

from redline.detection.script import Pin, script_backend


def _pin(tmp_path, source, environ=None):
    path = tmp_path / "train.py"
    path.write_text(textwrap.dedent(source))
    return script_backend(str(path), {} if environ is None else environ)


def test_the_keras_io_line_before_import_keras_is_a_pin(tmp_path):
    assert _pin(tmp_path, """\
        import os

        os.environ["KERAS_BACKEND"] = "jax"

        import keras
        """) == Pin("jax", "train.py:3")


def test_a_line_after_keras_or_tensorflow_is_imported_changes_nothing(tmp_path):
    for first in ("import keras", "import tensorflow as tf", "from tensorflow import keras", "from keras import layers",
                  "import keras_hub"):
        assert _pin(tmp_path, f"""\
            import os
            {first}
            os.environ["KERAS_BACKEND"] = "jax"
            """) is None, first


def test_the_last_line_before_the_import_wins_and_blocks_that_run_at_import_are_read(tmp_path):
    assert _pin(tmp_path, """\
        import os
        from os import environ
        os.environ["KERAS_BACKEND"] = "torch"
        if __name__ == "__main__":
            environ["KERAS_BACKEND"] = "tensorflow"
            import keras
        os.environ["KERAS_BACKEND"] = "jax"
        """) == Pin("tensorflow", "train.py:5")


def test_functions_are_not_run_at_import(tmp_path):
    assert _pin(tmp_path, """\
        import os
        def main():
            os.environ["KERAS_BACKEND"] = "jax"
        import keras
        """) is None


def test_setdefault_gives_way_to_the_environment_and_update_pins(tmp_path):
    src = """\
        import os
        os.environ.setdefault("KERAS_BACKEND", "jax")
        import keras
        """
    assert _pin(tmp_path, src) == Pin("jax", "train.py:2")
    assert _pin(tmp_path, src, {"KERAS_BACKEND": "tensorflow"}) is None
    assert _pin(tmp_path, """\
        import os
        os.environ.update({"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"})
        """) == Pin("jax", "train.py:2")
    assert _pin(tmp_path, "import os\nos.environ.update(KERAS_BACKEND='torch')\n") == Pin("torch", "train.py:2")


def test_a_value_known_only_when_the_script_runs_has_no_backend(tmp_path):
    assert _pin(tmp_path, """\
        import os, sys
        os.environ["KERAS_BACKEND"] = sys.argv[1]
        import keras
        """) == Pin(None, "train.py:2")


def test_no_pin_and_unreadable_scripts(tmp_path):
    assert _pin(tmp_path, "import keras\nprint(keras.backend.backend())\n") is None
    assert _pin(tmp_path, "def broken(:\n") is None
    assert script_backend(str(tmp_path / "missing.py")) is None


def run_no_tuned(tmp_path, *argv):
    """`redline run --no-tuned ARGV` where the environment says TensorFlow."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM", "OMP_", "MKL_", "TF_ENABLE_ONEDNN"))},
           "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2", "XDG_CACHE_HOME": str(tmp_path)}  # none of ours
    return subprocess.run([sys.executable, "-m", "redline", "run", "--no-tuned", *map(str, argv)], capture_output=True,
                          text=True, env=env, timeout=240)


PINNED = """\
import os

os.environ["KERAS_BACKEND"] = "jax"

import keras

print("BACKEND", keras.backend.backend())
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs JAX and TensorFlow installed")
def test_redline_run_without_a_tuned_choice_runs_the_script_on_the_backend_it_pins(tmp_path):
    """The plan for the environment's TensorFlow imported TensorFlow, and with it keras, before the script's line."""
    script = tmp_path / "train.py"
    script.write_text(PINNED)
    r = run_no_tuned(tmp_path, script)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BACKEND jax" in r.stdout
    assert "backend=jax (the script's own line train.py:3)" in r.stderr
    clash = run_no_tuned(tmp_path, "--backend", "tensorflow", script)
    assert clash.returncode == 2 and "Traceback" not in clash.stderr
    assert "train.py:3 sets KERAS_BACKEND='jax'" in clash.stderr and "BACKEND" not in clash.stdout


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs JAX and TensorFlow installed")
def test_a_backend_read_from_the_arguments_stands_and_the_plan_waits_for_it(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(PINNED.replace('"jax"', "sys.argv[1]").replace("import os", "import os, sys"))
    r = run_no_tuned(tmp_path, "--steps-per-execution", "4", script, "jax")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BACKEND jax" in r.stdout
    assert "redline: no plan applied: the script runs on jax, not on the tensorflow of the plan" in r.stderr
    r = run_no_tuned(tmp_path, "--steps-per-execution", "4", script, "tensorflow")  # the plan's: applied
    assert r.returncode == 0 and "BACKEND tensorflow" in r.stdout, r.stderr[-2000:]
    assert "Model.compile defaults patched in: steps_per_execution=4" in r.stderr and "no plan applied" not in r.stderr


def test_set_backend_pins_wherever_it_comes(tmp_path):
    assert _pin(tmp_path, """\
        import os
        import keras
        os.environ["KERAS_BACKEND"] = "torch"
        keras.config.set_backend("jax")
        """) == Pin("jax", "train.py:4")


SET_BACKEND = """\
import keras
keras.config.set_backend("jax")
import keras
import numpy as np

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
model.compile("sgd", "mse")
model.fit(np.ones((64, 4)), np.ones((64, 1)), batch_size=16, epochs=1, verbose=0)
print("BACKEND", keras.backend.backend(), "SPE", model.steps_per_execution)
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs JAX and TensorFlow installed")
def test_compile_defaults_follow_keras_imported_anew_by_set_backend(tmp_path):
    """set_backend removes keras from sys.modules and imports it again: a new Model class, unpatched."""
    script = tmp_path / "train.py"
    script.write_text(SET_BACKEND)
    r = run_no_tuned(tmp_path, "--steps-per-execution", "4", script)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BACKEND jax SPE 4" in r.stdout


def test_a_line_that_may_not_run_leaves_the_backend_to_the_run_but_an_unset_test_is_a_default(tmp_path):
    assert _pin(tmp_path, """\
        import os, sys
        if "--jax" in sys.argv:
            os.environ["KERAS_BACKEND"] = "jax"
        import keras
        """) == Pin(None, "train.py:3")
    unset = """\
        import os
        if "KERAS_BACKEND" not in os.environ:
            os.environ["KERAS_BACKEND"] = "jax"
        else:
            print("as set")
        import keras
        """
    assert _pin(tmp_path, unset) == Pin("jax", "train.py:3")
    assert _pin(tmp_path, unset, {"KERAS_BACKEND": "tensorflow"}) is None
    assert _pin(tmp_path, """\
        try:
            import keras
        except ImportError:
            import os
            os.environ["KERAS_BACKEND"] = "jax"
        """) is None  # keras imported first, surely


@pytest.mark.skipif(importlib.util.find_spec("jax") is None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs JAX and TensorFlow installed")
def test_a_backend_picked_in_a_settings_module_stands_and_the_plan_for_another_is_not_applied(tmp_path):
    """No reading of the script's source shows it: TensorFlow's settings wait for the script's own import of keras."""
    (tmp_path / "settings.py").write_text('import os\nos.environ["KERAS_BACKEND"] = "jax"\n')
    script = tmp_path / "train.py"
    script.write_text("import settings  # noqa: F401\nimport keras\nprint('BACKEND', keras.backend.backend())\n")
    r = run_no_tuned(tmp_path, "--intra-threads", "1", script)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BACKEND jax" in r.stdout
    assert "redline: no plan applied: the script runs on jax, not on the tensorflow of the plan" in r.stderr
    assert "OMP_NUM_THREADS=1" in r.stderr  # what was set before the script started is named


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None or importlib.util.find_spec("tensorflow") is None,
                    reason="needs TensorFlow installed and torch not")
def test_tune_asks_for_the_backend_the_script_pins_not_the_environment_s(tmp_path):
    """KERAS_BACKEND=torch in the environment, torch not installed: the script's own line says TensorFlow, and that is
    the backend it runs on, so tune goes on to its first trial (which finds the script exits before fit)."""
    script = tmp_path / "train.py"
    script.write_text('import os\nos.environ["KERAS_BACKEND"] = "tensorflow"\nimport sys\nimport keras\n'
                      'sys.exit("no data folder")\n')
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "2", "XDG_CACHE_HOME": str(tmp_path)}
    r = subprocess.run([sys.executable, "-m", "redline", "tune", str(script)], capture_output=True, text=True, env=env,
                       timeout=240, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "torch" not in r.stderr and "no data folder" in r.stderr, r.stderr[-1000:]

"""The bench machinery end to end on the tiny workload, its JSON schema, and its bad input."""

import json
from importlib import resources

import pytest

from clirun import cli
from redline.benchmarking.bench import bench
from redline.benchmarking.run_once import epoch_start_stall

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads(resources.files("redline.benchmarking").joinpath("bench.schema.json").read_text())


@pytest.fixture(scope="module")
def tiny_result():
    return bench(["tiny"], repeats=1, quick=True)


@pytest.mark.slow
def test_bench_runs_tiny_once(tiny_result):
    r = tiny_result
    jsonschema.validate(r, SCHEMA)
    row = r["workloads"][0]
    assert row["workload"] == "tiny" and r["repeats"] == 1 and r["quick"] is True
    usable = r["machine"]["cpu"]["usable"]
    for config in ("baseline", "redline"):
        assert len(row[config]["samples_per_s"]["runs"]) == 1 and row[config]["samples_per_s"]["median"] > 0
        assert len(row[config]["cpu_per_core_pct"]) >= usable  # one reading per core the machine has
        assert 0 < row[config]["process_cores_busy"] <= len(row[config]["cpu_per_core_pct"]) + 0.5
        assert row[config]["batch_size"] == 16  # tiny's own batch: no --allow batch, so not changed
    # the model's FLOP/s cannot exceed the peak matmul rate measured on the same machine in the same run
    assert 0 < row["peak_fraction"] < 1
    # the redline runs used the plan's threads and a knob the tuner offers
    assert row["knobs"]["intra_op_threads"] == r["plan"]["intra_op_threads"]["value"]
    assert row["knobs"]["steps_per_execution"] in (1, 16) and row["knobs"]["jit_compile"] in (True, False)


@pytest.mark.slow
def test_schema_rejects_a_broken_result(tiny_result):
    broken = json.loads(json.dumps(tiny_result))
    del broken["workloads"][0]["redline"]["samples_per_s"]["median"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    broken = json.loads(json.dumps(tiny_result))
    broken["workloads"][0]["workload"] = "resnet"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_epoch_start_stall_arithmetic():
    # epoch begins at 0; batch ends at 2.0, 2.1, 2.2, 2.3: first step took 2.0 s against 0.1 s typical
    assert epoch_start_stall([[0.0, 2.0, 2.1, 2.2, 2.3], [10.0, 10.1, 10.2, 10.3, 10.4]]) == pytest.approx((1.9 + 0.0) / 2)
    assert epoch_start_stall([[0.0, 1.0]]) is None


@pytest.mark.parametrize("argv, fragment", [
    (["bench", "resnet"], "unknown workload 'resnet': valid are mlp, cnn, input, embed, tiny, generator"),
    (["bench", "--repeats", "0"], "--repeats 0 is not valid: give 1 or more"),
    (["bench", "--allow", "batch,dropout"], "--allow dropout is not valid: the knobs that change the math are batch, precision"),
    (["bench", "--json", "/nonexistent-folder/r.json"], "folder '/nonexistent-folder' does not exist"),
    (["bench", "--json", "/"], "is a directory"),
])
def test_bench_bad_input(capsys, argv, fragment):
    code, out, err = cli(capsys, *argv)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1 and out == ""


def test_bench_unwritable_json(capsys):
    # /proc takes no new files, not even from root
    code, _, err = cli(capsys, "bench", "--json", "/proc/redline-bench.json")
    assert code == 2 and "'/proc/redline-bench.json' is not writable" in err and len(err.strip().splitlines()) == 1


def test_bench_json_check_leaves_no_file(capsys, tmp_path, monkeypatch):
    import redline.cli.bench as cli_bench

    monkeypatch.setattr(cli_bench, "bench", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    code, _, err = cli(capsys, "bench", "--json", str(tmp_path / "r.json"))  # stopped: one line, exit 130
    assert code == 130 and err.strip() == "redline bench: interrupted (Ctrl-C)", err
    assert not (tmp_path / "r.json").exists()

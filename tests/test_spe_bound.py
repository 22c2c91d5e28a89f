"""The steps_per_execution ladder is decided without measuring it where a call's host work is too small a share of it
for any steps_per_execution to gain what a choice needs (tuning/spe_bound.py)."""

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

from tune_helpers import DIRECT, ENV
from redline.tuning.compare import MIN_GAIN
from redline.tuning.spe_bound import ROOM, UNSEEN, cannot_matter, host_share


def _calls(host_ms: float, call_ms: float, n: int = 6, thread=1, epochs=(1,)):
    """Fake begins/ends of ``n`` calls an epoch: each call ``call_ms`` from the last one's end, half its host time
    between the calls and half as the main thread's CPU inside the call."""
    begins, ends, t, cpu = [], [], 0.0, 0.0
    for epoch in epochs:
        for _ in range(n):
            t += host_ms / 2e3
            begins.append((t, cpu, thread, epoch))
            t += call_ms / 1e3 - host_ms / 2e3
            cpu += host_ms / 2e3
            ends.append((t, cpu, thread, epoch))
    return begins, ends


def test_the_share_is_the_host_time_between_and_inside_calls_over_the_call():
    share, host, call = host_share(*_calls(2.0, 800.0))
    assert share == pytest.approx(2.0 / 800.0) and host == pytest.approx(2e-3) and call == pytest.approx(0.8)
    # calls across an epoch's end are left out (the epoch's end runs validation and callbacks once an epoch)
    begins, ends = _calls(2.0, 800.0, n=3, epochs=(1, 2))
    assert host_share(begins, ends)[2] == pytest.approx(0.8)


def test_no_share_where_batch_ends_ran_on_another_thread_or_too_few_calls():
    begins, ends = _calls(2.0, 800.0)
    ends[2] = (*ends[2][:2], 99, ends[2][3])  # a batch end on Keras' callback thread pool
    assert host_share(begins, ends) is None
    assert host_share(*_calls(2.0, 800.0, n=2)) is None  # one interval
    assert cannot_matter(None) is None


@pytest.mark.parametrize("host_ms, call_ms, decided", [(2.3, 822.0, True), (4.0, 170.0, True), (3.0, 60.0, False),
                                                       (1.1, 1.9, False), (0.5, 40.0, False)])
def test_the_ladder_is_decided_only_where_no_spe_could_gain_what_a_choice_needs(host_ms, call_ms, decided):
    """slow_conv (2.3 ms of 822 ms) and fine_tune's second fit (4 ms of 170 ms: 3.7% with UNSEEN) are decided;
    fine_tune's first fit (9% with UNSEEN) and tabular_mlp (63%) are measured, and so is a call whose own host time
    is small but not against what no clock sees (UNSEEN: 0.5 ms of 40 ms is 6.4% with it)."""
    why = cannot_matter(host_share(*_calls(host_ms, call_ms)))
    assert (why is not None) == decided
    if decided:
        removable = host_ms + UNSEEN * 1e3
        assert f"{host_ms:.2f} ms" in why and f"{call_ms / 1e3:.3f} s" in why, why
        assert f"{removable / (call_ms - removable):.2%}" in why, why
    assert ROOM == MIN_GAIN and 0 < UNSEEN


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None, reason="TensorFlow is not installed")
def test_a_stage_reads_the_host_share_and_skips_the_ladder_only_where_it_cannot_matter():
    """A real stage on TensorFlow: the share it reads lies within physical bounds (host time is part of the call's);
    with the share injected as slow steps have it, no ladder step is calibrated and the reason carries the figures;
    as fast steps have it, the ladder runs."""
    code = DIRECT + textwrap.dedent("""
        from redline.tuning import spe_bound
        real = spe_bound.host_share
        seen = []
        def spy(begins, ends):
            got = real(begins, ends)
            seen.append(got)
            return got
        out = {}
        for name, fake in (("real", None), ("slow", (0.003, 0.0025, 0.83)), ("fast", (0.6, 0.0011, 0.0019))):
            spe_bound.host_share = spy if fake is None else (lambda b, e, f=fake: f)
            events = []
            trial = {"candidates": {"default": {"own": True}}, "ladder": {"flattens": 0.05}, "rounds": 1,
                     "seconds": 0.1}
            res = measure_fit(model, keras.Model.fit, {"x": x, "y": y, "batch_size": 16}, trial, Compiles, events.append)
            out[name] = {"skip": res.get("ladder_skip"), "ladder": res.get("ladder"),
                         "spe_calibrated": [e for e in events if "calibrating spe" in e]}
        out["seen"] = [s for s in seen if s]
        print(json.dumps(out))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    d = json.loads(r.stdout.strip().splitlines()[-1])
    assert d["seen"], d
    for share, host, call in d["seen"]:
        assert 0.0 <= share <= 1.0 and 0.0 <= host <= call, d
    assert d["slow"]["skip"] and f"{(2.5 + UNSEEN * 1e3) / (830 - 2.5 - UNSEEN * 1e3):.2%}" in d["slow"]["skip"] and d["slow"]["ladder"] == [], d
    assert d["slow"]["spe_calibrated"] == [], d
    assert d["fast"]["skip"] is None and d["fast"]["spe_calibrated"], d

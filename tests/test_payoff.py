"""A per-process choice must pay for its compile over the script's training (tuning/payoff.py): on injected figures."""

import pytest

import machines as m
from redline.tuning.payoff import process_once, start_s, unpaid
from redline.tuning.result import Candidate


def cand(name, rate, trace, extra=()):
    return Candidate(name, runs=[rate * f for f in (0.99, 1.0, 1.01)], passes=[rate],
                     detail={"trace_s": trace, "first_extra": list(extra)})


def test_a_start_costs_its_trace_and_its_first_epochs_extra_beyond_the_script_as_written_s():
    default, jax = cand("as written", 100.0, 2.0, [0.5, 0.7]), cand("backend jax", 150.0, 6.0, [1.5, None, 1.9])
    assert start_s(default) == pytest.approx(2.6) and start_s(jax) == pytest.approx(7.7)
    assert process_once(jax, default) == pytest.approx(5.1) and process_once(default, default) == 0.0
    assert process_once(default, jax) == 0.0  # never below 0
    assert process_once(Candidate("x", detail={}), default) == 0.0  # a figure missing: nothing said


@pytest.mark.parametrize("training_s, paid", [(10.0, False), (15.2, False), (15.4, True), (300.0, True)])
def test_a_faster_process_whose_start_costs_more_than_it_saves_is_not_worth_it(training_s, paid):
    """1.5x epochs save a third of the training; the JAX start costs 5.1 s more: paid from ~15.3 s of training."""
    default, jax = cand("as written", 100.0, 2.0, [0.6]), cand("backend jax", 150.0, 6.0, [1.7])
    why = unpaid(jax, default, training_s)
    assert (why is None) == paid
    if why:
        assert "its start costs ~5.1 s more" in why and f"~{training_s / 3:,.1f} s of the script's" in why
    assert unpaid(jax, default, None) is None


@pytest.mark.parametrize("epochs, chosen", [(3, "as written"), (3000, "backend jax")])
def test_tune_keeps_the_script_as_written_where_another_backend_s_compile_outweighs_its_gain(monkeypatch, epochs,
                                                                                           chosen):
    from redline.cli.tune import text
    from redline.tuning import search

    def fake(script, args, c, trial, timeout, **_):
        jax = c.env.get("KERAS_BACKEND") == "jax"
        if "ladder" in trial:
            r = 300.0 if jax else 100.0
            return {"status": "ok", "candidates": {"default": {"steps_per_s": [r] * 3, "knobs": {}}}, "inputs": {},
                    "not_measured": [], "trace_s": 9.0 if jax else 1.0}
        r = 300.0 if jax else 100.0 if c.name == "as written" else 50.0
        return {"status": "ok", "candidates": {"default": {"steps_per_s": [r, r * 1.01, r * 0.99]}}, "data": "ndarray",
                "backend": "jax" if jax else "tensorflow", "steps_in_epoch": 100, "epochs": epochs,
                "trace_s": 9.0 if jax else 1.0}

    monkeypatch.setattr(search, "run_trial", fake)
    result = search.tune("train.py", budget_s=600, snapshot=m.vm_2core(), complete=False)
    assert result.chosen_process.name == chosen
    jax = next(p for p in result.processes if p.name == "backend jax")
    if chosen == "as written":  # 3 epochs of 100 steps: 3 s as written, 2 s saved, 8 s more to compile
        assert jax.dropped.startswith("not worth its process: its epochs ran 3.00x") and "~8.0 s more" in jax.dropped
        assert "not worth its process" in " ".join(text(result).split())  # (the table wraps its last column)
    else:  # 3,000 s of training: the compile is paid back, and the seconds a run saves count it
        assert not jax.dropped and result.start_cost() == pytest.approx(8.0)
        assert result.to_dict()["payback"]["saved_s"] == pytest.approx(3000 * (1 - 1 / result.ratio()) - 8.0, abs=0.1)
